"""Lists: ``limit`` and ``cursor`` in, ``{"items": [...], "next": cursor | null}`` out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlmodel import Session, col, select

from sandbox.db import RowT
from sandbox.errors import invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page:
    """Which slice of a list to answer: at most ``limit`` rows after row id ``after``."""

    limit: int
    after: int


async def _page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query()] = None,
) -> Page:
    # The cursor is the id of the last row answered: stable while rows are added.
    if cursor is None or cursor == "":
        return Page(limit, 0)
    if not cursor.isdigit():
        raise invalid("invalid_cursor", "cursor must be a value from a previous 'next'", "cursor")
    return Page(limit, int(cursor))


#: A route parameter that receives the paging query parameters.
PageQuery = Annotated[Page, Depends(_page)]


def paginate(
    session: Session,
    model: type[RowT],
    page: Page,
    serialize: Callable[[RowT], dict[str, Any]],
    *where: Any,
) -> dict[str, Any]:
    """One page of the rows of ``model`` matching ``where``, in creation order."""
    statement = (
        select(model)
        .where(*where)
        .where(col(model.id) > page.after)
        .order_by(col(model.id))
        .limit(page.limit + 1)
    )
    rows = list(session.exec(statement).all())
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return {
        "items": [serialize(r) for r in rows],
        "next": str(rows[-1].id) if more and rows else None,
    }


def equal_to(*filters: tuple[Any, Any]) -> list[Any]:
    """``column == value`` conditions for the ``(column, value)`` pairs whose value was given."""
    return [col(column) == value for column, value in filters if value is not None]


def paginate_list(items: list[dict[str, Any]], page: Page) -> dict[str, Any]:
    """One page of a list kept inside a record (a project's milestones), in its own order."""
    # The cursor is how many items were answered before: stable while items are only appended.
    chunk = items[page.after : page.after + page.limit]
    end = page.after + len(chunk)
    return {"items": chunk, "next": str(end) if end < len(items) else None}
