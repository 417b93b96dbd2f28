"""Consolidated invoicing's pure rules: the ids, and how a payment is allocated to sections."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from domain.consolidation import (
    ConsolidatedInvoice,
    CustomerBillingKey,
    SectionShare,
    allocate,
    allocation_payment_id,
    customer_billing_workflow_id,
    is_customer_billing,
    section_id,
)
from domain.models import PaymentReceived


def _invoice(period: str, batch: int, *shares: tuple[str, str, str]) -> ConsolidatedInvoice:
    sections = [
        SectionShare(
            section_id=f"SEC-{cid}-{period}",
            contract_id=cid,
            total=Decimal(total),
            paid=Decimal(paid),
        )
        for cid, total, paid in shares
    ]
    total = sum((s.total for s in sections), Decimal(0))
    return ConsolidatedInvoice(
        period=period,
        batch=batch,
        reference=period,
        invoice_id=f"INV-{period}-{batch}",
        number=f"N-{period}-{batch}",
        invoice_date=date(2026, 11, 1),
        due_on=date(2026, 12, 1),
        subtotal=total,
        tax=Decimal(0),
        total=total,
        sections=sections,
    )


def test_ids_are_derived_plain_and_short() -> None:
    key = CustomerBillingKey(legal_entity="US01", crm_account_id="ACME-US", currency="USD")
    assert customer_billing_workflow_id(key) == "customer-billing-US01-ACME-US-USD"
    with_po = customer_billing_workflow_id(key.model_copy(update={"po_number": "PO 4711/a"}))
    assert with_po.startswith("customer-billing-US01-ACME-US-USD-po-") and " " not in with_po
    assert is_customer_billing(with_po) and not is_customer_billing("contract-C1")
    assert section_id("C1", "2026-10") == "SEC-C1-2026-10"
    long = section_id("C" * 80, "2026-10")
    assert len(long) <= 64 and long == section_id("C" * 80, "2026-10")
    pid = allocation_payment_id("P" * 64, "SEC-C1-2026-10")
    assert len(pid) <= 64 and pid != allocation_payment_id("P" * 64, "SEC-C2-2026-10")
    # A contract takes its part as an ordinary payment message.
    PaymentReceived(
        payment_id=pid,
        invoice_id=long,
        amount=Decimal(1),
        currency="USD",
        received_on=date(2026, 11, 1),
    )


def test_the_named_invoice_first_in_section_order_then_the_oldest() -> None:
    old = _invoice("2026-09", 1, ("C1", "100.00", "0"))
    named = _invoice("2026-10", 1, ("C1", "50.00", "0"), ("C2", "70.00", "20.00"))
    parts = allocate("P1", Decimal("130.00"), [old, named], named.invoice_id)
    assert [(p.section_id, p.amount) for p in parts] == [
        ("SEC-C1-2026-10", Decimal("50.00")),
        ("SEC-C2-2026-10", Decimal("50.00")),
        ("SEC-C1-2026-09", Decimal("30.00")),
    ]


def test_what_is_left_over_goes_to_the_first_section_of_the_named_invoice() -> None:
    named = _invoice("2026-10", 1, ("C1", "50.00", "0"), ("C2", "70.00", "0"))
    parts = allocate("P1", Decimal("150.00"), [named], named.invoice_id)
    assert [(p.contract_id, p.amount) for p in parts] == [
        ("C1", Decimal("80.00")),
        ("C2", Decimal("70.00")),
    ]


@given(
    totals=st.lists(st.integers(1, 10_000), min_size=1, max_size=6),
    amount=st.integers(1, 80_000),
)
def test_an_allocation_splits_exactly_the_payment(totals: list[int], amount: int) -> None:
    cents = Decimal("0.01")
    invoice = _invoice(
        "2026-10", 1, *((f"C{n}", str(t * cents), "0") for n, t in enumerate(totals))
    )
    parts = allocate("P1", amount * cents, [invoice], invoice.invoice_id)
    assert sum((p.amount for p in parts), Decimal(0)) == amount * cents
    assert len({p.payment_id for p in parts}) == len(parts)
    shares = {s.section_id: s.total for s in invoice.sections}
    overpaid = [p for p in parts if p.amount > shares[p.section_id]]
    assert all(p.section_id == invoice.sections[0].section_id for p in overpaid)
