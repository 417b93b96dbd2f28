"""A fresh ledger per test, on SQLite and, where one is reachable, PostgreSQL.

PostgreSQL runs each test in a schema of its own (via ``search_path`` in the URL), dropped
afterwards, so parallel runs and other suites sharing the database never see its rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledger import Ledger, normalise_url

PG_URL_ENV = "C2C_TEST_DATABASE_URL"

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def at() -> Callable[[float], datetime]:
    """``at(minutes)``: that many minutes after a fixed start, so tests never read the clock."""

    def instant(minutes: float) -> datetime:
        return T0 + timedelta(minutes=minutes)

    return instant


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not os.environ.get(PG_URL_ENV), reason=f"{PG_URL_ENV} is not set"
            ),
        ),
    ]
)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database; the SQLite file's folder does not exist yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'ledger.db'}"
        return
    base = normalise_url(os.environ[PG_URL_ENV])
    schema = f"c2c_ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    """A ledger with its tables created."""
    store = Ledger(ledger_url)
    store.create_all()
    try:
        yield store
    finally:
        store.dispose()
