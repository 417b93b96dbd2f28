"""The sandbox's own money, as the systems it stands in for keep it: ISO 4217 minor units,
half-up rounding, amounts as decimal strings on the wire, and months named ``YYYY-MM``.

The sandbox shares no arithmetic with c2c's ``domain``: where both compute, they must be able
to disagree, or the tests that compare them prove nothing.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

#: ISO 4217 minor units of the currencies the sandbox's systems keep books in.
MINOR_UNITS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "SGD": 2,
    "INR": 2,
    "JPY": 0,
    "KRW": 0,
}

#: The most digits an amount may have at its currency's scale.
MAX_DIGITS = 15

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class MoneyError(ValueError):
    """An amount or currency the systems cannot book."""


class BillingModel(StrEnum):
    """How a contract in the ERP is billed."""

    TIME_AND_MATERIALS = "time_and_materials"
    FIXED_FEE = "fixed_fee"
    RETAINER = "retainer"


def minor_units(currency: str) -> int:
    """The decimal places of ``currency``.

    Raises:
        MoneyError: The currency is not one the systems keep.
    """
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise MoneyError(
            f"unsupported currency {currency!r}; supported: {', '.join(sorted(MINOR_UNITS))}"
        ) from None


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up to the minor unit of ``currency``."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def money_sum(amounts: list[Decimal] | tuple[Decimal, ...], currency: str) -> Decimal:
    """The sum of already-rounded amounts, at the currency's scale."""
    return round_money(sum(amounts, Decimal(0)), currency)


def check_minor_units(amount: Decimal, currency: str) -> Decimal:
    """``amount`` at the currency's scale, refusing one that would need rounding.

    Raises:
        MoneyError: It needs rounding, or has more digits before the decimal point than the
            currency allows.
    """
    limit = MAX_DIGITS - minor_units(currency)
    if not amount.is_finite():
        raise MoneyError(f"{amount} is not a finite amount")
    digits = max(amount.adjusted() + 1, 0) if amount else 0
    if digits > limit:
        raise MoneyError(
            f"is too large: {currency} amounts have at most {limit} digits before the decimal point"
        )
    rounded = round_money(amount, currency)
    if rounded != amount:
        places = minor_units(currency)
        raise MoneyError(f"{amount} has more decimal places than {currency} allows ({places})")
    return rounded


def check_month(text: str) -> str:
    """``text`` if it names a month as ``YYYY-MM``.

    Raises:
        ValueError: It does not, naming the expected form.
    """
    if not _MONTH.match(text):
        raise ValueError(f"period must be YYYY-MM (e.g. 2026-10), got {text!r}")
    return text


def _parse_decimal(value: Any) -> Any:
    # A binary float cannot carry an exact amount: refused, as the vendors' APIs do.
    if isinstance(value, float):
        raise ValueError('must be a decimal string such as "1250.00", not a float')
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
        if not parsed.is_finite():
            raise ValueError(f"{value!r} is not a finite amount")
        return parsed
    return value


#: An amount: parsed from a decimal string (or integer), written as a string.
Money = Annotated[
    Decimal,
    BeforeValidator(_parse_decimal),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
]

#: Hours and other exact quantities, in the same wire format.
Quantity = Money
