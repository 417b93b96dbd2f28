"""Invariants of billing, revenue and collections over random contracts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain.amendments import Terms, apply_amendment, check_amendment
from domain.billing import (
    OverageAccumulator,
    RetainerTerms,
    apply_cap,
    included_hours_for,
    release_line,
    retainer_fee_line,
)
from domain.collections import CashBook
from domain.models import Amendment, Milestone, RateCardEntry
from domain.money import minor_units, round_money
from domain.periods import Period
from domain.pricing import RateRevision, TimeAccumulator, subtotal
from domain.revenue import catch_up, fixed_fee_recognised_to_date, retainer_revenue

EXAMPLES = settings(max_examples=200, deadline=None)
CURRENCIES = st.sampled_from(["USD", "EUR", "JPY"])
ROLES = ["Analyst", "Partner", "Senior"]
ZERO = Decimal(0)


def money(currency: str, low: int, high: int) -> st.SearchStrategy[Decimal]:
    """Amounts of ``currency`` between ``low`` and ``high`` of its minor units."""
    places = minor_units(currency)
    return st.integers(low, high).map(lambda n: Decimal(n).scaleb(-places))


hours = st.decimals(min_value=Decimal("0.25"), max_value=Decimal("12"), places=2)
periods = st.builds(Period, st.integers(2025, 2028), st.integers(1, 12))


def expected_rate(revisions: list[RateRevision], role: str, on: date) -> Decimal:
    """The rate of ``role`` on ``on``, from first principles: the latest revision in effect,
    the later of two on one day, and the first one for work before any."""
    mine = [r for r in revisions if r.role == role]
    in_effect = [r for r in mine if r.effective_from <= on]
    if not in_effect:
        return min(mine, key=lambda r: r.effective_from).hourly_rate
    latest = max(r.effective_from for r in in_effect)
    return [r for r in in_effect if r.effective_from == latest][-1].hourly_rate


@dataclass
class Month:
    entries: list[tuple[str, int, Decimal]]  # role, day of month, hours
    amendment_day: int  # day of month an amendment takes effect, if there is one
    new_rates: dict[str, Decimal]
    cap_increase: Decimal | None


@dataclass
class Contract:
    currency: str
    start: Period
    rates: dict[str, Decimal]
    cap: Decimal | None
    months: list[Month] = field(default_factory=list)


@st.composite
def contracts(draw: st.DrawFn) -> Contract:
    currency = draw(CURRENCIES)
    rate = money(currency, 5_000, 60_000)
    roles = draw(st.lists(st.sampled_from(ROLES), min_size=1, max_size=3, unique=True))
    contract = Contract(
        currency=currency,
        start=draw(periods),
        rates={role: draw(rate) for role in roles},
        cap=draw(st.none() | money(currency, 1, 5_000_000)),
    )
    for _ in range(draw(st.integers(1, 5))):
        entries = draw(
            st.lists(st.tuples(st.sampled_from(roles), st.integers(0, 27), hours), max_size=15)
        )
        month = Month(
            entries=entries,
            amendment_day=draw(st.integers(0, 27)),
            new_rates=draw(st.dictionaries(st.sampled_from(roles), rate)),
            cap_increase=draw(st.none() | money(currency, 1, 2_000_000)),
        )
        contract.months.append(month)
    return contract


def amend(terms: Terms, month: Month, period: Period, n: int) -> Terms:
    """Apply the month's rate changes and cap increase, if any, as an amendment would."""
    cap = terms.not_to_exceed
    new_cap = None if cap is None or month.cap_increase is None else cap + month.cap_increase
    if not month.new_rates and new_cap is None:
        return terms
    amendment = Amendment(
        amendment_id=f"A-{n}",
        effective_date=period.first_day + timedelta(days=month.amendment_day),
        rate_card=[RateCardEntry(role=r, hourly_rate=v) for r, v in month.new_rates.items()],
        not_to_exceed=new_cap,
        reason="change order",
    )
    assert check_amendment(terms, amendment) is None
    return apply_amendment(terms, amendment)


@EXAMPLES
@given(contracts())
def test_capped_billing_of_amended_rates_bills_the_priced_work_or_holds_it_back(
    contract: Contract,
) -> None:
    ccy = contract.currency
    start = contract.start.first_day
    terms = Terms(
        currency=ccy,
        start_date=start,
        end_date=start + timedelta(days=400),
        not_to_exceed=contract.cap,
        rates=[
            RateRevision(role=r, hourly_rate=v, effective_from=start)
            for r, v in contract.rates.items()
        ],
    )
    billed_to_date = priced_to_date = backlog = ZERO
    period = contract.start
    for n, month in enumerate(contract.months):
        terms = amend(terms, month, period, n)
        acc = TimeAccumulator(terms.rates, ccy)
        groups: dict[tuple[str, Decimal], Decimal] = {}
        for role, day, worked in month.entries:
            work_date = period.first_day + timedelta(days=day)
            acc.add(role, work_date, worked)
            key = (role, expected_rate(terms.rates, role, work_date))
            groups[key] = groups.get(key, ZERO) + worked
        lines = acc.lines()
        priced = subtotal(lines)
        assert priced == sum((round_money(h * r, ccy) for (_, r), h in groups.items()), ZERO)

        # Work held back earlier is released first, so it is billed before newer work.
        if backlog:
            lines = [release_line(backlog, str(period)), *lines]
        result = apply_cap(
            lines, cap=terms.not_to_exceed, billed_to_date=billed_to_date, currency=ccy
        )
        billed = subtotal(result.lines)
        assert billed + result.held_back == subtotal(lines)
        assert result.held_back >= 0
        assert all(line.amount != 0 for line in result.lines)
        assert all(line.amount == round_money(line.amount, ccy) for line in result.lines)
        assert [line.line_id for line in result.lines] == [
            str(i + 1) for i in range(len(result.lines))
        ]
        billed_to_date += billed
        priced_to_date += priced
        backlog = result.held_back
        assert billed_to_date + backlog == priced_to_date
        if terms.not_to_exceed is None:
            assert result.held_back == 0
        else:
            assert billed_to_date <= terms.not_to_exceed
            # Work is held back only once the cap is reached.
            if result.held_back > 0:
                event("work held back at the cap")
                assert billed_to_date == terms.not_to_exceed
        terms = terms.model_copy(
            update={"invoiced_periods": [*terms.invoiced_periods, str(period)]}
        )
        period = period.next()


@EXAMPLES
@given(
    CURRENCIES.flatmap(lambda c: st.tuples(st.just(c), money(c, 1, 10_000_000))),
    periods,
    st.integers(1, 25),
)
def test_a_term_of_whole_months_bills_months_times_the_fee(
    currency_fee: tuple[str, Decimal], first: Period, count: int
) -> None:
    currency, fee = currency_fee
    months = [first]
    while len(months) < count:
        months.append(months[-1].next())
    terms = RetainerTerms(
        monthly_amount=fee,
        included_hours=Decimal("37.5"),
        start_date=months[0].first_day,
        end_date=months[-1].last_day,
    )
    before = Period.of(months[0].first_day - timedelta(days=1))
    after = months[-1].next()
    amounts = []
    for period in [before, *months, after]:
        line = retainer_fee_line(terms, period, currency)
        assert (line.amount if line else ZERO) == retainer_revenue(terms, period, currency)
        amounts.append(line.amount if line else ZERO)
    assert amounts[0] == amounts[-1] == 0
    assert sum(amounts, ZERO) == len(months) * fee
    assert sum((included_hours_for(terms, p) for p in months), ZERO) == len(months) * Decimal(
        "37.5"
    )


@EXAMPLES
@given(
    CURRENCIES.flatmap(lambda c: st.tuples(st.just(c), money(c, 1, 10_000_000))),
    st.dates(date(2025, 1, 1), date(2028, 12, 31)),
    st.integers(0, 800),
)
def test_a_prorated_month_never_bills_more_than_the_fee(
    currency_fee: tuple[str, Decimal], start: date, length: int
) -> None:
    currency, fee = currency_fee
    terms = RetainerTerms(
        monthly_amount=fee, start_date=start, end_date=start + timedelta(days=length)
    )
    period = Period.of(start)
    touched = 0
    while period <= Period.of(terms.end_date):
        line = retainer_fee_line(terms, period, currency)
        assert line is not None
        assert 0 <= line.amount <= fee
        assert line.amount == round_money(line.amount, currency)
        whole_month = terms.start_date <= period.first_day and period.last_day <= terms.end_date
        assert ("days)" in line.description) == (not whole_month)
        if whole_month:
            assert line.amount == fee
        touched += 1
        period = period.next()
    assert retainer_fee_line(terms, period, currency) is None
    assert touched == (period.year - start.year) * 12 + period.month - start.month


@EXAMPLES
@given(CURRENCIES, st.data())
def test_fixed_fee_revenue_stays_within_the_price_and_catch_ups_sum_to_the_target(
    currency: str, data: st.DataObject
) -> None:
    price = data.draw(money(currency, 1, 10_000_000), label="price")
    values = data.draw(st.lists(money(currency, 1, 5_000_000), min_size=1, max_size=8))
    added = data.draw(st.lists(money(currency, 1, 5_000_000), max_size=3), label="amended")
    order = data.draw(st.permutations(values), label="completion order")
    done_before_amendment = data.draw(st.integers(0, len(order)))
    # After the amendment the rest of the milestones and the new ones complete in any order.
    later = data.draw(st.permutations(order[done_before_amendment:] + added))
    completions = order[:done_before_amendment] + later

    total = sum(values, ZERO)
    completed = recognised = target = ZERO
    posted = []
    for step, value in enumerate(completions):
        if step == done_before_amendment:
            # The total grows; revenue already recognised may partly reverse.
            total += sum(added, ZERO)
        completed += value
        target = fixed_fee_recognised_to_date(price, completed, total, currency)
        assert 0 <= target <= price
        assert target == round_money(target, currency)
        posting = catch_up(target, recognised)
        posted.append(posting)
        recognised += posting
    assert sum(posted, ZERO) == target == recognised
    assert completed == total
    assert target == price


@EXAMPLES
@given(
    st.lists(st.tuples(st.sampled_from(ROLES), st.integers(0, 60), hours), max_size=30),
    st.decimals(min_value=Decimal(0), max_value=Decimal(200), places=2),
    CURRENCIES,
    st.data(),
)
def test_overage_does_not_depend_on_the_order_of_entries(
    entries: list[tuple[str, int, Decimal]], included: Decimal, currency: str, data: st.DataObject
) -> None:
    start = date(2026, 3, 1)
    revisions = [
        RateRevision(role="Analyst", hourly_rate=Decimal("95"), effective_from=start),
        RateRevision(role="Senior", hourly_rate=Decimal("210"), effective_from=start),
        RateRevision(role="Partner", hourly_rate=Decimal("400"), effective_from=start),
        RateRevision(role="Senior", hourly_rate=Decimal("230"), effective_from=date(2026, 4, 1)),
    ]
    shuffled = data.draw(st.permutations(entries), label="arrival order")
    results = []
    for ordering in (entries, shuffled):
        acc = OverageAccumulator(revisions, currency, included)
        for role, day, worked in ordering:
            acc.add(role, start + timedelta(days=day), worked)
        assert acc.included_used + acc.overage_hours == acc.hours
        assert acc.included_used <= included
        assert sum((line.quantity for line in acc.lines()), ZERO) == acc.overage_hours
        results.append((acc.lines(), acc.included_used, acc.overage_hours))
    assert results[0] == results[1]
    if included == 0:
        time = TimeAccumulator(revisions, currency)
        for role, day, worked in entries:
            time.add(role, start + timedelta(days=day), worked)
        assert subtotal(results[0][0]) == subtotal(time.lines())


PAYMENT_IDS = [f"PAY-{i}" for i in range(6)]


@st.composite
def cash_operations(draw: st.DrawFn) -> tuple[str, list[tuple[str, ...]]]:
    currency = draw(CURRENCIES)
    amount = money(currency, 1, 500_000)
    ops: list[tuple[str, ...]] = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["issue", "receive", "receive", "credit"]))
        if kind == "issue":
            ops.append(("issue", str(draw(amount))))
        elif kind == "receive":
            target = draw(st.sampled_from(["", "INV-0", "INV-1", "INV-2", "INV-7"]))
            ops.append(("receive", draw(st.sampled_from(PAYMENT_IDS)), str(draw(amount)), target))
        else:
            ops.append(
                ("credit", draw(st.sampled_from(["INV-0", "INV-1", "INV-2"])), str(draw(amount)))
            )
    return currency, ops


@EXAMPLES
@given(cash_operations())
def test_the_cash_book_balances_to_the_cent(drawn: tuple[str, list[tuple[str, ...]]]) -> None:
    currency, ops = drawn
    book = CashBook()
    issued = 0
    for op in ops:
        before = book.model_copy(deep=True)
        if op[0] == "issue":
            applications = book.issue(f"INV-{issued}", Decimal(op[1]))
            issued += 1
            assert sum((a.amount for a in applications), ZERO) == book.applied - before.applied
        elif op[0] == "receive":
            _, payment_id, amount, target = op
            repeated = any(r.payment_id == payment_id for r in book.receipts)
            applications = book.receive(payment_id, Decimal(amount), target or None)
            if repeated:
                event("repeated payment id")
                assert applications == []
                assert book == before
            else:
                if target:
                    assert len(applications) <= 1
                assert book.received == before.received + Decimal(amount)
        else:
            _, invoice_id, amount = op
            invoice = next((i for i in book.invoices if i.invoice_id == invoice_id), None)
            if invoice is None or Decimal(amount) > invoice.total - invoice.credit_notes:
                continue
            applications = []
            open_balance = invoice.balance
            excess = book.credit(invoice_id, Decimal(amount))
            assert excess == max(ZERO, Decimal(amount) - open_balance)
            if excess:
                event("credit beyond the open balance")
            assert book.received == before.received + excess
        assert all(a.amount > 0 for a in applications)
        assert book.received == book.applied + book.unapplied
        assert all(i.balance >= 0 for i in book.invoices)
        assert all(0 <= r.unapplied <= r.amount for r in book.receipts)
        assert sum((i.total for i in book.invoices), ZERO) == (
            book.balance_due + book.applied + sum((i.credited for i in book.invoices), ZERO)
        )
        assert book.unapplied == round_money(book.unapplied, currency)
    assert CashBook.model_validate_json(book.model_dump_json()) == book


@EXAMPLES
@given(
    st.dates(date(2026, 1, 1), date(2026, 12, 31)),
    st.integers(0, 120),
    st.lists(st.sampled_from(["2026-01", "2026-03", "2026-06", "2026-09"]), max_size=3),
)
def test_an_accepted_amendment_never_reaches_into_an_invoiced_period(
    effective: date, extend: int, invoiced: list[str]
) -> None:
    terms = Terms(
        currency="EUR",
        start_date=date(2026, 1, 1),
        end_date=date(2026, 10, 31),
        not_to_exceed=None,
        rates=[
            RateRevision(
                role="Senior", hourly_rate=Decimal("150.00"), effective_from=date(2026, 1, 1)
            )
        ],
        milestones=[Milestone(milestone_id="M1", name="Go-live", amount=Decimal("1000.00"))],
        invoiced_periods=invoiced,
    )
    amendment = Amendment(
        amendment_id="A-1",
        effective_date=effective,
        rate_card=[RateCardEntry(role="Senior", hourly_rate=Decimal("160.00"))],
        end_date=terms.end_date + timedelta(days=extend) if extend else None,
        reason="rate change",
    )
    reason = check_amendment(terms, amendment)
    latest = terms.latest_invoiced_period
    end = amendment.end_date or terms.end_date
    ok = (latest is None or Period.of(effective) > latest) and terms.start_date <= effective <= end
    assert (reason is None) == ok, reason
    if ok:
        after = apply_amendment(terms, amendment)
        assert after.rates[-1].effective_from == effective
        assert after.end_date == end
