from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import MoneyError, check_minor_units, minor_units, quantum, round_money


def test_minor_units_of_the_billing_currencies() -> None:
    assert minor_units("USD") == 2
    assert minor_units("EUR") == 2
    assert minor_units("GBP") == 2
    assert minor_units("JPY") == 0
    assert quantum("JPY") == Decimal(1)
    assert quantum("EUR") == Decimal("0.01")


def test_unknown_currency_is_refused_with_the_supported_list() -> None:
    with pytest.raises(MoneyError, match=r"unsupported currency 'XXX'; supported: .*USD"):
        minor_units("XXX")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.005", "USD", "0.01"),  # half-up, not banker's rounding
        ("0.015", "EUR", "0.02"),
        ("0.025", "GBP", "0.03"),
        ("2.4999", "USD", "2.50"),
        ("100.5", "JPY", "101"),
        ("99.49", "JPY", "99"),
        ("-0.005", "USD", "-0.01"),
    ],
)
def test_rounding_is_half_up_to_the_minor_unit(amount: str, currency: str, expected: str) -> None:
    assert round_money(Decimal(amount), currency) == Decimal(expected)
    assert str(round_money(Decimal(amount), currency)) == expected


def test_amounts_that_would_need_rounding_are_refused() -> None:
    assert check_minor_units(Decimal("12.30"), "USD") == Decimal("12.30")
    with pytest.raises(MoneyError, match="more decimal places than JPY allows"):
        check_minor_units(Decimal("100.5"), "JPY")
    with pytest.raises(MoneyError, match=r"USD allows \(2\)"):
        check_minor_units(Decimal("1.001"), "USD")


@given(
    st.decimals(
        min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=6
    ),
    st.sampled_from(["USD", "EUR", "JPY", "GBP"]),
)
def test_rounding_is_idempotent_and_within_half_a_unit(amount: Decimal, currency: str) -> None:
    rounded = round_money(amount, currency)
    assert round_money(rounded, currency) == rounded
    assert abs(rounded - amount) <= quantum(currency) / 2
