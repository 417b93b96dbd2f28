"""What every part of the ledger shares: the engine, its tables and a transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Executable
from sqlmodel import Session

from ledger.engine import make_engine, upsert_insert
from ledger.models import LedgerTable, table_of
from ledger.urls import normalise_url


class LedgerBase:
    """The ledger's connection to its database.

    Args:
        url: A SQLAlchemy URL; ``postgresql://`` is given the psycopg driver.
        echo: Log every statement (debugging only).
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, echo=echo)
        #: The connection of this thread's open ``unit_of_work``, if any.
        self._unit = threading.local()
        self._inserts: dict[tuple[Any, ...], Executable] = {}

    def create_all(self, *, auto_upgrade: bool | None = None) -> None:
        """Make the database ready for this c2c's ledger (``ledger.migrate.prepare``): a new
        one is created at the head schema revision, an older one upgraded only when
        ``auto_upgrade`` (by default ``C2C_LEDGER_AUTO_UPGRADE``) is on.

        Raises:
            SchemaNotCurrent: The schema is older and is not to be upgraded here: run
                ``c2c ledger upgrade``. Nothing was changed.
            SchemaUnrecognised: The schema is not one this c2c can upgrade.
        """
        from ledger.migrate import prepare  # Alembic is loaded only when a ledger opens

        prepare(self.engine, auto_upgrade=auto_upgrade)

    def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def unit_of_work(self) -> Iterator[None]:
        """Make every write of this thread inside the block one transaction: all or none.

        An activity that records several facts of one effect (its audit entries, the read
        model, a billing fact, a cross-reference) commits once instead of once per write. A
        unit inside a unit joins the outer one.
        """
        if getattr(self._unit, "connection", None) is not None:
            yield
            return
        with self.engine.begin() as connection:
            self._unit.connection = connection
            try:
                yield
            finally:
                self._unit.connection = None

    def _insert_new(
        self, model: type[LedgerTable], key: Sequence[str], returning: Sequence[str] = ()
    ) -> Executable:
        """``INSERT … ON CONFLICT (key) DO NOTHING [RETURNING …]`` into the model's table, its
        values bound at execution (a dict, or a list of them for many rows).

        Built once per ledger: composing and compiling the statement with its values on
        every call cost several times SQLite's own work on each write of every step.
        """
        cache_key = (model, tuple(key), tuple(returning))
        stmt = self._inserts.get(cache_key)
        if stmt is None:
            core = table_of(model)
            insert = upsert_insert(self.engine, core).on_conflict_do_nothing(
                index_elements=list(key)
            )
            stmt = insert.returning(*(core.c[name] for name in returning)) if returning else insert
            self._inserts[cache_key] = stmt
        return stmt

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        connection: Connection | None = getattr(self._unit, "connection", None)
        if connection is not None:
            # A session of its own (a fresh identity map) inside the unit's transaction: its
            # commit leaves the unit's open; an error rolls the whole unit back.
            with Session(bind=connection, expire_on_commit=False) as session, session.begin():
                yield session
            return
        with self._session() as session, session.begin():
            yield session


def count_returned(
    session: Session,
    stmt: Executable,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
) -> int:
    """How many rows a ``… RETURNING`` statement wrote.

    Not ``rowcount``: psycopg reports -1 once SQLAlchemy adds its own ``RETURNING`` for
    primary keys. Rows skipped by ``ON CONFLICT DO NOTHING`` return nothing.
    """
    return len(session.connection().execute(stmt, params).all())
