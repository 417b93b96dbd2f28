"""c2c's e-invoices against the business rules a Peppol access point runs: CEN's EN 16931
rules bound to UBL (vendored) and OpenPeppol's BIS Billing 3.0 rules (when this checkout has
them: ``tests/documents/schematron.py``). No ``fatal`` assertion fails on any document c2c
renders, and a broken document is flagged with the rule it breaks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from c2c.invoice_documents import (
    DocumentLine,
    InvoiceDocument,
    Party,
    render_einvoice,
)
from tests.documents.schematron import (
    PEPPOL_SCH_ENV,
    Failure,
    failures,
    fatal,
    peppol_schematron,
    require_peppol,
)
from tests.documents.test_invoice_documents import (
    REVERSE_CHARGE,
    consolidated,
    invoice,
    reverse_charged,
)
from tests.documents.ubl import NS, text, validate

pytestmark = pytest.mark.unit


def line(
    line_id: str,
    amount: str,
    tax: str,
    *,
    quantity: str = "1",
    unit_price: str | None = None,
    unit: str = "C62",
) -> DocumentLine:
    return DocumentLine(
        line_id=line_id,
        description=f"Line {line_id}",
        quantity=Decimal(quantity),
        unit_price=Decimal(unit_price or amount),
        amount=Decimal(amount),
        tax_amount=Decimal(tax),
        unit=unit,
    )


def lines_of(*lines: DocumentLine, **changes: object) -> InvoiceDocument:
    subtotal = sum((x.amount for x in lines), Decimal(0))
    tax = sum((x.tax_amount for x in lines), Decimal(0))
    return invoice(lines=list(lines), subtotal=subtotal, tax=tax, total=subtotal + tax, **changes)


def credit_note(doc: InvoiceDocument) -> InvoiceDocument:
    return doc.model_copy(
        update={
            "document_type": "credit_note",
            "document_id": "CN-1",
            "number": "CN-2026-0001",
            "invoice_number": "INV-2026-0001",
            "invoice_date": date(2026, 11, 2),
            "reason": "hours billed in error",
            "due_on": None,
        }
    )


DOCUMENTS = {
    "standard rate, two lines": invoice(),
    "two rates": lines_of(line("1", "1000.00", "190.00"), line("2", "100.00", "7.00")),
    "standard and zero rated": lines_of(line("1", "1000.00", "190.00"), line("2", "80.00", "0")),
    "hours at a rounded amount": lines_of(
        line("1", "999.98", "190.00", quantity="7.5", unit_price="133.33", unit="HUR")
    ),
    "many small lines": lines_of(*(line(str(n), "0.33", "0.06") for n in range(1, 8))),
    "a negative line": lines_of(line("1", "1000.00", "190.00"), line("2", "-100.00", "-19.00")),
    "reverse charge": reverse_charged(),
    "non-EUR currency": lines_of(
        line("1", "1200.00", "276.00"),
        currency="GBP",
        seller=Party(name="c2c Consulting Ltd", country="IE", tax_id="IE6388047V"),
        buyer=Party(name="Initech Ltd", country="IE", tax_id="IE9825613N"),
    ),
    "a US customer, not taxed": lines_of(
        line("1", "1000.00", "0"),
        currency="USD",
        buyer=Party(name="Initrode Inc", country="US", tax_id="12-3456789"),
    ),
    "credit note, taxed": credit_note(invoice()),
    "credit note, reverse charge": credit_note(reverse_charged()),
    "a consolidated invoice, two sections": consolidated(),
    "a consolidated invoice, reverse charge": consolidated(
        notes=[REVERSE_CHARGE],
        lines=[x.model_copy(update={"tax_amount": Decimal(0)}) for x in consolidated().lines],
        tax=Decimal(0),
        total=Decimal("1600.00"),
    ),
}


def ruleset(name: str) -> str:
    if name == "peppol":
        require_peppol()
    return name


@pytest.mark.parametrize("rules", ["cen", "peppol"])
@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_no_rule_rejects_a_document_c2c_renders(name: str, rules: str) -> None:
    data = render_einvoice(DOCUMENTS[name])
    validate(data)
    found = fatal(data, ruleset(rules))
    if name == "a US customer, not taxed" and rules == "peppol":
        # A US company has no Peppol electronic address: nothing else is wrong with it.
        assert [f.rule for f in found] == ["PEPPOL-EN16931-R010"], found
        return
    assert found == [], "\n".join(map(str, found))


# ---------------------------------------------------------------- one test per rule fixed


def test_the_notes_and_the_reason_are_one_note_as_peppol_allows() -> None:
    """PEPPOL-EN16931-R002: at most one document-level note; R008: no empty element."""
    note = credit_note(reverse_charged()).model_copy(
        update={"notes": [REVERSE_CHARGE, "", "Thank you"]}
    )
    data = render_einvoice(note)
    root = validate(data)
    assert text(root, "cbc:Note") == [f"{REVERSE_CHARGE}\nThank you\nReason: hours billed in error"]
    assert validate(render_einvoice(invoice(notes=[""]))).find("cbc:Note", NS) is None
    require_peppol()
    assert fatal(data, "peppol") == []


def test_blank_details_render_no_empty_element() -> None:
    """PEPPOL-EN16931-R008: no element is empty, whatever the configuration leaves blank."""
    doc = invoice(
        notes=["", " "],
        bill_to=" ",
        po_number="",
        seller=Party(
            name="c2c Beratung GmbH",
            country="DE",
            address_lines=["", "Friedrichstrasse 1", " "],
            postcode="",
            city="",
            tax_id="DE123456789",
            email=" ",
        ),
    )
    data = render_einvoice(doc)
    root = validate(data)
    empty = [
        etree.QName(e).localname for e in root.iter() if len(e) == 0 and not (e.text or "").strip()
    ]
    assert empty == []
    address = "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/"
    assert text(root, address + "cbc:StreetName") == ["Friedrichstrasse 1"]
    require_peppol()
    assert "PEPPOL-EN16931-R008" not in rules_failed(data, "peppol")


def test_a_peppol_schematron_named_but_missing_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(PEPPOL_SCH_ENV, str(tmp_path / "nowhere.sch"))
    with pytest.raises(FileNotFoundError, match=f"{PEPPOL_SCH_ENV}=.*nowhere.sch: no such file"):
        peppol_schematron()


def test_a_negative_line_is_a_negative_quantity_at_a_positive_price() -> None:
    """BR-27: an item's net price is never negative."""
    doc = DOCUMENTS["a negative line"]
    data = render_einvoice(doc)
    root = validate(data)
    assert text(root, "cac:InvoiceLine/cbc:InvoicedQuantity") == ["1", "-1"]
    assert text(root, "cac:InvoiceLine/cac:Price/cbc:PriceAmount") == ["1000.00", "100.00"]
    assert text(root, "cac:InvoiceLine/cbc:LineExtensionAmount") == ["1000.00", "-100.00"]
    assert "BR-27" not in rules_failed(data, "cen")


def test_a_tax_id_without_a_country_code_is_no_vat_identifier() -> None:
    """BR-CO-09: a VAT identifier starts with its country's code; a US EIN is the buyer's
    legal registration id instead."""
    data = render_einvoice(DOCUMENTS["a US customer, not taxed"])
    root = validate(data)
    buyer = "cac:AccountingCustomerParty/cac:Party/"
    assert root.find(buyer + "cac:PartyTaxScheme", NS) is None
    assert text(root, buyer + "cac:PartyLegalEntity/cbc:CompanyID") == ["12-3456789"]
    assert "BR-CO-09" not in rules_failed(data, "cen")


def test_endpoints_are_peppol_vat_schemes_never_an_email() -> None:
    """PEPPOL-EN16931-CL008: Peppol's electronic address schemes have no e-mail (``EM``); an
    Italian or Polish VAT number is an address like a German one."""
    doc = invoice(
        seller=Party(
            name="c2c Consulenza srl",
            country="IT",
            address_lines=["Via Roma 1"],
            postcode="20121",
            city="Milano",
            tax_id="IT00743110157",
        ),
        buyer=Party(
            name="Initech sp. z o.o.",
            country="PL",
            tax_id="PL5260250274",
            email="ap@initech.example",
        ),
    )
    data = render_einvoice(doc)
    root = validate(data)
    seller = root.find("cac:AccountingSupplierParty/cac:Party/cbc:EndpointID", NS)
    buyer = root.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", NS)
    assert (seller.get("schemeID"), seller.text) == ("0211", "IT00743110157")
    assert (buyer.get("schemeID"), buyer.text) == ("9945", "PL5260250274")
    assert text(root, "cac:AccountingCustomerParty/cac:Party/cac:Contact/cbc:ElectronicMail") == [
        "ap@initech.example"
    ]
    no_vat = validate(render_einvoice(invoice(buyer=Party(name="B", country="US", email="a@b.c"))))
    assert no_vat.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", NS) is None
    require_peppol()
    assert fatal(data, "peppol") == []


# ---------------------------------------------------------------- broken documents are caught


def rules_failed(data: bytes, rules: str) -> set[str]:
    return {f.rule for f in failures(data, rules) if f.flag == "fatal"}


def altered(data: bytes, path: str, value: str) -> bytes:
    root = etree.fromstring(data)
    [element] = root.findall(path, NS)
    element.text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_totals_that_do_not_add_up_are_flagged_with_the_rule() -> None:
    data = render_einvoice(invoice())
    assert rules_failed(data, "cen") == set()
    # The amount with tax is not the amount without tax plus the tax.
    broken = altered(data, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount", "1999.00")
    assert "BR-CO-15" in rules_failed(broken, "cen")
    # The lines do not add up to the line total.
    broken = altered(data, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount", "1700.00")
    assert "BR-CO-10" in rules_failed(broken, "cen")
    [failure] = [f for f in failures(broken, "cen") if f.rule == "BR-CO-10"]
    assert isinstance(failure, Failure) and failure.flag == "fatal"
    assert "Sum of Invoice line net amount" in failure.text


def test_a_second_note_is_flagged_by_peppol() -> None:
    require_peppol()
    root = etree.fromstring(render_einvoice(invoice(notes=["First"])))
    note = root.find("cbc:Note", NS)
    assert note is not None
    second = etree.Element(note.tag)
    second.text = "Second"
    note.addnext(second)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    assert "PEPPOL-EN16931-R002" in rules_failed(data, "peppol")
