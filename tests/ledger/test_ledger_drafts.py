"""Draft invoices in the ledger: written once by id, reviewed once, listed by status, entity
and contract; the draft-to-approval KPI reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.consolidation import CustomerBillingKey, customer_billing_workflow_id
from ledger import Ledger
from ledger.drafts import InvoiceDraftIn
from ledger.invoice_documents import InvoiceDocumentIn
from ledger.kpis import kpi_report
from ledger.models import ContractRecordIn

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def draft(draft_id: str, contract_id: str = "C-1", **changes: object) -> InvoiceDraftIn:
    values: dict[str, object] = {
        "draft_id": draft_id,
        "contract_id": contract_id,
        "reference": "2026-10",
        "legal_entity": "US01",
        "currency": "USD",
        "period": "2026-10",
        "lines": [{"line_id": "1", "kind": "time", "amount": "1200.00", "tax_amount": "0"}],
        "subtotal": Decimal("1200.00"),
        "tax": Decimal("87.00"),
        "total": Decimal("1287.00"),
        "po_number": "PO-1",
        "bill_to": {"name": "Acme AP"},
        "drafted_at": AT,
    }
    return InvoiceDraftIn.model_validate({**values, **changes})


def test_a_draft_is_written_once_and_reviewed_once(ledger: Ledger) -> None:
    ledger.record_draft(draft("DRAFT-A"))
    ledger.record_draft(draft("DRAFT-A", total=Decimal("1.00")))  # a repeat keeps the first
    [waiting] = ledger.list_drafts()
    assert (waiting.total, waiting.status, waiting.bill_to) == (
        Decimal("1287.00"),
        "draft",
        {"name": "Acme AP"},
    )
    ledger.review_draft(
        "DRAFT-A", "approved", at=AT + timedelta(hours=3), by="olga", invoice_id="I"
    )
    ledger.review_draft("DRAFT-A", "rejected", at=AT + timedelta(hours=4), by="bob", reason="no")
    row = ledger.get_draft("DRAFT-A")
    assert row is not None
    assert (row.status, row.reviewed_by, row.invoice_id, row.reason) == (
        "approved",
        "olga",
        "I",
        None,
    )
    assert ledger.list_drafts() == []
    assert [d.draft_id for d in ledger.list_drafts(status="approved")] == ["DRAFT-A"]
    assert ledger.get_draft("DRAFT-NONE") is None


def test_drafts_are_listed_by_entity_and_contract_and_timed_to_approval(ledger: Ledger) -> None:
    for cid, entity in (("C-US", "US01"), ("C-DE", "DE01")):
        ledger.upsert_contract(
            ContractRecordIn(
                contract_id=cid,
                workflow_id=f"contract-{cid}",
                customer_id="ACME",
                legal_entity=entity,
                billing_model="time_and_materials",
                currency="USD",
                stage="active",
                updated_at=AT,
                approved_at=AT - timedelta(days=30),
            )
        )
    ledger.record_draft(draft("DRAFT-US", "C-US"))
    ledger.record_draft(draft("DRAFT-DE", "C-DE", legal_entity="DE01"))
    ledger.record_draft(draft("DRAFT-US2", "C-US", reference="2026-11", period="2026-11"))
    assert [d.draft_id for d in ledger.list_drafts(legal_entity="DE01")] == ["DRAFT-DE"]
    assert {d.draft_id for d in ledger.list_drafts(contract_id="C-US")} == {
        "DRAFT-US",
        "DRAFT-US2",
    }
    ledger.review_draft("DRAFT-US", "approved", at=AT + timedelta(hours=6), by="olga")
    report = kpi_report(ledger, legal_entity="US01", now=AT + timedelta(days=1))
    assert (report.draft_approval.count, report.draft_approval.median_hours) == (1, 6.0)
    assert report.drafts_waiting == 1


def test_the_longest_ids_fit(ledger: Ledger) -> None:
    """A contract id may have 64 characters, so its section of a consolidated invoice
    (``SEC-{contract}-{period}``) has 76, and a customer billing workflow's id (the owner of
    a consolidated invoice's documents) up to 111: PostgreSQL must take them whole."""
    contract_id = "C" * 64
    section = f"SEC-{contract_id}-2026-10"
    owner = customer_billing_workflow_id(
        CustomerBillingKey(
            legal_entity="US01", crm_account_id="A" * 64, currency="USD", po_number="PO-1"
        )
    )
    ledger.record_draft(draft(section, contract_id=contract_id))
    ledger.review_draft(section, "approved", at=AT, by="olga", invoice_id=section)
    assert ledger.get_draft(section) is not None
    document = InvoiceDocumentIn(
        invoice_id="INV-000001",
        kind="pdf",
        document_type="invoice",
        contract_id=owner,
        number="US01-2026-000001",
        sha256="0" * 64,
        size=1,
        content_type="application/pdf",
        location="file:///archive/0",
        archived_at=AT,
        retain_until=AT + timedelta(days=3650),
    )
    assert ledger.record_invoice_document(document).contract_id == owner
