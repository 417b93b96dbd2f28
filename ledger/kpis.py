"""Contract-to-cash KPIs: a read model over the ledger (definitions in ``docs/kpis.md``).

``kpi_report`` reads the ledger only: contracts (approval, activation, closing), the exception
queue, and the facts the billing, payment, credit-note and amendment activities record, among
them the unbilled approved time the billing activity reads from the PSA after each invoice.

Durations are reported in hours as floats: they are statistics, not money. Percentiles are
exact, by linear interpolation between closest ranks (Hyndman and Fan's type 7, numpy's
default): for sorted values ``x[0..n-1]`` and a fraction ``p``, ``h = (n - 1) * p`` and the
percentile is ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``. The median
is ``p = 0.5``, the usual median.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from domain.money import ZERO, Money, Quantity
from domain.names import BillingModel, ExceptionQueue, Stage
from domain.periods import Period
from ledger.books import AgingReport, aging_of
from ledger.models import (
    AmendmentFact,
    BillingFact,
    CashApplicationFact,
    ContractRecord,
    CreditNoteFact,
    ExceptionRecord,
    ExceptionStatus,
    PaymentFact,
    UnbilledTimeRecord,
)

if TYPE_CHECKING:
    from ledger.store import Ledger

#: Age buckets of open exceptions, youngest first, with their upper bounds in hours.
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("<4h", 4),
    ("4-24h", 24),
    ("1-3d", 72),
    (">3d", math.inf),
)
#: Queues in the order reports list them: integration first (its breaches are the
#: integration SLA breaches operators watch first), then the business queues.
QUEUE_ORDER: tuple[str, ...] = (
    ExceptionQueue.INTEGRATION.value,
    ExceptionQueue.FINANCE.value,
    ExceptionQueue.LEGAL.value,
    ExceptionQueue.DELIVERY.value,
)
#: Stages before a contract is active: an exception opened in one is a manual provisioning step.
PROVISIONING_STAGES = frozenset(
    {Stage.RECEIVED, Stage.VALIDATING, Stage.PROVISIONING_ERP, Stage.ACTIVATING_PSA}
)
#: DSO window when no period is asked for: the 90 days ending on the report's day.
DSO_DEFAULT_DAYS = 90
#: How many months the trend covers at most.
TREND_MONTHS = 12

_HOUR = 3600.0


# ---------------------------------------------------------------------------- the report


class Distribution(BaseModel):
    """How long something took: how many, the median and the 90th percentile, in hours."""

    count: int = 0
    median_hours: float | None = None
    p90_hours: float | None = None


class TouchlessProvisioning(BaseModel):
    """Contracts provisioned, and how many of them without an exception in provisioning."""

    contracts: int = 0
    without_manual_step: int = 0
    share: float | None = None


class UnbilledContract(BaseModel):
    """One contract's approved, billable time not yet invoiced, priced at its rate card."""

    contract_id: str
    legal_entity: str | None
    currency: str
    hours: Quantity
    value: Money
    #: Hours of roles without a rate on their work date: counted in ``hours``, not valued.
    unpriced_hours: Quantity = ZERO


class UnbilledEntity(BaseModel):
    """A legal entity's unbilled approved time in one currency."""

    legal_entity: str | None
    currency: str
    hours: Quantity
    value: Money


class UnbilledTime(BaseModel):
    """Approved, billable time of active time-and-materials contracts not yet invoiced."""

    hours: Quantity = ZERO
    by_contract: list[UnbilledContract] = Field(default_factory=list)
    by_legal_entity: list[UnbilledEntity] = Field(default_factory=list)
    #: Why the figures are missing; else ``None``. The ledger always has them (kept for
    #: readers of earlier reports, where the PSA was asked at request time).
    unavailable: str | None = None


class InvoiceCorrection(BaseModel):
    """Credit notes issued for every invoice issued."""

    invoices: int = 0
    credit_notes: int = 0
    rate: float | None = None


class OpenExceptions(BaseModel):
    """One queue's open exceptions and how long they have waited."""

    queue: str
    count: int
    oldest_age_hours: float | None
    by_age: dict[str, int]


class SlaBreaches(BaseModel):
    """Exceptions that outlived their queue's SLA, integration first."""

    count: int = 0
    by_queue: dict[str, int] = Field(default_factory=dict)


class TrendPoint(BaseModel):
    """One month of the trend."""

    period: str
    contracts_active: int
    setup_median_hours: float | None
    invoices_issued: int
    invoiced_value_by_currency: dict[str, Money]
    dso_days: float | None


class KpiReport(BaseModel):
    """The contract-to-cash KPIs for a legal entity (or all) and a month (or all time)."""

    legal_entity: str | None
    period: str | None
    generated_at: datetime
    project_setup: Distribution
    touchless_provisioning: TouchlessProvisioning
    billing_cycle: Distribution
    unbilled_time: UnbilledTime
    dso_days: float | None
    invoice_correction: InvoiceCorrection
    amendment_propagation: Distribution
    open_exceptions: list[OpenExceptions]
    exception_resolution: Distribution
    sla_breaches: SlaBreaches
    trend: list[TrendPoint]
    #: Open receivables by days past due, per legal entity, on the report's day.
    ar_aging: list[AgingReport] = Field(default_factory=list)


# ---------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` percentile of ``values`` by linear interpolation (type 7).

    Returns:
        ``None`` for no values.

    Raises:
        ValueError: ``fraction`` is outside ``[0, 1]``.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"a percentile's fraction is between 0 and 1, not {fraction}")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


def distribution(durations: Iterable[timedelta]) -> Distribution:
    """Count, median and p90 of durations, in hours (negative ones, from clock skew, as 0)."""
    hours = [max(d.total_seconds(), 0.0) / _HOUR for d in durations]
    return Distribution(
        count=len(hours),
        median_hours=_round(percentile(hours, 0.5)),
        p90_hours=_round(percentile(hours, 0.9)),
    )


def _round(value: float | None, places: int = 4) -> float | None:
    # Hours to 4 places (a third of a second): enough for any operator, and stable in JSON.
    return None if value is None else round(value, places)


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


# ---------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class _Window:
    """The half-open instant range ``[start, end)`` of a month, or everything."""

    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def of(cls, period: Period | None) -> _Window:
        if period is None:
            return cls()
        return cls(_midnight(period.first_day), _midnight(period.next().first_day))

    def holds(self, at: datetime | None) -> bool:
        if at is None:
            return False
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)

    def holds_day(self, day: date | None) -> bool:
        return day is not None and self.holds(_midnight(day))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


@dataclass
class _Facts:
    """Everything the report reads, for one legal entity (or all)."""

    contracts: list[ContractRecord]
    exceptions: list[ExceptionRecord]
    bills: list[BillingFact]
    payments: list[PaymentFact]
    credit_notes: list[CreditNoteFact]
    amendments: list[AmendmentFact]
    unbilled: list[UnbilledTimeRecord]
    applications: list[CashApplicationFact] = field(default_factory=list)
    invoices: list[BillingFact] = field(init=False)
    #: Every change to receivables, in the entity's books, worked out once for all windows.
    movements: list[_Movement] = field(init=False)

    def __post_init__(self) -> None:
        self.invoices = [b for b in self.bills if b.invoice_id and b.invoice_date]
        self.movements = _movements(self)


@dataclass(frozen=True, slots=True)
class _Movement:
    """A receivable raised (invoice) or lowered (credit note, cash), in functional currency."""

    contract_id: str
    currency: str
    on: date
    amount: Decimal
    #: Part of net credit sales (invoices and credit notes), not cash.
    sale: bool


def _movements(facts: _Facts) -> list[_Movement]:
    """Invoices at their functional total; credit notes and payments at their invoice's rate
    (cash held unapplied at the contract's latest invoice's rate)."""
    invoices = {b.invoice_id: b for b in facts.invoices}
    latest: dict[str, BillingFact] = {}
    for b in sorted(facts.invoices, key=lambda b: (b.invoice_date or date.min, b.fact_key)):
        latest[b.contract_id] = b
    found: list[_Movement] = []

    def add(invoice: BillingFact | None, on: date, amount: Decimal, *, sale: bool) -> None:
        if invoice is None:
            return
        currency = invoice.functional_currency or invoice.currency
        rate = invoice.exchange_rate or Decimal(1)
        found.append(_Movement(invoice.contract_id, currency, on, amount * rate, sale))

    for b in facts.invoices:
        assert b.invoice_date is not None and b.total is not None
        add(b, b.invoice_date, b.total, sale=True)
    for n in facts.credit_notes:
        # A credit note lowers both the receivable and the period's net sales.
        add(invoices.get(n.invoice_id), n.issued_on, -n.total, sale=True)
    for p in facts.payments:
        invoice = invoices.get(p.invoice_id) if p.invoice_id else latest.get(p.contract_id)
        add(invoice, p.received_on, -p.amount, sale=False)
    return found


def _load(ledger: Ledger, legal_entity: str | Collection[str] | None) -> _Facts:
    return _Facts(
        contracts=ledger.rows_of_entity(ContractRecord, legal_entity),
        exceptions=ledger.rows_of_entity(ExceptionRecord, legal_entity),
        bills=ledger.rows_of_entity(BillingFact, legal_entity),
        payments=ledger.rows_of_entity(PaymentFact, legal_entity),
        credit_notes=ledger.rows_of_entity(CreditNoteFact, legal_entity),
        amendments=ledger.rows_of_entity(AmendmentFact, legal_entity),
        unbilled=ledger.rows_of_entity(UnbilledTimeRecord, legal_entity),
        applications=ledger.rows_of_entity(CashApplicationFact, legal_entity),
    )


# ---------------------------------------------------------------------------- the KPIs


def kpi_report(
    ledger: Ledger,
    *,
    legal_entity: str | None = None,
    period: str | None = None,
    now: datetime | None = None,
    sla_hours: Mapping[str, float | None] | None = None,
    entities: Collection[str] | None = None,
) -> KpiReport:
    """The KPIs of one legal entity (or all) over one month (or all time).

    Args:
        ledger: The ledger to read.
        legal_entity: An entity code; only its contracts count.
        period: ``YYYY-MM``; only facts inside that month count (each KPI says which fact).
        now: The report's instant (ages of open exceptions, the default DSO window); now if
            not given.
        sla_hours: Each queue's SLA in hours (``Settings.exception_sla_hours``); without it
            only escalations count as breaches.
        entities: Without ``legal_entity``, only the contracts of these entities count (a
            reader limited to them).

    Raises:
        ValueError: ``period`` is not ``YYYY-MM``, or ``now`` is naive.
    """
    month = Period.parse(period) if period is not None else None
    now = _aware(now or datetime.now(UTC))
    window = _Window.of(month)
    facts = _load(ledger, legal_entity if legal_entity is not None else entities)
    sla = dict(sla_hours or {})
    return KpiReport(
        legal_entity=legal_entity,
        period=period,
        generated_at=now,
        project_setup=_project_setup(facts.contracts, window),
        touchless_provisioning=_touchless(facts, window),
        billing_cycle=distribution(
            b.issued_at - b.requested_at
            for b in facts.bills
            if b.period_close and b.issued_at is not None and window.holds(b.issued_at)
        ),
        unbilled_time=_unbilled(facts.contracts, facts.unbilled, month),
        dso_days=_dso(facts, *_dso_window(month, now)),
        invoice_correction=_correction(facts, window),
        amendment_propagation=distribution(
            a.propagated_at - a.started_at
            for a in facts.amendments
            if a.propagated_at is not None and window.holds(a.propagated_at)
        ),
        open_exceptions=_open_exceptions(facts.exceptions, window, now),
        exception_resolution=distribution(
            e.resolved_at - e.opened_at
            for e in facts.exceptions
            if e.resolved_at is not None and window.holds(e.resolved_at)
        ),
        sla_breaches=_sla_breaches(facts.exceptions, window, now, sla),
        trend=_trend(facts, month, now),
        ar_aging=_aging(facts, now.date()),
    )


def _aging(facts: _Facts, as_of: date) -> list[AgingReport]:
    """Each legal entity's AR aging (``ledger.books``), from the facts the report read."""
    entity_of = {c.contract_id: c.legal_entity for c in facts.contracts}
    entities = sorted({b.legal_entity for b in facts.invoices})
    return [
        aging_of(
            entity,
            as_of,
            [b for b in facts.bills if b.legal_entity == entity],
            [n for n in facts.credit_notes if entity_of.get(n.contract_id) == entity],
            [p for p in facts.payments if entity_of.get(p.contract_id) == entity],
            [a for a in facts.applications if entity_of.get(a.contract_id) == entity],
        )
        for entity in entities
    ]


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return at.astimezone(UTC)


def _project_setup(contracts: list[ContractRecord], window: _Window) -> Distribution:
    return distribution(
        c.active_at - c.approved_at
        for c in contracts
        if c.approved_at is not None and c.active_at is not None and window.holds(c.active_at)
    )


def _touchless(facts: _Facts, window: _Window) -> TouchlessProvisioning:
    provisioned = {c.contract_id for c in facts.contracts if window.holds(c.active_at)}
    touched = {
        e.contract_id
        for e in facts.exceptions
        if e.contract_id in provisioned and e.stage in PROVISIONING_STAGES
    }
    untouched = len(provisioned - touched)
    return TouchlessProvisioning(
        contracts=len(provisioned),
        without_manual_step=untouched,
        share=_share(untouched, len(provisioned)),
    )


def _correction(facts: _Facts, window: _Window) -> InvoiceCorrection:
    invoices = sum(1 for b in facts.invoices if window.holds_day(b.invoice_date))
    notes = sum(1 for n in facts.credit_notes if window.holds_day(n.issued_on))
    rate = None if invoices == 0 else round(notes / invoices, 4)
    return InvoiceCorrection(invoices=invoices, credit_notes=notes, rate=rate)


def _queue_order(queues: Iterable[str]) -> list[str]:
    return [*QUEUE_ORDER, *sorted(set(queues) - set(QUEUE_ORDER))]


def _open_exceptions(
    exceptions: list[ExceptionRecord], window: _Window, now: datetime
) -> list[OpenExceptions]:
    ages: dict[str, list[float]] = defaultdict(list)
    for e in exceptions:
        if e.status == ExceptionStatus.OPEN.value and window.holds(e.opened_at):
            ages[e.queue].append(max((now - e.opened_at).total_seconds(), 0.0) / _HOUR)
    report = []
    for queue in _queue_order(ages):
        waited = ages.get(queue, [])
        by_age = dict.fromkeys((name for name, _ in AGE_BUCKETS), 0)
        for hours in waited:
            by_age[next(name for name, bound in AGE_BUCKETS if hours < bound)] += 1
        report.append(
            OpenExceptions(
                queue=queue,
                count=len(waited),
                oldest_age_hours=_round(max(waited)) if waited else None,
                by_age=by_age,
            )
        )
    return report


def _sla_breaches(
    exceptions: list[ExceptionRecord],
    window: _Window,
    now: datetime,
    sla: Mapping[str, float | None],
) -> SlaBreaches:
    by_queue = dict.fromkeys(_queue_order(e.queue for e in exceptions), 0)
    for e in exceptions:
        if window.holds(e.opened_at) and _breached(e, now, sla.get(e.queue)):
            by_queue[e.queue] += 1
    return SlaBreaches(count=sum(by_queue.values()), by_queue=by_queue)


def _breached(e: ExceptionRecord, now: datetime, sla_hours: float | None) -> bool:
    """Escalated, or resolved (or still open) later than its queue's SLA allows."""
    if e.escalated_at is not None:
        return True
    if not sla_hours or sla_hours <= 0:
        return False
    waited = (e.resolved_at or now) - e.opened_at
    return waited > timedelta(hours=sla_hours)


# ---------------------------------------------------------------------------- DSO


def _dso_window(month: Period | None, now: datetime) -> tuple[date, date]:
    if month is not None:
        return month.first_day, month.last_day
    today = now.date()
    return today - timedelta(days=DSO_DEFAULT_DAYS - 1), today


def _dso(facts: _Facts, first: date, last: date) -> float | None:
    """Days sales outstanding by the period method, in the legal entities' own books.

    ``DSO = receivables at the window's last day / net credit sales in the window * days``.
    Amounts are in functional currency (see ``_movements``). ``None`` when the window has no
    net sales, or spans several functional currencies (days of different books do not add up
    without a group currency).
    """
    # (contract, functional currency) -> receivable; functional currency -> net sales.
    receivable: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    sales: dict[str, Decimal] = defaultdict(Decimal)
    for m in facts.movements:
        if m.on > last:
            continue
        receivable[(m.contract_id, m.currency)] += m.amount
        if m.sale and m.on >= first:
            sales[m.currency] += m.amount

    currencies = {c for c, amount in sales.items() if amount != 0} | {
        c for (_, c), amount in receivable.items() if amount > 0
    }
    if len(currencies) != 1:
        return None
    (currency,) = currencies
    net_sales = sales.get(currency, ZERO)
    if net_sales <= 0:
        return None
    # An overpaid contract's credit is not another customer's payment: floor each at zero.
    owed = sum((max(amount, ZERO) for (_, c), amount in receivable.items() if c == currency), ZERO)
    days = (last - first).days + 1
    return round(float(owed / net_sales * days), 2)


# ---------------------------------------------------------------------------- the trend


def _trend(facts: _Facts, month: Period | None, now: datetime) -> list[TrendPoint]:
    """The last months with any activity (at most 12, oldest first, without gaps)."""
    last = month or Period.of(now.date())
    active = {m for m in _activity_months(facts) if m <= last}
    if not active:
        return []
    end = max(active)
    start = end
    for _ in range(TREND_MONTHS - 1):
        start = _previous(start)
    return [_trend_point(facts, m) for m in _months(max(start, min(active)), end)]


def _activity_months(facts: _Facts) -> set[Period]:
    days: list[date] = []
    for c in facts.contracts:
        days.extend(at.date() for at in (c.approved_at, c.active_at, c.closed_at) if at)
    days.extend(b.invoice_date for b in facts.invoices if b.invoice_date)
    days.extend(p.received_on for p in facts.payments)
    days.extend(n.issued_on for n in facts.credit_notes)
    return {Period.of(d) for d in days}


def _previous(month: Period) -> Period:
    return Period.of(month.first_day - timedelta(days=1))


def _months(first: Period, last: Period) -> list[Period]:
    months = [first]
    while months[-1] < last:
        months.append(months[-1].next())
    return months


def _trend_point(facts: _Facts, month: Period) -> TrendPoint:
    window = _Window.of(month)
    assert window.start is not None and window.end is not None
    start, end = window.start, window.end
    value: dict[str, Decimal] = defaultdict(Decimal)
    issued = 0
    first, last = month.first_day, month.last_day
    for b in facts.invoices:
        if b.invoice_date is not None and first <= b.invoice_date <= last:
            assert b.total is not None
            issued += 1
            value[b.currency] += b.total
    return TrendPoint(
        period=str(month),
        contracts_active=sum(1 for c in facts.contracts if _active_during(c, start, end)),
        setup_median_hours=_project_setup(facts.contracts, window).median_hours,
        invoices_issued=issued,
        invoiced_value_by_currency=dict(sorted(value.items())),
        dso_days=_dso(facts, first, last),
    )


def _active_during(c: ContractRecord, start: datetime, end: datetime) -> bool:
    if c.active_at is None or c.active_at >= end:
        return False
    ended = c.closed_at or (c.updated_at if c.stage == Stage.CANCELLED.value else None)
    return ended is None or ended >= start


# ---------------------------------------------------------------------------- unbilled time


def _unbilling(c: ContractRecord) -> bool:
    """Whether a contract's time is billed by the hour and still to be billed."""
    return (
        c.billing_model == BillingModel.TIME_AND_MATERIALS.value
        and c.active_at is not None
        and c.closed_at is None
        and c.stage not in (Stage.CANCELLED.value, Stage.CLOSED.value)
    )


def unbilled_time(
    ledger: Ledger, *, legal_entity: str | None = None, period: str | None = None
) -> UnbilledTime:
    """Approved, billable, not yet invoiced time of active time-and-materials contracts.

    What the billing activity read from the PSA (the system of record for time) after each
    contract's latest invoice, priced at the contract's effective-dated rates as billing
    prices it. With a period, only work done up to its month counts. Retainer and fixed-fee
    time is not billed by the hour and is left out.

    Raises:
        ValueError: ``period`` is not ``YYYY-MM``.
    """
    contracts = ledger.rows_of_entity(ContractRecord, legal_entity)
    rows = ledger.rows_of_entity(UnbilledTimeRecord, legal_entity)
    return _unbilled(contracts, rows, Period.parse(period) if period is not None else None)


def _unbilled(
    contracts: Iterable[ContractRecord],
    rows: Iterable[UnbilledTimeRecord],
    through: Period | None,
) -> UnbilledTime:
    in_scope = {c.contract_id: c for c in contracts if _unbilling(c)}
    months: dict[str, list[UnbilledTimeRecord]] = defaultdict(list)
    for row in rows:
        if row.contract_id in in_scope and (through is None or row.work_month <= str(through)):
            months[row.contract_id].append(row)
    by_contract = []
    for contract_id, found in sorted(months.items()):
        hours = sum((r.hours for r in found), ZERO)
        if hours == 0:
            continue
        by_contract.append(
            UnbilledContract(
                contract_id=contract_id,
                legal_entity=in_scope[contract_id].legal_entity,
                currency=found[0].currency,
                hours=hours,
                value=sum((r.value for r in found), ZERO),
                unpriced_hours=sum((r.unpriced_hours for r in found), ZERO),
            )
        )
    entities: dict[tuple[str | None, str], list[UnbilledContract]] = defaultdict(list)
    for u in by_contract:
        entities[(u.legal_entity, u.currency)].append(u)
    return UnbilledTime(
        hours=sum((u.hours for u in by_contract), ZERO),
        by_contract=by_contract,
        by_legal_entity=[
            UnbilledEntity(
                legal_entity=entity,
                currency=currency,
                hours=sum((u.hours for u in items), ZERO),
                value=sum((u.value for u in items), ZERO),
            )
            for (entity, currency), items in sorted(
                entities.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])
            )
        ],
    )
