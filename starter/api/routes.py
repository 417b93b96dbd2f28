"""``/api/*``: contracts, billing periods, the exception queue and dead letters, behind bearer
tokens.

A token limited to some legal entities lists only their contracts, exceptions and events, and
is answered ``404`` about another entity's, as about one that does not exist
(``starter.api.scope``). Every decision records the token's name, not a name the client sends.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from c2c.logs import get_logger
from domain.consolidation import CustomerBillingStatus
from domain.models import (
    Amendment,
    AmendmentResult,
    ClosePeriod,
    ContractStatus,
    CreditInvoice,
    TerminateContract,
)
from domain.names import ExceptionAction, ExceptionQueue, Stage
from ledger import ExceptionStatus, InboundSource, InboundStatus
from starter.api import contracts, scope
from starter.api.auth import Identity, OperatorBody, authorize
from starter.api.context import ApiContext, api_context
from starter.api.contracts import ContractListItem
from starter.api.customer_billing import (
    CUSTOMER_PATTERN,
    LEGAL_ENTITY_PATTERN,
    CustomerBillingFilters,
    CustomerBillingList,
    RunStatus,
    entity_of,
    list_customer_billing,
)
from starter.api.errors import ApiError, error_responses, known_query_only
from starter.api.middleware import bind_contract
from starter.api.updates import rejection_reason
from starter.api.webhooks import PROCESSORS, amendment_answer
from starter.ops import dead_letters, exception_queue
from starter.ops.dead_letters import DeadLetterItem, DeadLetterNotFound, NotReplayable, ReplayFailed
from starter.ops.exception_queue import ExceptionItem, ExceptionNotFound, ExceptionNotOpen

log = get_logger("c2c.api")


router = APIRouter(
    prefix="/api",
    # The token first: an unauthenticated caller learns nothing about the parameters.
    dependencies=[Depends(authorize), Depends(known_query_only)],
    # What every route may answer: its input refused, its token refused, an unexpected error.
    responses=error_responses(400, 401, 403, 413, 422, 500),
)

#: What a route that talks to Temporal may answer besides.
TEMPORAL = error_responses(502, 503)
#: ... and one that names a contract.
CONTRACT = error_responses(404, 409, 502, 503)

ContractId = Path(min_length=1, max_length=64, description="the contract's business key")


class ContractList(BaseModel):
    """Contracts, newest first."""

    items: list[ContractListItem]


class ExceptionList(BaseModel):
    """Exceptions, oldest first."""

    items: list[ExceptionItem]


class DeadLetterList(BaseModel):
    """Inbound events (dead letters unless another status is asked for), oldest first."""

    items: list[DeadLetterItem]


class ReplayResult(BaseModel):
    """A dead letter processed again: the event, now ``replayed``, and what its processing
    answered (as its webhook would have)."""

    event: DeadLetterItem
    response_status: int
    response: dict[str, Any]


class PeriodClosed(BaseModel):
    """The answer to a period close."""

    period: str
    contracts_signalled: int


class Decision(OperatorBody):
    """An operator's note on a decision about an exception."""

    note: str = Field(default="", max_length=2000)


@router.get("/contracts", response_model=ContractList, responses=TEMPORAL, tags=["contracts"])
async def list_contracts(
    stage: Stage | None = None,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> ContractList:
    """Contracts from Temporal's visibility, optionally in one stage (only the token's legal
    entities' for a scoped token)."""
    client = await context.temporal()
    items = await contracts.list_contracts(client, stage=stage, entities=identity.entities)
    return ContractList(items=items)


async def _visible(context: ApiContext, identity: Identity, contract_id: str) -> None:
    """Refuse a scoped identity another entity's contract as if it did not exist."""
    if not await scope.may_see(context, identity, contract_id):
        raise ApiError(404, "contract_not_found", "no such contract")


@router.get(
    "/contracts/{contract_id}",
    response_model=ContractStatus,
    responses=error_responses(404, 502, 503),
    tags=["contracts"],
)
async def contract_status(
    contract_id: str = ContractId,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> ContractStatus:
    """A contract's status: the workflow's ``status`` query, with its whole history (from the
    ledger's audit trail once the contract has continued as new)."""
    bind_contract(contract_id)
    await _visible(context, identity, contract_id)
    client = await context.temporal()
    status = await contracts.with_retrying(client, await contracts.get_status(client, contract_id))
    if not status.history_omitted:
        return status  # all of it is in the workflow: the ledger is not needed
    return await contracts.whole_timeline(status, await context.ledger())


@router.get(
    "/customer-billing",
    response_model=CustomerBillingList,
    responses={**TEMPORAL, **error_responses(s403="`legal_entity` is not one of the token's")},
    tags=["contracts"],
)
async def customer_billing_list(
    status: RunStatus = Query(
        default="running", description="the workflows' execution status, or `all`"
    ),
    legal_entity: str | None = Query(
        default=None, pattern=LEGAL_ENTITY_PATTERN, description="only this legal entity's"
    ),
    customer: str | None = Query(
        default=None, pattern=CUSTOMER_PATTERN, description="only this CRM account's"
    ),
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> CustomerBillingList:
    """Customer billing workflows (consolidated invoicing), running ones unless ``status``
    says otherwise: each one's key, mode, members, sections waiting, open balance and last
    invoice (only the token's legal entities' for a scoped token)."""
    if legal_entity and not identity.sees(legal_entity):
        raise ApiError(
            403,
            "forbidden",
            f"legal_entity {legal_entity} is not one of this token's entities",
            field="legal_entity",
        )
    filters = CustomerBillingFilters(status=status, legal_entity=legal_entity, customer=customer)
    items = await list_customer_billing(
        await context.temporal(), filters, entities=identity.entities
    )
    return CustomerBillingList(items=items)


@router.get(
    "/customer-billing/{workflow_id}",
    response_model=CustomerBillingStatus,
    responses=error_responses(404, 502, 503),
    tags=["contracts"],
)
async def customer_billing(
    workflow_id: str = Path(
        pattern=r"^customer-billing-[A-Za-z0-9._:\-]{1,180}$",
        description="the customer billing workflow's id (`customer-billing-…`)",
    ),
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> CustomerBillingStatus:
    """A customer's consolidated invoicing: its member contracts, the sections waiting by
    period, its consolidated invoices with what is paid of each section, and its history."""
    if not identity.sees(entity_of(workflow_id)):
        raise ApiError(404, "not_found", f"no customer billing {workflow_id}")
    client = await context.temporal()
    try:
        status = await contracts.customer_billing_status(client, workflow_id)
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise ApiError(404, "not_found", f"no customer billing {workflow_id}") from None
        raise
    if not identity.sees(status.key.legal_entity):
        raise ApiError(404, "not_found", f"no customer billing {workflow_id}")
    return status


@router.post(
    "/contracts/{contract_id}/amendments",
    response_model=AmendmentResult,
    responses={
        **CONTRACT,
        **error_responses(s409="rejected (with the reason and `result`), or the contract closed"),
    },
    tags=["contracts"],
)
async def amend_contract(
    amendment: Amendment,
    contract_id: str = ContractId,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> JSONResponse:
    """Apply an amendment (the ``apply_amendment`` update); ``requested_by`` is the token's
    name."""
    await _visible(context, identity, contract_id)
    amendment = scope.signed(amendment, identity)
    await scope.record_request(
        context,
        identity,
        contract_id,
        f"amendment {amendment.amendment_id}",
        key=f"amendment:{amendment.amendment_id}",
    )
    answer = await amendment_answer(await context.temporal(), contract_id, amendment)
    return answer.response()


class TerminationRequested(BaseModel):
    """The answer to a termination: the contract bills up to the date, then closes."""

    contract_id: str
    effective_date: str


@router.post(
    "/contracts/{contract_id}/terminate",
    status_code=202,
    response_model=TerminationRequested,
    responses=CONTRACT,
    tags=["contracts"],
)
async def terminate_contract(
    body: TerminateContract,
    contract_id: str = ContractId,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> TerminationRequested:
    """End the contract early (the ``terminate_contract`` signal): what is due up to the
    effective date is billed, advance fees after it are credited, then the contract closes
    once paid. A second termination of the same contract changes nothing."""
    bind_contract(contract_id)
    await _visible(context, identity, contract_id)
    body = scope.signed(body, identity)
    await contracts.terminate_contract(await context.temporal(), contract_id, body)
    await scope.record_request(
        context,
        identity,
        contract_id,
        f"termination effective {body.effective_date}",
        key=f"terminate:{body.effective_date}:{body.reason}",
        detail={"reason": body.reason},
    )
    log.info("termination requested", effective_date=str(body.effective_date))
    return TerminationRequested(
        contract_id=contract_id, effective_date=body.effective_date.isoformat()
    )


class CreditRequested(BaseModel):
    """The answer to a credit request: the contract credits the invoice by credit note."""

    contract_id: str
    invoice_id: str
    credit_note_id: str


@router.post(
    "/contracts/{contract_id}/credit-notes",
    status_code=202,
    response_model=CreditRequested,
    responses=CONTRACT,
    tags=["billing"],
)
async def credit_invoice(
    body: CreditInvoice,
    contract_id: str = ContractId,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> CreditRequested:
    """Correct an issued invoice by credit note (the ``credit_invoice`` signal).

    The same ``credit_note_id`` (or, without one, the same invoice, amount and reason) credits
    once; the result shows in the contract's status under ``credit_notes``.
    """
    bind_contract(contract_id)
    await _visible(context, identity, contract_id)
    body = scope.signed(body, identity)
    keyed = await contracts.credit_invoice(await context.temporal(), contract_id, body)
    assert keyed.credit_note_id is not None
    await scope.record_request(
        context,
        identity,
        contract_id,
        f"credit note {keyed.credit_note_id} of {keyed.amount} on invoice {keyed.invoice_id}",
        key=f"credit:{keyed.credit_note_id}",
        detail={"reason": keyed.reason},
    )
    log.info("credit requested", invoice_id=body.invoice_id, credit_note_id=keyed.credit_note_id)
    return CreditRequested(
        contract_id=contract_id, invoice_id=body.invoice_id, credit_note_id=keyed.credit_note_id
    )


@router.post(
    "/billing/close-period",
    status_code=202,
    response_model=PeriodClosed,
    responses=TEMPORAL,
    tags=["billing"],
)
async def close_period(
    body: ClosePeriod,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> PeriodClosed:
    """Bill a period for every running contract (of the token's legal entities, for a scoped
    token)."""
    body = scope.signed(body, identity)
    signalled = await contracts.close_period_for_all(
        await context.temporal(), body, entities=identity.entities
    )
    await scope.record_request(
        context,
        identity,
        signalled,
        f"close of period {body.period}" + (" (forced)" if body.force else ""),
        key=f"close:{body.period}:{body.force}:{body.reason}",
    )
    log.info("period close requested", period=body.period, contracts=len(signalled))
    return PeriodClosed(period=body.period, contracts_signalled=len(signalled))


#: What ``GET /api/exceptions`` filters on: one ``ExceptionStatus``, or ``all``.
ExceptionStatusFilter = Literal["open", "retried", "skipped", "aborted", "superseded", "all"]


@router.get("/exceptions", response_model=ExceptionList, tags=["exceptions"])
async def list_exceptions(
    status: ExceptionStatusFilter | None = None,
    queue: ExceptionQueue | None = None,
    contract_id: str | None = None,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> ExceptionList:
    """The exception queue, from the ledger: every status unless ``status`` names one
    (``all`` is every status too, as in the CLI); only the token's legal entities'
    exceptions for a scoped token."""
    ledger = await context.ledger()
    items = await exception_queue.list_exceptions(
        ledger,
        status=None if status in (None, "all") else ExceptionStatus(status),
        queue=queue,
        contract_id=contract_id,
    )
    visible = await scope.contracts_of(ledger, identity)
    if visible is not None:
        items = [i for i in items if i.contract_id in visible]
    return ExceptionList(items=items)


@router.post(
    "/exceptions/{exception_id}/{action}",
    response_model=ContractStatus,
    responses={
        **TEMPORAL,
        **error_responses(s404="unknown exception", s409="not open, or the workflow refused"),
    },
    tags=["exceptions"],
)
async def resolve_exception(
    exception_id: str,
    action: ExceptionAction,
    decision: Decision | None = None,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> ContractStatus:
    """Retry, skip or abort the step an open exception holds up. The decision records the
    token's name (an ``operator`` in the body counts only on an open API)."""
    decision = decision or Decision()
    operator = scope.decided_by(identity, decision.operator, channel="api")
    try:
        ledger = await context.ledger()
        item = await exception_queue.get_exception(ledger, exception_id)
        if not await scope.may_see(context, identity, item.contract_id):
            raise ExceptionNotFound(exception_id)
        bind_contract(item.contract_id, item.workflow_id)
        return await exception_queue.resolve(
            await context.temporal(),
            item,
            action,
            operator=operator,
            note=decision.note,
            ledger=ledger,
        )
    except ExceptionNotFound:
        raise ApiError(404, "exception_not_found", f"no exception {exception_id}") from None
    except ExceptionNotOpen as exc:
        raise ApiError(409, "exception_not_open", str(exc)) from None
    except WorkflowUpdateFailedError as exc:
        raise ApiError(409, "decision_rejected", rejection_reason(exc)) from None


@router.get("/dead-letters", response_model=DeadLetterList, tags=["dead letters"])
async def list_dead_letters(
    source: InboundSource | None = None,
    contract_id: str | None = None,
    status: InboundStatus = InboundStatus.DEAD_LETTER,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> DeadLetterList:
    """Inbound events that could not be processed, with the reason, from the ledger; for a
    scoped token only those of its legal entities' contracts."""
    ledger = await context.ledger()
    items = await dead_letters.list_events(
        ledger, status=status, source=source, contract_id=contract_id
    )
    visible = await scope.contracts_of(ledger, identity)
    if visible is not None:
        items = [i for i in items if i.contract_id in visible]
    return DeadLetterList(items=items)


@router.post(
    "/dead-letters/{source}/{event_id}/replay",
    response_model=ReplayResult,
    responses=error_responses(
        502,
        s404="unknown event",
        s409="processed already (`already_processed`), being processed or waiting for its next "
        "attempt (`event_in_progress`), or still failing (`replay_failed`, with the new reason "
        "and `event`)",
        s503="a system did not answer; the event stays as it was",
    ),
    tags=["dead letters"],
)
async def replay_dead_letter(
    source: InboundSource,
    event_id: str = Path(min_length=1, max_length=255),
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> ReplayResult:
    """Process the stored body of an event not processed yet (a dead letter, or one still
    ``received``) through its webhook's processor (its signature was checked when it
    arrived). An event processed already is never processed again."""
    ledger = await context.ledger()
    stored = await run_in_threadpool(ledger.get_inbound_event, source, event_id)
    if identity.scoped and (
        stored is None or not await scope.may_see(context, identity, stored.contract_id)
    ):
        raise ApiError(404, "dead_letter_not_found", f"no {source.value} event {event_id!r}")
    try:
        done = await dead_letters.replay(context, source, event_id, PROCESSORS)
    except DeadLetterNotFound as exc:
        raise ApiError(404, "dead_letter_not_found", str(exc)) from None
    except NotReplayable as exc:
        raise ApiError(409, exc.code, str(exc)) from None
    except ReplayFailed as exc:
        raise ApiError(
            409,
            "replay_failed",
            f"still a dead letter: {exc.event.reason}",
            extra={"event": exc.event.model_dump(mode="json")},
        ) from None
    if done.event.contract_id:
        await scope.record_request(
            context,
            identity,
            done.event.contract_id,
            f"replay of {source.value} event {event_id}",
            key=f"replay:{source.value}:{event_id}",
        )
    return ReplayResult(
        event=done.event, response_status=done.answer.status, response=done.answer.body
    )
