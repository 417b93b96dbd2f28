"""Alembic's environment for the ledger: run by ``ledger.migrate`` on the connection it holds
(locked, in one transaction), never from an ``alembic.ini``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ledger.models import LedgerTable

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection) or context.is_offline_mode():
    raise RuntimeError("the ledger's migrations run through ledger.migrate: c2c ledger upgrade")

context.configure(
    connection=connection,
    target_metadata=LedgerTable.metadata,
    # SQLite alters a table by copying it: autogenerate writes ``batch_alter_table`` blocks,
    # which run as plain ALTERs on PostgreSQL.
    render_as_batch=True,
    compare_type=True,
    include_name=lambda name, kind, _parent: kind != "table" or str(name).startswith("ledger_"),
)
with context.begin_transaction():
    context.run_migrations()
