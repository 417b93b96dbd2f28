"""An invoice's and a credit note's documents, rendered from their data alone: the PDF is the
same bytes every time, and the e-invoice is UBL 2.1 under Peppol BIS Billing 3.0, valid against
the UBL schema, with Peppol's mandatory fields and a reverse charge as category AE."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

import pytest

from c2c.invoice_documents import (
    PEPPOL_CUSTOMIZATION_ID,
    PEPPOL_PROFILE_ID,
    DocumentLine,
    DocumentSection,
    InvoiceDocument,
    Party,
    PaymentInstructions,
    render_einvoice,
    render_pdf,
    tax_categories,
)
from tests.documents.pdf import page_text
from tests.documents.ubl import NS, text, validate

pytestmark = pytest.mark.unit

REVERSE_CHARGE = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Art. 196 Council Directive 2006/112/EC)"
)


def invoice(**changes: object) -> InvoiceDocument:
    doc = InvoiceDocument(
        document_type="invoice",
        document_id="INV-1",
        number="INV-2026-0001",
        issue_date=date(2026, 11, 2),
        due_on=date(2026, 12, 2),
        currency="EUR",
        contract_id="SOW-1",
        seller=Party(
            name="c2c Beratung GmbH",
            country="DE",
            address_lines=["Friedrichstrasse 1"],
            postcode="10117",
            city="Berlin",
            tax_id="DE123456789",
        ),
        buyer=Party(name="Initech SAS", country="FR", tax_id="FR40303265045"),
        po_number="PO-4711",
        bill_to="Jeanne Martin, accounts payable",
        lines=[
            DocumentLine(
                line_id="1",
                description="Senior consultant, October",
                quantity=Decimal("10"),
                unit_price=Decimal("150.00"),
                amount=Decimal("1500.00"),
                tax_amount=Decimal("285.00"),
                unit="HUR",
            ),
            DocumentLine(
                line_id="2",
                description="Travel",
                unit_price=Decimal("100.00"),
                amount=Decimal("100.00"),
                tax_amount=Decimal("19.00"),
            ),
        ],
        subtotal=Decimal("1600.00"),
        tax=Decimal("304.00"),
        total=Decimal("1904.00"),
        payment=PaymentInstructions(
            text="Bank transfer within 30 days",
            iban="DE89 3704 0044 0532 0130 00",
            bic="COBADEFFXXX",
        ),
    )
    return doc.model_copy(update=changes)


def reverse_charged(**changes: object) -> InvoiceDocument:
    doc = invoice(**changes)
    return doc.model_copy(
        update={
            "notes": [REVERSE_CHARGE],
            "lines": [line.model_copy(update={"tax_amount": Decimal(0)}) for line in doc.lines],
            "tax": Decimal(0),
            "total": doc.subtotal,
        }
    )


def consolidated(**changes: object) -> InvoiceDocument:
    """A customer's invoice of two contracts' sections: line ids unique across them."""
    doc = invoice(contract_id="customer-billing-DE01-INITECH-FR-EUR", bill_to=None)
    first, second = doc.lines
    return doc.model_copy(
        update={
            "lines": [
                first.model_copy(update={"line_id": "1.1", "section_id": "SEC-SOW-1-2026-10"}),
                second.model_copy(update={"line_id": "2.1", "section_id": "SEC-SOW-2-2026-10"}),
            ],
            "sections": [
                DocumentSection(
                    section_id="SEC-SOW-1-2026-10",
                    contract_id="SOW-1",
                    contract_title="Data platform",
                    subtotal=Decimal("1500.00"),
                    tax=Decimal("285.00"),
                    total=Decimal("1785.00"),
                ),
                DocumentSection(
                    section_id="SEC-SOW-2-2026-10",
                    contract_id="SOW-2",
                    subtotal=Decimal("100.00"),
                    tax=Decimal("19.00"),
                    total=Decimal("119.00"),
                ),
            ],
            **changes,
        }
    )


def test_a_consolidated_invoice_prints_a_titled_section_per_contract() -> None:
    pdf = render_pdf(consolidated())
    assert pdf == render_pdf(consolidated())
    pages = page_text(pdf)
    assert b"Contracts: SOW-1, SOW-2" in pages
    # (A PDF string escapes its parentheses.)
    assert rb"Contract SOW-1 \(Data platform\)" in pages and b"Contract SOW-2" in pages
    assert pages.count(b"Section total") == 2
    assert b"1,785.00 EUR" in pages and b"119.00 EUR" in pages and b"1,904.00 EUR" in pages
    # Each section's lines come under its heading.
    assert pages.index(b"Contract SOW-1") < pages.index(b"Senior consultant")
    assert pages.index(b"Senior consultant") < pages.index(b"Contract SOW-2")
    assert pages.index(b"Contract SOW-2") < pages.index(b"Travel")


def test_a_consolidated_invoice_names_each_lines_section_in_its_ubl_note() -> None:
    root = validate(render_einvoice(consolidated()))
    assert text(root, "cac:InvoiceLine/cbc:ID") == ["1.1", "2.1"]
    assert text(root, "cac:InvoiceLine/cbc:Note") == [
        "Section SEC-SOW-1-2026-10: Contract SOW-1 (Data platform)",
        "Section SEC-SOW-2-2026-10: Contract SOW-2",
    ]
    # Its contracts are named line by line: no one contract reference for the document.
    assert root.findall("cac:ContractDocumentReference", NS) == []
    assert text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == ["1904.00"]


def test_the_same_invoice_renders_to_the_same_pdf() -> None:
    first, again = render_pdf(invoice()), render_pdf(invoice())
    assert first.startswith(b"%PDF-")
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(again).hexdigest()
    assert b"/CreationDate (D:20261102000000Z" in first
    assert render_pdf(invoice(number="INV-2026-0002")) != first


def test_the_pdf_prints_the_reverse_charge_mention_and_the_purchase_order() -> None:
    pdf = render_pdf(reverse_charged())
    pages = page_text(pdf)
    assert b"Reverse charge: VAT to be accounted for by the recipient" in pages
    assert b"PO-4711" in pages


def test_a_taxed_invoice_is_a_valid_peppol_ubl_invoice() -> None:
    root = validate(render_einvoice(invoice()))
    assert text(root, "cbc:CustomizationID") == [PEPPOL_CUSTOMIZATION_ID]
    assert text(root, "cbc:ProfileID") == [PEPPOL_PROFILE_ID]
    assert text(root, "cbc:InvoiceTypeCode") == ["380"]
    assert text(root, "cbc:DueDate") == ["2026-12-02"]
    assert text(root, "cac:OrderReference/cbc:ID") == ["PO-4711"]
    seller = "cac:AccountingSupplierParty/cac:Party/"
    buyer = "cac:AccountingCustomerParty/cac:Party/"
    assert text(root, seller + "cbc:EndpointID") == ["DE123456789"]
    assert root.find(seller + "cbc:EndpointID", NS).get("schemeID") == "9930"
    assert text(root, seller + "cac:PartyTaxScheme/cbc:CompanyID") == ["DE123456789"]
    assert text(root, buyer + "cbc:EndpointID") == ["FR40303265045"]
    assert text(root, buyer + "cac:PartyTaxScheme/cbc:CompanyID") == ["FR40303265045"]
    assert text(root, buyer + "cac:Contact/cbc:Name") == ["Jeanne Martin, accounts payable"]
    assert text(root, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID") == ["S"]
    assert text(root, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:Percent") == ["19.00"]
    assert text(root, "cac:TaxTotal/cbc:TaxAmount") == ["304.00"]
    assert text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == ["1904.00"]
    assert text(root, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID") == [
        "DE89370400440532013000"
    ]


def test_a_reverse_charge_is_category_ae_with_its_exemption_reason() -> None:
    root = validate(render_einvoice(reverse_charged()))
    category = "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/"
    assert text(root, category + "cbc:ID") == ["AE"]
    assert text(root, category + "cbc:Percent") == ["0.00"]
    assert text(root, category + "cbc:TaxExemptionReasonCode") == ["VATEX-EU-AE"]
    assert text(root, category + "cbc:TaxExemptionReason") == [REVERSE_CHARGE]
    assert text(root, "cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory/cbc:ID") == ["AE", "AE"]
    assert tax_categories(reverse_charged()) == [("AE", Decimal(0), Decimal("1600.00"), Decimal(0))]


def test_a_credit_note_is_a_valid_ubl_credit_note_referring_to_its_invoice() -> None:
    note = reverse_charged(
        document_type="credit_note",
        document_id="CN-1",
        number="CN-2026-0001",
        invoice_number="INV-2026-0001",
        invoice_date=date(2026, 11, 2),
        reason="hours billed in error",
        due_on=None,
    )
    root = validate(render_einvoice(note))
    assert text(root, "cbc:CreditNoteTypeCode") == ["381"]
    assert text(root, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == [
        "INV-2026-0001"
    ]
    assert len(root.findall("cac:CreditNoteLine", NS)) == 2
    assert render_pdf(note).startswith(b"%PDF-")


def test_a_document_without_po_bill_to_or_address_still_renders() -> None:
    bare = invoice(
        po_number=None,
        bill_to=None,
        seller=Party(name="c2c Beratung GmbH", country="DE"),
        buyer=Party(name="Initech SAS", country="FR"),
        payment=PaymentInstructions(),
    )
    root = validate(render_einvoice(bare))
    assert text(root, "cbc:BuyerReference") == ["SOW-1"]
    assert render_pdf(bare).startswith(b"%PDF-")
