"""What every part of the ledger shares: the engine, its tables and a transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Executable
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from ledger.engine import make_engine
from ledger.models import LedgerTable
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

    def create_all(self) -> None:
        """Create the ledger's tables and indexes that do not exist yet."""
        try:
            LedgerTable.metadata.create_all(self.engine)
        except DBAPIError:
            # Another process (worker and API start together) created them between our
            # check and our CREATE; checking again now finds them. A real fault raises again.
            LedgerTable.metadata.create_all(self.engine)

    def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._session() as session, session.begin():
            yield session


def count_returned(session: Session, stmt: Executable) -> int:
    """How many rows a ``… RETURNING`` statement wrote.

    Not ``rowcount``: psycopg reports -1 once SQLAlchemy adds its own ``RETURNING`` for
    primary keys. Rows skipped by ``ON CONFLICT DO NOTHING`` return nothing.
    """
    return len(session.connection().execute(stmt).all())
