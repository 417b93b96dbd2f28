"""Cross-references: recorded once, bound to one contract, and named as a contract's
status shows them."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from ledger import Ledger, LedgerConflict, ref_name
from ledger.models import CrossReference
from ledger.xrefs import _owner
from tests.ledger.ledger_0_8_0 import back_to_before_revisions


def test_record_xref_is_idempotent(ledger: Ledger) -> None:
    for _ in range(3):
        ledger.record_xref("K-1", "erp", "customer", "C-1")
    rows = ledger.list_xrefs("K-1")
    assert [(r.system, r.kind, r.external_id) for r in rows] == [("erp", "customer", "C-1")]
    assert rows[0].created_at.tzinfo is not None


def test_an_id_bound_to_another_contract_is_a_conflict(ledger: Ledger) -> None:
    ledger.record_xref("K-1", "erp", "invoice", "INV-9")
    with pytest.raises(LedgerConflict, match="K-1"):
        ledger.record_xref("K-2", "erp", "invoice", "INV-9")
    assert ledger.find_contract_by_xref("erp", "invoice", "INV-9") == "K-1"
    assert ledger.list_xrefs("K-2") == []


def test_the_same_external_id_may_exist_in_other_systems_and_kinds(ledger: Ledger) -> None:
    ledger.record_xref("K-1", "erp", "project", "42")
    ledger.record_xref("K-2", "psa", "project", "42")
    ledger.record_xref("K-3", "erp", "invoice", "42")
    assert ledger.find_contract_by_xref("erp", "project", "42") == "K-1"
    assert ledger.find_contract_by_xref("psa", "project", "42") == "K-2"
    assert ledger.find_contract_by_xref("erp", "invoice", "42") == "K-3"
    assert ledger.find_contract_by_xref("erp", "payment", "42") is None


def test_xrefs_for_names_single_valued_references(ledger: Ledger) -> None:
    ledger.record_xref("K-1", "erp", "customer", "C-1")
    ledger.record_xref("K-1", "erp", "project", "P-1")
    ledger.record_xref("K-1", "psa", "project", "PSA-1")
    ledger.record_xref("K-1", "crm", "customer", "ACME")
    ledger.record_xref("K-1", "erp", "invoice", "INV-1")
    ledger.record_xref("K-1", "payments", "payment", "PAY-1")
    ledger.record_xref("K-2", "erp", "customer", "C-2")
    assert ledger.xrefs_for("K-1") == {
        "erp_customer_id": "C-1",
        "erp_project_id": "P-1",
        "psa_project_id": "PSA-1",
        "crm_customer_id": "ACME",
    }
    assert len(ledger.list_xrefs("K-1")) == 6
    assert ledger.xrefs_for("K-404") == {}


def test_the_latest_single_valued_reference_wins(ledger: Ledger) -> None:
    ledger.record_xref("K-1", "erp", "project", "P-1")
    ledger.record_xref("K-1", "erp", "project", "P-2")
    assert ledger.xrefs_for("K-1") == {"erp_project_id": "P-2"}


def test_owners_by_prefix_hold_a_record_of_the_kind_and_take_the_prefix_literally(
    ledger: Ledger,
) -> None:
    ledger.record_xref("customer-billing-US01-A_1-USD", "erp", "invoice", "INV-1")
    ledger.record_xref("customer-billing-US01-A_1-USD", "erp", "invoice", "INV-2")
    ledger.record_xref("customer-billing-US01-A_1-USD-po-1a2b", "erp", "invoice", "INV-3")
    # ``_`` matches any one character in SQL's LIKE: here it is only itself.
    ledger.record_xref("customer-billing-US01-AX1-USD", "erp", "invoice", "INV-4")
    ledger.record_xref("customer-billing-US01-A_1-USDX", "erp", "payment", "PAY-1")
    owners = ledger.owners_starting_with("customer-billing-US01-A_1-USD", "erp", "invoice")
    assert owners == ["customer-billing-US01-A_1-USD", "customer-billing-US01-A_1-USD-po-1a2b"]
    assert ledger.owners_starting_with("customer-billing-", "psa", "invoice") == []


def test_ref_name_does_not_repeat_the_system() -> None:
    assert ref_name("erp", "customer") == "erp_customer_id"
    assert ref_name("psa", "project") == "psa_project_id"
    assert ref_name("psa", "psa_project") == "psa_project_id"
    assert ref_name("erp", "psa_project") == "erp_psa_project_id"


def test_unknown_systems_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError):
        ledger.record_xref("K-1", "sap", "customer", "C-1")


def test_a_customer_is_shared_by_the_contracts_of_its_account(ledger: Ledger) -> None:
    ledger.record_xref("C-1", "erp", "customer", "CUST-1")
    ledger.record_xref("C-2", "erp", "customer", "CUST-1")
    ledger.record_xref("C-2", "erp", "customer", "CUST-1")
    assert ledger.xrefs_for("C-1")["erp_customer_id"] == "CUST-1"
    assert ledger.xrefs_for("C-2")["erp_customer_id"] == "CUST-1"
    assert len(ledger.list_xrefs("C-2")) == 1
    assert ledger.find_contract_by_xref("erp", "customer", "CUST-1") == "C-1"


OWNER_INDEX = "ix_ledger_cross_reference_owner"


def test_the_contract_of_a_systems_id_is_found_on_an_index(ledger: Ledger) -> None:
    """A payment webhook names only the invoice: finding its contract must not scan every
    reference the ledger ever recorded."""
    ledger.record_xref("K-1", "erp", "invoice", "INV-1")
    query = _owner("erp", "invoice", "INV-1")
    statement = query.compile(ledger.engine, compile_kwargs={"literal_binds": True})
    with ledger.engine.connect() as connection:
        if ledger.engine.dialect.name == "sqlite":
            explained = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")
            plan = " ".join(str(row[-1]) for row in explained)
        else:
            # Too few rows for the planner to prefer the index: ask it to avoid scans.
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}"))
    assert OWNER_INDEX in plan, plan
    assert ledger.find_contract_by_xref("erp", "invoice", "INV-1") == "K-1"


def test_a_ledger_from_before_an_index_gets_it_and_keeps_its_rows(ledger: Ledger) -> None:
    """A ledger made before schema revisions by a c2c older than the index: the upgrade adds
    it, as c2c 0.8.0 did at start, before stamping the first revision."""
    ledger.record_xref("K-1", "erp", "invoice", "INV-1")
    with ledger.engine.begin() as connection:
        connection.execute(text(f"DROP INDEX {OWNER_INDEX}"))
        back_to_before_revisions(connection)
    table = CrossReference.__tablename__
    assert OWNER_INDEX not in {i["name"] for i in inspect(ledger.engine).get_indexes(table)}

    ledger.create_all(auto_upgrade=True)

    assert OWNER_INDEX in {i["name"] for i in inspect(ledger.engine).get_indexes(table)}
    assert ledger.find_contract_by_xref("erp", "invoice", "INV-1") == "K-1"
