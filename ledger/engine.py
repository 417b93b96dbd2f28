"""Engines tuned for the ledger's two backends, and the insert that can ignore conflicts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from ledger.urls import SUPPORTED_BACKENDS, sqlite_file

#: How long a SQLite writer waits for another to finish before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: Connections kept open to a SQLite file: as many as the threads that may use the ledger at
#: once (anyio's default thread limit, which ``run_in_threadpool`` shares), so that a burst of
#: requests does not open, set up and close a connection each time past the default five.
SQLITE_POOL_SIZE = 40


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for a normalised ledger URL.

    SQLite gets WAL (readers do not block the writer), a busy timeout (writers from several
    threads or processes queue instead of failing) and a pool that keeps a connection per
    thread; its file's folder is created. A PostgreSQL engine pings pooled connections, so a
    restarted server costs no failed call.

    Raises:
        ValueError: The URL names a database other than SQLite or PostgreSQL.
    """
    backend = make_url(url).get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"the ledger runs on {' or '.join(SUPPORTED_BACKENDS)}, not {backend!r}")
    if backend != "sqlite":
        return create_engine(url, echo=echo, pool_pre_ping=True)

    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    }
    path = sqlite_file(url)
    if path is None:
        # One shared connection, or every thread would see its own empty in-memory database.
        kwargs["poolclass"] = StaticPool
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        kwargs["pool_size"] = SQLITE_POOL_SIZE
    # No pre-ping: a local file's connection cannot go stale the way a server's can, and the
    # extra round trip on every checkout was a measurable share of webhook ingress.
    engine = create_engine(url, echo=echo, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # The busy timeout first: switching to WAL itself may wait for another connection.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def upsert_insert(engine: Engine, table: Any) -> sqlite.Insert | postgresql.Insert:
    """An ``INSERT`` that supports ``ON CONFLICT`` on the engine's dialect.

    The database decides, atomically, whether a row already exists: a read-then-write from
    Python would let two concurrent writers both insert.
    """
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
