"""Signed webhooks from the CLM, the PSA and the payment gateway.

The signature covers the raw bytes, so a body is verified before it is parsed, and parsed
from those bytes rather than by FastAPI. A body with a bad signature is refused and never
recorded. A verified one is recorded and processed once (``starter.ops.dead_letters``) by its
source's processor, which replays of dead letters run too; a payload refused there (bad JSON,
an invalid field, an unknown contract) reaches no workflow and is kept as a dead letter.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from c2c import json_input
from c2c.logs import get_logger
from c2c.signing import SignatureError, verify
from domain.consolidation import is_customer_billing
from domain.models import (
    Amendment,
    AmendmentResult,
    ContractApproved,
    MilestoneCompleted,
    PaymentReceived,
)
from domain.names import SIGNATURE_HEADER, System, contract_workflow_id
from ledger import InboundSource
from starter.api import account_events, webhook_schemas
from starter.api.context import ApiContext, api_context
from starter.api.contracts import (
    complete_milestone,
    is_finished_error,
    record_customer_payment,
    record_payment,
    start_contract,
)
from starter.api.errors import (
    ApiError,
    FieldProblem,
    error_responses,
    from_validation,
    invalid_field,
)
from starter.api.metrics import record_webhook
from starter.api.middleware import bind_contract
from starter.api.updates import amend
from starter.ops import dead_letters
from starter.ops.dead_letters import Answer, Processor

log = get_logger("c2c.api.webhooks")

router = APIRouter(
    prefix="/webhooks",
    tags=["webhooks"],
    # A payload refused after its signature check (400, 404, 409, 422) is a dead letter.
    responses=error_responses(
        400,
        404,
        413,
        422,
        500,
        502,
        503,
        s401="the signature is missing, malformed, stale or wrong; nothing was recorded",
    ),
)

CONTRACT_APPROVED = "contract.approved"
CONTRACT_AMENDED = "contract.amended"
MILESTONE_COMPLETED = "milestone.completed"
PAYMENT_SUCCEEDED = "payment.succeeded"

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    """A webhook's envelope: ``{"id", "type", "data"}``."""

    id: str | None
    type: str
    data: dict[str, Any]


class ContractAmended(BaseModel):
    """The data of ``contract.amended``."""

    model_config = ConfigDict(extra="forbid")

    contract_id: str = Field(min_length=1, max_length=64)
    amendment: Amendment


class EventAccepted(BaseModel):
    """A webhook's event taken in: recorded for the event queue to deliver (``queued``, no
    ``run_id`` yet; the default), or, with ``C2C_WEBHOOK_QUEUE`` off, the contract's workflow
    started or signalled.

    ``duplicate`` is true for an event id delivered before, answered as the first time.
    ``workflow_id`` is ``null`` only for a queued payment whose invoice c2c does not know yet.
    """

    model_config = ConfigDict(extra="allow")

    workflow_id: str | None
    run_id: str | None = None
    contract_id: str | None = None
    duplicate: bool
    queued: bool | None = None


class AmendmentReceived(AmendmentResult):
    """A ``contract.amended`` event applied; ``duplicate`` as for every event."""

    duplicate: bool | None = None


async def signed_body(request: Request, context: ApiContext = Depends(api_context)) -> bytes:
    """Dependency: the raw body, once its signature is verified.

    Raises:
        ApiError: ``401`` for a missing, malformed, stale or wrong signature.
    """
    body = await request.body()
    try:
        verify(request.headers.get(SIGNATURE_HEADER), body, context.settings.webhook_secrets())
    except SignatureError as exc:
        # The reason only: the body is unauthenticated input and may carry anything.
        log.warning("webhook signature rejected", path=request.url.path, reason=str(exc))
        record_webhook(request.url.path.rsplit("/", 1)[-1], "rejected_signature")
        raise ApiError(401, "invalid_signature", str(exc)) from None
    return body


def parse_event(body: bytes, types: Collection[str]) -> Event:
    """The envelope of a webhook whose ``type`` is one of ``types``.

    Raises:
        ApiError: ``400`` for a body that is not JSON or nests too deeply, ``422`` naming
            ``type`` or ``data``.
    """
    try:
        payload = json_input.loads(body)
    except json_input.JsonTooDeep as exc:
        raise ApiError(400, "json_too_deep", str(exc)) from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise invalid_field(None, "the body must be a JSON object")
    kind = payload.get("type")
    if not isinstance(kind, str) or kind not in types:
        raise invalid_field("type", f"unknown event type {kind!r}; expected {', '.join(types)}")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise invalid_field("data", "must be an object")
    event_id = payload.get("id")
    return Event(id=str(event_id) if event_id is not None else None, type=kind, data=data)


def validate(model: type[M], data: dict[str, Any], *, known_only: bool = False) -> M:
    """Validate an event's ``data`` as ``model``; field paths start with ``data``.

    Args:
        model: The payload model.
        data: The event's data.
        known_only: Ignore fields the model does not have, for systems that may add to
            their events (c2c's own canonical payloads stay strict).
    """
    if known_only:
        data = {key: value for key, value in data.items() if key in model.model_fields}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, ("data",)) from None


async def to_contract(context: ApiContext, contract_id: str, message: Awaitable[T]) -> T:
    """Send a message to a contract's workflow; if it does not exist yet while its approval
    waits to be started (the event queue, or a retry), answer ``503`` with ``Retry-After``
    instead of ``404``, so that the sender retries rather than the event becoming a dead
    letter.

    Raises:
        ApiError: ``503 contract_starting``.
        RPCError: Anything else Temporal answered.
    """
    try:
        return await message
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND or is_finished_error(exc):
            raise
        ledger = await context.ledger()
        if not await run_in_threadpool(ledger.approval_waiting, contract_id):
            raise
    log.info("contract not started yet; its approval is waiting")
    raise ApiError(
        503,
        "contract_starting",
        f"contract {contract_id} is approved and its workflow not started yet; try again",
        headers={"Retry-After": "5"},
    )


def _contract_id(data: dict[str, Any]) -> str:
    contract_id = data.get("contract_id")
    if not isinstance(contract_id, str) or not contract_id.strip():
        raise invalid_field("data.contract_id", "Field required")
    return contract_id.strip()


def _accepted(contract_id: str) -> Answer:
    body = {
        "contract_id": contract_id,
        "workflow_id": contract_workflow_id(contract_id),
        "duplicate": False,
    }
    return Answer(202, body, contract_id)


async def amendment_answer(client: Client, contract_id: str, amendment: Amendment) -> Answer:
    """Apply an amendment: ``200`` with the result, or ``409`` with the reason it was rejected.

    Both are answers of the contract, so a webhook that carried the amendment is processed
    either way.
    """
    bind_contract(contract_id)
    result = await amend(client, contract_id, amendment)
    log.info("amendment", amendment_id=amendment.amendment_id, status=result.status)
    if result.status == "rejected":
        rejected = ApiError(
            409,
            "amendment_rejected",
            result.reason or "the amendment was rejected",
            extra={"result": result.model_dump(mode="json")},
        )
        return Answer(409, rejected.body(), contract_id)
    return Answer(200, result.model_dump(mode="json"), contract_id)


async def process_clm(context: ApiContext, body: bytes) -> Answer:
    """``contract.approved`` starts the contract (``202``); ``contract.amended`` applies an
    amendment (``200`` applied, ``409`` rejected)."""
    event = parse_event(body, (CONTRACT_APPROVED, CONTRACT_AMENDED))
    if event.type == CONTRACT_AMENDED:
        amended = validate(ContractAmended, event.data)
        return await to_contract(
            context,
            amended.contract_id,
            amendment_answer(await context.temporal(), amended.contract_id, amended.amendment),
        )
    approved = validate(ContractApproved, event.data)
    bind_contract(approved.contract_id)
    client = await context.temporal()
    result = await start_contract(client, approved, task_queue=context.settings.task_queue)
    log.info("contract approval received", event_id=event.id, duplicate=result.duplicate)
    return Answer(202, asdict(result), approved.contract_id)


async def process_psa(context: ApiContext, body: bytes) -> Answer:
    """``milestone.completed`` makes a fixed-fee milestone billable."""
    event = parse_event(body, (MILESTONE_COMPLETED,))
    contract_id = _contract_id(event.data)
    milestone = validate(MilestoneCompleted, event.data, known_only=True)
    bind_contract(contract_id)
    await to_contract(
        context, contract_id, complete_milestone(await context.temporal(), contract_id, milestone)
    )
    log.info("milestone completed", event_id=event.id, milestone_id=milestone.milestone_id)
    return _accepted(contract_id)


async def process_payments(context: ApiContext, body: bytes) -> Answer:
    """``payment.succeeded`` applies cash to the invoice's contract."""
    event = parse_event(body, (PAYMENT_SUCCEEDED,))
    payment = validate(PaymentReceived, event.data, known_only=True)
    if payment.invoice_id is None:
        raise invalid_field("data.invoice_id", "Field required")
    contract_id = await contract_of_invoice(context, payment.invoice_id)
    if contract_id is None:
        problem = FieldProblem("data.invoice_id", f"no contract has invoice {payment.invoice_id}")
        raise ApiError(
            404, "unknown_invoice", problem.message, field=problem.field, errors=[problem]
        )
    if is_customer_billing(contract_id):
        # A consolidated invoice: its customer's billing workflow allocates the payment to
        # the contracts' sections.
        await record_customer_payment(await context.temporal(), contract_id, payment)
        log.info("payment received", event_id=event.id, payment_id=payment.payment_id)
        return Answer(
            202, {"contract_id": None, "workflow_id": contract_id, "duplicate": False}, contract_id
        )
    bind_contract(contract_id)
    await to_contract(
        context, contract_id, record_payment(await context.temporal(), contract_id, payment)
    )
    log.info("payment received", event_id=event.id, payment_id=payment.payment_id)
    return _accepted(contract_id)


#: The processor of each source's events, shared by its webhook and by replays.
PROCESSORS: dict[InboundSource, Processor] = {
    InboundSource.CLM: process_clm,
    InboundSource.PSA: process_psa,
    InboundSource.PAYMENTS: process_payments,
    InboundSource.CRM: account_events.process_crm,
}

#: Event types whose processing is idempotent by itself, so a new one is recorded after it is
#: processed, in one ledger transaction: an approval starts the contract's workflow, which
#: Temporal starts once by its id (``REJECT_DUPLICATE``). Signals and updates are not.
IDEMPOTENT_TYPES: dict[InboundSource, frozenset[str]] = {
    InboundSource.CLM: frozenset({CONTRACT_APPROVED}),
}


#: Event types the event queue takes (``starter.ops.event_queue``), with ``C2C_WEBHOOK_QUEUE`` on
#: (the default): every type. Once an event is valid and recorded, delivering it is c2c's
#: job, not the sender's: it is answered ``202`` at once and the queue processes it, retrying
#: through an outage of Temporal or a system of any length, in arrival order per contract.
QUEUED_TYPES: dict[InboundSource, frozenset[str]] = {
    InboundSource.CLM: frozenset({CONTRACT_APPROVED, CONTRACT_AMENDED}),
    InboundSource.PSA: frozenset({MILESTONE_COMPLETED}),
    InboundSource.PAYMENTS: frozenset({PAYMENT_SUCCEEDED}),
    InboundSource.CRM: frozenset({account_events.ACCOUNT_UPDATED}),
}


#: What a queued event of a vendor's source is answered (its body is c2c's record of the
#: vendor's webhook, not the c2c dialect), by source; ``None`` to process it now.
QUEUED_ANSWERS: dict[InboundSource, Callable[[bytes], Answer | None]] = {}


def queued_answer(source: InboundSource, body: bytes) -> Answer | None:
    """What a queued event is answered, once its payload is valid: ``202`` with the
    contract's workflow id (for a payment, ``None`` until processing finds the contract of
    its invoice), no run id yet, and ``"queued": true``.

    ``None`` if the body is not a valid event of a type the queue takes: it is processed
    while the sender waits, and so refused (and kept as a dead letter) exactly as without
    the queue.
    """
    if source in QUEUED_ANSWERS:
        return QUEUED_ANSWERS[source](body)
    try:
        event = parse_event(body, QUEUED_TYPES.get(source, frozenset()))
        contract_id = _valid_contract_of(event)
    except ApiError:
        return None
    body_out = {
        "contract_id": contract_id,
        "workflow_id": contract_workflow_id(contract_id) if contract_id else None,
        "run_id": None,
        "duplicate": False,
        "queued": True,
    }
    return Answer(202, body_out, contract_id)


def _valid_contract_of(event: Event) -> str | None:
    """Validate an event's payload as its processor will; the contract it names, if any.

    Raises:
        ApiError: ``422`` naming the field at fault.
    """
    if event.type == CONTRACT_APPROVED:
        return validate(ContractApproved, event.data).contract_id
    if event.type == CONTRACT_AMENDED:
        return validate(ContractAmended, event.data).contract_id
    if event.type == MILESTONE_COMPLETED:
        contract_id = _contract_id(event.data)
        validate(MilestoneCompleted, event.data, known_only=True)
        return contract_id
    payment = validate(PaymentReceived, event.data, known_only=True)
    if payment.invoice_id is None:
        raise invalid_field("data.invoice_id", "Field required")
    return None


async def _queue(context: ApiContext, source: InboundSource, body: bytes) -> Answer | None:
    """Queue the event if the event queue takes it; ``None`` to process it now."""
    queue = context.event_queue
    if queue is None:
        return None
    if source is InboundSource.CRM:
        try:
            answer: Answer | None = account_events.queued_answer(body)
        except ApiError:
            return None
    else:
        answer = queued_answer(source, body)
    if answer is None:
        return None
    if answer.contract_id is None and source is InboundSource.PAYMENTS:
        answer = await _with_known_contract(context, body, answer)
    if answer.contract_id is not None:
        bind_contract(answer.contract_id)
    queued = await dead_letters.enqueue(context, source, body, answer)
    if queued is not None and not queued.body.get("duplicate"):
        queue.wake()
        log.info("event queued", source=source.value)
    return queued


async def _with_known_contract(context: ApiContext, body: bytes, answer: Answer) -> Answer:
    """A payment's answer with its contract, when the ledger knows whose invoice it pays (so
    that it waits its turn behind the contract's earlier events). The ERP is not asked here:
    the queue asks it when it processes the payment."""
    event = parse_event(body, (PAYMENT_SUCCEEDED,))
    invoice_id = event.data.get("invoice_id")
    ledger = await context.ledger()
    contract_id = await run_in_threadpool(
        ledger.find_contract_by_xref, System.ERP, "invoice", str(invoice_id)
    )
    if contract_id is None:
        return answer
    # A consolidated invoice's payments go to its customer's billing workflow, in their turn.
    owner = contract_id if is_customer_billing(contract_id) else contract_workflow_id(contract_id)
    body_out = {**answer.body, "contract_id": contract_id, "workflow_id": owner}
    return Answer(answer.status, body_out, contract_id)


async def receive(context: ApiContext, source: InboundSource, body: bytes) -> JSONResponse:
    """Record and process (or queue) a verified event of ``source``, as its webhook answers."""
    try:
        answer = await _queue(context, source, body)
        if answer is None:
            answer = await dead_letters.deliver(
                context,
                source,
                body,
                PROCESSORS[source],
                idempotent_types=IDEMPOTENT_TYPES.get(source, frozenset()),
            )
    except ApiError as exc:
        record_webhook(source.value, "dead_letter" if exc.status < 500 else "failed")
        raise
    except Exception:
        record_webhook(source.value, "failed")
        raise
    if answer.body.get("duplicate"):
        outcome = "duplicate"
    else:
        outcome = "queued" if answer.body.get("queued") else "accepted"
    record_webhook(source.value, outcome)
    return answer.response()


@router.post(
    "/clm",
    status_code=202,
    response_model=EventAccepted,
    responses={
        200: {"model": AmendmentReceived, "description": "an amendment applied"},
        **error_responses(
            s409="the amendment was rejected, with the reason and `result`; it is processed"
        ),
    },
    summary="CLM: contract approved or amended",
    openapi_extra=webhook_schemas.clm(ContractAmended),
)
async def clm_webhook(
    body: bytes = Depends(signed_body), context: ApiContext = Depends(api_context)
) -> JSONResponse:
    """``contract.approved`` starts the contract; ``contract.amended`` applies an amendment.
    Each is answered ``202`` once it is valid and recorded, with ``"queued": true``, and the
    event queue delivers it (the amendment's result is in the contract's status). With
    ``C2C_WEBHOOK_QUEUE`` off, it is processed while the sender waits: an approval answers
    ``202`` with its ``run_id``, an amendment ``200`` applied or ``409`` rejected. An event id
    seen before is answered as the first time, with ``duplicate``."""
    return await receive(context, InboundSource.CLM, body)


@router.post(
    "/psa",
    status_code=202,
    response_model=EventAccepted,
    summary="PSA: milestone completed",
    openapi_extra=webhook_schemas.psa(),
)
async def psa_webhook(
    body: bytes = Depends(signed_body), context: ApiContext = Depends(api_context)
) -> JSONResponse:
    """``milestone.completed`` makes a fixed-fee milestone billable (once per event id);
    answered ``202`` once valid and recorded, and delivered by the event queue."""
    return await receive(context, InboundSource.PSA, body)


@router.post(
    "/payments",
    status_code=202,
    response_model=EventAccepted,
    summary="Payment gateway: payment succeeded",
    openapi_extra=webhook_schemas.payments(),
)
async def payments_webhook(
    body: bytes = Depends(signed_body), context: ApiContext = Depends(api_context)
) -> JSONResponse:
    """``payment.succeeded`` applies cash to the invoice's contract (once per event id);
    answered ``202`` once valid and recorded, and delivered by the event queue."""
    return await receive(context, InboundSource.PAYMENTS, body)


@router.post(
    "/crm",
    status_code=202,
    summary="CRM: account updated",
    openapi_extra=webhook_schemas.crm(),
)
async def crm_webhook(
    body: bytes = Depends(signed_body), context: ApiContext = Depends(api_context)
) -> JSONResponse:
    """``account.updated`` (``{"id", "type", "data": {crm_account_id, changes}}``) applies an
    account's change to the ERP customers of its running contracts, once per event id, in
    arrival order per account; answered ``202`` once valid and recorded."""
    return await receive(context, InboundSource.CRM, body)


@router.post(
    "/salesforce",
    status_code=202,
    summary="Salesforce: Change Data Capture of accounts",
    openapi_extra=webhook_schemas.salesforce(),
)
async def salesforce_webhook(
    body: bytes = Depends(signed_body), context: ApiContext = Depends(api_context)
) -> JSONResponse:
    """An ``AccountChangeEvent`` as Salesforce's streaming API shapes it, forwarded by a
    Pub/Sub API subscriber or a middleware; each account it names is taken as an
    ``account.updated`` with the id ``salesforce-cdc:<replayId>:<recordId>``. Answers
    ``202`` with ``{"events": [<answer of each>]}``."""
    try:
        events = account_events.cdc_events(body, context.settings)
    except ApiError:
        record_webhook("salesforce", "dead_letter")
        raise
    answers = []
    for event in events:
        response = await receive(context, InboundSource.CRM, event)
        answers.append(json.loads(bytes(response.body)))
    return JSONResponse({"events": answers}, status_code=202)


async def contract_of_invoice(context: ApiContext, invoice_id: str) -> str | None:
    """The contract an invoice bills, from the ledger's cross-references.

    The billing activity records each invoice it issues. A payment of an invoice the ledger
    does not know is refused, and kept as a dead letter that an operator can replay once the
    invoice is recorded; the API asks no system itself.
    """
    ledger = await context.ledger()
    return await run_in_threadpool(ledger.find_contract_by_xref, System.ERP, "invoice", invoice_id)
