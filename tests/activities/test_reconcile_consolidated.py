"""The comparison of consolidated invoices, on records as the ERP and the ledger hold them:
each difference once, naming the invoice, the section and the figures; a contract's sections
counted in its billed to date only when every one of them is accounted for."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from activities.reconcile_consolidated import compare_consolidated
from connectors.records import ErpInvoice, ErpInvoiceSection, ErpPayment
from domain.consolidation import allocation_payment_id
from ledger import BillingFact, PaymentFact

NOW = datetime(2026, 12, 1, tzinfo=UTC)
D = Decimal


def _section(contract_id: str, total: str) -> BillingFact:
    return BillingFact(
        fact_key=f"{contract_id}:2026-10",
        contract_id=contract_id,
        reference="2026-10",
        period="2026-10",
        period_close=True,
        legal_entity="US01",
        currency="USD",
        requested_at=NOW,
        invoice_id=f"SEC-{contract_id}-2026-10",
        total=D(total),
        subtotal=D(total),
        tax=D(0),
        issued_at=NOW,
    )


def _invoice(*sections: BillingFact, total: str | None = None) -> ErpInvoice:
    figures = [
        ErpInvoiceSection(
            section_id=s.invoice_id or "",
            contract_id=s.contract_id,
            subtotal=s.subtotal or D(0),
            tax=s.tax or D(0),
            total=s.total or D(0),
        )
        for s in sections
    ]
    return ErpInvoice(
        invoice_id="INV-9",
        contract_id="customer-billing-US01-ACME-US-USD",
        number="US01-2026-000009",
        status="issued",
        currency="USD",
        subtotal=D(total) if total else sum((f.total for f in figures), D(0)),
        tax=D(0),
        total=D(total) if total else sum((f.total for f in figures), D(0)),
        invoice_date=date(2026, 11, 1),
        due_on=date(2026, 12, 1),
        sections=figures,
    )


def _payment(payment_id: str, amount: str) -> ErpPayment:
    return ErpPayment(
        payment_id=payment_id,
        invoice_id="INV-9",
        amount=D(amount),
        applied_amount=D(amount),
        unapplied_amount=D(0),
        currency="USD",
    )


def _part(payment_id: str, section: BillingFact, amount: str) -> PaymentFact:
    assert section.invoice_id is not None
    return PaymentFact(
        payment_id=allocation_payment_id(payment_id, section.invoice_id),
        contract_id=section.contract_id,
        invoice_id=section.invoice_id,
        currency="USD",
        amount=D(amount),
        received_on=date(2026, 11, 23),
        recorded_at=NOW,
    )


def test_sections_and_parts_that_agree_are_no_difference_and_count_as_billed() -> None:
    a, b = _section("C-A", "1200.00"), _section("C-B", "600.00")
    invoice = _invoice(a, b)
    found = compare_consolidated(
        {"C-A", "C-B"},
        [invoice],
        [(invoice, _payment("PAY-1", "1210.00"))],
        [a, b],
        [_part("PAY-1", a, "1200.00"), _part("PAY-1", b, "10.00")],
    )
    assert found.differences == []
    assert found.sections_billed == {"C-A": D("1200.00"), "C-B": D("600.00")}


def test_a_section_of_other_figures_is_reported_for_its_contract_and_not_again_as_the_total() -> (
    None
):
    a, b = _section("C-A", "1200.00"), _section("C-B", "600.00")
    invoice = _invoice(a, _section("C-B", "650.00"))
    found = compare_consolidated({"C-A", "C-B"}, [invoice], [], [a, b], [])
    [difference] = found.differences
    assert (difference.contract_id, difference.code, difference.record_id) == (
        "C-B",
        "section_amount_differs",
        "SEC-C-B-2026-10",
    )
    assert difference.message == (
        "section SEC-C-B-2026-10 of contract C-B on consolidated invoice INV-9 (number "
        "US01-2026-000009) is subtotal 650.00, tax 0, total 650.00 in the ERP and subtotal "
        "600.00, tax 0, total 600.00 in c2c's ledger"
    )
    # C-B's billed to date waits for the section's difference; C-A's is accounted for.
    assert found.sections_billed == {"C-A": D("1200.00")}


def test_a_total_beside_its_sections_a_missing_section_and_payments_that_do_not_add_up() -> None:
    a, b, late = _section("C-A", "100.00"), _section("C-B", "50.00"), _section("C-C", "5.00")
    invoice = _invoice(a, b, total="160.00")
    found = compare_consolidated(
        {"C-A", "C-B", "C-C"},
        [invoice],
        [(invoice, _payment("PAY-1", "100.00"))],
        [a, b, late],
        [_part("PAY-1", a, "90.00"), _part("PAY-GONE", b, "7.00")],
    )
    codes = {(d.code, d.contract_id, d.record_id): d.message for d in found.differences}
    assert set(codes) == {
        ("consolidated_invoice_amount_differs", "C-A", "INV-9"),
        ("section_missing_in_erp", "C-C", "SEC-C-C-2026-10"),
        ("consolidated_payment_amount_differs", "C-A", "PAY-1"),
        (
            "consolidated_payment_missing_in_erp",
            "C-B",
            allocation_payment_id("PAY-GONE", "SEC-C-B-2026-10"),
        ),
    }
    assert (
        "is 160.00 in the ERP; its sections in c2c's ledger total 150.00"
        in codes["consolidated_invoice_amount_differs", "C-A", "INV-9"]
    )
    assert (
        "applied 90.00 of it to the sections (90.00 to SEC-C-A-2026-10)"
        in codes["consolidated_payment_amount_differs", "C-A", "PAY-1"]
    )
    assert "C-C" not in found.sections_billed


def test_only_the_batch_contracts_sections_are_reported() -> None:
    a, b = _section("C-A", "100.00"), _section("C-B", "50.00")
    invoice = _invoice(a, _section("C-B", "55.00"))
    found = compare_consolidated({"C-A"}, [invoice], [], [a, b], [])
    assert found.differences == [] and found.sections_billed == {"C-A": D("100.00")}
