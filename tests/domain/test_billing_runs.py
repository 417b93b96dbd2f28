"""Which period a scheduled billing run closes, from the time it was due in the entity's
time zone."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pydantic import ValidationError

from domain.billing_runs import BillingDay, first_working_day, period_to_close

pytestmark = pytest.mark.unit

FIRST = BillingDay()  # the first working day, at 06:00


def test_the_first_working_day_skips_the_weekend() -> None:
    assert first_working_day(2026, 11) == date(2026, 11, 2)  # the 1st is a Sunday
    assert first_working_day(
        2026,
        8,
    ) == date(2026, 8, 3)  # a Saturday
    assert first_working_day(2026, 12) == date(2026, 12, 1)  # a Tuesday


@pytest.mark.parametrize(
    ("due", "period"),
    [
        (datetime(2026, 11, 1, 6, 0), None),  # Sunday: not the day
        (datetime(2026, 11, 2, 6, 0), "2026-10"),  # Monday: the first working day
        (datetime(2026, 11, 3, 6, 0), None),  # already done on the 2nd
        (datetime(2026, 12, 1, 6, 0), "2026-11"),
        (datetime(2027, 1, 1, 6, 0), "2026-12"),  # across the year
    ],
)
def test_a_run_on_the_calendar_closes_the_month_before_on_the_billing_day_only(
    due: datetime, period: str | None
) -> None:
    found = period_to_close(due, FIRST)
    assert (str(found) if found else None) == period


def test_a_fixed_day_bills_on_that_day() -> None:
    rule = BillingDay(day=5, at="07:30")
    assert rule.days_of_month() == [5]
    assert str(period_to_close(datetime(2026, 12, 5, 7, 30), rule)) == "2026-11"


def test_a_run_triggered_by_hand_closes_the_month_before_whatever_the_day() -> None:
    assert str(period_to_close(datetime(2026, 11, 17, 14, 3), FIRST)) == "2026-10"
    # The 1st, but not at the schedule's hour: an operator's trigger.
    assert str(period_to_close(datetime(2026, 11, 1, 9, 0), FIRST)) == "2026-10"


@pytest.mark.parametrize(
    ("given", "field"),
    [({"day": 29}, "day"), ({"day": 0}, "day"), ({"at": "25:00"}, "at"), ({"at": "6am"}, "at")],
)
def test_an_impossible_billing_day_is_refused_naming_the_field(
    given: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        BillingDay.model_validate(given)
    assert caught.value.errors()[0]["loc"][0] == field
