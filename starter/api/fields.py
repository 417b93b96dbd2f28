"""Validation problems as people read them: a dotted field path and what is wrong with it.

The API answers them in its ``422`` bodies and the CLI prints them, so both name a field the
same way (``data.customer.country``, ``rate_card.0.hourly_rate``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

#: Locations FastAPI puts in front of a field's path; a client knows where it sent the field.
_REQUEST_PARTS = frozenset({"body", "query", "path", "header", "cookie"})
#: Prefixes pydantic adds to messages of errors raised by validators.
_MESSAGE_PREFIXES = ("Value error, ", "Assertion failed, ")


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field.

    Attributes:
        field: Dotted path of the field (list items by index); ``None`` for the whole input.
        message: What is wrong, in words.
    """

    field: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def as_dict(self) -> dict[str, str | None]:
        """The problem as it appears in an API error body."""
        return {"field": self.field, "message": self.message}


def field_path(loc: Sequence[str | int], prefix: Sequence[str | int] = ()) -> str | None:
    """The dotted path of a pydantic location, without FastAPI's ``body``/``query`` part."""
    parts = [*prefix, *loc]
    if parts and parts[0] in _REQUEST_PARTS:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or None


def _message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    for noise in _MESSAGE_PREFIXES:
        message = message.removeprefix(noise)
    return message


def problems_from(
    errors: Iterable[Mapping[str, Any]], prefix: Sequence[str | int] = ()
) -> list[FieldProblem]:
    """Problems from pydantic's error dicts, with ``prefix`` put before every path."""
    return [FieldProblem(field_path(e.get("loc", ()), prefix), _message(e)) for e in errors]


def problems(exc: ValidationError, prefix: Sequence[str | int] = ()) -> list[FieldProblem]:
    """The problems of a pydantic ``ValidationError``."""
    return problems_from(exc.errors(include_url=False), prefix)
