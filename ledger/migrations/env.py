"""Alembic's environment for the ledger: run by ``ledger.migrate`` on the connection it holds
(locked, in one transaction), never from an ``alembic.ini``."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.types import TypeDecorator

from ledger.models import LedgerTable

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection) or context.is_offline_mode():
    raise RuntimeError("the ledger's migrations run through ledger.migrate: c2c ledger upgrade")


def render_item(kind: str, item: Any, _context: Any) -> str | Literal[False]:
    """A revision names plain SQLAlchemy types (the model's ``UTCDateTime`` is written
    ``sa.DateTime(timezone=True)``, sqlmodel's ``AutoString`` ``sa.String()``), so it never
    depends on model code that may change after it."""
    if kind == "type" and isinstance(item, TypeDecorator):
        return f"sa.{item.impl_instance!r}"
    return False


context.configure(
    connection=connection,
    target_metadata=LedgerTable.metadata,
    # SQLite alters a table by copying it: autogenerate writes ``batch_alter_table`` blocks,
    # which run as plain ALTERs on PostgreSQL.
    render_as_batch=True,
    compare_type=True,
    render_item=render_item,
    include_name=lambda name, kind, _parent: kind != "table" or str(name).startswith("ledger_"),
)
with context.begin_transaction():
    context.run_migrations()
