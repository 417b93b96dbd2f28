"""Exact money arithmetic.

Every amount is a ``Decimal`` in a currency's minor units. Rounding is stated once, here:
half-up to the currency's minor unit, applied per invoice line and per tax line; totals are
sums of rounded lines and are never rounded again.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, PlainValidator, WithJsonSchema

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


#: An amount in input, as JSON carries it: digits, at most ``MAX_DIGITS`` of them before the
#: point and no leading zero, at most two after it (the most any currency has; the currency
#: may allow fewer), and above zero.
AMOUNT_PATTERN = r"^([1-9][0-9]{0,14}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9]))$"
#: A quantity in input (hours): digits as for an amount, zero allowed, any decimal places.
QUANTITY_PATTERN = r"^([1-9][0-9]{0,14}|0)(\.[0-9]+)?$"
#: What the server reads as a decimal string: the schema's patterns, with the sign and the
#: decimal places left to the checks that name the problem (``must be greater than zero``,
#: ``has more decimal places than USD allows``).
_DECIMAL_DIGITS = re.compile(r"-?([1-9][0-9]*|0)(\.[0-9]+)?")


def _input_decimal(value: Any) -> Decimal:
    # Input comes as JSON, where c2c writes amounts as decimal strings: a number (a float
    # cannot carry an exact amount), an exponent or spaces are a sender's error, and refusing
    # them here keeps the published schema and the server the same. A value larger than any
    # currency allows is refused before the currency is known: every later step (rounding,
    # sums, a workflow's comparisons) would raise instead of answer.
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{value[:40]!r} is not a decimal number") from None
    elif isinstance(value, float):
        raise ValueError('must be a decimal string such as "1250.00", not a float')
    else:
        raise ValueError('must be a decimal string such as "1250.00"')
    if not amount.is_finite():
        raise ValueError("is not a finite amount")
    if integer_digits(amount) > MAX_DIGITS:
        raise ValueError(
            f"is too large: an amount has at most {MAX_DIGITS} digits before the decimal "
            "point (fewer in most currencies)"
        )
    if isinstance(value, str) and not _DECIMAL_DIGITS.fullmatch(value):
        raise ValueError('must be written with digits and a decimal point only, such as "1250.00"')
    return amount


_AS_STRING = PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")

#: A money amount in input (a contract, an amendment, a payment, a credit): a decimal string
#: with at most ``MAX_DIGITS`` digits before the point. Its currency's own limits
#: (``max_integer_digits``, the minor units) and that it is above zero are checked by the
#: models, where the currency is known and the problem can be named.
Amount = Annotated[
    Decimal,
    PlainValidator(_input_decimal),
    _AS_STRING,
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["1250.00"]}),
]

#: A quantity in input (hours), bounded like ``Amount``.
InputQuantity = Annotated[
    Decimal,
    PlainValidator(_input_decimal),
    _AS_STRING,
    WithJsonSchema({"type": "string", "pattern": QUANTITY_PATTERN, "examples": ["40"]}),
]


def money_sum(amounts: list[Decimal] | tuple[Decimal, ...], currency: str) -> Decimal:
    """Sum already-rounded amounts at the currency's scale."""
    total = sum(amounts, ZERO)
    return round_money(total, currency)
