"""Billing periods: ``YYYY-MM`` parsed with their first and last days, malformed ones refused."""

from __future__ import annotations

from datetime import date

import pytest

from domain.periods import Period


def test_parse_and_bounds() -> None:
    p = Period.parse("2024-02")
    assert p.first_day == date(2024, 2, 1)
    assert p.last_day == date(2024, 2, 29)  # leap year
    assert str(p.next()) == "2024-03"
    assert str(Period.parse("2026-12").next()) == "2027-01"


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-1", "26-01", "2026/01", "", "2026-00", "0000-01"]
)
def test_malformed_periods_name_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        Period.parse(text)
