"""Money: minor units per currency, half-up rounding, and amounts refused rather than rounded."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from domain.money import (
    Amount,
    MoneyError,
    check_minor_units,
    max_integer_digits,
    minor_units,
    quantum,
    round_money,
)


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


@pytest.mark.parametrize(
    ("currency", "largest", "too_large"),
    [
        ("USD", "9999999999999.99", "10000000000000.00"),
        ("EUR", "9999999999999", "1e13"),
        ("JPY", "999999999999999", "1000000000000000"),
        ("KRW", "999999999999999", "1e27"),
    ],
)
def test_the_largest_amount_is_set_per_currency(
    currency: str, largest: str, too_large: str
) -> None:
    assert max_integer_digits(currency) == 15 - minor_units(currency)
    assert check_minor_units(Decimal(largest), currency) == Decimal(largest)
    with pytest.raises(MoneyError, match=f"{currency} amounts have at most"):
        check_minor_units(Decimal(too_large), currency)


@given(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from(["USD", "JPY"]),
)
def test_checking_an_amount_never_raises_a_decimal_signal(amount: Decimal, currency: str) -> None:
    """Any finite amount is either accepted or refused with a ``MoneyError``: never
    ``decimal.InvalidOperation`` from rounding a number too large for the context."""
    with contextlib.suppress(MoneyError):
        check_minor_units(amount, currency)


@pytest.mark.parametrize("value", ["1e27", "1" * 28, "1e400", "1" + "0" * 400, "-1e30"])
def test_an_input_amount_beyond_every_currency_is_refused_by_its_type(value: object) -> None:
    with pytest.raises(ValidationError, match="is too large"):
        TypeAdapter(Amount).validate_python(value)
    assert TypeAdapter(Amount).validate_python("999999999999999.00") == Decimal("999999999999999")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (1250, "must be a decimal string"),
        (12.5, "not a float"),
        ("1.2e3", "digits and a decimal point only"),
        (" 12.50", "digits and a decimal point only"),
        ("012.50", "digits and a decimal point only"),
        ("NaN", "not a finite amount"),
        ("twelve", "is not a decimal number"),
    ],
)
def test_an_input_amount_is_a_plain_decimal_string(value: object, problem: str) -> None:
    """What the schema's pattern says, the server reads: digits and a point, nothing else."""
    with pytest.raises(ValidationError, match=problem):
        TypeAdapter(Amount).validate_python(value)
    for good in ("0.01", "1250", "1250.5", "999999999999999.99", "-3.00"):
        assert TypeAdapter(Amount).validate_python(good) == Decimal(good)
