"""Request-body building blocks and the wire format of values, shared by every system."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from sandbox.errors import invalid
from sandbox.money import MINOR_UNITS, MoneyError, check_minor_units, round_money


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _supported_currency(value: str) -> str:
    if value not in MINOR_UNITS:
        raise ValueError(f"unsupported currency; supported: {', '.join(sorted(MINOR_UNITS))}")
    return value


#: A natural key chosen by the caller (``ACME-US``, ``C-1001``).
Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")]
#: A short free text.
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: A longer free text: a line description, the reason for a credit or an amendment.
LongText = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
#: ISO 3166-1 alpha-2.
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
#: An ISO 4217 code that c2c bills in.
Currency = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_supported_currency)
]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


def check_amount(
    amount: Decimal, currency: str, field: str, *, positive: bool = False, signed: bool = False
) -> Decimal:
    """``amount`` at the currency's scale; ``422`` naming ``field`` if it needs rounding or is
    negative (unless ``signed``), or is not above zero (when ``positive``)."""
    try:
        exact = check_minor_units(amount, currency)
    except MoneyError as exc:
        raise invalid("invalid_amount", str(exc), field) from None
    if positive and exact <= 0:
        raise invalid("invalid_amount", "must be greater than zero", field)
    if exact < 0 and not signed:
        raise invalid("invalid_amount", "must not be negative", field)
    return exact


def normalised(amount: Decimal, currency: str) -> str:
    """``amount`` at the currency's scale for a fingerprint (``"700"`` → ``"700.00"``); an
    amount that cannot be scaled is kept as sent (its request is refused anyway)."""
    try:
        return dec(round_money(amount, currency))
    except (ArithmeticError, MoneyError):
        return dec(amount)


def check_unique(values: Iterable[str], field: str, key: str) -> None:
    """``422 duplicate_key`` naming ``{field}.{i}.{key}`` if a value of a list repeats."""
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise invalid("duplicate_key", f"{key} {value!r} appears twice", f"{field}.{i}.{key}")
        seen.add(value)


class DocumentLine(Protocol):
    """A line of an invoice or credit note."""

    line_id: str
    amount: Decimal
    tax_amount: Decimal


def check_lines(lines: Sequence[DocumentLine], currency: str) -> None:
    """A document's lines: unique ids, amounts and taxes at the currency's minor units."""
    check_unique([line.line_id for line in lines], "lines", "line_id")
    for i, line in enumerate(lines):
        check_amount(line.amount, currency, f"lines.{i}.amount")
        check_amount(line.tax_amount, currency, f"lines.{i}.tax_amount")


def check_sums(
    lines: Sequence[DocumentLine],
    subtotal: Decimal,
    tax: Decimal,
    total: Decimal,
    *,
    line_taxes: bool = False,
) -> None:
    """The lines add up to the subtotal (and, with ``line_taxes``, their taxes to the tax),
    and subtotal + tax is the total."""
    lines_sum = sum((line.amount for line in lines), Decimal(0))
    if lines_sum != subtotal:
        raise invalid(
            "lines_do_not_add_up",
            f"the lines add up to {dec(lines_sum)}, not to the subtotal {dec(subtotal)}",
            "subtotal",
        )
    tax_sum = sum((line.tax_amount for line in lines), Decimal(0))
    if line_taxes and tax_sum != tax:
        raise invalid(
            "lines_do_not_add_up",
            f"the lines' tax adds up to {dec(tax_sum)}, not to the tax {dec(tax)}",
            "tax",
        )
    if subtotal + tax != total:
        raise invalid(
            "total_mismatch", f"subtotal + tax is {dec(subtotal + tax)}, not {dec(total)}", "total"
        )


def fingerprint(content: Any) -> str:
    """A hash of a record's defining content (JSON-able), to tell a repeat from a conflict.

    Records whose id the caller chooses (a credit note, a revenue entry) answer a repeat of
    the same request ``200`` and another request under the same id ``409``; amounts are
    normalised to the currency's scale before hashing, so ``"700"`` repeats ``"700.00"``.
    """
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def dec(value: Decimal) -> str:
    """A decimal on the wire: ``"1250.00"``, never an exponent."""
    return format(value, "f")


def opt_dec(value: Decimal | None) -> str | None:
    return None if value is None else dec(value)


def day(value: date) -> str:
    return value.isoformat()


def opt_day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def timestamp(value: datetime) -> str:
    """ISO 8601 UTC with a ``Z``."""
    return value.isoformat().replace("+00:00", "Z")


def opt_timestamp(value: datetime | None) -> str | None:
    return None if value is None else timestamp(value)
