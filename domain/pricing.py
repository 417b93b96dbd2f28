"""Pricing of billable work into invoice lines.

Time is priced at the rate of its role on its work date (rates are effective-dated so an
amendment changes a rate from its effective date on). Hours are summed per role and rate, and
each line is rounded once, half-up, to the currency's minor unit; the subtotal is the sum of
the rounded lines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.models import RateCardEntry
from domain.money import ZERO, Money, Quantity, round_money

#: ``release`` bills work that a not-to-exceed cap held back in an earlier period.
LineKind = Literal["time", "expense", "milestone", "retainer", "overage", "release"]


class RateRevision(BaseModel):
    """A role's hourly rate from ``effective_from`` until the next revision of that role."""

    model_config = ConfigDict(frozen=True)

    role: str
    hourly_rate: Money
    effective_from: date


class InvoiceLine(BaseModel):
    kind: LineKind
    description: str
    quantity: Quantity
    unit_price: Money
    amount: Money
    role: str | None = None
    line_id: str = ""


class UnknownRole(ValueError):
    """A time entry names a role that has no rate on its work date."""

    def __init__(self, role: str, work_date: date) -> None:
        super().__init__(f"no rate for role {role!r} on {work_date.isoformat()}")
        self.role = role
        self.work_date = work_date


def initial_rates(rate_card: Iterable[RateCardEntry], start: date) -> list[RateRevision]:
    return [
        RateRevision(role=e.role, hourly_rate=e.hourly_rate, effective_from=start)
        for e in rate_card
    ]


def rate_on(revisions: Iterable[RateRevision], role: str, on: date) -> Decimal | None:
    """The rate of ``role`` on ``on``: the latest revision effective on or before that day."""
    best: RateRevision | None = None
    for rev in revisions:
        if (
            rev.role == role
            and rev.effective_from <= on
            and (best is None or rev.effective_from >= best.effective_from)
        ):
            best = rev
    return best.hourly_rate if best else None


class RateTable:
    """The effective-dated rate card, indexed by role, as every time-pricing step reads it.

    A work date before a role's first revision takes that first rate: a consultant who
    started a day early is billed at the contract rate, not refused.
    """

    def __init__(self, revisions: Iterable[RateRevision]) -> None:
        self._by_role: dict[str, list[RateRevision]] = defaultdict(list)
        for rev in revisions:
            self._by_role[rev.role].append(rev)
        for revs in self._by_role.values():
            # A stable sort keeps same-day revisions in the order they were made, so the
            # later of two amendments effective on one day wins in ``rate_on``.
            revs.sort(key=lambda r: r.effective_from)

    def rate(self, role: str, work_date: date) -> Decimal:
        """The hourly rate of ``role`` on ``work_date``.

        Raises:
            UnknownRole: the rate card has no revision for ``role``.
        """
        revs = self._by_role.get(role)
        if not revs:
            raise UnknownRole(role, work_date)
        rate = rate_on(revs, role, work_date)
        return revs[0].hourly_rate if rate is None else rate


class TimeAccumulator:
    """Prices time entries page by page, so a large period never sits in memory at once.

    Entries dated before a role's first revision take that first rate: a consultant who
    started a day early is billed at the contract rate, not refused.
    """

    def __init__(self, revisions: Iterable[RateRevision], currency: str) -> None:
        self._currency = currency
        self._rates = RateTable(revisions)
        self._hours: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
        self.entries = 0

    def add(self, role: str, work_date: date, hours: Decimal) -> None:
        self._hours[(role, self._rates.rate(role, work_date))] += hours
        self.entries += 1

    @property
    def hours(self) -> Decimal:
        return sum(self._hours.values(), ZERO)

    def lines(self) -> list[InvoiceLine]:
        lines = []
        for (role, rate), hours in sorted(self._hours.items()):
            lines.append(
                InvoiceLine(
                    kind="time",
                    description=f"{role}: {hours} h at {rate}",
                    role=role,
                    quantity=hours,
                    unit_price=rate,
                    amount=round_money(hours * rate, self._currency),
                )
            )
        return number_lines(lines)


class ExpenseAccumulator:
    """Billable expenses passed through per category, with an optional markup in percent."""

    def __init__(self, currency: str, markup_percent: Decimal = ZERO) -> None:
        self._currency = currency
        self._factor = 1 + markup_percent / 100
        self._by_category: dict[str, Decimal] = defaultdict(lambda: ZERO)
        self.entries = 0

    def add(self, category: str, amount: Decimal) -> None:
        self._by_category[category] += amount
        self.entries += 1

    def lines(self) -> list[InvoiceLine]:
        lines = []
        for category, cost in sorted(self._by_category.items()):
            amount = round_money(cost * self._factor, self._currency)
            lines.append(
                InvoiceLine(
                    kind="expense",
                    description=f"expenses: {category}",
                    quantity=Decimal(1),
                    unit_price=amount,
                    amount=amount,
                )
            )
        return lines


def number_lines(lines: list[InvoiceLine]) -> list[InvoiceLine]:
    return [line.model_copy(update={"line_id": str(i + 1)}) for i, line in enumerate(lines)]


def subtotal(lines: Iterable[InvoiceLine]) -> Decimal:
    return sum((line.amount for line in lines), ZERO)
