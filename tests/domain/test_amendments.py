"""Amendments: which are accepted, which refused with the field named, and what applying
one changes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from domain.amendments import AmendmentRejected, Terms, apply_amendment, check_amendment
from domain.models import Amendment, Milestone
from domain.periods import Period
from domain.pricing import RateRevision, TimeAccumulator

START = date(2026, 10, 1)


def terms(**overrides: Any) -> Terms:
    values: dict[str, Any] = {
        "currency": "USD",
        "start_date": START,
        "end_date": date(2027, 9, 30),
        "not_to_exceed": Decimal("250000.00"),
        "rates": [
            RateRevision(role="Senior", hourly_rate=Decimal("200.00"), effective_from=START),
            RateRevision(role="Analyst", hourly_rate=Decimal("120.00"), effective_from=START),
        ],
        "milestones": [
            Milestone(milestone_id="M1", name="Discovery", amount=Decimal("10000.00")),
            Milestone(milestone_id="M2", name="Design", amount=Decimal("20000.00")),
        ],
        "invoiced_periods": ["2026-10", "2026-11"],
        "invoiced_milestones": ["M1"],
    }
    return Terms.model_validate({**values, **overrides})


def amendment(**overrides: Any) -> Amendment:
    values: dict[str, Any] = {
        "amendment_id": "A-1",
        "effective_date": "2026-12-01",
        "reason": "change order 7",
    }
    return Amendment.model_validate({**values, **overrides})


def milestone(mid: str, amount: str = "5000.00") -> dict[str, str]:
    return {"milestone_id": mid, "name": f"milestone {mid}", "amount": amount}


def test_a_valid_amendment_is_accepted() -> None:
    a = amendment(
        rate_card=[{"role": "Senior", "hourly_rate": "220.00"}],
        add_milestones=[milestone("M3")],
        end_date="2027-12-31",
        not_to_exceed="300000.00",
    )
    assert check_amendment(terms(), a) is None
    # Nothing invoiced yet: any date in the term will do.
    assert check_amendment(terms(invoiced_periods=[]), amendment(effective_date=START)) is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"effective_date": "2026-11-20"},
            "effective_date 2026-11-20 falls in or before 2026-11, which is already invoiced; "
            "an amendment can take effect from 2026-12-01.",
        ),
        ({"effective_date": "2026-10-05"}, "effective_date 2026-10-05 falls in or before 2026-11"),
        ({"effective_date": "2027-10-01"}, "effective_date 2027-10-01 is after the contract end"),
        (
            {"effective_date": "2027-06-01", "end_date": "2027-05-31"},
            "effective_date 2027-06-01 is after the contract end date 2027-05-31.",
        ),
        ({"end_date": "2026-09-30"}, "end_date 2026-09-30 is before the contract start date"),
        ({"end_date": "2026-10-31"}, "end_date 2026-10-31 is before 2026-11, which is already"),
        (
            {"add_milestones": [milestone("M3", "0.00")]},
            "add_milestones[0].amount must be greater than zero, got 0.00.",
        ),
        (
            {"add_milestones": [milestone("M3", "-1.00")]},
            "add_milestones[0].amount must be greater than zero",
        ),
        (
            {"add_milestones": [milestone("M3", "10.005")]},
            "add_milestones[0].amount 10.005 has more decimal places than USD allows (2).",
        ),
        (
            {"add_milestones": [milestone("M2")]},
            "add_milestones[0].milestone_id 'M2' is already used by the contract;",
        ),
        (
            {"add_milestones": [milestone("M1")]},
            "add_milestones[0].milestone_id 'M1' was already invoiced.",
        ),
        (
            {"add_milestones": [milestone("M3"), milestone("M3")]},
            "add_milestones[1].milestone_id 'M3' appears twice in the amendment.",
        ),
        (
            {"rate_card": [{"role": "Senior", "hourly_rate": "0"}]},
            "rate_card[0].hourly_rate must be greater than zero, got 0.",
        ),
        (
            {"rate_card": [{"role": "Senior", "hourly_rate": "200.001"}]},
            "rate_card[0].hourly_rate 200.001 has more decimal places than USD allows (2).",
        ),
        (
            {
                "rate_card": [
                    {"role": "Senior", "hourly_rate": "210.00"},
                    {"role": "Senior", "hourly_rate": "220.00"},
                ]
            },
            "rate_card[1].role 'Senior' appears twice in the amendment's rate card.",
        ),
        ({"not_to_exceed": "0"}, "not_to_exceed must be greater than zero, got 0."),
        ({"not_to_exceed": "1.001"}, "not_to_exceed 1.001 has more decimal places"),
    ],
)
def test_an_invalid_amendment_is_refused_with_the_field_named(
    overrides: dict[str, Any], reason: str
) -> None:
    result = check_amendment(terms(), amendment(**overrides))
    assert result is not None
    assert result.startswith(reason)
    with pytest.raises(AmendmentRejected, match="amendment A-1 rejected") as exc:
        apply_amendment(terms(), amendment(**overrides))
    assert exc.value.reason == result


def test_before_the_start_date() -> None:
    reason = check_amendment(terms(invoiced_periods=[]), amendment(effective_date="2026-09-30"))
    assert reason == "effective_date 2026-09-30 is before the contract start date 2026-10-01."


def test_the_end_date_may_fall_in_the_latest_invoiced_period() -> None:
    # The term may end inside the last invoiced month (an amendment that only shortens the
    # term takes effect on its last day); it may not end before that month.
    t = terms(invoiced_periods=["2026-10"])
    assert check_amendment(t, amendment(effective_date="2026-11-15", end_date="2026-11-15")) is None
    assert check_amendment(t, amendment(effective_date="2026-11-15", end_date="2026-09-30"))


def test_jpy_minor_units() -> None:
    t = terms(currency="JPY", not_to_exceed=Decimal("30000000"), milestones=[], rates=[])
    assert check_amendment(t, amendment(add_milestones=[milestone("M9", "500000")])) is None
    reason = check_amendment(t, amendment(add_milestones=[milestone("M9", "500000.50")]))
    assert reason == (
        "add_milestones[0].amount 500000.50 has more decimal places than JPY allows (0)."
    )


def test_applying_adds_revisions_milestones_and_replaces_end_and_cap() -> None:
    before = terms()
    snapshot = before.model_dump()
    after = apply_amendment(
        before,
        amendment(
            rate_card=[
                {"role": "Senior", "hourly_rate": "220.00"},
                {"role": "Partner", "hourly_rate": "400.00"},
            ],
            add_milestones=[milestone("M3")],
            end_date="2027-12-31",
            not_to_exceed="300000.00",
        ),
    )
    assert before.model_dump() == snapshot  # pure: the old terms are untouched
    assert after.rates[2:] == [
        RateRevision(
            role="Senior", hourly_rate=Decimal("220.00"), effective_from=date(2026, 12, 1)
        ),
        RateRevision(
            role="Partner", hourly_rate=Decimal("400.00"), effective_from=date(2026, 12, 1)
        ),
    ]
    assert [m.milestone_id for m in after.milestones] == ["M1", "M2", "M3"]
    assert (after.end_date, after.not_to_exceed) == (date(2027, 12, 31), Decimal("300000.00"))
    assert after.latest_invoiced_period == Period(2026, 11)

    # Work before the effective date keeps the old rate.
    acc = TimeAccumulator(after.rates, "USD")
    acc.add("Senior", date(2026, 11, 30), Decimal("1"))
    acc.add("Senior", date(2026, 12, 1), Decimal("1"))
    assert sorted(line.amount for line in acc.lines()) == [Decimal("200.00"), Decimal("220.00")]


def test_an_amendment_without_end_or_cap_keeps_them() -> None:
    after = apply_amendment(terms(), amendment(add_milestones=[milestone("M3")]))
    assert (after.end_date, after.not_to_exceed) == (date(2027, 9, 30), Decimal("250000.00"))
    assert after.rates == terms().rates


def test_terms_round_trip_through_json() -> None:
    t = terms()
    assert Terms.model_validate_json(t.model_dump_json()) == t
    assert t.model_dump(mode="json")["not_to_exceed"] == "250000.00"


@pytest.mark.parametrize(
    "change",
    [
        {"rate_card": [{"role": "Senior", "hourly_rate": "99999999999999.00"}]},
        {"not_to_exceed": "999999999999999"},
        {"add_milestones": [milestone("M9", "10000000000000.00")]},
    ],
)
def test_an_amount_too_large_for_the_currency_is_rejected_with_a_reason(
    change: dict[str, Any],
) -> None:
    reason = check_amendment(terms(), amendment(**change))
    assert reason is not None
    assert "too large: USD amounts have at most 13 digits" in reason
    assert "InvalidOperation" not in reason


def test_a_milestone_not_yet_invoiced_changes_and_another_goes() -> None:
    a = amendment(
        change_milestones=[{"milestone_id": "M2", "amount": "25000.00", "due_date": "2027-03-31"}],
        add_milestones=[milestone("M3")],
    )
    after = apply_amendment(terms(), a)
    assert [(m.milestone_id, m.name, m.amount, m.due_date) for m in after.milestones] == [
        ("M1", "Discovery", Decimal("10000.00"), None),
        ("M2", "Design", Decimal("25000.00"), date(2027, 3, 31)),
        ("M3", "milestone M3", Decimal("5000.00"), None),
    ]
    gone = apply_amendment(after, amendment(amendment_id="A-2", remove_milestones=["M3"]))
    assert [m.milestone_id for m in gone.milestones] == ["M1", "M2"]
    assert gone.removed_milestones == ["M3"]
    # The terms given are left as they were.
    assert [m.amount for m in terms().milestones] == [Decimal("10000.00"), Decimal("20000.00")]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"change_milestones": [{"milestone_id": "M1", "amount": "1.00"}]},
            "change_milestones[0].milestone_id 'M1' was already invoiced",
        ),
        ({"remove_milestones": ["M1"]}, "remove_milestones[0] 'M1' was already invoiced"),
        (
            {"change_milestones": [{"milestone_id": "M9", "name": "New"}]},
            "change_milestones[0].milestone_id 'M9' is not a milestone of the contract",
        ),
        (
            {
                "change_milestones": [{"milestone_id": "M2", "name": "New"}],
                "remove_milestones": ["M2"],
            },
            "remove_milestones[0] 'M2' is changed or removed twice",
        ),
        (
            {"change_milestones": [{"milestone_id": "M2", "amount": "0.001"}]},
            "change_milestones[0].amount",
        ),
        ({"add_milestones": [milestone("M2")]}, "use change_milestones"),
        ({"add_milestones": [milestone("M7")]}, "was removed by an earlier amendment"),
    ],
)
def test_milestone_changes_are_refused_with_the_field(changes: dict[str, Any], reason: str) -> None:
    problem = check_amendment(terms(removed_milestones=["M7"]), amendment(**changes))
    assert problem is not None and reason in problem


def test_the_last_milestones_are_not_removed() -> None:
    problem = check_amendment(
        terms(invoiced_milestones=[]), amendment(remove_milestones=["M1", "M2"])
    )
    assert problem is not None and "without milestones" in problem


def test_a_milestone_change_must_change_something() -> None:
    with pytest.raises(ValueError, match="a name, an amount or a due_date"):
        amendment(change_milestones=[{"milestone_id": "M2"}])
