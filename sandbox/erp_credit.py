"""ERP stand-in (``/erp/v1``), corrections and cash application: credit notes, and unapplied
cash or customer credit applied to invoices.

An issued invoice is never edited: a credit note corrects it. The credit first lowers the
invoice's open balance; what the balance cannot absorb (the invoice was paid already) is
customer credit, held on the credit note as ``unapplied_amount`` until it is applied to
another invoice of the same contract, as unapplied cash of a payment is.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field as PydanticField
from sqlmodel import Session, col, select

from sandbox.db import Db, find, get_or_404, get_referenced, next_number, utcnow
from sandbox.erp import ErpCashApplication, ErpCreditNote, ErpInvoice, ErpPayment
from sandbox.erp_billing import (
    NOT_ISSUED,
    InvoiceDocumentLinkIn,
    application_out,
    applications_of,
    get_invoice,
    link_documents,
    settle,
)
from sandbox.errors import duplicate, invalid
from sandbox.money import Money, round_money
from sandbox.paging import Page, PageQuery, equal_to, paginate
from sandbox.schemas import (
    Body,
    Key,
    LongText,
    check_amount,
    check_lines,
    check_sums,
    dec,
    fingerprint,
    normalised,
    timestamp,
)

router = APIRouter(tags=["erp"])

Source = Literal["payment", "credit_note"]


class CreditLineIn(Body):
    line_id: Key
    description: LongText
    amount: Money
    tax_amount: Money
    #: On a consolidated invoice: the section the line credits (required there, refused on
    #: any other invoice).
    section_id: Key | None = None


class CreditNoteIn(Body):
    credit_note_id: Key
    reason: LongText
    lines: list[CreditLineIn] = PydanticField(min_length=1, max_length=1000)
    subtotal: Money
    tax: Money
    total: Money


class ApplicationIn(Body):
    application_id: Key
    invoice_id: str
    amount: Money


def credit_note_out(note: ErpCreditNote, applications: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "credit_note_id": note.credit_note_id,
        "number": note.number,
        "invoice_id": note.invoice_id,
        "contract_id": note.contract_id,
        "currency": note.currency,
        "reason": note.reason,
        "lines": note.lines,
        "subtotal": dec(note.subtotal),
        "tax": dec(note.tax),
        "total": dec(note.total),
        "applied_amount": dec(note.applied_amount),
        "unapplied_amount": dec(note.unapplied_amount),
        "applications": applications,
        "created_at": timestamp(note.created_at),
        "document_url": note.document_url,
        "document_sha256": note.document_sha256,
        "einvoice_url": note.einvoice_url,
        "einvoice_sha256": note.einvoice_sha256,
    }


def _note_out(session: Session, note: ErpCreditNote) -> dict[str, Any]:
    return credit_note_out(note, applications_of(session, "credit_note", note.credit_note_id))


@router.post("/invoices/{invoice_id}/credit-notes", status_code=201, response_model=None)
def create_credit_note(
    invoice_id: str, body: CreditNoteIn, db: Db
) -> dict[str, Any] | JSONResponse:
    with db.write() as session:
        invoice = get_invoice(session, invoice_id)
        ccy = invoice.currency
        request_hash = _credit_note_hash(invoice_id, body, ccy)
        existing = find(session, ErpCreditNote, ErpCreditNote.credit_note_id, body.credit_note_id)
        if existing is not None:
            if existing.request_hash != request_hash:
                raise duplicate(
                    f"credit note {body.credit_note_id!r} exists with other content",
                    existing.credit_note_id,
                )
            return JSONResponse(_note_out(session, existing), status_code=200)
        if invoice.status in NOT_ISSUED:
            raise invalid(
                "invoice_not_issued",
                f"invoice {invoice_id} is {invoice.status}; only an issued invoice is credited",
                "invoice_id",
            )
        total = _check_credit_note(session, body, invoice)
        applied = min(total, invoice.balance)
        invoice.credited_amount += total
        settle(invoice, applied, by_credit=True)
        note = ErpCreditNote(
            credit_note_id=body.credit_note_id,
            number=f"CN-{next_number(session, 'credit_note'):05d}",
            invoice_id=invoice_id,
            contract_id=invoice.contract_id,
            currency=ccy,
            reason=body.reason,
            lines=body.model_dump(mode="json")["lines"],
            subtotal=round_money(body.subtotal, ccy),
            tax=round_money(body.tax, ccy),
            total=total,
            applied_amount=applied,
            unapplied_amount=total - applied,
            request_hash=request_hash,
            created_at=utcnow(),
        )
        session.add_all([invoice, note])
        return credit_note_out(note, [])


@router.get("/credit-notes")
def list_credit_notes(
    db: Db, page: PageQuery, contract_id: str | None = None, invoice_id: str | None = None
) -> dict[str, Any]:
    where = equal_to(
        (ErpCreditNote.contract_id, contract_id), (ErpCreditNote.invoice_id, invoice_id)
    )
    with db.read() as session:
        return paginate(session, ErpCreditNote, page, lambda note: _note_out(session, note), *where)


@router.get("/credit-notes/{credit_note_id}")
def read_credit_note(credit_note_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        return _note_out(session, _credit_note(session, credit_note_id))


@router.put("/credit-notes/{credit_note_id}/document")
def put_credit_note_document_link(
    credit_note_id: str, body: InvoiceDocumentLinkIn, db: Db
) -> dict[str, Any]:
    """Link the credit note to its documents in c2c's archive (a PUT: repeating it changes
    nothing)."""
    with db.write() as session:
        note = _credit_note(session, credit_note_id)
        link_documents(note, body)
        session.add(note)
        return _note_out(session, note)


@router.post("/payments/{payment_id}/applications", status_code=201, response_model=None)
def apply_payment(payment_id: str, body: ApplicationIn, db: Db) -> dict[str, Any] | JSONResponse:
    """Apply unapplied cash of a payment to an issued invoice of its contract."""
    with db.write() as session:
        payment = get_or_404(session, ErpPayment, ErpPayment.payment_id, payment_id, "payment")
        replay = _replay(session, body, "payment", payment_id)
        if replay is not None:
            return replay
        invoice, amount = _check_application(
            session, body, payment.contract_id, payment.currency, payment.unapplied_amount
        )
        payment.applied_amount += amount
        payment.unapplied_amount -= amount
        settle(invoice, amount, by_credit=False)
        application = _application(body, "payment", payment_id, invoice, amount)
        session.add_all([payment, invoice, application])
        return application_out(application)


@router.post("/credit-notes/{credit_note_id}/applications", status_code=201, response_model=None)
def apply_credit(credit_note_id: str, body: ApplicationIn, db: Db) -> dict[str, Any] | JSONResponse:
    """Apply customer credit of a credit note to an issued invoice of its contract."""
    with db.write() as session:
        note = _credit_note(session, credit_note_id)
        replay = _replay(session, body, "credit_note", credit_note_id)
        if replay is not None:
            return replay
        invoice, amount = _check_application(
            session, body, note.contract_id, note.currency, note.unapplied_amount
        )
        note.applied_amount += amount
        note.unapplied_amount -= amount
        settle(invoice, amount, by_credit=True)
        application = _application(body, "credit_note", credit_note_id, invoice, amount)
        session.add_all([note, invoice, application])
        return application_out(application)


@router.get("/payments/{payment_id}/applications")
def list_payment_applications(payment_id: str, db: Db, page: PageQuery) -> dict[str, Any]:
    with db.read() as session:
        get_or_404(session, ErpPayment, ErpPayment.payment_id, payment_id, "payment")
        return _applications_page(session, page, "payment", payment_id)


@router.get("/credit-notes/{credit_note_id}/applications")
def list_credit_applications(credit_note_id: str, db: Db, page: PageQuery) -> dict[str, Any]:
    with db.read() as session:
        _credit_note(session, credit_note_id)
        return _applications_page(session, page, "credit_note", credit_note_id)


def _applications_page(
    session: Session, page: Page, source: Source, source_id: str
) -> dict[str, Any]:
    where = equal_to((ErpCashApplication.source, source), (ErpCashApplication.source_id, source_id))
    return paginate(session, ErpCashApplication, page, application_out, *where)


def _credit_note_hash(invoice_id: str, body: CreditNoteIn, currency: str) -> str:
    return fingerprint(
        {
            "invoice_id": invoice_id,
            "reason": body.reason,
            "lines": [
                [
                    line.line_id,
                    line.description,
                    normalised(line.amount, currency),
                    normalised(line.tax_amount, currency),
                    line.section_id,
                ]
                for line in body.lines
            ],
            "amounts": [normalised(a, currency) for a in (body.subtotal, body.tax, body.total)],
        }
    )


def body_amount(body: CreditNoteIn, field: str) -> Decimal:
    return body.subtotal if field == "subtotal" else body.tax


def _credited(session: Session, invoice: ErpInvoice) -> list[tuple[str, str, Decimal, Decimal]]:
    """(field, what, the invoice's amount, its credit notes' sum) for subtotal and tax: the
    notes of an invoice never credit more than it carried, before tax or in tax."""
    notes = session.exec(
        select(ErpCreditNote).where(col(ErpCreditNote.invoice_id) == invoice.invoice_id)
    ).all()
    return [
        ("subtotal", "before tax", invoice.subtotal, sum((n.subtotal for n in notes), Decimal(0))),
        ("tax", "in tax", invoice.tax, sum((n.tax for n in notes), Decimal(0))),
    ]


def _check_sections(session: Session, body: CreditNoteIn, invoice: ErpInvoice) -> None:
    """A consolidated invoice's credit note credits its sections: every line names one, and
    no section is credited more than it carried, before tax or in tax. Lines of a contract's
    own invoice name no section."""
    sections = {s["section_id"]: s for s in invoice.sections or []}
    for n, line in enumerate(body.lines):
        field = f"lines.{n}.section_id"
        if not sections and line.section_id is not None:
            raise invalid("unknown_section", f"invoice {invoice.invoice_id} has no sections", field)
        if sections and line.section_id not in sections:
            raise invalid(
                "unknown_section",
                f"a line of a consolidated invoice's credit note names one of its sections "
                f"({', '.join(sorted(sections))}), not {line.section_id!r}",
                field,
            )
    if not sections:
        return
    notes = session.exec(
        select(ErpCreditNote).where(col(ErpCreditNote.invoice_id) == invoice.invoice_id)
    ).all()
    earlier = [line for note in notes for line in note.lines or []]
    for section_id in sorted({line.section_id for line in body.lines if line.section_id}):
        section = sections[section_id]
        for field, key in (("subtotal", "amount"), ("tax", "tax_amount")):
            credited = sum(
                (
                    Decimal(str(line[key]))
                    for line in earlier
                    if line.get("section_id") == section_id
                ),
                Decimal(0),
            )
            asked = sum(
                (getattr(line, key) for line in body.lines if line.section_id == section_id),
                Decimal(0),
            )
            carried = Decimal(str(section[field]))
            if asked > carried - credited:
                raise invalid(
                    "exceeds_section",
                    f"section {section_id} of invoice {invoice.invoice_id} can be credited "
                    f"{dec(carried - credited)} {invoice.currency} more {field}, not {dec(asked)}",
                    field,
                )


def _check_credit_note(session: Session, body: CreditNoteIn, invoice: ErpInvoice) -> Decimal:
    """The rules of a credit note, each failure naming its field; answers its total."""
    ccy = invoice.currency
    check_lines(body.lines, ccy)
    check_amount(body.subtotal, ccy, "subtotal")
    check_amount(body.tax, ccy, "tax")
    total = check_amount(body.total, ccy, "total", positive=True)
    check_sums(body.lines, body.subtotal, body.tax, body.total, line_taxes=True)
    for field, amount, of_invoice, credited in _credited(session, invoice):
        if body_amount(body, field) > of_invoice - credited:
            raise invalid(
                "exceeds_invoice",
                f"invoice {invoice.invoice_id} can be credited {dec(of_invoice - credited)} "
                f"{ccy} more {amount}, not {dec(body_amount(body, field))}",
                field,
            )
    _check_sections(session, body, invoice)
    creditable = invoice.total - invoice.credited_amount
    if total > creditable:
        raise invalid(
            "exceeds_invoice",
            f"invoice {invoice.invoice_id} can be credited {dec(creditable)} {ccy} more, "
            f"not {dec(total)}",
            "total",
        )
    return total


def _replay(
    session: Session, body: ApplicationIn, source: Source, source_id: str
) -> JSONResponse | None:
    """The existing application with ``body``'s id: ``200`` if the same, else ``409``."""
    existing = find(
        session, ErpCashApplication, ErpCashApplication.application_id, body.application_id
    )
    if existing is None:
        return None
    same = (existing.source, existing.source_id, existing.invoice_id) == (
        source,
        source_id,
        body.invoice_id,
    ) and existing.amount == body.amount
    if not same:
        raise duplicate(
            f"application {body.application_id!r} exists with another source, invoice or amount",
            existing.application_id,
        )
    return JSONResponse(application_out(existing), status_code=200)


def _check_application(
    session: Session, body: ApplicationIn, contract_id: str, currency: str, available: Decimal
) -> tuple[ErpInvoice, Decimal]:
    """The invoice ``body`` applies to and the amount, once every rule holds."""
    invoice = get_referenced(
        session,
        ErpInvoice,
        ErpInvoice.invoice_id,
        body.invoice_id,
        field="invoice_id",
        kind="invoice",
    )
    if invoice.status in NOT_ISSUED:
        raise invalid(
            "invoice_not_issued", f"invoice {invoice.invoice_id} is {invoice.status}", "invoice_id"
        )
    if invoice.contract_id != contract_id:
        raise invalid(
            "contract_mismatch",
            f"invoice {invoice.invoice_id} belongs to contract {invoice.contract_id}, "
            f"not {contract_id}",
            "invoice_id",
        )
    if invoice.currency != currency:
        raise invalid(
            "currency_mismatch",
            f"invoice {invoice.invoice_id} is in {invoice.currency}, not {currency}",
            "invoice_id",
        )
    amount = check_amount(body.amount, currency, "amount", positive=True)
    if amount > available:
        raise invalid(
            "exceeds_unapplied",
            f"only {dec(available)} {currency} is unapplied",
            "amount",
        )
    if amount > invoice.balance:
        raise invalid(
            "exceeds_balance",
            f"invoice {invoice.invoice_id} has a balance of {dec(invoice.balance)} {currency}",
            "amount",
        )
    return invoice, amount


def _application(
    body: ApplicationIn, source: Source, source_id: str, invoice: ErpInvoice, amount: Decimal
) -> ErpCashApplication:
    return ErpCashApplication(
        application_id=body.application_id,
        source=source,
        source_id=source_id,
        invoice_id=invoice.invoice_id,
        contract_id=invoice.contract_id,
        amount=amount,
        currency=invoice.currency,
        created_at=utcnow(),
    )


def _credit_note(session: Session, credit_note_id: str) -> ErpCreditNote:
    return get_or_404(
        session, ErpCreditNote, ErpCreditNote.credit_note_id, credit_note_id, "credit note"
    )
