"""Invariants of revenue over random contracts: a retainer under a cap whose fees are held back
and released or written off, and a fixed fee whose milestones are changed and removed by
amendment. Each contract is run through the pure functions the workflow uses, close by close:

- revenue recognised never exceeds what was billed plus what was earned and not yet billed;
- deferred revenue (the contract liability) less the contract asset is billed less recognised;
- a JPY amount never carries a fraction;
- a retainer fee held back by the cap and released is recognised once, in its month.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from activities.billing import AS_INVOICED_KINDS
from domain.amendments import Terms, apply_amendment, check_amendment
from domain.billing import (
    RetainerTerms,
    apply_cap,
    held_fee_part,
    milestone_line,
    release_lines,
    retainer_fee_line,
    split_release,
)
from domain.models import Amendment, Milestone
from domain.money import minor_units
from domain.periods import Period
from domain.pricing import InvoiceLine, number_lines
from domain.revenue import (
    ContractBalances,
    catch_up,
    fixed_fee_recognised_to_date,
    retainer_revenue,
)
from tests.domain.test_billing_properties import CURRENCIES, money

EXAMPLES = settings(max_examples=150, deadline=None)
ZERO = Decimal(0)


def whole(amount: Decimal, currency: str) -> bool:
    """Whether ``amount`` has no digits below the currency's minor unit."""
    return amount == amount.quantize(Decimal(1).scaleb(-minor_units(currency)))


def total(lines: list[InvoiceLine], kinds: frozenset[str] | None = None) -> Decimal:
    return sum((x.amount for x in lines if kinds is None or x.kind in kinds), ZERO)


FEE_KINDS = frozenset({"retainer"})


@dataclass
class RetainerBooks:
    """A retainer's billing and revenue, as the workflow and the ERP keep them."""

    currency: str
    cap: Decimal | None
    billed: Decimal = ZERO
    recognised: Decimal = ZERO
    fees_billed: Decimal = ZERO
    held: Decimal = ZERO
    held_fees: Decimal = ZERO
    written_off_fees: Decimal = ZERO
    #: Ratable revenue posted, by the month it belongs to.
    ratable: dict[str, Decimal] = field(default_factory=dict)

    def bill(self, lines: list[InvoiceLine]) -> None:
        capped = apply_cap(
            number_lines(lines), cap=self.cap, billed_to_date=self.billed, currency=self.currency
        )
        self.billed += total(capped.lines)
        self.fees_billed += total(capped.lines, FEE_KINDS)
        self.recognised += total(capped.lines, AS_INVOICED_KINDS)
        self.held += capped.held_back
        self.held_fees += held_fee_part(capped.held_back, total(lines, FEE_KINDS))

    def release(self, headroom: Decimal) -> None:
        work, fee = split_release(headroom, self.held, self.held_fees)
        lines = release_lines(work, fee, "release")
        assert total(lines) == headroom and 0 <= fee <= self.held_fees
        before = self.recognised
        self.billed += headroom
        self.fees_billed += total(lines, FEE_KINDS)
        self.recognised += total(lines, AS_INVOICED_KINDS)
        # The fee part is deferred: only the work released is revenue now.
        assert self.recognised - before == work
        self.held -= headroom
        self.held_fees = min(self.held_fees - fee, self.held)

    def write_off(self) -> None:
        self.written_off_fees += self.held_fees
        self.held = self.held_fees = ZERO

    def recognise_month(self, terms: RetainerTerms, month: Period) -> None:
        assert str(month) not in self.ratable, f"{month} recognised twice"
        amount = retainer_revenue(terms, month, self.currency)
        self.ratable[str(month)] = amount
        self.recognised += amount

    def check(self) -> None:
        ccy = self.currency
        fees_recognised = sum(self.ratable.values(), ZERO)
        earned_not_billed = max(ZERO, fees_recognised - self.fees_billed)
        assert self.recognised <= self.billed + earned_not_billed
        balances = ContractBalances(billed=self.billed, recognised=self.recognised)
        assert balances.contract_liability >= 0 and balances.contract_asset >= 0
        assert (
            balances.contract_liability - balances.contract_asset == self.billed - self.recognised
        )
        assert 0 <= self.held_fees <= self.held
        for amount in (self.billed, self.recognised, self.held, self.held_fees, fees_recognised):
            assert whole(amount, ccy), amount


@st.composite
def retainers(draw: st.DrawFn) -> tuple[RetainerTerms, str, Decimal | None, st.DataObject]:
    currency = draw(CURRENCIES)
    fee = draw(money(currency, 10_000, 5_000_000))
    start = draw(st.dates(Period(2025, 1).first_day, Period(2027, 12).last_day))
    end = start + timedelta(days=draw(st.integers(0, 240)))
    cap = draw(st.none() | money(currency, 1, 20_000_000))
    terms = RetainerTerms(monthly_amount=fee, start_date=start, end_date=end)
    return terms, currency, cap, draw(st.data())


@EXAMPLES
@given(retainers())
def test_a_retainer_fee_held_back_and_released_is_recognised_once_in_its_month(
    drawn: tuple[RetainerTerms, str, Decimal | None, st.DataObject],
) -> None:
    terms, ccy, cap, data = drawn
    books = RetainerBooks(currency=ccy, cap=cap)
    overage = money(ccy, 0, 300_000)

    def settle() -> None:
        """The operator's decisions while work or fees are held back: raise the cap (by some
        or all of what is held) and retry, or skip to write it off."""
        while books.held > 0:
            assert books.cap is not None
            if data.draw(st.booleans(), label="raise the cap"):
                share = data.draw(st.integers(1, 4), label="quarters of the held back released")
                raised = (books.held * share / 4).quantize(Decimal(1).scaleb(-minor_units(ccy)))
                books.cap = books.billed + max(raised, Decimal(1).scaleb(-minor_units(ccy)))
                books.release(min(books.held, books.cap - books.billed))
            else:
                books.write_off()
            books.check()

    first, last = Period.of(terms.start_date), Period.of(terms.end_date)
    fee = retainer_fee_line(terms, first, ccy)
    assert fee is not None
    books.bill([fee])  # the first month, in advance
    books.check()
    settle()
    month = first
    while month <= last:
        lines: list[InvoiceLine] = []
        extra = data.draw(overage, label=f"overage {month}")
        if extra:
            lines.append(
                InvoiceLine(
                    kind="overage",
                    description="o",
                    quantity=Decimal(1),
                    unit_price=extra,
                    amount=extra,
                )
            )
        if (next_fee := retainer_fee_line(terms, month.next(), ccy)) is not None:
            lines.append(next_fee)
        books.bill(lines)
        books.recognise_month(terms, month)
        books.check()
        settle()
        month = month.next()

    # Every month of the term is recognised once, at its own fee, whatever was held back.
    every_month = {}
    month = first
    while month <= last:
        every_month[str(month)] = retainer_revenue(terms, month, ccy)
        month = month.next()
    assert books.ratable == every_month
    # Each fee is billed once in all, released or not, unless it was written off.
    assert books.fees_billed + books.written_off_fees == sum(every_month.values(), ZERO)


@st.composite
def fixed_fees(draw: st.DrawFn) -> tuple[Terms, list[tuple[str, ...]], st.DataObject]:
    currency = draw(CURRENCIES)
    count = draw(st.integers(1, 6))
    milestones = [
        Milestone(
            milestone_id=f"M{i}", name=f"milestone {i}", amount=draw(money(currency, 1, 900_000))
        )
        for i in range(1, count + 1)
    ]
    start = Period(2026, 1)
    terms = Terms(
        currency=currency,
        start_date=start.first_day,
        end_date=Period(2027, 12).last_day,
        milestones=milestones,
    )
    return terms, [], draw(st.data())


@EXAMPLES
@given(fixed_fees())
def test_fixed_fee_revenue_follows_milestones_changed_and_removed_by_amendment(
    drawn: tuple[Terms, list[tuple[str, ...]], st.DataObject],
) -> None:
    terms, _, data = drawn
    ccy = terms.currency
    completed: set[str] = set()
    invoiced: dict[str, Decimal] = {}
    billed = recognised = ZERO
    month = Period.of(terms.start_date)
    for n in range(data.draw(st.integers(1, 12), label="events")):
        ids = [m.milestone_id for m in terms.milestones]
        event = data.draw(st.sampled_from(["complete", "change", "remove", "close"]))
        mid = data.draw(st.sampled_from(ids))
        if event == "complete":
            completed.add(mid)
        elif event in ("change", "remove"):
            edit: dict[str, object] = (
                {
                    "change_milestones": [
                        {"milestone_id": mid, "amount": data.draw(money(ccy, 1, 900_000))}
                    ]
                }
                if event == "change"
                else {"remove_milestones": [mid]}
            )
            amendment = Amendment(
                amendment_id=f"A-{n}",
                effective_date=month.next().first_day,
                reason="change order",
                **edit,  # type: ignore[arg-type]
            )
            known = terms.model_copy(
                update={"invoiced_milestones": sorted(invoiced), "invoiced_periods": []}
            )
            problem = check_amendment(known, amendment)
            if mid in invoiced:
                assert problem is not None and "already invoiced" in problem
            elif event == "remove" and ids == [mid]:
                assert problem is not None and "without milestones" in problem
            else:
                assert problem is None, problem
                terms = apply_amendment(known, amendment)
        else:
            # A close bills the completed milestones not yet invoiced and posts the catch-up.
            current = {m.milestone_id: m for m in terms.milestones}
            due = [current[m] for m in sorted(completed) if m in current and m not in invoiced]
            lines = [milestone_line(m.milestone_id, m.name, m.amount) for m in due]
            billed += total(lines)
            invoiced.update({m.milestone_id: m.amount for m in due})
            price = sum((m.amount for m in terms.milestones), ZERO)
            done = sum((m.amount for m in terms.milestones if m.milestone_id in completed), ZERO)
            recognised += catch_up(
                fixed_fee_recognised_to_date(price, done, price, ccy), recognised
            )
            # Price is the milestones' value: revenue is the value completed.
            assert recognised == done
            month = month.next()
        # An invoiced milestone keeps the amount it was invoiced at.
        amounts = {m.milestone_id: m.amount for m in terms.milestones}
        assert all(amounts[mid] == amount for mid, amount in invoiced.items())
        completed_not_billed = sum(
            (m.amount for m in terms.milestones if m.milestone_id in completed - set(invoiced)),
            ZERO,
        )
        assert recognised <= billed + completed_not_billed
        balances = ContractBalances(billed=billed, recognised=recognised)
        assert balances.contract_liability - balances.contract_asset == billed - recognised
        assert whole(billed, ccy) and whole(recognised, ccy)
