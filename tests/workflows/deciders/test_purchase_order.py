"""The purchase order and bill-to contact an invoice's documents print: read from the amended
terms or the approval when they carry them, and nothing when they do not."""

from __future__ import annotations

from types import SimpleNamespace

from pydantic import BaseModel

from workflows.run_loop import purchase_order


class Contact(BaseModel):
    name: str
    email: str | None = None


def test_a_contract_without_a_po_prints_none() -> None:
    s = SimpleNamespace(terms=SimpleNamespace(), contract=SimpleNamespace())
    assert purchase_order(s) == (None, None)


def test_the_amended_terms_win_over_the_approval_and_a_contact_reads_as_one_line() -> None:
    s = SimpleNamespace(
        terms=SimpleNamespace(po_number="PO-2", bill_to=None),
        contract=SimpleNamespace(
            po_number="PO-1", bill_to=Contact(name="Jeanne Martin", email="ap@champs.example")
        ),
    )
    assert purchase_order(s) == ("PO-2", "Jeanne Martin, ap@champs.example")
    s.contract.bill_to = {"name": "Accounts payable", "email": ""}
    assert purchase_order(s) == ("PO-2", "Accounts payable")
    s.contract.bill_to = "Finance team"
    assert purchase_order(s) == ("PO-2", "Finance team")
