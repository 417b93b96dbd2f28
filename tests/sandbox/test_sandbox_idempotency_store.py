"""The sandbox's kept answers: expiry by age, on an index, in an old database too."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlmodel import select

from sandbox.db import Database, utcnow
from sandbox.erp import ErpCreditNote
from sandbox.http import Captured
from sandbox.idempotency import EXPIRED_KEYS, KEY_TTL, IdempotencyRecord, IdempotencyStore

INDEX = "ix_sbx_idempotency_key_system_created"
ANSWER = Captured(status=201, headers=[(b"content-type", b"application/json")], body=b"{}")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'sandbox.db'}")
    database.create_tables()
    return database


def keys(db: Database) -> list[tuple[str, str]]:
    with db.read() as session:
        rows = session.exec(select(IdempotencyRecord).order_by(IdempotencyRecord.key)).all()
        return [(r.system, r.key) for r in rows]


def age(db: Database, system: str, key: str, by: timedelta) -> None:
    with db.write() as session:
        record = session.exec(
            select(IdempotencyRecord).where(
                IdempotencyRecord.system == system, IdempotencyRecord.key == key
            )
        ).one()
        record.created_at = record.created_at - by
        session.add(record)


def test_a_new_key_drops_its_systems_expired_keys_and_keeps_the_rest(db: Database) -> None:
    store = IdempotencyStore(db, expire_every=timedelta(0))
    for system, key in [("erp", "old"), ("erp", "recent"), ("psa", "old")]:
        store.save(system, key, "h", ANSWER)
    age(db, "erp", "old", KEY_TTL + timedelta(minutes=1))
    age(db, "psa", "old", KEY_TTL + timedelta(minutes=1))
    age(db, "erp", "recent", KEY_TTL - timedelta(minutes=1))

    store.save("erp", "new", "h", ANSWER)

    # Only the ERP's expired key went; the PSA's waits for the PSA's next write.
    assert keys(db) == [("erp", "new"), ("psa", "old"), ("erp", "recent")]
    assert store.find("erp", "recent") is not None


def test_expired_keys_are_dropped_at_most_once_an_interval_and_never_answer(
    db: Database,
) -> None:
    store = IdempotencyStore(db, expire_every=timedelta(hours=1))
    store.save("erp", "old", "h", ANSWER)
    age(db, "erp", "old", KEY_TTL + timedelta(minutes=1))

    # Within the interval the expired row stays, but answers nothing and can be used again.
    store.save("erp", "new", "h", ANSWER)
    assert keys(db) == [("erp", "new"), ("erp", "old")]
    assert store.find("erp", "old") is None
    store.save("erp", "old", "again", ANSWER)
    stored = store.find("erp", "old")
    assert stored is not None and stored.request_hash == "again"
    assert keys(db) == [("erp", "new"), ("erp", "old")]


def test_saving_a_key_again_replaces_its_answer(db: Database) -> None:
    store = IdempotencyStore(db)
    store.save("erp", "k", "first", ANSWER)
    store.save("erp", "k", "second", ANSWER)
    stored = store.find("erp", "k")
    assert stored is not None and stored.request_hash == "second"
    assert keys(db) == [("erp", "k")]


def test_expiry_is_found_on_the_index_not_by_scanning_the_systems_keys(db: Database) -> None:
    statement = EXPIRED_KEYS.compile(db.engine)
    with db.engine.connect() as connection:
        sql = f"EXPLAIN QUERY PLAN {statement}"
        plan = connection.exec_driver_sql(sql, ("erp", str(utcnow() - KEY_TTL))).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert INDEX in details and "created_at<" in details.replace(" ", ""), details


def test_a_database_from_before_the_index_gets_it_and_keeps_its_records(db: Database) -> None:
    IdempotencyStore(db).save("erp", "kept", "h", ANSWER)
    with db.engine.begin() as connection:
        connection.execute(text(f"DROP INDEX {INDEX}"))
    assert INDEX not in {
        i["name"] for i in inspect(db.engine).get_indexes(IdempotencyRecord.__tablename__)
    }

    assert db.create_tables() is False  # not new: nothing rebuilt

    assert INDEX in {
        i["name"] for i in inspect(db.engine).get_indexes(IdempotencyRecord.__tablename__)
    }
    assert keys(db) == [("erp", "kept")]


def test_a_database_from_before_a_nullable_column_gets_it_and_keeps_its_records(
    db: Database,
) -> None:
    """An older sandbox's tables lacking a column that may be empty are mended in place: a
    rebuild would hand out again the ids c2c's ledger holds for earlier records."""
    IdempotencyStore(db).save("erp", "kept", "h", ANSWER)
    # The ERP's credit notes gained the links to their documents.
    table = ErpCreditNote.__tablename__
    nullable = "einvoice_url"
    with db.engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE {table} DROP COLUMN {nullable}"))

    assert db.create_tables() is False  # not new: nothing rebuilt

    assert nullable in {c["name"] for c in inspect(db.engine).get_columns(table)}
    assert keys(db) == [("erp", "kept")]
