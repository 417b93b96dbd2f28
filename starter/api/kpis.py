"""``GET /api/kpis``: the contract-to-cash KPIs, for the API, the dashboard and ``c2c kpis``.

The report is the ledger's read model (``ledger.kpis``), unbilled approved time included: the
billing activity reads that from the PSA after each invoice, so the API asks no system.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from c2c.settings import Settings
from domain.models import PERIOD_PATTERN
from domain.periods import Period
from ledger import Ledger
from ledger.kpis import KpiReport, kpi_report
from starter.api.auth import Identity, authorize
from starter.api.context import ApiContext, api_context
from starter.api.errors import ApiError, error_responses, invalid_field, known_query_only

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(authorize), Depends(known_query_only)],
    responses=error_responses(400, 401, 403, 413, 422, 500),
)

#: A legal entity's code, as contracts name it.
LEGAL_ENTITY = re.compile(r"^[A-Z0-9]{2,10}$")
PERIOD = re.compile(PERIOD_PATTERN)


class KpiFilterError(ValueError):
    """A filter the report cannot take; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_filters(legal_entity: str | None, period: str | None) -> None:
    """Refuse filters the report cannot take, naming the field.

    Raises:
        KpiFilterError: The legal entity is not a code, or the period not a month.
    """
    # ``fullmatch``: ``$`` alone would take a final newline the published pattern refuses.
    if legal_entity is not None and not LEGAL_ENTITY.fullmatch(legal_entity):
        raise KpiFilterError(
            "legal_entity",
            f"legal_entity must be an entity code of 2-10 capitals and digits (e.g. US01), "
            f"got {legal_entity!r}",
        )
    if period is not None:
        try:
            Period.parse(period)
            if not PERIOD.fullmatch(period):  # ``parse`` takes a final newline
                raise ValueError(f"period must be YYYY-MM (e.g. 2026-10), got {period!r}")
        except ValueError as exc:
            raise KpiFilterError("period", str(exc)) from None


async def build_report(
    settings: Settings,
    ledger: Ledger,
    *,
    legal_entity: str | None = None,
    period: str | None = None,
    now: datetime | None = None,
    entities: Collection[str] | None = None,
) -> KpiReport:
    """The full KPI report, from the ledger (off the event loop); with ``entities`` (a reader
    limited to them), only their contracts count.

    Raises:
        KpiFilterError: A filter is malformed, or names an entity outside ``entities``
            (nothing is read).
    """
    check_filters(legal_entity, period)
    if entities is not None and legal_entity is not None and legal_entity not in entities:
        raise KpiFilterError(
            "legal_entity",
            f"legal_entity must be one of yours ({', '.join(sorted(entities)) or 'none'}), "
            f"got {legal_entity!r}",
        )
    return await run_in_threadpool(
        lambda: kpi_report(
            ledger,
            legal_entity=legal_entity,
            period=period,
            now=now,
            sla_hours={str(q): settings.sla_for(q) for q in settings.exception_sla_hours},
            entities=entities,
        )
    )


@router.get("/kpis", response_model=KpiReport, tags=["kpis"])
async def kpis(
    legal_entity: str | None = Query(
        default=None,
        json_schema_extra={"pattern": r"^([A-Z0-9]{2,10})?$"},
        description="only this legal entity's contracts (its code, e.g. US01; empty: all)",
    ),
    period: str | None = Query(
        default=None,
        json_schema_extra={"pattern": f"^({PERIOD_PATTERN[1:-1]})?$"},
        description="only facts inside this month (YYYY-MM; empty: all)",
    ),
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> KpiReport:
    """Contract-to-cash KPIs from the ledger (definitions in docs/kpis.md); a token limited to
    some legal entities gets only their figures, and ``403`` for another entity.

    An empty filter (``?legal_entity=&period=``, as a form sends "all") is no filter.
    """
    legal_entity, period = legal_entity or None, period or None
    try:
        check_filters(legal_entity, period)
    except KpiFilterError as exc:
        raise invalid_field(exc.field, str(exc)) from None
    if legal_entity is not None and not identity.sees(legal_entity):
        raise ApiError(
            403,
            "forbidden",
            f"legal_entity {legal_entity} is not one of this token's "
            f"({'+'.join(sorted(identity.entities or ()))})",
        )
    return await build_report(
        context.settings,
        await context.ledger(),
        legal_entity=legal_entity,
        period=period,
        entities=identity.entities,
    )
