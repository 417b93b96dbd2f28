"""``c2c contracts``, ``c2c billing`` and ``c2c ops``: the API's operations from a terminal.

They talk to Temporal (and, for the exception queue and dead letters, the ledger) directly,
with the same client operations as the API, except the operator's decisions on exceptions
(``c2c ops retry|skip|abort``): those go through the API with the operator's own token
(``C2C_API_TOKEN``), so the API names who decided, as it does for the dashboard.
Input is validated before anything is contacted: an invalid file or period exits with code 2
and changes nothing.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import typer
from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from c2c.codec import EncryptionKeyError, Keyring
from c2c.logs import configure_logging
from c2c.settings import get_settings
from c2c.temporal import TemporalUnavailable, connect
from domain.models import (
    Amendment,
    ClosePeriod,
    ContractApproved,
    ContractStatus,
    CreditInvoice,
    TerminateContract,
)
from domain.names import ExceptionAction, ExceptionQueue, Stage
from ledger import ExceptionStatus, InboundSource, InboundStatus, Ledger, get_ledger
from ledger.models import BillingFact
from starter.api import contracts, updates
from starter.api.auth import Role, hashed_entry
from starter.api.context import ApiContext
from starter.api.errors import ApiError
from starter.api.fields import problems
from starter.api.webhooks import PROCESSORS
from starter.cli import render
from starter.ops import dead_letters, exception_queue, invoice_review
from starter.ops.reset import LAST_FAILURE, ResetDone, ResetRefused, reset_contract

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Exit code for input that is invalid (as for a usage error).
EXIT_INVALID = 2

contracts_app = typer.Typer(help="Start, inspect, amend and list contracts.", no_args_is_help=True)
billing_app = typer.Typer(
    help="Billing periods, credit notes, the review of draft invoices and consolidated "
    "invoicing's customer billing.",
    no_args_is_help=True,
)
ops_app = typer.Typer(
    help="The exception queue (list, retry, skip, abort), dead letters (list, replay), resets, "
    "and secrets (new-key, hash-token).",
    no_args_is_help=True,
)


@contracts_app.callback()
@billing_app.callback()
@ops_app.callback()
def _configure_logging() -> None:
    # Runs once before any command of these groups.
    configure_logging("cli")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def with_temporal(operation: Callable[[Client], Awaitable[T]]) -> T:
    """Connect to the configured Temporal and run ``operation``; exit 1 with a clear message
    if Temporal cannot be reached or has no such contract."""
    settings = get_settings()

    async def run() -> T:
        try:
            client = await connect(settings)
        except (TemporalUnavailable, ValueError) as exc:  # unreachable, or misconfigured
            fail(str(exc))
        return await operation(client)

    try:
        return asyncio.run(run())
    except RPCError as exc:
        if contracts.is_finished_error(exc):
            fail("the contract's workflow has finished; it takes no more requests")
        if exc.status == RPCStatusCode.NOT_FOUND:
            fail("no such contract")
        fail(f"Temporal refused the request: {exc.status.name}: {exc.message}")


def open_ledger() -> Ledger:
    """The configured ledger."""
    return get_ledger(get_settings().ledger_url)


def load_model(model: type[M], path: Path, *, envelope_type: str | None = None) -> M:
    """Read a JSON file as ``model``; print each invalid field and exit 2 if it is not one.

    Args:
        model: The payload model.
        path: The file.
        envelope_type: Also accept the payload wrapped as a webhook of this type.
    """
    try:
        data: Any = json.loads(path.read_text())
    except OSError as exc:
        fail(f"{path}: cannot read it: {exc.strerror}", EXIT_INVALID)
    except ValueError as exc:
        fail(f"{path}: not valid JSON: {exc}", EXIT_INVALID)
    if envelope_type and isinstance(data, dict) and data.get("type") == envelope_type:
        data = data.get("data")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        found = problems(exc)
        for problem in found:
            typer.echo(str(problem), err=True)
        fail(f"{path}: {len(found)} invalid field(s); nothing was changed", EXIT_INVALID)


@contracts_app.command("start")
def start(file: Path = typer.Argument(..., help="a ContractApproved JSON file")) -> None:
    """Start a contract's workflow from an approved SOW (a second start is a no-op)."""
    event = load_model(ContractApproved, file, envelope_type="contract.approved")
    settings = get_settings()
    result = with_temporal(
        lambda client: contracts.start_contract(client, event, task_queue=settings.task_queue)
    )
    if result.duplicate:
        typer.echo(
            f"Contract {event.contract_id} was already started: workflow "
            f"{result.workflow_id} (duplicate; nothing changed)"
        )
    else:
        typer.echo(f"Started workflow {result.workflow_id} (run {result.run_id})")


@contracts_app.command("status")
def status(
    contract_id: str,
    as_json: bool = typer.Option(False, "--json", help="print the status as JSON"),
) -> None:
    """Show a contract's stage, references, invoices, open exceptions and history."""

    async def read(client: Client) -> ContractStatus:
        return await contracts.with_retrying(
            client, await contracts.get_status(client, contract_id)
        )

    found = with_temporal(read)
    settled: list[BillingFact] = []
    if contracts.kept_in_ledger(found):
        # The whole timeline and the invoices settled in earlier runs are in the ledger.
        found, settled = asyncio.run(contracts.from_ledger(found, open_ledger()))
    typer.echo(found.model_dump_json(indent=2) if as_json else render.status_text(found, settled))


@contracts_app.command("amend")
def amend(
    contract_id: str, file: Path = typer.Argument(..., help="an Amendment JSON file")
) -> None:
    """Apply an amendment; exits 1 if the contract rejects it."""
    amendment = load_model(Amendment, file)
    result = with_temporal(lambda client: updates.amend(client, contract_id, amendment))
    if result.status == "rejected":
        fail(f"Amendment {result.amendment_id} rejected: {result.reason}")
    targets = ", ".join(result.propagated_to) or "no system"
    typer.echo(f"Amendment {result.amendment_id} applied; propagated to {targets}")


@contracts_app.command("terminate")
def terminate(
    contract_id: str,
    effective_date: str = typer.Option(..., help="the contract's last day, YYYY-MM-DD"),
    reason: str = typer.Option(..., help="why, for the audit trail"),
) -> None:
    """End a contract early: bill what is due up to the date, then close once paid."""
    try:
        request = TerminateContract(effective_date=effective_date, reason=reason)
    except ValidationError as exc:
        fail("; ".join(p.message for p in problems(exc)))
    with_temporal(lambda client: contracts.terminate_contract(client, contract_id, request))
    typer.echo(f"Contract {contract_id} terminates on {request.effective_date}: {reason}.")


@contracts_app.command("list")
def list_contracts(
    stage: Stage | None = typer.Option(None, help="only contracts in this stage"),
) -> None:
    """List contracts, newest first."""
    items = with_temporal(lambda client: contracts.list_contracts(client, stage=stage))
    typer.echo(render.contracts_table(items))


def _period(value: str, force: bool = False, reason: str | None = None) -> ClosePeriod:
    try:
        return ClosePeriod(period=value, force=force, reason=reason)
    except ValidationError as exc:
        raise typer.BadParameter(
            "; ".join(p.message for p in problems(exc)), param_hint="PERIOD"
        ) from None


@billing_app.command("close-period")
def close_period(
    period: str = typer.Argument(..., metavar="YYYY-MM", help="the month to bill"),
    force: bool = typer.Option(
        False, "--force", help="close it before its last day has passed (needs --reason)"
    ),
    reason: str | None = typer.Option(None, "--reason", help="why it is closed early"),
) -> None:
    """Bill a period for every running contract. A period closes once its last day has passed
    in the legal entity's time zone; earlier only with --force and a --reason."""
    request = _period(period, force, reason)
    signalled = with_temporal(lambda client: contracts.close_period_for_all(client, request))
    typer.echo(f"Asked {len(signalled)} running contract(s) to bill {request.period}.")


@billing_app.command("credit")
def credit(
    contract_id: str,
    invoice_id: str,
    amount: str = typer.Argument(..., help="the amount to credit, before tax (e.g. 250.00)"),
    reason: str = typer.Option(..., "--reason", help="why the invoice is corrected"),
    credit_note_id: str | None = typer.Option(None, help="your key: the same key credits once"),
) -> None:
    """Correct an issued invoice by credit note; the invoice itself is never edited."""
    try:
        request = CreditInvoice(
            invoice_id=invoice_id, amount=amount, reason=reason, credit_note_id=credit_note_id
        )
    except ValidationError as exc:
        fail("; ".join(p.message for p in problems(exc)))
    keyed = with_temporal(lambda client: contracts.credit_invoice(client, contract_id, request))
    typer.echo(
        f"Asked contract {contract_id} to credit {amount} on invoice {invoice_id} "
        f"(credit note {keyed.credit_note_id}); see `c2c contracts status {contract_id}`."
    )


@billing_app.command("drafts")
def drafts(
    status: str = typer.Option("draft", help="draft (waiting for review), approved or rejected"),
    legal_entity: str | None = typer.Option(None, "--legal-entity", help="only this entity"),
    contract: str | None = typer.Option(None, help="only this contract"),
    as_json: bool = typer.Option(False, "--json", help="print the drafts, lines included"),
) -> None:
    """List draft invoices waiting for review (or reviewed ones), with their totals."""
    if status not in ("draft", "approved", "rejected"):
        raise typer.BadParameter(
            f"{status!r} is not draft, approved or rejected", param_hint="--status"
        )
    items = asyncio.run(
        invoice_review.list_drafts(
            open_ledger(),
            status=status,  # type: ignore[arg-type]
            legal_entity=legal_entity,
            contract_id=contract,
        )
    )
    if as_json:
        typer.echo(json.dumps([i.model_dump(mode="json") for i in items], indent=2))
    else:
        typer.echo(render.drafts_table(items))


def _review(invoice_id: str, decision: str, operator: str, reason: str | None) -> None:
    ledger = open_ledger()
    try:
        item = asyncio.run(invoice_review.get_draft(ledger, invoice_id))
    except invoice_review.DraftNotFound as exc:
        fail(str(exc))

    async def review(client: Client) -> str:
        try:
            after = await invoice_review.review(
                client,
                item,
                "approve" if decision == "approve" else "reject",
                operator=operator,
                reason=reason,
            )
        except invoice_review.DraftNotWaiting as exc:
            fail(str(exc))
        except WorkflowUpdateFailedError as exc:
            fail(f"the contract refused: {updates.rejection_reason(exc)}")
        return after.stage

    stage = with_temporal(review)
    done = "approved: it is numbered and issued" if decision == "approve" else "rejected"
    typer.echo(
        f"Draft {invoice_id} of contract {item.contract_id} {done} by {operator}; "
        f"the contract is now {stage}"
    )


@billing_app.command("approve")
def approve(
    invoice_id: str = typer.Argument(..., help="the draft's id (DRAFT-...)"),
    operator: str | None = typer.Option(None, help="who approves (default: your user name)"),
) -> None:
    """Approve a draft invoice: the contract numbers and issues it; its due date runs from now."""
    _review(invoice_id, "approve", operator or _whoami(), None)


@billing_app.command("reject")
def reject(
    invoice_id: str = typer.Argument(..., help="the draft's id (DRAFT-...)"),
    reason: str = typer.Option(..., "--reason", help="what is wrong, for the finance queue"),
    operator: str | None = typer.Option(None, help="who rejects (default: your user name)"),
) -> None:
    """Reject a draft invoice: an exception opens in the finance queue; retry it to draft the
    invoice again once fixed, skip to bill nothing for it."""
    if not reason.strip():
        raise typer.BadParameter("a rejection needs a reason", param_hint="--reason")
    _review(invoice_id, "reject", operator or _whoami(), reason)


@ops_app.command("exceptions")
def exceptions(
    status: str = typer.Option("open", help="open, retried, skipped, aborted, superseded or all"),
    queue: ExceptionQueue | None = typer.Option(None, help="only this queue"),
    contract: str | None = typer.Option(None, help="only this contract"),
) -> None:
    """List the exception queue (open exceptions by default)."""
    if status != "all" and status not in set(ExceptionStatus):
        raise typer.BadParameter(
            f"{status!r} is not open, retried, skipped, aborted, superseded or all",
            param_hint="--status",
        )
    wanted = None if status == "all" else ExceptionStatus(status)
    items = asyncio.run(
        exception_queue.list_exceptions(
            open_ledger(), status=wanted, queue=queue, contract_id=contract
        )
    )
    typer.echo(render.exceptions_table(items))


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _decide(exception_id: str, action: ExceptionAction, operator: str | None, note: str) -> None:
    """Send the decision through the API, which names its maker from the token, as for a
    decision made on the dashboard; the CLI never decides on Temporal directly here."""
    settings = get_settings()
    token = settings.api_token.get_secret_value() if settings.api_token else None
    if operator is not None and token:
        fail(
            "--operator is refused with C2C_API_TOKEN: the decision records the name of the "
            "token's holder",
            EXIT_INVALID,
        )
    body: dict[str, str] = {"note": note}
    if not token:
        operator = operator or _whoami()
    if operator is not None:
        # Counts only on an open API (no tokens configured); a protected API refuses first.
        body["operator"] = operator
    answer = call_api("POST", f"/api/exceptions/{exception_id}/{action.value}", json=body)
    if answer.status_code in (401, 403):
        fail(
            f"the API refused the decision ({api_message(answer)}); set C2C_API_TOKEN to a "
            "token with the operator role"
        )
    if answer.status_code == 409 and api_code(answer) == "decision_rejected":
        fail(f"the contract refused: {api_message(answer)}")
    if answer.status_code != 200:
        fail(api_message(answer))
    stage = answer.json().get("stage", "unknown")
    typer.echo(f"{action.value}: exception {exception_id} resolved; the contract is now {stage}")


def call_api(method: str, path: str, **request: Any) -> httpx.Response:
    """A request to c2c's API (``C2C_API_URL``) with the token ``C2C_API_TOKEN`` if one is
    set; exits 1 if the API cannot be reached."""
    settings = get_settings()
    token = settings.api_token.get_secret_value() if settings.api_token else None
    api = settings.api_url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.request(method, f"{api}{path}", headers=headers, timeout=120, **request)
    except httpx.HTTPError as exc:
        fail(f"cannot reach c2c's API at {api} (C2C_API_URL): {exc}")


def api_code(answer: httpx.Response) -> str | None:
    try:
        code = answer.json().get("error", {}).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None


def api_message(answer: httpx.Response) -> str:
    try:
        message = answer.json().get("error", {}).get("message")
    except (ValueError, AttributeError):
        message = None
    return message if isinstance(message, str) else f"HTTP {answer.status_code}"


def _decision_command(action: ExceptionAction, summary: str) -> None:
    def command(
        exception_id: str,
        operator: str | None = typer.Option(
            None,
            help="who decides, on an open API only (no tokens; default: your user name); "
            "with C2C_API_TOKEN the token's name is recorded",
        ),
        note: str = typer.Option("", help="why, for the audit trail"),
    ) -> None:
        _decide(exception_id, action, operator, note)

    command.__doc__ = summary + " Sent through the API (C2C_API_URL, C2C_API_TOKEN)."
    ops_app.command(action.value)(command)


_decision_command(ExceptionAction.RETRY, "Run the failed step again (after fixing its cause).")
_decision_command(ExceptionAction.SKIP, "Go on without the failed step.")
_decision_command(ExceptionAction.ABORT, "Cancel the contract's process.")


@ops_app.command("reset")
def reset(
    contract_id: str,
    to: str = typer.Option(
        LAST_FAILURE,
        "--to",
        help="first, last-failure (the last workflow task before the first failure) or an "
        "event id of a completed workflow task",
    ),
    reason: str = typer.Option("reset by operator", help="why, for the workflow's history"),
) -> None:
    """Reset a contract's workflow; the steps after the point run again and create nothing
    twice."""

    async def run(client: Client) -> ResetDone:
        try:
            return await reset_contract(client, contract_id, to, reason=f"{_whoami()}: {reason}")
        except ResetRefused as exc:
            fail(str(exc))

    done = with_temporal(run)
    typer.echo(
        f"Contract {contract_id} reset to event {done.event_id}: run {done.old_run_id} "
        f"continues as run {done.new_run_id}."
        + (
            f" Amendments delivered again, each decided in its turn: "
            f"{', '.join(done.amendments_redelivered)}."
            if done.amendments_redelivered
            else ""
        )
    )


@ops_app.command("dead-letters")
def dead_letters_list(
    source: InboundSource | None = typer.Option(None, help="only events from this system"),
    contract: str | None = typer.Option(None, help="only this contract"),
    status: str = typer.Option(
        InboundStatus.DEAD_LETTER.value,
        help="dead_letter, received, processed, replayed or all",
    ),
) -> None:
    """List dead letters: inbound events that could not be processed, with the reason."""
    if status != "all" and status not in set(InboundStatus):
        raise typer.BadParameter(
            f"{status!r} is not dead_letter, received, processed, replayed or all",
            param_hint="--status",
        )
    wanted = None if status == "all" else InboundStatus(status)
    items = asyncio.run(
        dead_letters.list_events(open_ledger(), status=wanted, source=source, contract_id=contract)
    )
    empty = "No dead letters." if wanted is InboundStatus.DEAD_LETTER else "No inbound events."
    typer.echo(render.dead_letters_table(items, empty=empty))


@ops_app.command("replay")
def replay(
    source: InboundSource = typer.Argument(..., help="the system that sent it"),
    event_id: str = typer.Argument(..., help="its event id, as `c2c ops dead-letters` shows"),
) -> None:
    """Process an event not processed yet (a dead letter, or one still received) as its
    webhook would; exits 1 if it cannot be."""
    settings = get_settings()

    async def run(client: Client) -> dead_letters.Replayed:
        context = ApiContext(settings, client)
        try:
            return await dead_letters.replay(context, source, event_id, PROCESSORS)
        except (dead_letters.DeadLetterNotFound, dead_letters.NotReplayable) as exc:
            fail(str(exc))
        except dead_letters.ReplayFailed as exc:
            fail(f"{source.value} event {event_id} is a dead letter: {exc.event.reason}")
        except ApiError as exc:
            fail(f"not replayed, try again: {exc.message}")

    done = with_temporal(run)
    typer.echo(
        f"Replayed {source.value} event {event_id} ({done.event.type}"
        + (f" for contract {done.event.contract_id}" if done.event.contract_id else "")
        + f"): answered {done.answer.status}; it is now {done.event.status}."
    )


#: Shorter tokens could be guessed from their unsalted digest; real ones are long and random.
MIN_TOKEN_CHARS = 20


@ops_app.command("new-key")
def new_key(
    key_id: str | None = typer.Option(
        None, "--key-id", help="the new key's id (default: k + today's date, e.g. k20261201)"
    ),
) -> None:
    """Print a new AES-256 key for C2C_ENCRYPTION_KEY, as kid:base64key.

    Put it first in C2C_ENCRYPTION_KEY and keep the old keys after it, so payloads they
    sealed stay readable.
    """
    kid = key_id or f"k{datetime.now(UTC):%Y%m%d}"
    try:
        entry = Keyring.new_entry(kid)
    except EncryptionKeyError as exc:
        raise typer.BadParameter(str(exc), param_hint="--key-id") from None
    typer.echo(entry)


@ops_app.command("hash-token")
def hash_token(
    role: Role = typer.Option(..., "--role", help="what the token may do"),
) -> None:
    """Read an API token from stdin and print its C2C_API_TOKENS entry, sha256:<digest>:role.

    The token is read from stdin (without echo on a terminal), never from the command line,
    where other users' `ps` and the shell history would see it.
    """
    if sys.stdin.isatty():
        token = getpass.getpass("API token (not shown): ")
    else:
        token = sys.stdin.readline().rstrip("\r\n")
    if not token:
        fail("no token on stdin", EXIT_INVALID)
    if any(char.isspace() for char in token):
        fail("a bearer token cannot contain whitespace", EXIT_INVALID)
    if len(token) < MIN_TOKEN_CHARS:
        fail(
            f"the token has {len(token)} characters; use a random one of at least "
            f"{MIN_TOKEN_CHARS}, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            EXIT_INVALID,
        )
    typer.echo(hashed_entry(token, role))
