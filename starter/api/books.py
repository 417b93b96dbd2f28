"""``/api/books/*`` (viewer) and ``POST /api/ops/reconcile`` (operator): the general-ledger
journal and AR aging from the ledger (``ledger.books``), work in progress (held back and
written off) from the contracts' workflows, and a reconciliation of the ledger with
the ERP run as the ``Reconcile`` workflow (the API never calls the ERP itself)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from domain.models import PERIOD_PATTERN, StrictDate
from domain.reconcile import ReconcileReport, ReconcileRequest
from ledger.books import AgingReport, aging, journal
from ledger.journal import Journal
from starter.api.auth import Identity, authorize
from starter.api.context import ApiContext, api_context
from starter.api.errors import ApiError, error_responses, invalid_field, known_query_only
from starter.api.kpis import KpiFilterError, check_filters
from starter.ops.reconcile import reconcile
from starter.ops.work_in_progress import WorkInProgress, work_in_progress

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(authorize), Depends(known_query_only)],
    responses=error_responses(400, 401, 403, 413, 422, 500),
)

LegalEntityQuery = Query(
    min_length=1,
    json_schema_extra={"pattern": r"^[A-Z0-9]{2,10}$"},
    description="the legal entity's code, e.g. US01",
)


def _checked(identity: Identity, legal_entity: str | None, period: str | None = None) -> None:
    """A well-formed entity (and month) that the token may see; a token limited to some legal
    entities must name one of them."""
    try:
        check_filters(legal_entity, period)
    except KpiFilterError as exc:
        raise invalid_field(exc.field, str(exc)) from None
    if identity.scoped and (legal_entity is None or not identity.sees(legal_entity)):
        raise ApiError(
            403,
            "forbidden",
            f"legal_entity {legal_entity or '(all)'} is not one of this token's "
            f"({'+'.join(sorted(identity.entities or ()))})",
        )


@router.get("/books/journal", response_model=Journal, tags=["books"])
async def get_journal(
    period: str = Query(
        json_schema_extra={"pattern": PERIOD_PATTERN}, description="the month, YYYY-MM"
    ),
    legal_entity: str = LegalEntityQuery,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> Journal:
    """The entity's general-ledger journal for the month: balanced entries of invoices,
    credit notes, payments and revenue (definitions in docs/books.md)."""
    _checked(identity, legal_entity, period)
    ledger = await context.ledger()
    return await run_in_threadpool(
        lambda: journal(ledger, legal_entity=legal_entity, period=period)
    )


@router.get("/books/aging", response_model=AgingReport, tags=["books"])
async def get_aging(
    legal_entity: str = LegalEntityQuery,
    as_of: StrictDate | None = Query(
        default=None, description="the day to age on, YYYY-MM-DD (default: today)"
    ),
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> AgingReport:
    """The entity's open receivables by days past due: ``current``, ``1-30``, ``31-60``,
    ``61-90``, ``90+``."""
    _checked(identity, legal_entity)
    ledger = await context.ledger()
    day = as_of or datetime.now(UTC).date()
    return await run_in_threadpool(lambda: aging(ledger, legal_entity=legal_entity, as_of=day))


@router.get(
    "/books/wip", response_model=WorkInProgress, responses=error_responses(502, 503), tags=["books"]
)
async def get_work_in_progress(
    legal_entity: str | None = Query(
        default=None,
        json_schema_extra={"pattern": r"^([A-Z0-9]{2,10})?$"},
        description="only this legal entity's contracts (empty: all)",
    ),
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> WorkInProgress:
    """Work held back by a not-to-exceed cap and work written off above it, per contract
    (those with any) and per currency."""
    legal_entity = legal_entity or None
    _checked(identity, legal_entity)
    return await work_in_progress(
        await context.temporal(), await context.ledger(), legal_entity=legal_entity
    )


class Reconciled(BaseModel):
    """A finished reconciliation: its workflow and what it found."""

    workflow_id: str
    report: ReconcileReport


@router.post(
    "/ops/reconcile",
    response_model=Reconciled,
    responses=error_responses(502, 503),
    tags=["books"],
)
async def post_reconcile(
    body: ReconcileRequest | None = None,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> Reconciled:
    """Compare the ledger with the ERP (one legal entity, or all) and open one
    ``integration`` exception per difference; a difference already reported opens none."""
    request = body or ReconcileRequest()
    _checked(identity, request.legal_entity)
    workflow_id, report = await reconcile(
        await context.temporal(),
        request,
        task_queue=context.settings.task_queue,
    )
    return Reconciled(workflow_id=workflow_id, report=report)
