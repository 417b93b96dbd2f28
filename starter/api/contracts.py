"""Client operations on contract workflows, shared by the API and the CLI.

Each takes an injected ``Client`` so tests and scripts can call them directly.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import (
    RawValue,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.consolidation import CustomerBillingStatus
from domain.models import (
    Amendment,
    AmendmentResult,
    ClosePeriod,
    ContractApproved,
    ContractStatus,
    ContractSummary,
    CreditInvoice,
    HistoryEntry,
    MilestoneCompleted,
    PaymentReceived,
    ResolveException,
    ReviewInvoice,
    TerminateContract,
)
from domain.names import (
    QUERY_STATUS,
    SA_BILLING_MODEL,
    SA_CONTRACT_ID,
    SA_CONTRACT_VALUE,
    SA_CUSTOMER_ID,
    SA_LEGAL_ENTITY,
    SA_OPEN_EXCEPTIONS,
    SA_STAGE,
    SENT_METADATA,
    SIGNAL_AMEND,
    SIGNAL_CLOSE_PERIOD,
    SIGNAL_CREDIT_INVOICE,
    SIGNAL_MILESTONE_COMPLETED,
    SIGNAL_PAYMENT_RECEIVED,
    SIGNAL_TERMINATE_CONTRACT,
    UPDATE_APPLY_AMENDMENT,
    UPDATE_RESOLVE_EXCEPTION,
    UPDATE_REVIEW_INVOICE,
    WORKFLOW_TYPE,
    BillingModel,
    Stage,
    contract_id_from_workflow_id,
    contract_workflow_id,
)

if TYPE_CHECKING:
    from ledger import Ledger
    from ledger.models import AuditEvent, BillingFact

#: A legal entity code, as ``ContractApproved.legal_entity`` allows it.
LEGAL_ENTITY_CODE = re.compile(r"[A-Z0-9]{2,10}")

#: How many contracts ``close_period_for_all`` signals at once.
SIGNAL_CONCURRENCY = 50


@dataclass(frozen=True)
class StartResult:
    workflow_id: str
    run_id: str | None
    duplicate: bool


@dataclass(frozen=True)
class ContractListItem:
    contract_id: str
    workflow_id: str
    stage: str | None
    customer_id: str | None
    legal_entity: str | None
    billing_model: str | None
    status: str
    started_at: datetime | None


def initial_search_attributes(event: ContractApproved) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_CONTRACT_ID, event.contract_id),
            SearchAttributePair(SA_CUSTOMER_ID, event.customer.crm_account_id),
            SearchAttributePair(SA_LEGAL_ENTITY, event.legal_entity),
            SearchAttributePair(SA_STAGE, Stage.RECEIVED.value),
            SearchAttributePair(SA_BILLING_MODEL, event.billing_model.value),
            SearchAttributePair(SA_OPEN_EXCEPTIONS, 0),
            SearchAttributePair(SA_CONTRACT_VALUE, float(event.contract_value)),
        ]
    )


def start_summary(event: ContractApproved) -> str:
    """The one line the Temporal UI shows for a contract: id, title, customer and value."""
    return f"{event.contract_id}: {event.title} for {event.customer.name}, {value_text(event)}"


def value_text(event: ContractApproved) -> str:
    """The contract's value as a reader expects it: time and materials without a cap has no
    value fixed in advance, not a value of 0."""
    if event.billing_model is BillingModel.TIME_AND_MATERIALS and event.not_to_exceed is None:
        return f"time and materials in {event.currency}, no cap"
    return f"{event.contract_value} {event.currency}"


def start_details(event: ContractApproved) -> str:
    """The contract's terms as the Temporal UI shows them beside its history (Markdown)."""
    lines = [
        f"**Customer:** {event.customer.name} ({event.customer.crm_account_id})",
        f"**Legal entity:** {event.legal_entity}",
        f"**Billing model:** {event.billing_model.value.replace('_', ' ')}",
        f"**Value:** {value_text(event)}"
        + (f", not to exceed {event.not_to_exceed}" if event.not_to_exceed is not None else ""),
        f"**Term:** {event.start_date} to {event.end_date}, "
        f"payment within {event.payment_terms_days} days",
        f"**Approved:** by {event.approved_by} at {event.approved_at:%Y-%m-%d %H:%M} UTC "
        f"(version {event.version}, event {event.event_id})",
    ]
    return "\n\n".join(lines)


async def start_contract(
    client: Client, event: ContractApproved, *, task_queue: str
) -> StartResult:
    """Start the contract's workflow; a second approval of the same contract is a no-op.

    The refusal of a second start names the run that exists, which is the answer: no
    ``describe`` round trip is needed (webhook ingress relies on this being idempotent).
    """
    workflow_id = contract_workflow_id(event.contract_id)
    try:
        handle: WorkflowHandle = await client.start_workflow(
            WORKFLOW_TYPE,
            event,
            id=workflow_id,
            task_queue=task_queue,
            # One workflow per contract, ever: a re-sent approval must not bill it twice.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=initial_search_attributes(event),
            static_summary=start_summary(event),
            static_details=start_details(event),
        )
    except WorkflowAlreadyStartedError as exc:
        run_id = exc.run_id or (await client.get_workflow_handle(workflow_id).describe()).run_id
        return StartResult(workflow_id, run_id, duplicate=True)
    return StartResult(workflow_id, handle.result_run_id, duplicate=False)


def contract_handle(client: Client, contract_id: str) -> WorkflowHandle:
    return client.get_workflow_handle(contract_workflow_id(contract_id))


_last_sent = 0
_sent_lock = threading.Lock()


def sent_now() -> int:
    """Now, in nanoseconds since the epoch, and later than any instant this process stamped
    before: two messages sent one after the other never share a stamp."""
    global _last_sent
    with _sent_lock:
        _last_sent = max(time.time_ns(), _last_sent + 1)
        return _last_sent


def stamped(client: Client, message: BaseModel) -> RawValue:
    """``message`` as the payload a contract receives, stamped with the instant it is sent.

    The stamp lives in the payload's metadata, which Temporal keeps with the message and a
    reset delivers again: messages that reach the contract together (as a reset delivers them)
    are decided in the order they were sent, not the order their handlers happen to run.
    """
    [payload] = client.data_converter.payload_converter.to_payloads([message])
    payload.metadata[SENT_METADATA] = str(sent_now()).encode()
    return RawValue(payload)


async def contract_result(client: Client, contract_id: str) -> ContractSummary:
    """Wait for the contract's workflow to end and return its final summary."""
    handle = client.get_workflow_handle(
        contract_workflow_id(contract_id), result_type=ContractSummary
    )
    return await handle.result()


async def get_status(client: Client, contract_id: str) -> ContractStatus:
    """The ``status`` query; raises ``RPCError`` (not found) for an unknown contract."""
    return await contract_handle(client, contract_id).query(
        QUERY_STATUS, result_type=ContractStatus
    )


async def with_retrying(client: Client, status: ContractStatus) -> ContractStatus:
    """The status with the step Temporal is retrying, if one is, for example
    ``validating: validate_contract: erp: 503 Service Unavailable (attempt 12 of 14, next in
    8 s)``. Automatic retries leave no trace in the workflow's state; Temporal's description of
    the run has them."""
    raw = (await contract_handle(client, status.contract_id).describe()).raw_description
    now = datetime.now(UTC)
    for pending in raw.pending_activities:
        if pending.attempt <= 1 or not pending.HasField("last_failure"):
            continue
        what = pending.last_failure.message or "failed"
        of = f" of {pending.maximum_attempts}" if pending.maximum_attempts else ""
        after = ""
        if pending.HasField("next_attempt_schedule_time"):
            at = pending.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
            after = f", next in {max(0, round((at - now).total_seconds()))} s"
        retrying = (
            f"{status.stage.value}: {pending.activity_type.name}: {what} "
            f"(attempt {pending.attempt}{of}{after})"
        )
        return status.model_copy(update={"retrying": retrying})
    return status


def full_timeline(status: ContractStatus, trail: Sequence[AuditEvent]) -> ContractStatus:
    """The status with its whole timeline, when the workflow left earlier lines behind.

    A contract that continued as new carries only its latest history lines; every line is in
    the ledger's audit trail. The trail comes first, then the lines the workflow holds that
    the trail has not been written yet.
    """
    if status.history_omitted == 0:
        return status
    history = [HistoryEntry(at=e.at, stage=e.stage, event=e.event) for e in trail]
    written = Counter((h.at, h.event) for h in history)
    for line in status.history:
        if written[line.at, line.event] > 0:
            written[line.at, line.event] -= 1
        else:
            history.append(line)
    return status.model_copy(update={"history": history, "history_omitted": 0})


def settled_earlier(status: ContractStatus, issued: Sequence[BillingFact]) -> list[BillingFact]:
    """The contract's invoices that its status no longer lists: settled in an earlier run."""
    if status.settled_invoices.count == 0:
        return []
    listed = {i.invoice_id for i in status.invoices}
    return [f for f in issued if f.invoice_id and f.invoice_id not in listed]


def kept_in_ledger(status: ContractStatus) -> bool:
    """Whether part of what the status would show is only in the ledger: history lines or
    invoices left behind when the contract continued as new."""
    return bool(status.history_omitted or status.settled_invoices.count)


async def whole_timeline(status: ContractStatus, ledger: Ledger) -> ContractStatus:
    """The status with its whole timeline, read from the ledger only if lines were left
    behind."""
    if not status.history_omitted:
        return status
    trail = await asyncio.to_thread(ledger.audit_trail, status.contract_id)
    return full_timeline(status, trail)


async def from_ledger(
    status: ContractStatus, ledger: Ledger
) -> tuple[ContractStatus, list[BillingFact]]:
    """The status with its whole timeline, and the invoices settled in earlier runs, read from
    the ledger only when the workflow no longer holds them (it continued as new)."""
    issued = (
        await asyncio.to_thread(ledger.issued_invoices, status.contract_id)
        if status.settled_invoices.count
        else []
    )
    return await whole_timeline(status, ledger), settled_earlier(status, issued)


def entities_condition(entities: Collection[str]) -> str:
    """The visibility condition ``LegalEntity IN (...)``; no entity at all matches nothing.

    Raises:
        ValueError: a code is not an entity code (it ends up inside the query).
    """
    codes = sorted(entities)
    for code in codes:
        if not LEGAL_ENTITY_CODE.fullmatch(code):
            raise ValueError(f"not a legal entity code: {code!r}")
    if not codes:
        return "LegalEntity = ''"
    return "LegalEntity IN (" + ", ".join(f"'{c}'" for c in codes) + ")"


def contracts_query(
    *,
    stage: str | None = None,
    legal_entity: str | None = None,
    entities: Collection[str] | None = None,
) -> str:
    """The visibility query for contracts, optionally in one stage and one legal entity.

    A run that continued as new is replaced by the next run of the same contract and is left
    out; so is a run that a reset replaced, which ``latest_runs`` finds among the closed ones.

    Raises:
        ValueError: ``stage`` is not a stage, or ``legal_entity`` is not an entity code (both
            end up inside the query, so nothing else may).
    """
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus != 'ContinuedAsNew'"
    if stage:
        query += f" AND C2CStage = '{Stage(stage).value}'"
    if legal_entity:
        if not LEGAL_ENTITY_CODE.fullmatch(legal_entity):
            raise ValueError(f"not a legal entity code: {legal_entity!r}")
        query += f" AND LegalEntity = '{legal_entity}'"
    if entities is not None:
        query += f" AND {entities_condition(entities)}"
    return query


#: Workflow ids per visibility query when looking up contracts' latest runs.
_IDS_PER_QUERY = 100


async def latest_runs(client: Client, runs: Sequence[WorkflowExecution]) -> set[str]:
    """The run ids, among ``runs``, that are their contract's latest run.

    A running run is its contract's latest. A closed one may have been replaced: a reset
    starts a new run whatever the old one ended as (terminated when it was running,
    completed, failed), and so does continue-as-new. The closed runs' contracts are looked up
    together, a hundred per visibility query; the latest run is the one started last.
    """
    latest = {wf.run_id for wf in runs if wf.status is WorkflowExecutionStatus.RUNNING}
    closed_ids = sorted({wf.id for wf in runs if wf.status is not WorkflowExecutionStatus.RUNNING})
    newest: dict[str, WorkflowExecution] = {}
    for start in range(0, len(closed_ids), _IDS_PER_QUERY):
        ids = ", ".join(f"'{i}'" for i in closed_ids[start : start + _IDS_PER_QUERY])
        async for wf in client.list_workflows(f"WorkflowId IN ({ids})"):
            best = newest.get(wf.id)
            if best is None or wf.start_time > best.start_time:
                newest[wf.id] = wf
    given = {wf.run_id for wf in runs}
    return latest | ({wf.run_id for wf in newest.values()} & given)


async def is_latest_run(client: Client, wf: WorkflowExecution) -> bool:
    """Whether ``wf`` is its contract's latest run."""
    return wf.run_id in await latest_runs(client, [wf])


async def count_contracts(client: Client, query: str) -> int:
    """How many contracts match a ``contracts_query``, each counted once, at its latest run.

    Running runs are counted by visibility; closed ones are listed and each counted only if
    no later run replaced it.
    """
    running = await client.count_workflows(f"{query} AND ExecutionStatus = 'Running'")
    closed = [wf async for wf in client.list_workflows(f"{query} AND ExecutionStatus != 'Running'")]
    return running.count + len(await latest_runs(client, closed))


async def list_contracts(
    client: Client,
    *,
    stage: str | None = None,
    legal_entity: str | None = None,
    entities: Collection[str] | None = None,
    limit: int = 1000,
) -> list[ContractListItem]:
    """Contracts from Temporal visibility, newest first, optionally in one stage and entity,
    and only of ``entities`` when they are given."""
    query = contracts_query(stage=stage, legal_entity=legal_entity, entities=entities)
    items: list[ContractListItem] = []
    runs = [wf async for wf in client.list_workflows(query, limit=limit)]
    latest = await latest_runs(client, runs)
    for wf in runs:
        if wf.run_id not in latest:
            continue
        sa = wf.typed_search_attributes
        items.append(
            ContractListItem(
                contract_id=sa.get(SA_CONTRACT_ID) or wf.id.removeprefix("contract-"),
                workflow_id=wf.id,
                stage=sa.get(SA_STAGE),
                customer_id=sa.get(SA_CUSTOMER_ID),
                legal_entity=sa.get(SA_LEGAL_ENTITY),
                billing_model=sa.get(SA_BILLING_MODEL),
                status=wf.status.name.lower() if wf.status else "unknown",
                started_at=wf.start_time,
            )
        )
    return items


async def close_period_for_all(
    client: Client, period: ClosePeriod, *, entities: Collection[str] | None = None
) -> list[str]:
    """Send ``close_period`` to every running contract (only of ``entities`` when they are
    given); returns the ids of the contracts signalled.

    Contracts on hold queue the request and bill once an operator releases them; a contract
    ignores periods outside its dates.
    """
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
    if entities is not None:
        query += f" AND {entities_condition(entities)}"
    semaphore = asyncio.Semaphore(SIGNAL_CONCURRENCY)
    tasks: list[asyncio.Task[None]] = []
    ids: list[str] = []

    async def signal(contract_id: str) -> None:
        async with semaphore:
            await close_period_for(client, contract_id, period)

    async for wf in client.list_workflows(query):
        ids.append(contract_id_from_workflow_id(wf.id))
        tasks.append(asyncio.create_task(signal(ids[-1])))
    await asyncio.gather(*tasks)
    return ids


async def close_period_for(client: Client, contract_id: str, period: ClosePeriod) -> None:
    await contract_handle(client, contract_id).signal(SIGNAL_CLOSE_PERIOD, stamped(client, period))


async def record_payment(client: Client, contract_id: str, payment: PaymentReceived) -> None:
    await contract_handle(client, contract_id).signal(
        SIGNAL_PAYMENT_RECEIVED, stamped(client, payment)
    )


async def record_customer_payment(
    client: Client, workflow_id: str, payment: PaymentReceived
) -> None:
    """A payment of a consolidated invoice, to the customer's billing workflow that made it."""
    await client.get_workflow_handle(workflow_id).signal(
        SIGNAL_PAYMENT_RECEIVED, stamped(client, payment)
    )


async def customer_billing_status(
    client: Client,
    workflow_id: str,
    *,
    run_id: str | None = None,
    rpc_timeout: timedelta | None = None,
) -> CustomerBillingStatus:
    """The ``status`` query of a customer's billing workflow (its latest run unless
    ``run_id`` names one)."""
    return await client.get_workflow_handle(workflow_id, run_id=run_id).query(
        QUERY_STATUS, result_type=CustomerBillingStatus, rpc_timeout=rpc_timeout
    )


async def complete_milestone(
    client: Client, contract_id: str, milestone: MilestoneCompleted
) -> None:
    await contract_handle(client, contract_id).signal(
        SIGNAL_MILESTONE_COMPLETED, stamped(client, milestone)
    )


async def queue_amendment(client: Client, contract_id: str, amendment: Amendment) -> None:
    await contract_handle(client, contract_id).signal(SIGNAL_AMEND, stamped(client, amendment))


async def apply_amendment(
    client: Client, contract_id: str, amendment: Amendment
) -> AmendmentResult:
    # The update's id follows from the amendment's: an amendment sent again (a webhook
    # delivered twice, a queued event taken again after its claim ran out) attaches to the
    # first update instead of starting a second one.
    return await contract_handle(client, contract_id).execute_update(
        UPDATE_APPLY_AMENDMENT,
        stamped(client, amendment),
        id=f"amendment-{amendment.amendment_id}",
        result_type=AmendmentResult,
    )


async def resolve_exception(
    client: Client, contract_id: str, decision: ResolveException
) -> ContractStatus:
    return await contract_handle(client, contract_id).execute_update(
        UPDATE_RESOLVE_EXCEPTION, stamped(client, decision), result_type=ContractStatus
    )


async def review_invoice(client: Client, contract_id: str, review: ReviewInvoice) -> ContractStatus:
    """Approve or reject one of the contract's draft invoices, decided in its turn."""
    return await contract_handle(client, contract_id).execute_update(
        UPDATE_REVIEW_INVOICE, review, result_type=ContractStatus
    )


async def credit_invoice(client: Client, contract_id: str, request: CreditInvoice) -> CreditInvoice:
    """Ask the contract to credit one of its invoices; returns the request with its key."""
    keyed = request.keyed()
    await contract_handle(client, contract_id).signal(SIGNAL_CREDIT_INVOICE, stamped(client, keyed))
    return keyed


async def terminate_contract(client: Client, contract_id: str, request: TerminateContract) -> None:
    await contract_handle(client, contract_id).signal(
        SIGNAL_TERMINATE_CONTRACT, stamped(client, request)
    )


def is_finished_error(exc: RPCError) -> bool:
    """Whether Temporal refused a message because the contract's workflow has finished.

    Temporal answers ``NOT_FOUND`` both for an unknown workflow and for a signal or update
    to a finished one; callers need to tell a closed contract from a missing one.
    """
    return exc.status == RPCStatusCode.NOT_FOUND and "completed" in exc.message.lower()
