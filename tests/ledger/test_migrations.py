"""The ledger's schema revisions: a ledger made by c2c 0.8.0, with contracts in flight, is
upgraded without losing a row; the head revision is the models; an older schema is refused.

On SQLite and, where ``C2C_TEST_DATABASE_URL`` is set, on PostgreSQL (a schema per test).
"""

from __future__ import annotations

import re
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from domain.names import Stage
from ledger import AuditEventIn, ContractRecordIn, Ledger
from ledger.migrate import (
    VERSION_TABLE,
    SchemaNotCurrent,
    SchemaUnrecognised,
    differences,
    head_revision,
    new_revision,
    schema_state,
    upgrade,
)
from ledger.migrations import release_0_8_0
from ledger.models import LedgerTable
from tests.ledger.ledger_0_8_0 import ROWS, T, ddl_0_8_0, make_0_8_0_ledger, snapshot


def test_rows_fill_every_table_and_column() -> None:
    for table in release_0_8_0.metadata.sorted_tables:
        rows = ROWS[table.name]
        generated = {column.name for column in table.primary_key.columns if column.name == "id"}
        for column in table.columns:
            if column.name in generated:
                continue
            assert any(row[column.name] is not None for row in rows), column
    assert set(ROWS) == set(release_0_8_0.metadata.tables)


def test_the_pinned_schema_is_the_one_c2c_0_8_0_created() -> None:
    """``release_0_8_0`` compiles to exactly the DDL 0.8.0's models compiled to."""
    for name, dialect in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())):
        compiled = []
        for table in release_0_8_0.metadata.sorted_tables:
            compiled.append(str(CreateTable(table).compile(dialect=dialect)))
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                compiled.append(str(CreateIndex(index).compile(dialect=dialect)))
        normalised = [re.sub(r"[ \t]+\n", "\n", stmt.strip()) for stmt in compiled]
        assert normalised == ddl_0_8_0(name), name


def test_a_new_ledger_is_created_at_the_head_revision_and_matches_the_models(
    ledger_url: str,
) -> None:
    """The head revision is the models: a model changed without a revision fails here."""
    store = Ledger(ledger_url)
    try:
        store.create_all()
        state = schema_state(store.engine)
        assert state.current == head_revision() and state.at_head
        with store.engine.connect() as connection:
            assert differences(connection, LedgerTable.metadata) == []
    finally:
        store.dispose()


def test_a_model_changed_without_a_revision_is_a_difference(ledger: Ledger) -> None:
    """The comparison above sees a column the revisions do not make."""
    changed = MetaData()
    for table in LedgerTable.metadata.sorted_tables:
        table.to_metadata(changed)
    extra = Column("not_in_any_revision", String, nullable=True)
    changed.tables["ledger_contract"].append_column(extra)
    with ledger.engine.connect() as connection:
        found = differences(connection, changed)
    assert "missing column ledger_contract.not_in_any_revision" in found


def test_a_0_8_0_ledger_with_contracts_in_flight_is_upgraded_without_losing_a_row(
    ledger_url: str,
) -> None:
    store = Ledger(ledger_url)
    try:
        make_0_8_0_ledger(store.engine)
        before = snapshot(store.engine)
        assert {name: len(rows) for name, rows in before.items()} == {
            name: len(rows) for name, rows in ROWS.items()
        }

        was, now = upgrade(store.engine)

        assert was.before_revisions and was.current is None
        assert now.at_head and now.current == head_revision()
        assert snapshot(store.engine) == before
        with store.engine.connect() as connection:
            assert differences(connection, LedgerTable.metadata) == []
        # The ledger reads what 0.8.0 wrote, and writes on.
        contract = store.get_contract("K-1")
        assert contract is not None and contract.contract_value == Decimal("120000.50")
        assert contract.approved_at == T
        assert [e.exception_id for e in store.list_exceptions(status="open")] == ["exc-K-2-bill"]
        invoiced = AuditEventIn(
            event_key="contract-K-1/invoiced",
            contract_id="K-1",
            workflow_id="contract-K-1",
            stage=Stage.ACTIVE,
            event="invoiced",
            at=T,
        )
        assert store.record_audit([invoiced]) == 1
        store.upsert_contract(ContractRecordIn(contract_id="K-3", stage=Stage.ACTIVE, updated_at=T))
        assert len(store.audit_trail("K-1")) == 2
        store.record_xref("K-3", "erp", "project", "P-3")
        assert upgrade(store.engine)[0].at_head  # again: nothing to do
    finally:
        store.dispose()


def test_an_older_schema_is_refused_at_start_and_left_as_it_was(ledger_url: str) -> None:
    store = Ledger(ledger_url)
    try:
        make_0_8_0_ledger(store.engine)
        before = snapshot(store.engine)
        with pytest.raises(SchemaNotCurrent) as refused:
            store.create_all(auto_upgrade=False)
        message = str(refused.value)
        assert "`c2c ledger upgrade`" in message and "C2C_LEDGER_AUTO_UPGRADE=true" in message
        assert "made before schema revisions" in message
        assert not inspect(store.engine).has_table(VERSION_TABLE)
        assert snapshot(store.engine) == before

        store.create_all(auto_upgrade=True)  # as C2C_LEDGER_AUTO_UPGRADE=true does
        assert schema_state(store.engine).at_head
        assert snapshot(store.engine) == before
    finally:
        store.dispose()


def test_an_older_revision_is_refused_with_the_one_it_is_at(ledger: Ledger) -> None:
    with ledger.engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'older'"))
    # Not a revision this c2c knows: refused even with auto-upgrade, nothing changed.
    with pytest.raises(SchemaUnrecognised, match="revision older, which this c2c does not"):
        ledger.create_all(auto_upgrade=True)
    with pytest.raises(SchemaUnrecognised):
        upgrade(ledger.engine)
    assert schema_state(ledger.engine).current == "older"


def test_a_ledger_whose_tables_are_not_0_8_0_is_not_stamped(ledger_url: str) -> None:
    store = Ledger(ledger_url)
    try:
        make_0_8_0_ledger(store.engine)
        with store.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE ledger_contract ADD COLUMN region VARCHAR")
            connection.exec_driver_sql("DROP INDEX ix_ledger_contract_stage")
        before = snapshot(store.engine)

        with pytest.raises(SchemaUnrecognised) as refused:
            upgrade(store.engine)

        message = str(refused.value)
        assert "not those of c2c 0.8.0" in message and "nothing was changed" in message
        assert "unexpected column ledger_contract.region" in message
        assert not inspect(store.engine).has_table(VERSION_TABLE)
        # What 0.8.0 would have added was not added either: the upgrade is all or nothing.
        indexes = {i["name"] for i in inspect(store.engine).get_indexes("ledger_contract")}
        assert "ix_ledger_contract_stage" not in indexes
        assert snapshot(store.engine) == before
    finally:
        store.dispose()


def test_processes_starting_together_create_the_ledger_once(ledger_url: str) -> None:
    """The worker and the API starting at once on an empty database: one creates it, the
    other finds it at the head revision."""
    stores = [Ledger(ledger_url) for _ in range(4)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def open_ledger(store: Ledger) -> None:
        start.wait()
        try:
            store.create_all()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_ledger, args=(store,)) for store in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with stores[0].engine.connect() as connection:
            versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
            assert [row[0] for row in versions] == [head_revision()]
    finally:
        for store in stores:
            store.dispose()


def test_the_next_revision_is_written_from_the_models(tmp_path: Path) -> None:
    """``python -m ledger.migrate revision MESSAGE``: with the models at the head, the next
    revision follows the head and changes nothing."""
    written = new_revision("nothing yet", directory=tmp_path)
    assert written.parent == tmp_path and written.name.endswith("_nothing_yet.py")
    source = written.read_text()
    assert f"down_revision = {head_revision()!r}".replace("'", '"') in source
    assert "op." not in source and "import sqlmodel" not in source
