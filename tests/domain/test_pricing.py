"""Pricing: hours times effective-dated rates per role, expenses with markup, rounding per group."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import round_money
from domain.pricing import (
    ExpenseAccumulator,
    RateRevision,
    TimeAccumulator,
    UnknownRole,
    rate_on,
    subtotal,
)

START = date(2026, 1, 1)


def rates(*entries: tuple[str, str, date]) -> list[RateRevision]:
    return [RateRevision(role=r, hourly_rate=Decimal(v), effective_from=d) for r, v, d in entries]


def test_hours_times_rate_per_role() -> None:
    acc = TimeAccumulator(rates(("Senior", "200.00", START), ("Analyst", "120.00", START)), "USD")
    acc.add("Senior", date(2026, 1, 5), Decimal("8"))
    acc.add("Analyst", date(2026, 1, 5), Decimal("6"))
    acc.add("Senior", date(2026, 1, 6), Decimal("4.5"))
    lines = acc.lines()
    assert [(line.role, line.quantity, line.amount) for line in lines] == [
        ("Analyst", Decimal("6"), Decimal("720.00")),
        ("Senior", Decimal("12.5"), Decimal("2500.00")),
    ]
    assert [line.line_id for line in lines] == ["1", "2"]
    assert subtotal(lines) == Decimal("3220.00")
    assert acc.hours == Decimal("18.5")


def test_a_rate_change_applies_from_its_effective_date() -> None:
    revisions = rates(("Senior", "200.00", START), ("Senior", "220.00", date(2026, 1, 15)))
    assert rate_on(revisions, "Senior", date(2026, 1, 14)) == Decimal("200.00")
    assert rate_on(revisions, "Senior", date(2026, 1, 15)) == Decimal("220.00")
    acc = TimeAccumulator(revisions, "USD")
    acc.add("Senior", date(2026, 1, 14), Decimal("1"))
    acc.add("Senior", date(2026, 1, 15), Decimal("1"))
    assert sorted(line.amount for line in acc.lines()) == [Decimal("200.00"), Decimal("220.00")]


def test_an_unknown_role_is_refused() -> None:
    acc = TimeAccumulator(rates(("Senior", "200.00", START)), "USD")
    with pytest.raises(UnknownRole, match="no rate for role 'Partner'"):
        acc.add("Partner", date(2026, 1, 5), Decimal("1"))


def test_jpy_lines_round_to_whole_yen() -> None:
    acc = TimeAccumulator(rates(("Consultant", "15000", START)), "JPY")
    acc.add("Consultant", date(2026, 1, 5), Decimal("0.33"))
    assert acc.lines()[0].amount == Decimal("4950")


def test_expenses_pass_through_with_markup() -> None:
    acc = ExpenseAccumulator("EUR", Decimal("10"))
    acc.add("travel", Decimal("100.05"))
    acc.add("travel", Decimal("0.10"))
    acc.add("hotel", Decimal("80.00"))
    assert [(line.description, line.amount) for line in acc.lines()] == [
        ("expenses: hotel", Decimal("88.00")),
        ("expenses: travel", Decimal("110.17")),
    ]


entries = st.lists(
    st.tuples(
        st.sampled_from(["Senior", "Analyst", "Partner"]),
        st.integers(min_value=0, max_value=89),
        st.decimals(min_value=Decimal("0.25"), max_value=Decimal("12"), places=2),
    ),
    max_size=60,
)


@given(entries, st.sampled_from(["USD", "EUR", "JPY"]), st.integers(min_value=1, max_value=80))
def test_subtotal_is_the_sum_of_rounded_role_and_rate_groups(
    items: list[tuple[str, int, Decimal]], currency: str, change_day: int
) -> None:
    scale = "1" if currency == "JPY" else "0.01"
    revisions = rates(
        ("Senior", "210" if scale == "1" else "210.50", START),
        ("Analyst", "95" if scale == "1" else "95.25", START),
        ("Partner", "400", START),
        ("Senior", "230" if scale == "1" else "230.75", START + timedelta(days=change_day)),
    )
    acc = TimeAccumulator(revisions, currency)
    expected_groups: dict[tuple[str, Decimal], Decimal] = {}
    for role, offset, hours in items:
        day = START + timedelta(days=offset)
        acc.add(role, day, hours)
        rate = rate_on(revisions, role, day)
        assert rate is not None
        expected_groups[(role, rate)] = expected_groups.get((role, rate), Decimal(0)) + hours
    expected = sum(
        (round_money(h * r, currency) for (_, r), h in expected_groups.items()), Decimal(0)
    )
    lines = acc.lines()
    assert subtotal(lines) == expected
    assert sum((line.quantity for line in lines), Decimal(0)) == sum(
        (h for _, _, h in items), Decimal(0)
    )
    # Every line is exact at the currency's scale.
    assert all(line.amount == round_money(line.amount, currency) for line in lines)
