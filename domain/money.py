"""Exact money arithmetic.

Every amount is a ``Decimal`` in a currency's minor units. Rounding is stated once, here:
half-up to the currency's minor unit, applied per invoice line and per tax line; totals are
sums of rounded lines and are never rounded again.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

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

#: The most digits an amount may have at its currency's scale. Fifteen keeps every amount,
#: and the sum or product of a few of them, exact in ``Decimal``'s default 28-digit context
#: (beyond it rounding to the minor unit fails outright) and in a binary float (the
#: ``ContractValue`` search attribute).
MAX_DIGITS = 15


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


def max_integer_digits(currency: str) -> int:
    """The most digits before the decimal point an amount of ``currency`` may have: 13 for a
    currency with cents (up to 9,999,999,999,999.99), 15 for one without (JPY, KRW)."""
    return MAX_DIGITS - minor_units(currency)


def integer_digits(amount: Decimal) -> int:
    """How many digits ``amount`` has before its decimal point (0 for an amount below 1)."""
    if not amount.is_finite():
        raise MoneyError(f"{amount} is not a finite amount")
    return max(amount.adjusted() + 1, 0) if amount else 0


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

    Raises:
        MoneyError: It needs rounding, or has more digits before the decimal point than
            ``max_integer_digits`` allows (so large that no arithmetic on it is exact).
    """
    limit = max_integer_digits(currency)
    if integer_digits(amount) > limit:
        raise MoneyError(
            f"is too large: {currency} amounts have at most {limit} digits before the decimal point"
        )
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


def _within_limit(value: Any) -> Any:
    # Before the currency is known, refuse what no currency accepts: a larger number makes
    # every later step (rounding, sums, comparisons in a workflow) raise instead of answer.
    if isinstance(value, (Decimal, int)) and not isinstance(value, bool):
        amount = Decimal(value)
        if not amount.is_finite():
            raise ValueError("is not a finite amount")
        if integer_digits(amount) > MAX_DIGITS:
            raise ValueError(
                f"is too large: an amount has at most {MAX_DIGITS} digits before the decimal "
                "point (fewer in most currencies)"
            )
    return value


#: A money amount in input (a contract, an amendment, a payment): ``Money`` that refuses a
#: value with more than ``MAX_DIGITS`` digits before the decimal point. The limit of its
#: currency (``max_integer_digits``) is checked where the currency is known.
Amount = Annotated[Money, AfterValidator(_within_limit)]

#: A quantity in input (hours), bounded like ``Amount``.
InputQuantity = Annotated[Quantity, AfterValidator(_within_limit)]


def money_sum(amounts: list[Decimal] | tuple[Decimal, ...], currency: str) -> Decimal:
    """Sum already-rounded amounts at the currency's scale."""
    total = sum(amounts, ZERO)
    return round_money(total, currency)
