"""Billing models: retainer proration, included hours and overage, milestones, and the cap.

Everything here is exact arithmetic on ``Decimal`` and ``Fraction`` and is imported by workflow
code, so it does no I/O and reads no clock. Each invoice line is rounded once, half-up, to the
currency's minor unit (``domain.money``); a share of a month is carried as a ``Fraction`` until
that single rounding, so 18/30 of a fee is never rounded twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from fractions import Fraction

from pydantic import BaseModel, ConfigDict

from domain.money import ZERO, Money, Quantity, minor_units, money_sum, round_money
from domain.periods import Period
from domain.pricing import InvoiceLine, RateRevision, RateTable, number_lines

ONE = Decimal(1)


def round_half_up(value: Fraction, places: int) -> Decimal:
    """Round an exact ``value`` half-up (away from zero on a tie) to ``places`` decimals.

    ``Decimal`` division would first round a share such as 1/30 to the context precision;
    rounding the exact fraction once avoids that second rounding.
    """
    scaled = abs(value) * 10**places
    whole = int(scaled)  # truncates towards zero; scaled is not negative
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(-whole if value < 0 else whole).scaleb(-places)


def round_fraction(value: Fraction, currency: str) -> Decimal:
    """Round an exact ``value`` half-up to the minor unit of ``currency``."""
    return round_half_up(value, minor_units(currency))


def _days_within(period: Period, start: date, end: date) -> int:
    first = max(period.first_day, start)
    last = min(period.last_day, end)
    return max(0, (last - first).days + 1)


def _days_in(period: Period) -> int:
    return period.last_day.day


def month_share(period: Period, start: date, end: date) -> Fraction:
    """The share of ``period`` that falls within ``[start, end]`` (both days included).

    Returns:
        Days of the month within the range divided by the days in that month; 0 when the
        range does not touch the month.
    """
    return Fraction(_days_within(period, start, end), _days_in(period))


def prorate(amount: Decimal, period: Period, start: date, end: date, currency: str) -> Decimal:
    """``amount`` times the share of ``period`` within ``[start, end]``, rounded once.

    Example:
        10,000.00 for a term starting on 13 November 2026 is 18/30 of the month: 6,000.00.
    """
    return round_fraction(Fraction(amount) * month_share(period, start, end), currency)


class RetainerTerms(BaseModel):
    """A retainer: a monthly fee for a term, optionally with hours included in the fee."""

    model_config = ConfigDict(frozen=True)

    monthly_amount: Money
    included_hours: Quantity = ZERO
    start_date: date
    end_date: date


def retainer_fee_line(terms: RetainerTerms, period: Period, currency: str) -> InvoiceLine | None:
    """The retainer fee of ``period``, prorated when the term covers only part of the month.

    Returns:
        A ``retainer`` line (quantity 1), or ``None`` when the period is outside the term.
    """
    days = _days_within(period, terms.start_date, terms.end_date)
    if days == 0:
        return None
    amount = prorate(terms.monthly_amount, period, terms.start_date, terms.end_date, currency)
    month_days = _days_in(period)
    description = f"retainer {period}"
    if days < month_days:
        description += f" ({days}/{month_days} days)"
    return InvoiceLine(
        kind="retainer", description=description, quantity=ONE, unit_price=amount, amount=amount
    )


def included_hours_for(terms: RetainerTerms, period: Period) -> Decimal:
    """The hours included in ``period``'s fee: prorated like the fee, to 2 decimals half-up."""
    share = month_share(period, terms.start_date, terms.end_date)
    return round_half_up(Fraction(terms.included_hours) * share, 2)


class OverageAccumulator:
    """Hours beyond a retainer's included hours, priced at each role's rate on the work date.

    The included hours are consumed in order of work date (ties by role name), not in the order
    the PSA pages entries, so the invoice does not depend on paging. Hours are kept per
    ``(work_date, role)``, which stays small for a month however many entries there are, and are
    allocated only when ``lines`` is called.
    """

    def __init__(
        self, revisions: Iterable[RateRevision], currency: str, included_hours: Decimal
    ) -> None:
        if included_hours < 0:
            raise ValueError(f"included_hours must not be negative, got {included_hours}")
        self._currency = currency
        self._rates = RateTable(revisions)
        self._included = included_hours
        self._hours: dict[tuple[date, str], Decimal] = defaultdict(lambda: ZERO)
        self._entries = 0

    def add(self, role: str, work_date: date, hours: Decimal) -> None:
        """Record ``hours`` worked by ``role`` on ``work_date``.

        Raises:
            UnknownRole: the rate card has no rate for ``role``.
            ValueError: ``hours`` is negative (the PSA only records positive hours; a negative
                one would make the order of consumption of the included hours ambiguous).
        """
        if hours < 0:
            raise ValueError(f"hours must not be negative, got {hours}")
        self._rates.rate(role, work_date)  # refuse an unknown role now, as TimeAccumulator does
        self._hours[(work_date, role)] += hours
        self._entries += 1

    @property
    def entries(self) -> int:
        """How many time entries were added."""
        return self._entries

    @property
    def hours(self) -> Decimal:
        """All hours added."""
        return sum(self._hours.values(), ZERO)

    @property
    def included_used(self) -> Decimal:
        """The included hours that the work consumed."""
        return min(self._included, self.hours)

    @property
    def overage_hours(self) -> Decimal:
        """The hours beyond the included hours."""
        return self.hours - self.included_used

    def lines(self) -> list[InvoiceLine]:
        """``overage`` lines, one per role and rate, each rounded once."""
        remaining = self._included
        overage: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
        for (work_date, role), hours in sorted(self._hours.items()):
            used = min(remaining, hours)
            remaining -= used
            if hours > used:
                overage[(role, self._rates.rate(role, work_date))] += hours - used
        lines = [
            InvoiceLine(
                kind="overage",
                description=f"{role}: {hours} h beyond the included hours at {rate}",
                role=role,
                quantity=hours,
                unit_price=rate,
                amount=round_money(hours * rate, self._currency),
            )
            for (role, rate), hours in sorted(overage.items())
        ]
        return number_lines(lines)


def milestone_line(milestone_id: str, name: str, amount: Decimal) -> InvoiceLine:
    """The line that bills a completed fixed-fee milestone."""
    return InvoiceLine(
        kind="milestone",
        description=f"milestone {milestone_id}: {name}",
        quantity=ONE,
        unit_price=amount,
        amount=amount,
    )


class CapResult(BaseModel):
    """Lines billed under a not-to-exceed cap, and the amount held back above it."""

    lines: list[InvoiceLine]
    held_back: Money


def apply_cap(
    lines: list[InvoiceLine], *, cap: Decimal | None, billed_to_date: Decimal, currency: str
) -> CapResult:
    """Bill ``lines`` in order while they fit under a not-to-exceed cap.

    The headroom is ``cap - billed_to_date`` (never negative). The first line that does not fit
    is split: the headroom left is billed on a line of its own and the rest is held back, as is
    every later line, so the billed part is always a prefix of the work and a later release
    bills it in the same order. Zero-amount billed lines are dropped; lines are renumbered.

    Invariants: ``sum(billed) + held_back == sum(lines)``; ``sum(billed) <= headroom``.
    """
    if cap is None:
        return CapResult(
            lines=number_lines([line for line in lines if line.amount != 0]),
            held_back=round_money(ZERO, currency),
        )
    remaining = max(ZERO, cap - billed_to_date)
    billed: list[InvoiceLine] = []
    held: list[Decimal] = []
    for line in lines:
        if held:
            held.append(line.amount)
        elif line.amount <= remaining:
            billed.append(line)
            remaining -= line.amount
        else:
            billed.append(
                line.model_copy(
                    update={
                        "description": f"{line.description}, capped at the not-to-exceed {cap}",
                        "quantity": ONE,
                        "unit_price": remaining,
                        "amount": remaining,
                    }
                )
            )
            held.append(line.amount - remaining)
            remaining = ZERO
    return CapResult(
        lines=number_lines([line for line in billed if line.amount != 0]),
        held_back=money_sum(held, currency),
    )


def release_line(amount: Decimal, period: str) -> InvoiceLine:
    """A line that bills work held back under the cap in ``period`` once headroom allows."""
    return InvoiceLine(
        kind="release",
        description=f"work held back under the not-to-exceed cap in {period}, released",
        quantity=ONE,
        unit_price=amount,
        amount=amount,
    )


def held_fee_part(held_back: Decimal, fees: Decimal) -> Decimal:
    """The part of ``held_back`` that is retainer fee, when a bill's charges hold ``fees``.

    ``apply_cap`` holds back the end of an invoice, and a bill's charges (its retainer fees)
    come after its work: the fees are held back first, the work only once they all are.
    """
    return max(ZERO, min(held_back, fees))


def split_release(
    amount: Decimal, held_back: Decimal, held_fees: Decimal
) -> tuple[Decimal, Decimal]:
    """How a release of ``amount`` of ``held_back`` divides into (work, retainer fee).

    ``held_fees`` of what is held back are retainer fees. A release bills the held-back part
    of an invoice in the order the invoice had it, work before fees, so the work held back is
    released first.

    Invariants: ``work + fee == amount``; ``0 <= fee <= held_fees`` while ``amount <=
    held_back``.
    """
    work = min(amount, max(ZERO, held_back - held_fees))
    return work, amount - work


def release_lines(work: Decimal, fee: Decimal, period: str) -> list[InvoiceLine]:
    """The lines of a release: held-back work (a ``release`` line, revenue as invoiced) and
    held-back retainer fees (a ``retainer`` line: deferred, recognised ratably in the months
    they pay for, never again at release). A zero part gets no line."""
    lines = []
    if work:
        lines.append(release_line(work, period))
    if fee:
        lines.append(
            InvoiceLine(
                kind="retainer",
                description=(
                    f"retainer fee held back under the not-to-exceed cap in {period}, released"
                ),
                quantity=ONE,
                unit_price=fee,
                amount=fee,
            )
        )
    return number_lines(lines)


def work_after(
    entries: Iterable[tuple[date, Decimal]], last_day: date
) -> tuple[int, Decimal, date | None]:
    """Of time entries ``(work_date, hours)``, those dated after ``last_day``: how many, their
    hours, and the first such day (``None`` when there are none).

    A terminated contract bills work up to its last day only: time dated later is reported,
    never billed, and never dropped in silence.
    """
    count, hours, first = 0, ZERO, None
    for work_date, entry_hours in entries:
        if work_date > last_day:
            count += 1
            hours += entry_hours
            first = work_date if first is None else min(first, work_date)
    return count, hours, first
