"""Exact money arithmetic.

Every amount is a ``Decimal`` in a currency's minor units. Rounding is stated once, here:
half-up to the currency's minor unit, applied per invoice line and per tax line; totals are
sums of rounded lines and are never rounded again.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

#: ISO 4217 minor units of the currencies c2c bills in.
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

ROUNDING = ROUND_HALF_UP
ZERO = Decimal(0)


class MoneyError(ValueError):
    """An amount or currency that c2c cannot bill in."""


def minor_units(currency: str) -> int:
    """Return the number of decimal places of ``currency``.

    Raises:
        MoneyError: the currency is not one c2c bills in.
    """
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise MoneyError(
            f"unsupported currency {currency!r}; supported: {', '.join(sorted(MINOR_UNITS))}"
        ) from None


def quantum(currency: str) -> Decimal:
    """The smallest amount of ``currency`` (``Decimal('0.01')``, ``Decimal('1')`` for JPY)."""
    return Decimal(1).scaleb(-minor_units(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round ``amount`` half-up to the minor unit of ``currency``."""
    return amount.quantize(quantum(currency), rounding=ROUNDING)


def check_minor_units(amount: Decimal, currency: str) -> Decimal:
    """Return ``amount`` at the currency's scale, refusing one that would need rounding.

    Amounts that come from contracts and systems must already be exact; silently rounding a
    rate or a payment would hide a data error.
    """
    rounded = round_money(amount, currency)
    if rounded != amount:
        places = minor_units(currency)
        raise MoneyError(f"{amount} has more decimal places than {currency} allows ({places})")
    return rounded


def _parse_decimal(value: Any) -> Any:
    # Floats are refused: a binary float cannot carry an exact amount, and accepting one
    # would let 0.1 + 0.2 style errors into invoices.
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


#: A money amount: parsed from a decimal string (or integer), serialised as a string.
Money = Annotated[
    Decimal,
    BeforeValidator(_parse_decimal),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
]

#: Hours and other exact quantities use the same wire format as money.
Quantity = Money


def money_sum(amounts: list[Decimal] | tuple[Decimal, ...], currency: str) -> Decimal:
    """Sum already-rounded amounts at the currency's scale."""
    total = sum(amounts, ZERO)
    return round_money(total, currency)
