"""The billing decider's arithmetic: proration by days, rounding once half-up, partial months."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from domain.billing import (
    OverageAccumulator,
    RetainerTerms,
    apply_cap,
    held_fee_part,
    included_hours_for,
    milestone_line,
    month_share,
    prorate,
    release_line,
    release_lines,
    retainer_fee_line,
    round_half_up,
    split_release,
    work_after,
)
from domain.periods import Period
from domain.pricing import InvoiceLine, RateRevision, RateTable, UnknownRole, subtotal

NOV = Period(2026, 11)
DEC = Period(2026, 12)


def retainer(amount: str = "10000.00", hours: str = "0", **dates: date) -> RetainerTerms:
    return RetainerTerms(
        monthly_amount=Decimal(amount),
        included_hours=Decimal(hours),
        start_date=dates.get("start_date", date(2026, 11, 13)),
        end_date=dates.get("end_date", date(2027, 11, 12)),
    )


def line(amount: str, description: str = "work", kind: str = "time") -> InvoiceLine:
    value = Decimal(amount)
    return InvoiceLine.model_validate(
        {
            "kind": kind,
            "description": description,
            "quantity": Decimal(1),
            "unit_price": value,
            "amount": value,
        }
    )


# --- proration ---------------------------------------------------------------------------


def test_month_share_counts_the_days_of_the_month_within_the_term() -> None:
    assert month_share(NOV, date(2026, 11, 13), date(2027, 3, 1)) == Fraction(18, 30)
    assert month_share(NOV, date(2026, 1, 1), date(2026, 11, 10)) == Fraction(10, 30)
    assert month_share(NOV, date(2026, 11, 1), date(2026, 11, 30)) == 1
    assert month_share(NOV, date(2026, 11, 5), date(2026, 11, 5)) == Fraction(1, 30)
    assert month_share(Period(2028, 2), date(2028, 2, 15), date(2028, 12, 31)) == Fraction(15, 29)
    assert month_share(NOV, date(2026, 12, 1), date(2027, 1, 1)) == 0
    assert month_share(NOV, date(2026, 1, 1), date(2026, 10, 31)) == 0


def test_a_retainer_starting_on_13_november_bills_18_of_30_days() -> None:
    fee = prorate(Decimal("10000.00"), NOV, date(2026, 11, 13), date(2027, 11, 12), "USD")
    assert fee == Decimal("6000.00")
    assert str(fee) == "6000.00"


def test_proration_rounds_once_half_up() -> None:
    # 15/30 of 0.05 is 0.025 exactly: half-up gives 0.03, banker's rounding would give 0.02.
    assert prorate(Decimal("0.05"), NOV, date(2026, 11, 16), date(2027, 1, 1), "USD") == Decimal(
        "0.03"
    )
    # 10/31 of 5,000.00 EUR is 1,612.9032...
    assert prorate(
        Decimal("5000.00"), Period(2027, 1), date(2026, 1, 1), date(2027, 1, 10), "EUR"
    ) == Decimal("1612.90")


def test_jpy_prorates_to_whole_yen() -> None:
    # 17/31 of 100,000 is 54,838.709...
    fee = prorate(Decimal("100000"), Period(2026, 10), date(2026, 10, 15), date(2027, 1, 1), "JPY")
    assert fee == Decimal("54839")
    assert str(fee) == "54839"


def test_round_half_up_is_away_from_zero_on_a_tie() -> None:
    assert round_half_up(Fraction(5, 1000), 2) == Decimal("0.01")
    assert round_half_up(Fraction(-5, 1000), 2) == Decimal("-0.01")
    assert round_half_up(Fraction(4999, 1000000), 2) == Decimal("0.00")
    assert round_half_up(Fraction(1, 2), 0) == Decimal(1)


# --- retainer ----------------------------------------------------------------------------


def test_the_first_partial_month_says_how_many_days_it_bills() -> None:
    fee = retainer_fee_line(retainer(), NOV, "USD")
    assert fee is not None
    assert (fee.kind, fee.description) == ("retainer", "retainer 2026-11 (18/30 days)")
    assert (fee.quantity, fee.unit_price, fee.amount) == (
        Decimal(1),
        Decimal("6000.00"),
        Decimal("6000.00"),
    )


def test_a_full_month_bills_the_whole_fee() -> None:
    fee = retainer_fee_line(retainer(), DEC, "USD")
    assert fee is not None
    assert fee.description == "retainer 2026-12"
    assert fee.amount == Decimal("10000.00")


def test_the_last_partial_month_bills_up_to_the_end_date() -> None:
    fee = retainer_fee_line(retainer(), Period(2027, 11), "USD")
    assert fee is not None
    assert fee.description == "retainer 2027-11 (12/30 days)"
    assert fee.amount == Decimal("4000.00")


def test_no_fee_outside_the_term() -> None:
    assert retainer_fee_line(retainer(), Period(2026, 10), "USD") is None
    assert retainer_fee_line(retainer(), Period(2027, 12), "USD") is None


def test_a_jpy_retainer() -> None:
    terms = retainer("1000000", start_date=date(2026, 11, 13))
    fee = retainer_fee_line(terms, NOV, "JPY")
    assert fee is not None
    assert str(fee.amount) == "600000"


def test_included_hours_are_prorated_like_the_fee() -> None:
    assert included_hours_for(retainer(hours="20"), NOV) == Decimal("12.00")
    assert included_hours_for(retainer(hours="20"), DEC) == Decimal("20.00")
    assert included_hours_for(retainer(hours="20"), Period(2026, 10)) == Decimal("0.00")
    # 17/31 of 10 hours is 5.4838...
    terms = retainer(hours="10", start_date=date(2026, 10, 15))
    assert included_hours_for(terms, Period(2026, 10)) == Decimal("5.48")


def test_retainer_terms_are_frozen_and_round_trip() -> None:
    terms = retainer(hours="12.5")
    with pytest.raises(ValueError, match="frozen"):
        terms.monthly_amount = Decimal(1)  # type: ignore[misc]
    assert RetainerTerms.model_validate_json(terms.model_dump_json()) == terms
    assert terms.model_dump(mode="json")["monthly_amount"] == "10000.00"
    assert RetainerTerms(
        monthly_amount=Decimal(1), start_date=date(2026, 1, 1), end_date=date(2026, 2, 1)
    ).included_hours == Decimal(0)


# --- overage -----------------------------------------------------------------------------

START = date(2026, 11, 1)
RATES = [
    RateRevision(role="Senior", hourly_rate=Decimal("200.00"), effective_from=START),
    RateRevision(role="Analyst", hourly_rate=Decimal("120.00"), effective_from=START),
    RateRevision(role="Senior", hourly_rate=Decimal("220.00"), effective_from=date(2026, 11, 16)),
]


def test_included_hours_are_consumed_first_and_the_rest_is_overage() -> None:
    acc = OverageAccumulator(RATES, "USD", Decimal("10"))
    acc.add("Senior", date(2026, 11, 2), Decimal("6"))
    acc.add("Analyst", date(2026, 11, 3), Decimal("6"))
    acc.add("Senior", date(2026, 11, 20), Decimal("3"))
    assert (acc.entries, acc.hours, acc.included_used, acc.overage_hours) == (
        3,
        Decimal("15"),
        Decimal("10"),
        Decimal("5"),
    )
    lines = acc.lines()
    # The 10 included hours cover the Senior's 6 on 2 Nov and 4 of the Analyst's 6 on 3 Nov;
    # the Senior's 3 hours on 20 Nov are at the amended rate.
    assert [(x.kind, x.role, x.quantity, x.unit_price, x.amount) for x in lines] == [
        ("overage", "Analyst", Decimal("2"), Decimal("120.00"), Decimal("240.00")),
        ("overage", "Senior", Decimal("3"), Decimal("220.00"), Decimal("660.00")),
    ]
    assert [x.line_id for x in lines] == ["1", "2"]
    assert lines[0].description == "Analyst: 2 h beyond the included hours at 120.00"


def test_the_order_entries_arrive_in_does_not_change_the_overage() -> None:
    entries = [
        ("Senior", date(2026, 11, 20), Decimal("3")),
        ("Analyst", date(2026, 11, 3), Decimal("6")),
        ("Senior", date(2026, 11, 3), Decimal("2")),
        ("Senior", date(2026, 11, 2), Decimal("6")),
    ]
    results = []
    for ordering in (entries, entries[::-1], sorted(entries, key=lambda e: e[2])):
        acc = OverageAccumulator(RATES, "USD", Decimal("9"))
        for role, day, hours in ordering:
            acc.add(role, day, hours)
        results.append(acc.lines())
    assert results[0] == results[1] == results[2]
    # Same day: the Analyst's hours are consumed before the Senior's (ties by role name).
    assert [(x.role, x.quantity, x.unit_price) for x in results[0]] == [
        ("Analyst", Decimal("3"), Decimal("120.00")),
        ("Senior", Decimal("2"), Decimal("200.00")),
        ("Senior", Decimal("3"), Decimal("220.00")),
    ]


def test_no_overage_within_the_included_hours() -> None:
    acc = OverageAccumulator(RATES, "USD", Decimal("20"))
    acc.add("Senior", date(2026, 11, 2), Decimal("8"))
    assert acc.lines() == []
    assert (acc.included_used, acc.overage_hours) == (Decimal("8"), Decimal("0"))


def test_overage_in_jpy_rounds_each_line_once() -> None:
    rates = [RateRevision(role="Consultant", hourly_rate=Decimal("15000"), effective_from=START)]
    acc = OverageAccumulator(rates, "JPY", Decimal("1"))
    acc.add("Consultant", date(2026, 11, 2), Decimal("1.33"))
    assert [str(x.amount) for x in acc.lines()] == ["4950"]


def test_overage_refuses_an_unknown_role_and_negative_hours() -> None:
    acc = OverageAccumulator(RATES, "USD", Decimal("10"))
    with pytest.raises(UnknownRole, match="no rate for role 'Partner'"):
        acc.add("Partner", date(2026, 11, 5), Decimal("1"))
    with pytest.raises(ValueError, match="hours must not be negative"):
        acc.add("Senior", date(2026, 11, 5), Decimal("-1"))
    with pytest.raises(ValueError, match="included_hours must not be negative"):
        OverageAccumulator(RATES, "USD", Decimal("-1"))
    assert acc.entries == 0


def test_work_before_a_roles_first_revision_takes_the_first_rate() -> None:
    table = RateTable(RATES)
    assert table.rate("Senior", date(2026, 10, 30)) == Decimal("200.00")
    assert table.rate("Senior", date(2026, 11, 15)) == Decimal("200.00")
    assert table.rate("Senior", date(2026, 11, 16)) == Decimal("220.00")
    acc = OverageAccumulator(RATES, "USD", Decimal("0"))
    acc.add("Analyst", date(2026, 10, 31), Decimal("1"))
    assert acc.lines()[0].unit_price == Decimal("120.00")


def test_of_two_revisions_on_one_day_the_later_wins() -> None:
    day = date(2026, 12, 1)
    table = RateTable(
        [
            *RATES,
            RateRevision(role="Senior", hourly_rate=Decimal("230.00"), effective_from=day),
            RateRevision(role="Senior", hourly_rate=Decimal("240.00"), effective_from=day),
        ]
    )
    assert table.rate("Senior", day) == Decimal("240.00")


# --- milestones and release ----------------------------------------------------------------


def test_milestone_line() -> None:
    m = milestone_line("M1", "Discovery report", Decimal("25000.00"))
    assert (m.kind, m.description, m.quantity, m.unit_price, m.amount) == (
        "milestone",
        "milestone M1: Discovery report",
        Decimal(1),
        Decimal("25000.00"),
        Decimal("25000.00"),
    )


def test_release_line() -> None:
    r = release_line(Decimal("1500.00"), "2026-11")
    assert (r.kind, r.description, r.quantity, r.amount) == (
        "release",
        "work held back under the not-to-exceed cap in 2026-11, released",
        Decimal(1),
        Decimal("1500.00"),
    )


# --- the not-to-exceed cap -----------------------------------------------------------------


def test_no_cap_bills_everything() -> None:
    result = apply_cap(
        [line("100.00"), line("0.00"), line("50.00")],
        cap=None,
        billed_to_date=Decimal("1e6"),
        currency="USD",
    )
    assert [x.amount for x in result.lines] == [Decimal("100.00"), Decimal("50.00")]
    assert [x.line_id for x in result.lines] == ["1", "2"]
    assert str(result.held_back) == "0.00"


def test_lines_that_fit_are_billed_and_the_first_that_does_not_is_split() -> None:
    lines = [line("4000.00", "Senior"), line("5000.00", "Analyst"), line("100.00", "hotel")]
    result = apply_cap(
        lines, cap=Decimal("50000.00"), billed_to_date=Decimal("43000.00"), currency="USD"
    )
    assert [(x.description, x.quantity, x.amount, x.line_id) for x in result.lines] == [
        ("Senior", Decimal(1), Decimal("4000.00"), "1"),
        ("Analyst, capped at the not-to-exceed 50000.00", Decimal(1), Decimal("3000.00"), "2"),
    ]
    assert result.lines[1].unit_price == Decimal("3000.00")
    # 2,000.00 of the Analyst's line and the whole hotel line (it would fit, but it comes
    # after work that was held back) wait for headroom.
    assert result.held_back == Decimal("2100.00")
    assert subtotal(result.lines) + result.held_back == subtotal(lines)


def test_a_line_that_exactly_fills_the_headroom_is_not_split() -> None:
    result = apply_cap(
        [line("700.00"), line("1.00")],
        cap=Decimal("1000.00"),
        billed_to_date=Decimal("300.00"),
        currency="USD",
    )
    assert [(x.description, x.amount) for x in result.lines] == [("work", Decimal("700.00"))]
    assert result.held_back == Decimal("1.00")


def test_at_or_over_the_cap_everything_is_held_back() -> None:
    for billed in ("1000.00", "1200.00"):
        result = apply_cap(
            [line("10.00"), line("20.00")],
            cap=Decimal("1000.00"),
            billed_to_date=Decimal(billed),
            currency="USD",
        )
        assert result.lines == []
        assert result.held_back == Decimal("30.00")


def test_a_credit_line_that_fits_is_billed() -> None:
    result = apply_cap(
        [line("-50.00", "discount"), line("120.00")],
        cap=Decimal("100.00"),
        billed_to_date=Decimal("30.00"),
        currency="USD",
    )
    # The discount widens the headroom to 120.00, so the next line fits whole.
    assert [x.amount for x in result.lines] == [Decimal("-50.00"), Decimal("120.00")]
    assert result.held_back == Decimal("0.00")


def test_a_jpy_cap() -> None:
    result = apply_cap(
        [line("300000"), line("250000")],
        cap=Decimal("500000"),
        billed_to_date=Decimal("0"),
        currency="JPY",
    )
    assert [str(x.amount) for x in result.lines] == ["300000", "200000"]
    assert str(result.held_back) == "50000"


def test_cap_result_round_trips_through_json() -> None:
    result = apply_cap(
        [line("10.00")], cap=Decimal("5.00"), billed_to_date=Decimal(0), currency="EUR"
    )
    assert result.model_dump(mode="json")["held_back"] == "5.00"
    assert type(result).model_validate_json(result.model_dump_json()) == result


def test_the_fees_of_a_bill_are_held_back_before_its_work() -> None:
    # 300.00 of overage and a 5,000.00 fee, 1,000.00 of headroom: 4,300.00 held, all fee.
    assert held_fee_part(Decimal("4300.00"), Decimal("5000.00")) == Decimal("4300.00")
    # 5,600.00 held: the whole fee and 600.00 of work.
    assert held_fee_part(Decimal("5600.00"), Decimal("5000.00")) == Decimal("5000.00")
    assert held_fee_part(Decimal("700.00"), Decimal(0)) == Decimal(0)


def test_a_release_bills_the_held_back_work_before_the_held_back_fee() -> None:
    # 5,600.00 held, 5,000.00 of it fee: a release of 1,000.00 is 600.00 work, 400.00 fee.
    assert split_release(Decimal("1000.00"), Decimal("5600.00"), Decimal("5000.00")) == (
        Decimal("600.00"),
        Decimal("400.00"),
    )
    assert split_release(Decimal("5000.00"), Decimal("5000.00"), Decimal("5000.00")) == (
        Decimal(0),
        Decimal("5000.00"),
    )
    both = release_lines(Decimal("600.00"), Decimal("400.00"), "2026-10")
    assert [(line.kind, line.amount, line.line_id) for line in both] == [
        ("release", Decimal("600.00"), "1"),
        ("retainer", Decimal("400.00"), "2"),
    ]
    only_fee = release_lines(Decimal(0), Decimal("5000.00"), "2026-10")
    assert [line.kind for line in only_fee] == ["retainer"]


def test_time_dated_after_the_last_day_is_found() -> None:
    entries = [
        (date(2026, 10, 20), Decimal("8")),
        (date(2026, 10, 23), Decimal("2.5")),
        (date(2026, 10, 21), Decimal("1")),
    ]
    assert work_after(entries, date(2026, 10, 20)) == (2, Decimal("3.5"), date(2026, 10, 21))
    assert work_after(entries, date(2026, 10, 31)) == (0, Decimal(0), None)
