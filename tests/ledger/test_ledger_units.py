"""``Ledger.unit_of_work``: several writes of one effect commit together, or not at all."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

import pytest

from ledger import BillingStartIn, InvoiceIssuedIn, Ledger, LedgerConflict
from ledger.models import BillingFact

At = Callable[[float], datetime]


def start(at: At, reference: str = "2026-10") -> BillingStartIn:
    return BillingStartIn(
        contract_id="K-1",
        reference=reference,
        period="2026-10",
        period_close=True,
        legal_entity="US01",
        currency="USD",
        requested_at=at(0),
    )


def issued(at: At, reference: str = "2026-10") -> InvoiceIssuedIn:
    return InvoiceIssuedIn(
        contract_id="K-1",
        reference=reference,
        invoice_id="INV-1",
        invoice_date=date(2026, 11, 1),
        due_on=date(2026, 12, 1),
        total=Decimal("100.00"),
        issued_at=at(1),
    )


def billing_facts(ledger: Ledger) -> list[BillingFact]:
    return ledger.rows_of_entity(BillingFact)


def invoices_of(ledger: Ledger, contract_id: str) -> list[str]:
    return [x.external_id for x in ledger.list_xrefs(contract_id) if x.kind == "invoice"]


def test_writes_in_a_unit_see_each_other_and_commit_together(ledger: Ledger, at: At) -> None:
    with ledger.unit_of_work():
        ledger.record_billing_started(start(at))
        # Checks, inside the same transaction, that the start above exists.
        ledger.record_invoice_issued(issued(at))
        ledger.record_xref("K-1", "erp", "invoice", "INV-1")
    [fact] = billing_facts(ledger)
    assert fact.invoice_id == "INV-1" and fact.total == Decimal("100.00")
    assert invoices_of(ledger, "K-1") == ["INV-1"]


def test_a_failing_write_rolls_back_the_whole_unit(ledger: Ledger, at: At) -> None:
    ledger.record_xref("K-2", "erp", "invoice", "INV-1")
    with pytest.raises(LedgerConflict), ledger.unit_of_work():
        ledger.record_billing_started(start(at))
        ledger.record_xref("K-1", "erp", "invoice", "INV-1")  # bound to K-2
    assert billing_facts(ledger) == []
    assert invoices_of(ledger, "K-1") == []
    # The ledger is usable at once, and the same unit succeeds once the conflict is gone.
    with ledger.unit_of_work():
        ledger.record_billing_started(start(at))
        ledger.record_invoice_issued(issued(at))
    assert [f.invoice_id for f in billing_facts(ledger)] == ["INV-1"]


def test_an_error_in_the_callers_code_rolls_back_too(ledger: Ledger, at: At) -> None:
    with pytest.raises(RuntimeError), ledger.unit_of_work():
        ledger.record_billing_started(start(at))
        raise RuntimeError("the activity failed between two writes")
    assert billing_facts(ledger) == []


def test_a_unit_inside_a_unit_joins_it(ledger: Ledger, at: At) -> None:
    with pytest.raises(ValueError), ledger.unit_of_work():
        with ledger.unit_of_work():
            ledger.record_billing_started(start(at))
        # The inner unit did not commit on its own: the outer failure undoes it.
        ledger.record_invoice_issued(issued(at, reference="no-such-start"))
    assert billing_facts(ledger) == []


def test_a_unit_belongs_to_its_thread(ledger: Ledger, at: At) -> None:
    """Another thread's writes during a unit are its own transactions, untouched by the
    unit's rollback."""
    other_done = threading.Event()

    def other_thread() -> None:
        ledger.record_billing_started(start(at, reference="2026-09"))
        other_done.set()

    with pytest.raises(RuntimeError), ledger.unit_of_work():
        ledger.record_xref("K-1", "erp", "invoice", "INV-9")
        # Outside the unit (SQLite lets one writer at a time: the unit's writes happen after).
        thread = threading.Thread(target=other_thread)
        thread.start()
        if ledger.engine.dialect.name != "sqlite":
            thread.join(10)
            assert other_done.is_set()
        raise RuntimeError("roll the unit back")
    thread.join(10)
    assert other_done.is_set()
    assert [f.reference for f in billing_facts(ledger)] == ["2026-09"]
    assert invoices_of(ledger, "K-1") == []
