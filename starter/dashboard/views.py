"""What the dashboard's pages show: their filters, the data behind each section, and the
formatting of values, kept apart from the routes so each can be tested on its own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from temporalio.client import Client

from c2c.logs import get_logger
from domain.names import ExceptionQueue, Stage
from ledger import ExceptionStatus
from starter.api.auth import ANONYMOUS, Identity
from starter.api.context import ApiContext
from starter.api.contracts import (
    LEGAL_ENTITY_CODE,
    ContractListItem,
    contracts_query,
    count_contracts,
    is_latest_run,
    list_contracts,
)
from starter.api.kpis import build_report
from starter.api.scope import contracts_of
from starter.dashboard.charts import (
    AGE_BUCKETS,
    Bar,
    Segment,
    Sparkline,
    bar_chart,
    sparkline,
    stacked_bar,
    to_decimal,
)
from starter.ops import exception_queue, invoice_review
from starter.ops.exception_queue import ExceptionItem
from starter.ops.invoice_review import DraftItem

log = get_logger("c2c.dashboard")

#: The pipeline's columns: the stages in process order, then the two beside them.
PIPELINE = tuple(Stage)
#: Most contracts one page lists (the counts above the list are exact).
LIST_LIMIT = 200
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class Problem:
    """A query or form field the dashboard refused, and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Filters:
    """The dashboard's filters, from (and back into) its query string."""

    stage: str | None = None
    legal_entity: str | None = None
    period: str | None = None
    queue: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> tuple[Filters, list[Problem]]:
        """Filters from query parameters; blank ones are unset, invalid ones are problems."""
        values = {k: (params.get(k) or "").strip() or None for k in cls.__dataclass_fields__}
        problems: list[Problem] = []
        if values["stage"] and values["stage"] not in {s.value for s in Stage}:
            problems.append(Problem("stage", f"must be one of {', '.join(Stage)}"))
        if values["legal_entity"]:
            values["legal_entity"] = values["legal_entity"].upper()
            if not LEGAL_ENTITY_CODE.fullmatch(values["legal_entity"]):
                problems.append(Problem("legal_entity", "must be 2-10 letters or digits"))
        if values["period"] and not _PERIOD.fullmatch(values["period"]):
            problems.append(Problem("period", "must be a month, YYYY-MM"))
        if values["queue"] and values["queue"] not in {q.value for q in ExceptionQueue}:
            problems.append(Problem("queue", f"must be one of {', '.join(ExceptionQueue)}"))
        return cls(**values), problems

    def url(self, **changes: str | None) -> str:
        """The dashboard's address with these filters, ``changes`` applied."""
        merged = replace(self, **changes)
        query = {k: v for k, v in vars(merged).items() if v}
        return "/" + (f"?{urlencode(query)}" if query else "")

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any(vars(self).values())


@dataclass
class Pipeline:
    """Contracts per stage (exact counts from visibility) and the filtered list."""

    counts: dict[str, int] = field(default_factory=dict)
    contracts: list[ContractListItem] = field(default_factory=list)
    error: str | None = None

    @property
    def total(self) -> int:
        """Contracts in every stage."""
        return sum(self.counts.values())


async def count_by_stage(
    client: Client, *, legal_entity: str | None, entities: frozenset[str] | None = None
) -> dict[str, int]:
    """Contracts in each stage (only of ``entities`` when given); one count query per stage,
    all at once."""
    stages = [s.value for s in PIPELINE]
    answers = await asyncio.gather(
        *(
            count_contracts(
                client, contracts_query(stage=s, legal_entity=legal_entity, entities=entities)
            )
            for s in stages
        )
    )
    return dict(zip(stages, answers, strict=True))


async def load_pipeline(
    context: ApiContext, filters: Filters, entities: frozenset[str] | None = None
) -> Pipeline:
    """The pipeline section (only ``entities``' contracts when given); when Temporal does not
    answer, it says so instead of failing the whole page (the exception queue and KPIs come
    from the ledger)."""
    try:
        client = await context.temporal()
        counts, contracts = await asyncio.gather(
            count_by_stage(client, legal_entity=filters.legal_entity, entities=entities),
            list_contracts(
                client,
                stage=filters.stage,
                legal_entity=filters.legal_entity,
                entities=entities,
                limit=LIST_LIMIT,
            ),
        )
    except Exception as exc:
        log.warning("dashboard pipeline unavailable", error=str(exc))
        return Pipeline(error="Temporal did not answer; the pipeline will show when it does.")
    return Pipeline(counts=counts, contracts=contracts)


async def contracts_with_open_exceptions(client: Client, legal_entity: str) -> set[str]:
    """Ids of the contracts of one legal entity that wait on an open exception (the ledger's
    exceptions do not carry the entity; the contract's search attributes do)."""
    query = f"{contracts_query(legal_entity=legal_entity)} AND OpenExceptions > 0"
    return {
        wf.id.removeprefix("contract-")
        async for wf in client.list_workflows(query, limit=5000)
        if await is_latest_run(client, wf)
    }


@dataclass
class Queue:
    """The open exceptions the page lists, or why they could not be read."""

    items: list[ExceptionItem] = field(default_factory=list)
    error: str | None = None


async def load_queue(
    context: ApiContext, filters: Filters, identity: Identity = ANONYMOUS
) -> Queue:
    """Open exceptions, oldest first, in the queue and legal entity filtered on (and of the
    identity's legal entities only)."""
    try:
        ledger = await context.ledger()
        items = await exception_queue.list_exceptions(
            ledger, status=ExceptionStatus.OPEN, queue=filters.queue
        )
        visible = await contracts_of(ledger, identity)
        if visible is not None:
            items = [i for i in items if i.contract_id in visible]
        if filters.legal_entity and items:
            client = await context.temporal()
            ids = await contracts_with_open_exceptions(client, filters.legal_entity)
            items = [i for i in items if i.contract_id in ids]
    except Exception as exc:
        log.warning("dashboard exception queue unavailable", error=str(exc))
        return Queue(error="The exception queue could not be read; see the API's log.")
    return Queue(items)


@dataclass
class Drafts:
    """The draft invoices waiting for review, or why they could not be read."""

    items: list[DraftItem] = field(default_factory=list)
    error: str | None = None


async def load_drafts(
    context: ApiContext, filters: Filters, identity: Identity = ANONYMOUS
) -> Drafts:
    """Drafts waiting for review, oldest first, of the legal entity filtered on (and of the
    identity's legal entities only)."""
    try:
        ledger = await context.ledger()
        items = await invoice_review.list_drafts(ledger, legal_entity=filters.legal_entity)
        visible = await contracts_of(ledger, identity)
        if visible is not None:
            items = [i for i in items if i.contract_id in visible]
    except Exception as exc:
        log.warning("dashboard drafts unavailable", error=str(exc))
        return Drafts(error="The draft invoices could not be read; see the API's log.")
    return Drafts(items)


async def load_kpis(
    context: ApiContext,
    legal_entity: str | None,
    period: str | None,
    entities: frozenset[str] | None = None,
) -> dict[str, Any] | None:
    """The KPI report as JSON (the same as ``GET /api/kpis``), or ``None`` when it cannot be
    had (the section says so)."""
    try:
        ledger = await context.ledger()
        report = await build_report(
            context.settings,
            ledger,
            legal_entity=legal_entity,
            period=period,
            entities=entities,
        )
        data: dict[str, Any] = report.model_dump(mode="json")
    except Exception as exc:
        # A failing read model must not take the operators' page down with it.
        log.error("KPI report failed", error=str(exc), exc_info=exc)
        return None
    return data


@dataclass(frozen=True)
class Chart:
    """One small chart of the KPI trend."""

    title: str
    unit: str
    line: Sparkline | None = None
    bars: list[Bar] = field(default_factory=list)
    latest: str = "—"


@dataclass(frozen=True)
class QueueAges:
    """One exception queue's open exceptions by age."""

    queue: str
    count: int
    oldest: str
    segments: list[Segment]
    by_age: dict[str, int]


@dataclass(frozen=True)
class KpiView:
    """The KPI report, ready to draw."""

    report: dict[str, Any]
    charts: list[Chart]
    queues: list[QueueAges]
    unbilled: list[dict[str, Any]]
    invoiced_by_currency: dict[str, str]


def kpi_view(report: dict[str, Any]) -> KpiView:
    """Charts and tables from a KPI report (the shape of ``ledger.kpis.KpiReport``)."""
    trend: list[dict[str, Any]] = list(report.get("trend") or [])
    labels = [str(t.get("period", "")) for t in trend]

    def series(key: str) -> list[Any]:
        return [t.get(key) for t in trend]

    def last(values: list[Any], fmt: Any) -> str:
        present = [v for v in values if v is not None]
        return fmt(present[-1]) if present else "—"

    setup, dso = series("setup_median_hours"), series("dso_days")
    active, issued = series("contracts_active"), series("invoices_issued")
    charts = [
        Chart(
            "Project setup, median",
            "hours",
            line=sparkline(labels, setup),
            latest=last(setup, hours),
        ),
        Chart("DSO", "days", line=sparkline(labels, dso), latest=last(dso, days)),
        Chart(
            "Contracts active",
            "per month",
            bars=bar_chart(labels, active),
            latest=last(active, str),
        ),
        Chart(
            "Invoices issued", "per month", bars=bar_chart(labels, issued), latest=last(issued, str)
        ),
    ]
    currencies = sorted({c for t in trend for c in (t.get("invoiced_value_by_currency") or {})})
    for currency in currencies:
        values = [(t.get("invoiced_value_by_currency") or {}).get(currency) for t in trend]
        present = [v for v in values if v is not None]
        charts.append(
            Chart(
                f"Invoiced, {currency}",
                "per month",
                bars=bar_chart(labels, values),
                latest=money(present[-1], currency) if present else "—",
            )
        )
    queues = [
        QueueAges(
            queue=str(q.get("queue", "")),
            count=int(q.get("count", 0)),
            oldest=hours(q.get("oldest_age_hours")),
            segments=stacked_bar(dict(q.get("by_age") or {})),
            by_age={b: int((q.get("by_age") or {}).get(b, 0)) for b in AGE_BUCKETS},
        )
        for q in report.get("open_exceptions") or []
    ]
    invoiced: dict[str, str] = {}
    for t in trend:
        for currency, value in (t.get("invoiced_value_by_currency") or {}).items():
            total = (to_decimal(invoiced.get(currency)) or Decimal(0)) + (
                to_decimal(value) or Decimal(0)
            )
            invoiced[currency] = str(total)
    unbilled = list((report.get("unbilled_time") or {}).get("by_legal_entity") or [])
    return KpiView(report, charts, queues, unbilled, dict(sorted(invoiced.items())))


# Formatting, registered as template filters.


def _round(number: Decimal, places: str = "0.1") -> Decimal:
    # Statistics are shown rounded half up, as people round (31.25 days reads 31.3).
    return number.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def hours(value: Any) -> str:
    """A duration in hours as a person reads it: seconds, minutes, hours or days."""
    number = to_decimal(value)
    if number is None:
        return "—"
    if number * 60 < 1:
        return f"{_round(number * 3600, '1')} s"
    if number < 1:
        return f"{_round(number * 60, '1')} min"
    if number < 48:
        return f"{_round(number)} h"
    return f"{_round(number / 24)} d"


def days(value: Any) -> str:
    """A number of days."""
    number = to_decimal(value)
    return "—" if number is None else f"{_round(number)} d"


def share(value: Any) -> str:
    """A ratio (0..1) as a percentage."""
    number = to_decimal(value)
    return "—" if number is None else f"{_round(number * 100)} %"


def money(value: Any, currency: str | None = None) -> str:
    """An amount with thousands separators, exactly as given (never through float)."""
    number = to_decimal(value)
    if number is None:
        return "—"
    text = f"{number:,}"
    return f"{text} {currency}" if currency else text


def when(value: datetime | str | None) -> str:
    """A timestamp in UTC, to the minute."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def age(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``value`` was: ``3d 4h``, ``5h 12m``, ``40m``."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    minutes = max(int(((now or datetime.now(UTC)) - value).total_seconds() // 60), 0)
    d, rest = divmod(minutes, 24 * 60)
    h, m = divmod(rest, 60)
    if d:
        return f"{d}d {h}h"
    return f"{h}h {m}m" if h else f"{m}m"


def label(value: Any) -> str:
    """An enum-like name as words: ``provisioning_erp`` → ``provisioning erp``."""
    return str(value or "").replace("_", " ")


FILTERS = {
    "hours": hours,
    "days": days,
    "share": share,
    "money": money,
    "when": when,
    "age": age,
    "label": label,
}
