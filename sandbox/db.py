"""Persistence: one SQLite file, SQLModel tables in their own metadata, serialized writes.

The column types (``DecimalText``, ``UtcDateTime``) are the sandbox's own, as a vendor's
storage is its own: the ledger has its types in ``ledger.columns``, and neither imports the
other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import DateTime, String, TypeDecorator, delete, event, inspect
from sqlalchemy.engine import Connection, Dialect, Engine, Inspector, make_url
from sqlalchemy.orm import registry
from sqlalchemy.pool import StaticPool
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from c2c.logs import get_logger
from c2c.schema import create_missing
from sandbox.errors import invalid, not_found
from sandbox.http import note_write

log = get_logger(__name__)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as text, so no float ever touches an amount."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC (SQLite keeps no zone) and read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class SandboxModel(SQLModel, registry=registry()):
    """Base of the sandbox tables: their own metadata, apart from any other SQLModel tables."""


class Row(SandboxModel):
    """A table row with a surrogate key that also orders rows by creation (and pages them)."""

    id: int | None = Field(default=None, primary_key=True)


RowT = TypeVar("RowT", bound=Row)


class IdSequence(SandboxModel, table=True):
    """Counters behind the ids and invoice numbers that the systems assign."""

    __tablename__ = "sbx_sequence"

    name: str = Field(primary_key=True)
    value: int = 0


def next_number(session: Session, name: str) -> int:
    """The next value of sequence ``name`` (1, 2, ...); call inside ``Database.write``."""
    row = session.get(IdSequence, name) or IdSequence(name=name)
    row.value += 1
    session.add(row)
    return row.value


def next_id(session: Session, prefix: str) -> str:
    """A new record id such as ``CUST-000001``."""
    return f"{prefix}-{next_number(session, prefix):06d}"


def next_ids(session: Session, prefix: str, count: int) -> list[str]:
    """``count`` new record ids in one step of the sequence: the ids ``next_id`` would give."""
    row = session.get(IdSequence, prefix) or IdSequence(name=prefix)
    first = row.value + 1
    row.value += count
    session.add(row)
    return [f"{prefix}-{n:06d}" for n in range(first, first + count)]


def find(session: Session, model: type[RowT], column: Any, value: Any) -> RowT | None:
    """The row of ``model`` whose ``column`` equals ``value``."""
    return session.exec(select(model).where(col(column) == value)).first()


def get_or_404(session: Session, model: type[RowT], column: Any, value: str, kind: str) -> RowT:
    """The row of ``model`` whose ``column`` equals ``value``, or a ``404``."""
    row = find(session, model, column, value)
    if row is None:
        raise not_found(kind, value)
    return row


def get_referenced(
    session: Session, model: type[RowT], column: Any, value: str, *, field: str, kind: str
) -> RowT:
    """The row that a request body refers to, or a ``422 unknown_<kind>`` naming ``field``."""
    row = find(session, model, column, value)
    if row is None:
        raise invalid(f"unknown_{kind}", f"{kind} {value!r} does not exist", field)
    return row


def _is_memory(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, or ``None`` for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or _is_memory(url) or not parsed.database:
        return None
    return Path(parsed.database)


class Database:
    """The engine and the two kinds of session: reads, and serialized write transactions.

    SQLite allows one writer at a time; a process-wide lock around every write transaction
    makes that explicit, so a read-check-write (a natural key, a batch freeze) is atomic.
    """

    def __init__(self, url: str) -> None:
        sqlite = make_url(url).get_backend_name() == "sqlite"
        memory = _is_memory(url)
        kwargs: dict[str, Any] = {}
        if sqlite:
            kwargs["connect_args"] = {"check_same_thread": False}
        if memory:
            # One shared connection, or every thread would see its own empty database.
            kwargs["poolclass"] = StaticPool
        elif sqlite:
            # Enough connections for every worker thread of the server: SQLite's are cheap, and
            # a request must not wait for a connection while another holds the write lock.
            kwargs.update(pool_size=10, max_overflow=40)
        self.engine: Engine = create_engine(url, **kwargs)
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas(wal=not memory))
        self._lock = threading.Lock()
        # A shared in-memory connection cannot run a read beside a write transaction.
        self._lock_reads = memory

    def create_tables(self) -> bool:
        """Create missing tables; return whether the database was new (or had to be rebuilt).

        A database left by an older sandbox whose tables lack a column, or disagree on whether
        one may be empty, is rebuilt empty: its records are stand-in data, and a table half
        in the old shape would answer every request that touches it with a ``500``.
        """
        inspector = inspect(self.engine)
        new = not inspector.has_table(IdSequence.__tablename__)
        if not new and _schema_changed(inspector):
            log.warning("sandbox tables are from an older version; rebuilding them empty")
            SandboxModel.metadata.drop_all(self.engine)
            new = True
        create_missing(SandboxModel.metadata, self.engine)
        return new

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading."""
        with self._read_lock(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self, *, counts_as_write: bool = True) -> Iterator[Session]:
        """A write transaction, committed on success and rolled back on an exception.

        Args:
            counts_as_write: Whether a change made here counts in the stats as a write of the
                current request (bookkeeping such as idempotency records does not).
        """
        with self._lock, _WriteSession(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
        if session.info.get(_CHANGED) and counts_as_write:
            note_write()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A plain connection for reading with prepared statements (no ORM objects)."""
        with self._read_lock(), self.engine.connect() as connection:
            yield connection

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction on a plain connection, serialized with every other write.

        For bookkeeping that does not count as a request's write (idempotency records).
        """
        with self._lock, self.engine.begin() as connection:
            yield connection

    def _read_lock(self) -> AbstractContextManager[object]:
        """The write lock where reads must wait for writes (a shared in-memory database)."""
        return self._lock if self._lock_reads else nullcontext()

    def dispose(self) -> None:
        self.engine.dispose()


_CHANGED = "sandbox_changed"


class _WriteSession(Session):
    """A write transaction's session; ``info[_CHANGED]`` says whether it flushed a change."""


@event.listens_for(_WriteSession, "after_flush")
def _flushed(session: Session, _: Any) -> None:
    session.info[_CHANGED] = True


def clear_tables(session: Session) -> None:
    """Delete every row of every sandbox table."""
    for table in reversed(SandboxModel.metadata.sorted_tables):
        session.execute(delete(table))


def _schema_changed(inspector: Inspector) -> bool:
    """Whether an existing sandbox table differs from its model in a way that adding the
    model's missing nullable columns (``create_missing``) does not mend: a column whose
    nullability changed, a missing column that may not be empty, or a column the model no
    longer has that may not be empty (an insert would fail on it).

    A sandbox upgraded beside a ledger and a Temporal that remember its records keeps them:
    rebuilt empty, it would hand out the ids of records c2c already holds for others.
    """
    for table in SandboxModel.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        found = {c["name"]: bool(c["nullable"]) for c in inspector.get_columns(table.name)}
        wanted = {c.name: bool(c.nullable) for c in table.columns}
        for name, nullable in wanted.items():
            if name in found and found[name] != nullable:
                return True
            if name not in found and not nullable:
                return True
        if any(not nullable for name, nullable in found.items() if name not in wanted):
            return True
    return False


def _sqlite_pragmas(*, wal: bool) -> Any:
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        cursor = dbapi_connection.cursor()
        if wal:
            # WAL lets reads run beside the single writer instead of waiting for it.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    return _on_connect


async def get_db(request: Request) -> Database:
    """FastAPI dependency: the app's database."""
    db: Database = request.app.state.db
    return db


#: A route parameter that receives the app's database.
Db = Annotated[Database, Depends(get_db)]
