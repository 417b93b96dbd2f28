"""The documents a customer receives: an invoice's or credit note's PDF, and for a legal entity
in the EU its e-invoice (Factur-X / ZUGFeRD XML, UN/CEFACT Cross Industry Invoice under the
EN 16931 profile).

Both are rendered from one ``InvoiceDocument``, the document's data as the ERP issued it, and
both are deterministic: the same document renders to the same bytes, so its SHA-256 (the
archive's key) is the same however often it is rendered (a retried step, a reset). The PDF's
creation date is the document's issue date, and nothing in either depends on the clock.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import Literal

from fpdf import FPDF
from pydantic import BaseModel, ConfigDict, Field

ZERO = Decimal(0)

#: EU member states (ISO 3166-1 alpha-2): a legal entity there also gets an e-invoice.
EU_COUNTRIES = frozenset(
    {
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    }
)

#: The legal mention the tax engine gives a reverse-charged sale starts with this.
REVERSE_CHARGE_PREFIX = "Reverse charge"

PDF_TYPE = "application/pdf"
EINVOICE_TYPE = "application/xml"

DocumentType = Literal["invoice", "credit_note"]
Format = Literal["pdf", "einvoice"]

#: The Factur-X profile the e-invoice follows (its guideline id, EN 16931's own).
EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"

_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
_UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
_QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"


class Party(BaseModel):
    """A seller or buyer as the document names it."""

    model_config = ConfigDict(frozen=True)

    name: str
    country: str
    address_lines: list[str] = Field(default_factory=list)
    postcode: str | None = None
    city: str | None = None
    tax_id: str | None = None
    email: str | None = None


class DocumentLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_id: str
    description: str
    quantity: Decimal = Decimal(1)
    unit_price: Decimal
    amount: Decimal
    tax_amount: Decimal = ZERO
    #: UN/ECE Recommendation 20 unit: ``C62`` one (a unit), ``HUR`` an hour.
    unit: str = "C62"
    #: The VAT rate in percent, when known; else read from the line's tax and amount.
    tax_rate: Decimal | None = None
    #: On a consolidated invoice: the section (one contract's part) the line belongs to.
    section_id: str | None = None


class DocumentSection(BaseModel):
    """One contract's part of a consolidated invoice: its heading and its figures. Its lines
    are the document's lines that name its ``section_id``."""

    model_config = ConfigDict(frozen=True)

    section_id: str
    contract_id: str
    contract_title: str | None = None
    subtotal: Decimal
    tax: Decimal
    total: Decimal

    @property
    def heading(self) -> str:
        title = f" ({self.contract_title})" if self.contract_title else ""
        return f"Contract {self.contract_id}{title}"


class PaymentInstructions(BaseModel):
    """How the legal entity is paid: free text, and a bank account for the e-invoice."""

    model_config = ConfigDict(frozen=True)

    text: str | None = None
    iban: str | None = None
    bic: str | None = None
    account_name: str | None = None


class InvoiceDocument(BaseModel):
    """An issued invoice or credit note, as its documents print it."""

    model_config = ConfigDict(frozen=True)

    document_type: DocumentType
    #: The ERP's id of the invoice or credit note.
    document_id: str
    number: str
    issue_date: date
    due_on: date | None = None
    currency: str
    contract_id: str
    contract_title: str | None = None
    seller: Party
    buyer: Party
    po_number: str | None = None
    bill_to: str | None = None
    lines: list[DocumentLine]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    notes: list[str] = Field(default_factory=list)
    payment: PaymentInstructions = PaymentInstructions()
    #: A credit note's invoice: its number and date, and why it was credited.
    invoice_number: str | None = None
    invoice_date: date | None = None
    reason: str | None = None
    #: A consolidated invoice's sections, one per contract, in the order they appear on it
    #: (``contract_id`` then names the customer's billing); empty on a contract's own invoice.
    sections: list[DocumentSection] = Field(default_factory=list)

    @property
    def reverse_charge(self) -> bool:
        return any(note.startswith(REVERSE_CHARGE_PREFIX) for note in self.notes)

    @property
    def einvoice_due(self) -> bool:
        """Whether this document also gets an e-invoice: its seller is in the EU."""
        return self.seller.country in EU_COUNTRIES


def _amount(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), ",f")


def _plain(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def _qty(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _latin(text: str) -> str:
    """The PDF's core fonts carry Latin-1 only: anything else is replaced, never an error."""
    return text.encode("latin-1", "replace").decode("latin-1")


def tax_categories(doc: InvoiceDocument) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    """The document's VAT breakdown: (category code, rate %, taxable amount, tax) per rate.

    A reverse-charged document is all category ``AE`` at 0 %; a taxed line is ``S`` at the
    rate its tax gives (to 2 decimals); an untaxed line of another document is ``Z``.
    """
    if doc.reverse_charge:
        return [("AE", ZERO, doc.subtotal, ZERO)]
    groups: dict[tuple[str, Decimal], list[DocumentLine]] = defaultdict(list)
    for line in doc.lines:
        groups[_line_category(line)].append(line)
    out = []
    for (code, rate), lines in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1])):
        basis = sum((line.amount for line in lines), ZERO)
        tax = sum((line.tax_amount for line in lines), ZERO)
        out.append((code, rate, basis, tax))
    return out


def _line_category(line: DocumentLine) -> tuple[str, Decimal]:
    if line.tax_amount == 0 or line.amount == 0:
        return ("Z", ZERO)
    if line.tax_rate is not None:
        return ("S", line.tax_rate.normalize())
    rate = (line.tax_amount * 100 / line.amount).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return ("S", rate.normalize())


# ------------------------------------------------------------------ the PDF


class _Pdf(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.cell(0, 6, f"Page {self.page_no()}/{{nb}}", align="C")


def render_pdf(doc: InvoiceDocument) -> bytes:
    """The document as a PDF: the same ``doc`` always renders to the same bytes."""
    pdf = _Pdf(format="A4")
    title = "Invoice" if doc.document_type == "invoice" else "Credit note"
    pdf.set_title(f"{title} {doc.number}")
    pdf.set_author(doc.seller.name)
    pdf.set_creator("c2c")
    pdf.set_producer("c2c")
    # A fixed creation date, the document's own: the bytes (and so the hash) never depend on
    # when the document was rendered.
    pdf.set_creation_date(datetime.combine(doc.issue_date, time(0, 0), tzinfo=UTC))
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    width = pdf.epw

    def text(line: str, size: float = 10, style: str = "", height: float = 5) -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(width, height, _latin(line), new_x="LMARGIN", new_y="NEXT")

    text(doc.seller.name, size=14, style="B", height=7)
    for line in _address(doc.seller):
        text(line, size=9)
    if doc.seller.tax_id:
        text(f"VAT / tax id: {doc.seller.tax_id}", size=9)
    pdf.ln(4)
    text(f"{title} {doc.number}", size=16, style="B", height=8)
    facts = [f"Date: {doc.issue_date.isoformat()}"]
    if doc.due_on is not None and doc.document_type == "invoice":
        facts.append(f"Due date: {doc.due_on.isoformat()}")
    facts.append(f"Currency: {doc.currency}")
    if doc.sections:
        facts.append("Contracts: " + ", ".join(section.contract_id for section in doc.sections))
    else:
        facts.append(
            f"Contract: {doc.contract_id}"
            + (f" ({doc.contract_title})" if doc.contract_title else "")
        )
    if doc.po_number:
        facts.append(f"Purchase order: {doc.po_number}")
    if doc.invoice_number:
        dated = f" of {doc.invoice_date.isoformat()}" if doc.invoice_date else ""
        facts.append(f"Credits invoice {doc.invoice_number}{dated}")
    if doc.reason:
        facts.append(f"Reason: {doc.reason}")
    for fact in facts:
        text(fact)
    pdf.ln(3)
    text("Bill to", style="B")
    text(doc.buyer.name)
    for line in _address(doc.buyer):
        text(line, size=9)
    if doc.buyer.tax_id:
        text(f"VAT / tax id: {doc.buyer.tax_id}", size=9)
    if doc.bill_to:
        text(f"Attention: {doc.bill_to}", size=9)
    pdf.ln(4)

    columns = (0.46, 0.12, 0.14, 0.14, 0.14)
    widths = [width * c for c in columns]
    pdf.set_font("Helvetica", style="B", size=9)
    for label, w, align in zip(
        ("Description", "Quantity", "Unit price", "Amount", "Tax"),
        widths,
        ("L", "R", "R", "R", "R"),
        strict=True,
    ):
        pdf.cell(w, 6, label, border="B", align=align)
    pdf.ln(6)
    if not doc.sections:
        _line_rows(pdf, widths, doc.lines)
    for section in doc.sections:
        # One titled part per contract: its lines, then its own figures.
        pdf.ln(1)
        text(section.heading, size=9, style="B")
        _line_rows(pdf, widths, [i for i in doc.lines if i.section_id == section.section_id])
        pdf.set_font("Helvetica", size=9)
        for label, figure in (
            ("Section subtotal", section.subtotal),
            ("Section tax", section.tax),
            ("Section total", section.total),
        ):
            pdf.cell(width * 0.72, 5, label, align="R")
            pdf.cell(width * 0.28, 5, f"{_amount(figure)} {doc.currency}", align="R")
            pdf.ln(5)
    pdf.ln(2)
    label_w, value_w = width * 0.72, width * 0.28
    for label, figure, style in (
        ("Subtotal", doc.subtotal, ""),
        ("Tax", doc.tax, ""),
        ("Total", doc.total, "B"),
    ):
        pdf.set_font("Helvetica", style=style, size=10)
        pdf.cell(label_w, 6, label, align="R")
        pdf.cell(value_w, 6, f"{_amount(figure)} {doc.currency}", align="R")
        pdf.ln(6)
    pdf.ln(2)
    breakdown = tax_categories(doc)
    if breakdown:
        text("Tax breakdown", size=9, style="B")
        for code, rate, basis, tax in breakdown:
            text(
                f"{_CATEGORY_NAMES.get(code, code)} {_qty(rate)} %: {_amount(tax)} on "
                f"{_amount(basis)} {doc.currency}",
                size=9,
            )
    for note in doc.notes:
        text(note, size=9, style="B")
    if doc.document_type == "invoice":
        pdf.ln(3)
        text("Payment", style="B")
        if doc.due_on is not None:
            text(f"Please pay {_amount(doc.total)} {doc.currency} by {doc.due_on.isoformat()}.")
        if doc.payment.text:
            text(doc.payment.text, size=9)
        if doc.payment.iban:
            bank = f"IBAN {doc.payment.iban}" + (
                f", BIC {doc.payment.bic}" if doc.payment.bic else ""
            )
            text(bank, size=9)
        text(f"Reference: {doc.number}", size=9)
    return bytes(pdf.output())


_CATEGORY_NAMES = {"S": "VAT", "AE": "Reverse charge", "Z": "Zero rated"}


def _line_rows(pdf: FPDF, widths: list[float], lines: list[DocumentLine]) -> None:
    """The rows of ``lines`` in the line table: a description that wraps, and the figures."""
    pdf.set_font("Helvetica", size=9)
    for item in lines:
        cells = (
            item.description,
            _qty(item.quantity),
            _amount(item.unit_price),
            _amount(item.amount),
            _amount(item.tax_amount),
        )
        y = pdf.get_y()
        pdf.multi_cell(widths[0], 5, _latin(cells[0]), new_x="RIGHT", new_y="TOP")
        bottom = pdf.get_y()
        pdf.set_y(y)
        pdf.set_x(pdf.l_margin + widths[0])
        for value, w in zip(cells[1:], widths[1:], strict=True):
            pdf.cell(w, 5, value, align="R")
        pdf.set_y(max(bottom, y + 5))


def _address(party: Party) -> list[str]:
    lines = list(party.address_lines)
    place = " ".join(p for p in (party.postcode, party.city) if p)
    if place:
        lines.append(place)
    lines.append(party.country)
    return lines


# ------------------------------------------------------------------ the e-invoice


def render_einvoice(doc: InvoiceDocument) -> bytes:
    """The document as a UBL 2.1 ``Invoice`` (type 380) or ``CreditNote`` (type 381) under
    Peppol BIS Billing 3.0: its customization and profile ids, both parties' endpoint and VAT
    ids, a tax subtotal per category (a reverse charge as category ``AE`` with its exemption
    reason), and the amounts positive in both kinds. A consolidated invoice's lines each carry
    a note naming their section (contract); their ids are unique across its sections."""
    invoice = doc.document_type == "invoice"
    kind = "Invoice" if invoice else "CreditNote"
    ET.register_namespace("", _UBL_NS[kind])
    ET.register_namespace("cac", _CAC)
    ET.register_namespace("cbc", _CBC)
    root = ET.Element(f"{{{_UBL_NS[kind]}}}{kind}")
    cbc = partial(_cbc, root)
    cbc("CustomizationID", PEPPOL_CUSTOMIZATION_ID)
    cbc("ProfileID", PEPPOL_PROFILE_ID)
    cbc("ID", doc.number)
    cbc("IssueDate", doc.issue_date.isoformat())
    if invoice and doc.due_on is not None:
        cbc("DueDate", doc.due_on.isoformat())
    cbc("InvoiceTypeCode" if invoice else "CreditNoteTypeCode", "380" if invoice else "381")
    # Peppol allows one document-level note (PEPPOL-EN16931-R002), and no empty element
    # (R008): the notes and a credit note's reason are one note, a line each.
    reason = [f"Reason: {doc.reason}"] if doc.reason else []
    note = "\n".join(n for n in [*doc.notes, *reason] if n.strip())
    if note:
        cbc("Note", note)
    cbc("DocumentCurrencyCode", doc.currency)
    # Peppol asks for a buyer reference or an order reference: the PO when there is one.
    cbc("BuyerReference", doc.po_number or doc.contract_id)
    if doc.po_number:
        _cbc(_cac(root, "OrderReference"), "ID", doc.po_number)
    if doc.invoice_number:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", doc.invoice_number)
        if doc.invoice_date is not None:
            _cbc(reference, "IssueDate", doc.invoice_date.isoformat())
    if not doc.sections:
        # One contract reference per document (BT-12): a consolidated invoice's contracts are
        # named line by line instead.
        _cbc(_cac(root, "ContractDocumentReference"), "ID", doc.contract_id)
    _ubl_party(_cac(root, "AccountingSupplierParty"), doc.seller)
    _ubl_party(_cac(root, "AccountingCustomerParty"), doc.buyer, contact=doc.bill_to)
    if doc.payment.iban:
        means = _cac(root, "PaymentMeans")
        _cbc(means, "PaymentMeansCode", "58")  # SEPA credit transfer (UNCL 4461)
        _cbc(means, "PaymentID", doc.number)
        account = _cac(means, "PayeeFinancialAccount")
        _cbc(account, "ID", doc.payment.iban.replace(" ", ""))
        if doc.payment.account_name:
            _cbc(account, "Name", doc.payment.account_name)
        if doc.payment.bic:
            _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", doc.payment.bic)
    if doc.payment.text:
        _cbc(_cac(root, "PaymentTerms"), "Note", doc.payment.text)
    tax_total = _cac(root, "TaxTotal")
    _money(tax_total, "TaxAmount", doc.tax, doc.currency)
    for code, rate, basis, tax in tax_categories(doc):
        subtotal = _cac(tax_total, "TaxSubtotal")
        _money(subtotal, "TaxableAmount", basis, doc.currency)
        _money(subtotal, "TaxAmount", tax, doc.currency)
        _tax_category(_cac(subtotal, "TaxCategory"), code, rate, doc)
    totals = _cac(root, "LegalMonetaryTotal")
    _money(totals, "LineExtensionAmount", doc.subtotal, doc.currency)
    _money(totals, "TaxExclusiveAmount", doc.subtotal, doc.currency)
    _money(totals, "TaxInclusiveAmount", doc.total, doc.currency)
    _money(totals, "PayableAmount", doc.total, doc.currency)
    for item in doc.lines:
        line = _cac(root, f"{kind}Line")
        _cbc(line, "ID", item.line_id)
        section = next((x for x in doc.sections if x.section_id == item.section_id), None)
        if section is not None:
            # The invoice line note (BT-127) names the line's section: its contract.
            _cbc(line, "Note", f"Section {section.section_id}: {section.heading}")
        # A price is never negative (BR-27): a negative line is a negative quantity.
        count, price = (
            (-item.quantity, -item.unit_price)
            if item.unit_price < 0
            else (item.quantity, item.unit_price)
        )
        quantity = "InvoicedQuantity" if invoice else "CreditedQuantity"
        _cbc(line, quantity, _qty(count)).set("unitCode", item.unit)
        _money(line, "LineExtensionAmount", item.amount, doc.currency)
        product = _cac(line, "Item")
        _cbc(product, "Name", item.description[:100] or item.line_id)
        code, rate = ("AE", ZERO) if doc.reverse_charge else _line_category(item)
        _tax_category(_cac(product, "ClassifiedTaxCategory"), code, rate, None)
        _money(_cac(line, "Price"), "PriceAmount", price, doc.currency, exact=True)
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"


#: Peppol BIS Billing 3.0's specification and business process ids.
PEPPOL_CUSTOMIZATION_ID = (
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
)
PEPPOL_PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

_UBL_NS = {
    "Invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "CreditNote": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}
_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

#: Peppol electronic address schemes (EAS) of a VAT number, by country: the EU's and the few
#: neighbours' "VAT number" schemes of Peppol's EAS code list, Italy's Partita IVA (0211) and
#: Finland's VAT identifier (0213). Denmark and Sweden have none (their schemes are company
#: registers), and Peppol has no scheme for an e-mail address (PEPPOL-EN16931-CL008): a party
#: without one has no endpoint.
VAT_ENDPOINT_SCHEMES = {
    "AT": "9914",
    "BE": "9925",
    "BG": "9926",
    "CH": "9927",
    "CY": "9928",
    "CZ": "9929",
    "DE": "9930",
    "EE": "9931",
    "ES": "9920",
    "FI": "0213",
    "FR": "9957",
    "GB": "9932",
    "GR": "9933",
    "HR": "9934",
    "HU": "9910",
    "IE": "9935",
    "IT": "0211",
    "LT": "9937",
    "LU": "9938",
    "LV": "9939",
    "MT": "9943",
    "NL": "9944",
    "PL": "9945",
    "PT": "9946",
    "RO": "9947",
    "SI": "9949",
    "SK": "9950",
}

#: A VAT identifier starts with its country's ISO 3166-1 alpha-2 code (BR-CO-9; Greece's is
#: ``EL``): any other tax id (a US EIN) is the party's legal registration id instead.
_VAT_PREFIX = re.compile(r"[A-Z]{2}")


def _cac(parent: ET.Element, tag: str) -> ET.Element:
    return ET.SubElement(parent, f"{{{_CAC}}}{tag}")


def _cbc(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{_CBC}}}{tag}")
    element.text = text
    return element


def _money(
    parent: ET.Element, tag: str, amount: Decimal, currency: str, *, exact: bool = False
) -> None:
    text = format(amount, "f") if exact else _plain(amount)
    _cbc(parent, tag, text).set("currencyID", currency)


def _tax_category(
    element: ET.Element, code: str, rate: Decimal, doc: InvoiceDocument | None
) -> None:
    _cbc(element, "ID", code)
    _cbc(element, "Percent", _plain(rate))
    if code == "AE" and doc is not None:
        _cbc(element, "TaxExemptionReasonCode", "VATEX-EU-AE")
        _cbc(element, "TaxExemptionReason", _reverse_charge_note(doc))
    _cbc(_cac(element, "TaxScheme"), "ID", "VAT")


def _reverse_charge_note(doc: InvoiceDocument) -> str:
    return next((n for n in doc.notes if n.startswith(REVERSE_CHARGE_PREFIX)), "Reverse charge")


def vat_id(party: Party) -> str | None:
    """The party's VAT identifier: its tax id when that starts with a country code."""
    if party.tax_id and _VAT_PREFIX.match(party.tax_id):
        return party.tax_id
    return None


def endpoint(party: Party) -> tuple[str, str] | None:
    """The party's Peppol endpoint (scheme, id): its VAT number where its country has a
    Peppol VAT scheme, else none."""
    vat = vat_id(party)
    if vat and party.country in VAT_ENDPOINT_SCHEMES:
        return VAT_ENDPOINT_SCHEMES[party.country], vat
    return None


def _ubl_party(parent: ET.Element, party: Party, *, contact: str | None = None) -> None:
    element = _cac(parent, "Party")
    address = endpoint(party)
    if address is not None:
        _cbc(element, "EndpointID", address[1]).set("schemeID", address[0])
    _cbc(_cac(element, "PartyName"), "Name", party.name)
    postal = _cac(element, "PostalAddress")
    # No element is empty (PEPPOL-EN16931-R008): a blank address line is left out.
    street = [line for line in party.address_lines if line.strip()]
    if street:
        _cbc(postal, "StreetName", street[0])
    if len(street) > 1:
        _cbc(postal, "AdditionalStreetName", ", ".join(street[1:]))
    if party.city:
        _cbc(postal, "CityName", party.city)
    if party.postcode:
        _cbc(postal, "PostalZone", party.postcode)
    _cbc(_cac(postal, "Country"), "IdentificationCode", party.country)
    vat = vat_id(party)
    if vat:
        scheme = _cac(element, "PartyTaxScheme")
        _cbc(scheme, "CompanyID", vat)
        _cbc(_cac(scheme, "TaxScheme"), "ID", "VAT")
    legal = _cac(element, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", party.name)
    if party.tax_id and not vat:
        _cbc(legal, "CompanyID", party.tax_id)
    contact = contact.strip() if contact else None
    email = party.email.strip() if party.email else None
    if contact or email:
        person = _cac(element, "Contact")
        if contact:
            _cbc(person, "Name", contact)
        if email:
            _cbc(person, "ElectronicMail", email)
