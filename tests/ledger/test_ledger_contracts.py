"""Contract records: upserts, the times set once, money kept exactly, and listing by filter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

from ledger import ContractRecord, ContractRecordIn, Ledger
from ledger.columns import DecimalString

At = Callable[[float], datetime]


def record(contract_id: str = "K-1", **fields: Any) -> ContractRecordIn:
    return ContractRecordIn.model_validate({"contract_id": contract_id, **fields})


def test_upsert_inserts_then_updates_only_what_is_given(ledger: Ledger, at: At) -> None:
    ledger.upsert_contract(
        record(
            stage="received",
            updated_at=at(0),
            workflow_id="contract-K-1",
            customer_id="ACME",
            legal_entity="US01",
            billing_model="fixed_fee",
            currency="USD",
            contract_value=Decimal("120000.50"),
            approved_at=at(-60),
        )
    )
    stored = ledger.upsert_contract(record(stage="provisioning_erp", updated_at=at(1)))
    assert stored == ContractRecord(
        contract_id="K-1",
        workflow_id="contract-K-1",
        customer_id="ACME",
        legal_entity="US01",
        billing_model="fixed_fee",
        currency="USD",
        contract_value=Decimal("120000.50"),
        stage="provisioning_erp",
        approved_at=at(-60),
        active_at=None,
        closed_at=None,
        updated_at=at(1),
    )
    changed = ledger.upsert_contract(
        record(stage="provisioning_erp", updated_at=at(2), contract_value=Decimal("150000.00"))
    )
    assert changed.contract_value == Decimal("150000.00")
    assert changed.customer_id == "ACME"


def test_active_and_closed_times_are_set_once(ledger: Ledger, at: At) -> None:
    ledger.upsert_contract(record(stage="active", updated_at=at(1), active_at=at(1)))
    ledger.upsert_contract(record(stage="on_hold", updated_at=at(2), active_at=at(2)))
    ledger.upsert_contract(record(stage="closed", updated_at=at(3), closed_at=at(3)))
    stored = ledger.upsert_contract(record(stage="closed", updated_at=at(4), closed_at=at(4)))
    assert (stored.stage, stored.active_at, stored.closed_at, stored.updated_at) == (
        "closed",
        at(1),
        at(3),
        at(4),
    )


def test_money_is_kept_exactly(ledger: Ledger, at: At) -> None:
    value = Decimal("12345678901234567890.01")
    ledger.upsert_contract(record(stage="received", updated_at=at(0), contract_value=value))
    stored = ledger.get_contract("K-1")
    assert stored is not None
    assert stored.contract_value == value
    assert str(stored.contract_value) == "12345678901234567890.01"


def test_money_is_stored_without_exponent_and_never_from_a_float() -> None:
    column = DecimalString()
    assert column.process_bind_param(Decimal("1E+3"), sqlite.dialect()) == "1000"
    with pytest.raises(TypeError, match="never a float"):
        column.process_bind_param(0.1, sqlite.dialect())


def test_list_contracts_filters(ledger: Ledger, at: At) -> None:
    ledger.upsert_contract(record("K-3", stage="active", updated_at=at(0), legal_entity="UK01"))
    ledger.upsert_contract(record("K-1", stage="active", updated_at=at(0), legal_entity="US01"))
    ledger.upsert_contract(record("K-2", stage="on_hold", updated_at=at(0), legal_entity="US01"))

    def ids(**filters: str) -> list[str]:
        return [c.contract_id for c in ledger.list_contracts(**filters)]

    assert ids() == ["K-1", "K-2", "K-3"]
    assert ids(stage="active") == ["K-1", "K-3"]
    assert ids(legal_entity="US01") == ["K-1", "K-2"]
    assert ids(stage="active", legal_entity="US01") == ["K-1"]
    assert ids(stage="closed") == []
    assert ledger.get_contract("K-404") is None
