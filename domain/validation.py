"""Cross-field validation that still names the exact field at fault."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from domain.money import MoneyError, check_minor_units

Loc = tuple[str | int, ...]


class FieldErrors:
    """Collects ``(location, message)`` pairs and raises them as one ``ValidationError``."""

    def __init__(self, title: str) -> None:
        self._title = title
        self._errors: list[InitErrorDetails] = []

    def add(self, loc: Loc, message: str, value: Any = None, code: str = "invalid") -> None:
        self._errors.append(
            InitErrorDetails(
                type=PydanticCustomError(code, message),
                loc=loc,
                input=value,
            )
        )

    def money(self, loc: Loc, amount: Decimal | None, currency: str, *, positive: bool) -> None:
        """Check an amount's scale for ``currency`` and, if asked, that it is above zero."""
        if amount is None:
            return
        try:
            check_minor_units(amount, currency)
        except MoneyError as exc:
            self.add(loc, str(exc), str(amount), "money_scale")
            return
        if positive and amount <= 0:
            self.add(loc, "must be greater than zero", str(amount), "not_positive")
        elif amount < 0:
            self.add(loc, "must not be negative", str(amount), "negative")

    def raise_if_any(self) -> None:
        if self._errors:
            raise ValidationError.from_exception_data(self._title, self._errors)
