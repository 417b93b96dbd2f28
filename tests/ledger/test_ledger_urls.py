"""Ledger URLs and engines: PostgreSQL's driver, SQLite's folder, WAL mode and connections."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import event

from ledger import Ledger, get_ledger, normalise_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://postgres@127.0.0.1:5432/test",
            "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        ),
        ("postgres://u:p%40ss@db/c2c", "postgresql+psycopg://u:p%40ss@db/c2c"),
        ("postgresql+psycopg://u@db/c2c", "postgresql+psycopg://u@db/c2c"),
        ("postgresql+psycopg2://u@db/c2c", "postgresql+psycopg2://u@db/c2c"),
        ("sqlite:///.c2c/ledger.db", "sqlite:///.c2c/ledger.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_bare_postgres_urls_get_the_psycopg_driver(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


def test_normalise_url_keeps_the_query() -> None:
    url = normalise_url("postgresql://u@db/c2c?options=-csearch_path%3Dx&sslmode=require")
    assert url.startswith("postgresql+psycopg://u@db/c2c?")
    assert "sslmode=require" in url
    assert "options=-csearch_path%3Dx" in url


def test_create_all_makes_the_sqlite_folder_and_can_run_twice(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    store = Ledger(f"sqlite:///{path}")
    store.create_all()
    store.create_all()
    store.dispose()
    assert path.is_file()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0
    store.dispose()


def test_sqlite_keeps_a_connection_per_thread_instead_of_reopening_them(tmp_path: Path) -> None:
    """Past SQLAlchemy's default five, each burst used to open, set up and close connections."""
    store = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    opened: list[object] = []
    event.listen(store.engine, "connect", lambda *_: opened.append(None))
    threads = 12
    together = threading.Barrier(threads)

    def read(_: int) -> None:
        with store.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
            together.wait()  # every thread holds a connection at once

    for _ in range(3):
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(read, range(threads)))
    # One connection per thread, opened once: later bursts reuse them.
    assert len(opened) == threads
    store.dispose()


def test_in_memory_sqlite_is_one_database_for_every_connection() -> None:
    store = Ledger("sqlite://")
    store.create_all()
    store.record_xref("K-1", "erp", "customer", "C-1")
    assert store.find_contract_by_xref("erp", "customer", "C-1") == "K-1"
    store.dispose()


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="sqlite or postgresql"):
        Ledger("mysql://u@db/c2c")


def test_get_ledger_is_one_ledger_per_url_with_its_tables(tmp_path: Path) -> None:
    first = get_ledger(f"sqlite:///{tmp_path / 'one.db'}")
    assert get_ledger(f"sqlite:///{tmp_path / 'one.db'}") is first
    assert get_ledger(f"sqlite:///{tmp_path / 'two.db'}") is not first
    assert first.list_contracts() == []
