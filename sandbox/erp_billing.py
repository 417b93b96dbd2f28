"""ERP stand-in (``/erp/v1``), billing: invoices, their issue, and payments applied to them.

An invoice's ``balance`` is ``total - amount_paid - credit_applied``: cash lowers it through
``amount_paid``, credit notes and applied customer credit through ``credit_applied``. The
settlement helpers here are shared with ``sandbox.erp_credit``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field as PydanticField
from sqlalchemy import or_
from sqlmodel import Session, col, select

from sandbox.db import Db, find, get_or_404, get_referenced, next_id, next_number, utcnow
from sandbox.erp import (
    ErpCashApplication,
    ErpContract,
    ErpCreditNote,
    ErpInvoice,
    ErpLegalEntity,
    ErpPayment,
)
from sandbox.errors import duplicate, invalid
from sandbox.money import Money, Quantity, check_month, round_money
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import (
    Body,
    Currency,
    Key,
    LongText,
    Text,
    check_amount,
    check_lines,
    check_sums,
    day,
    dec,
    opt_dec,
    opt_timestamp,
    timestamp,
)

router = APIRouter(tags=["erp"])

#: Statuses of an invoice that was never issued or was cancelled: nothing settles against it.
NOT_ISSUED = frozenset({"draft", "void"})
#: The functional-currency reporting fields, given all together or not at all.
FUNCTIONAL_FIELDS = (
    "functional_currency",
    "exchange_rate",
    "functional_subtotal",
    "functional_tax",
    "functional_total",
)


class InvoiceLineIn(Body):
    line_id: Key
    kind: Text
    description: LongText
    role: str | None = None
    quantity: Quantity
    unit_price: Money
    amount: Money
    tax_amount: Money
    #: On a consolidated invoice: the section (one contract's part) the line belongs to.
    section_id: Key | None = None


class BillToIn(Body):
    name: Text
    email: str | None = PydanticField(default=None, max_length=254)
    address: LongText | None = None


class InvoiceSectionIn(Body):
    """One contract's part of a consolidated invoice (one invoice for several contracts of a
    customer): its lines are the invoice's lines that name it."""

    section_id: Key
    contract_id: str
    erp_contract_id: str
    subtotal: Money
    tax: Money
    total: Money


class InvoiceIn(Body):
    contract_id: str
    erp_contract_id: str
    customer_id: str
    project_id: str
    legal_entity: str
    currency: Currency
    period: str | None = None
    milestone_id: str | None = None
    reference: Key | None = None
    invoice_date: date
    due_on: date
    lines: list[InvoiceLineIn] = PydanticField(min_length=1, max_length=1000)
    subtotal: Money
    tax: Money
    total: Money
    functional_currency: Currency | None = None
    exchange_rate: Money | None = None
    functional_subtotal: Money | None = None
    functional_tax: Money | None = None
    functional_total: Money | None = None
    notes: list[LongText] = PydanticField(default_factory=list, max_length=10)
    #: The customer's purchase order number and the contact the invoice is addressed to.
    po_number: str | None = PydanticField(default=None, min_length=1, max_length=64)
    bill_to: BillToIn | None = None
    #: A consolidated invoice's sections; ``contract_id`` then names the customer's billing
    #: (not an ERP contract) and every line names its section.
    sections: list[InvoiceSectionIn] | None = PydanticField(
        default=None, min_length=1, max_length=200
    )


class PaymentIn(Body):
    payment_id: Key
    invoice_id: str | None = None
    contract_id: str | None = None
    amount: Money
    currency: Currency
    received_on: date
    reference: str | None = PydanticField(default=None, max_length=200)


def invoice_out(invoice: ErpInvoice) -> dict[str, Any]:
    return {
        "invoice_id": invoice.invoice_id,
        "number": invoice.number,
        "status": invoice.status,
        "contract_id": invoice.contract_id,
        "erp_contract_id": invoice.erp_contract_id,
        "customer_id": invoice.customer_id,
        "project_id": invoice.project_id,
        "legal_entity": invoice.legal_entity,
        "currency": invoice.currency,
        "period": invoice.period,
        "milestone_id": invoice.milestone_id,
        "reference": invoice.reference,
        "invoice_date": day(invoice.invoice_date),
        "due_on": day(invoice.due_on),
        "lines": invoice.lines,
        "subtotal": dec(invoice.subtotal),
        "tax": dec(invoice.tax),
        "total": dec(invoice.total),
        "amount_paid": dec(invoice.amount_paid),
        "credited_amount": dec(invoice.credited_amount),
        "credit_applied": dec(invoice.credit_applied),
        "balance": dec(invoice.balance),
        "functional_currency": invoice.functional_currency,
        "exchange_rate": opt_dec(invoice.exchange_rate),
        "functional_subtotal": opt_dec(invoice.functional_subtotal),
        "functional_tax": opt_dec(invoice.functional_tax),
        "functional_total": opt_dec(invoice.functional_total),
        "notes": invoice.notes or [],
        "po_number": invoice.po_number,
        "bill_to": invoice.bill_to,
        "issued_at": opt_timestamp(invoice.issued_at),
        "created_at": timestamp(invoice.created_at),
        "document_url": invoice.document_url,
        "document_sha256": invoice.document_sha256,
        "einvoice_url": invoice.einvoice_url,
        "einvoice_sha256": invoice.einvoice_sha256,
        "sections": invoice.sections,
    }


def application_out(application: ErpCashApplication) -> dict[str, Any]:
    source_id = application.source_id
    return {
        "application_id": application.application_id,
        "source": application.source,
        "payment_id": source_id if application.source == "payment" else None,
        "credit_note_id": source_id if application.source == "credit_note" else None,
        "invoice_id": application.invoice_id,
        "contract_id": application.contract_id,
        "amount": dec(application.amount),
        "currency": application.currency,
        "created_at": timestamp(application.created_at),
    }


def applications_of(session: Session, source: str, source_id: str) -> list[dict[str, Any]]:
    """The applications made from one payment or credit note, oldest first."""
    rows = session.exec(
        select(ErpCashApplication)
        .where(
            col(ErpCashApplication.source) == source,
            col(ErpCashApplication.source_id) == source_id,
        )
        .order_by(col(ErpCashApplication.id))
    ).all()
    return [application_out(a) for a in rows]


def payment_out(payment: ErpPayment, applications: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "payment_id": payment.payment_id,
        "invoice_id": payment.invoice_id,
        "contract_id": payment.contract_id,
        "amount": dec(payment.amount),
        "applied_amount": dec(payment.applied_amount),
        "unapplied_amount": dec(payment.unapplied_amount),
        "currency": payment.currency,
        "received_on": day(payment.received_on),
        "reference": payment.reference,
        "applications": applications,
        "created_at": timestamp(payment.created_at),
    }


def payments_out(session: Session) -> Callable[[ErpPayment], dict[str, Any]]:
    """A serializer of payments that reads each one's applications in ``session``."""
    return lambda payment: payment_out(
        payment, applications_of(session, "payment", payment.payment_id)
    )


def get_invoice(session: Session, invoice_id: str) -> ErpInvoice:
    """The invoice, or a ``404``."""
    return get_or_404(session, ErpInvoice, ErpInvoice.invoice_id, invoice_id, "invoice")


def refresh_status(invoice: ErpInvoice) -> None:
    """The status of an issued invoice after cash or credit changed its balance.

    Fully credited wins over paid; credit applied without cash leaves it ``issued`` until
    its balance is zero, since nobody paid anything.
    """
    if invoice.status in NOT_ISSUED:
        return
    if invoice.credited_amount > 0 and invoice.credited_amount == invoice.total:
        invoice.status = "credited"
    elif invoice.balance == 0:
        invoice.status = "paid"
    elif invoice.amount_paid > 0:
        invoice.status = "partially_paid"
    else:
        invoice.status = "issued"


def settle(invoice: ErpInvoice, amount: Decimal, *, by_credit: bool) -> None:
    """Lower the invoice's balance by ``amount`` of cash or of credit (at most its balance)."""
    if by_credit:
        invoice.credit_applied += amount
    else:
        invoice.amount_paid += amount
    invoice.balance -= amount
    refresh_status(invoice)


@router.post("/invoices", status_code=201)
def create_invoice(body: InvoiceIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        contract = get_referenced(
            session,
            ErpContract,
            ErpContract.erp_contract_id,
            body.erp_contract_id,
            field="erp_contract_id",
            kind="contract",
        )
        if body.sections is None:
            _check_invoice(body, contract)
        else:
            _check_consolidated(session, body)
        functional = _check_functional(session, body)
        reference = _reference(body)
        existing = _open_invoice_for(session, body.contract_id, reference)
        if existing is not None:
            raise duplicate(
                f"contract {body.contract_id} already has invoice {existing.invoice_id} "
                f"for {reference}",
                existing.invoice_id,
            )
        ccy = body.currency
        zero = round_money(Decimal(0), ccy)
        invoice = ErpInvoice(
            **body.model_dump(
                exclude={"lines", "subtotal", "tax", "total", "reference", "bill_to", "sections"}
            ),
            bill_to=body.bill_to.model_dump(exclude_none=True) if body.bill_to else None,
            reference=reference,
            lines=body.model_dump(mode="json", exclude_none=True)["lines"],
            sections=body.model_dump(mode="json")["sections"],
            subtotal=round_money(body.subtotal, ccy),
            tax=round_money(body.tax, ccy),
            total=round_money(body.total, ccy),
            amount_paid=zero,
            credited_amount=zero,
            credit_applied=zero,
            balance=round_money(body.total, ccy),
            invoice_id=next_id(session, "INV"),
            created_at=utcnow(),
        )
        invoice.sqlmodel_update(functional)  # at the functional currency's scale
        session.add(invoice)
        return invoice_out(invoice)


@router.get("/invoices")
def list_invoices(
    db: Db,
    page: PageQuery,
    contract_id: str | None = None,
    period: str | None = None,
    status: str | None = None,
    reference: str | None = None,
    milestone_id: str | None = None,
) -> dict[str, Any]:
    where = equal_to(
        (ErpInvoice.contract_id, contract_id),
        (ErpInvoice.period, period),
        (ErpInvoice.status, status),
        (ErpInvoice.reference, reference),
        (ErpInvoice.milestone_id, milestone_id),
    )
    with db.read() as session:
        return paginate(session, ErpInvoice, page, invoice_out, *where)


@router.get("/invoices/{invoice_id}")
def read_invoice(invoice_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        return invoice_out(get_invoice(session, invoice_id))


class InvoiceDocumentLinkIn(Body):
    document_url: str = PydanticField(min_length=1, max_length=2000, pattern=r"^https?://")
    sha256: str = PydanticField(pattern=r"^[0-9a-f]{64}$")
    einvoice_url: str | None = PydanticField(
        default=None, min_length=1, max_length=2000, pattern=r"^https?://"
    )
    einvoice_sha256: str | None = PydanticField(default=None, pattern=r"^[0-9a-f]{64}$")


def link_documents(record: ErpInvoice | ErpCreditNote, body: InvoiceDocumentLinkIn) -> None:
    """Set an invoice's or credit note's links to its documents (and their hashes)."""
    record.document_url = body.document_url
    record.document_sha256 = body.sha256
    record.einvoice_url = body.einvoice_url
    record.einvoice_sha256 = body.einvoice_sha256


@router.put("/invoices/{invoice_id}/document")
def put_invoice_document_link(
    invoice_id: str, body: InvoiceDocumentLinkIn, db: Db
) -> dict[str, Any]:
    """Link the invoice to its documents in c2c's archive (a PUT: repeating it changes
    nothing)."""
    with db.write() as session:
        invoice = get_invoice(session, invoice_id)
        link_documents(invoice, body)
        session.add(invoice)
        return invoice_out(invoice)


@router.post("/invoices/{invoice_id}/issue")
def issue_invoice(invoice_id: str, db: Db) -> dict[str, Any]:
    with db.write() as session:
        invoice = get_invoice(session, invoice_id)
        if invoice.status == "void":
            raise invalid("invoice_void", f"invoice {invoice_id} is void")
        if invoice.status == "draft":
            year = invoice.invoice_date.year
            seq = next_number(session, f"invoice:{invoice.legal_entity}:{year}")
            invoice.number = f"{invoice.legal_entity}-{year}-{seq:06d}"
            invoice.status = "issued"
            invoice.issued_at = utcnow()
            session.add(invoice)
        return invoice_out(invoice)


@router.post("/payments", status_code=201, response_model=None)
def create_payment(body: PaymentIn, db: Db) -> dict[str, Any] | JSONResponse:
    with db.write() as session:
        existing = find(session, ErpPayment, ErpPayment.payment_id, body.payment_id)
        if existing is not None:
            if not _same_payment(existing, body):
                raise duplicate(
                    f"payment {body.payment_id!r} exists with another amount, currency, "
                    "invoice or contract",
                    existing.payment_id,
                )
            return JSONResponse(payments_out(session)(existing), status_code=200)
        invoice, contract_id = _payment_target(session, body)
        amount = check_amount(body.amount, body.currency, "amount", positive=True)
        applied = min(amount, invoice.balance) if invoice is not None else Decimal(0)
        if invoice is not None:
            settle(invoice, applied, by_credit=False)
            session.add(invoice)
        payment = ErpPayment(
            **body.model_dump(exclude={"amount", "contract_id"}),
            amount=amount,
            applied_amount=round_money(applied, body.currency),
            unapplied_amount=amount - applied,
            contract_id=contract_id,
            created_at=utcnow(),
        )
        session.add(payment)
        return payment_out(payment, [])


@router.get("/payments")
def list_payments(
    db: Db, page: PageQuery, invoice_id: str | None = None, contract_id: str | None = None
) -> dict[str, Any]:
    """Payments of a contract, or applied to an invoice: on receipt or by a later application."""
    where = equal_to((ErpPayment.contract_id, contract_id))
    if invoice_id is not None:
        applied_later = select(ErpCashApplication.source_id).where(
            col(ErpCashApplication.source) == "payment",
            col(ErpCashApplication.invoice_id) == invoice_id,
        )
        where.append(
            or_(
                col(ErpPayment.invoice_id) == invoice_id,
                col(ErpPayment.payment_id).in_(applied_later),
            )
        )
    with db.read() as session:
        return paginate(session, ErpPayment, page, payments_out(session), *where)


@router.get("/payments/{payment_id}")
def read_payment(payment_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        payment = get_or_404(session, ErpPayment, ErpPayment.payment_id, payment_id, "payment")
        return payments_out(session)(payment)


def _same_payment(existing: ErpPayment, body: PaymentIn) -> bool:
    """Whether ``body`` repeats the payment (the contract is compared only when given)."""
    return (
        existing.amount == body.amount
        and existing.currency == body.currency
        and existing.invoice_id == body.invoice_id
        and body.contract_id in (None, existing.contract_id)
    )


def _payment_target(session: Session, body: PaymentIn) -> tuple[ErpInvoice | None, str]:
    """The invoice a payment settles (``None`` for unapplied cash) and its contract."""
    if body.invoice_id is None:
        if body.contract_id is None:
            raise invalid(
                "contract_required",
                "a payment without invoice_id needs the contract_id it is held for",
                "contract_id",
            )
        contract = get_referenced(
            session,
            ErpContract,
            ErpContract.contract_id,
            body.contract_id,
            field="contract_id",
            kind="contract",
        )
        if body.currency != contract.currency:
            raise invalid(
                "currency_mismatch",
                f"contract {contract.contract_id} is in {contract.currency}",
                "currency",
            )
        return None, contract.contract_id
    invoice = get_referenced(
        session,
        ErpInvoice,
        ErpInvoice.invoice_id,
        body.invoice_id,
        field="invoice_id",
        kind="invoice",
    )
    if body.contract_id is not None and body.contract_id != invoice.contract_id:
        raise invalid(
            "contract_mismatch",
            f"invoice {invoice.invoice_id} belongs to contract {invoice.contract_id}",
            "contract_id",
        )
    if invoice.status in NOT_ISSUED:
        raise invalid(
            "invoice_not_issued",
            f"invoice {invoice.invoice_id} is {invoice.status}",
            "invoice_id",
        )
    if body.currency != invoice.currency:
        raise invalid(
            "currency_mismatch",
            f"invoice {invoice.invoice_id} is in {invoice.currency}",
            "currency",
        )
    return invoice, invoice.contract_id


def _check_invoice(body: InvoiceIn, contract: ErpContract) -> None:
    """The business rules of a new invoice, each failure naming its field."""
    if body.contract_id != contract.contract_id:
        raise invalid(
            "contract_mismatch",
            f"{body.erp_contract_id} is the ERP contract of {contract.contract_id}",
            "contract_id",
        )
    if body.currency != contract.currency:
        raise invalid(
            "currency_mismatch",
            f"contract {contract.contract_id} is in {contract.currency}",
            "currency",
        )
    if contract.billing_schedule is None:
        raise invalid(
            "billing_schedule_missing",
            f"contract {contract.erp_contract_id} has no billing schedule",
            "erp_contract_id",
        )
    if contract.revenue_schedule is None:
        raise invalid(
            "revenue_schedule_missing",
            f"contract {contract.erp_contract_id} has no revenue schedule",
            "erp_contract_id",
        )
    if body.period is not None:
        try:
            check_month(body.period)
        except ValueError as exc:
            raise invalid("invalid_period", str(exc), "period") from None
    _check_figures(body)


def _check_figures(body: InvoiceIn) -> None:
    """The dates and amounts of any invoice: due after it is dated, lines adding up."""
    if body.due_on < body.invoice_date:
        raise invalid("invalid_dates", "due_on must not be before invoice_date", "due_on")
    ccy = body.currency
    check_lines(body.lines, ccy)
    for name in ("subtotal", "tax", "total"):
        check_amount(getattr(body, name), ccy, name)
    check_sums(body.lines, body.subtotal, body.tax, body.total)


def _check_consolidated(session: Session, body: InvoiceIn) -> None:
    """The rules of a consolidated invoice: every section's ERP contract is the named
    contract's, of the invoice's customer and currency; every line names a section, and each
    section's figures are its lines'."""
    sections = body.sections or []
    ids = [s.section_id for s in sections]
    if len(set(ids)) != len(ids):
        raise invalid("duplicate_section", "section ids must be unique", "sections")
    for n, section in enumerate(sections):
        field = f"sections.{n}"
        contract = get_referenced(
            session,
            ErpContract,
            ErpContract.erp_contract_id,
            section.erp_contract_id,
            field=f"{field}.erp_contract_id",
            kind="contract",
        )
        if contract.contract_id != section.contract_id:
            raise invalid(
                "contract_mismatch",
                f"{section.erp_contract_id} is the ERP contract of {contract.contract_id}",
                f"{field}.contract_id",
            )
        if contract.currency != body.currency:
            raise invalid(
                "currency_mismatch",
                f"contract {contract.contract_id} is in {contract.currency}",
                f"{field}.erp_contract_id",
            )
        if contract.customer_id != body.customer_id:
            raise invalid(
                "customer_mismatch",
                f"contract {contract.contract_id} bills customer {contract.customer_id}",
                f"{field}.erp_contract_id",
            )
        lines = [line for line in body.lines if line.section_id == section.section_id]
        if not lines:
            raise invalid("empty_section", f"no line names {section.section_id}", field)
        check_sums(lines, section.subtotal, section.tax, section.total)
    unknown = next((line for line in body.lines if line.section_id not in ids), None)
    if unknown is not None:
        raise invalid(
            "unknown_section", f"line {unknown.line_id} names no section of the invoice", "lines"
        )
    _check_figures(body)


def _check_functional(session: Session, body: InvoiceIn) -> dict[str, Decimal]:
    """The functional-currency reporting figures: all or none, in the legal entity's
    functional currency, at its minor units, and adding up like the invoice's own.

    Returns:
        The three amounts at the functional currency's scale (none when none was given).
    """
    given = [name for name in FUNCTIONAL_FIELDS if getattr(body, name) is not None]
    if not given:
        return {}
    missing = next((name for name in FUNCTIONAL_FIELDS if name not in given), None)
    if missing is not None:
        raise invalid(
            "functional_amounts_incomplete",
            f"{', '.join(FUNCTIONAL_FIELDS)} are given together or not at all",
            missing,
        )
    functional, rate = body.functional_currency, body.exchange_rate
    assert functional is not None and rate is not None  # all given, checked above
    entity = get_referenced(
        session,
        ErpLegalEntity,
        ErpLegalEntity.code,
        body.legal_entity,
        field="legal_entity",
        kind="legal_entity",
    )
    if functional != entity.functional_currency:
        raise invalid(
            "functional_currency_mismatch",
            f"the functional currency of {entity.code} is {entity.functional_currency}",
            "functional_currency",
        )
    if rate <= 0:
        raise invalid("invalid_rate", "must be greater than zero", "exchange_rate")
    if functional == body.currency and rate != 1:
        raise invalid(
            "invalid_rate",
            "must be 1 when the invoice is in the functional currency",
            "exchange_rate",
        )
    f_subtotal, f_tax, f_total = (
        check_amount(getattr(body, name), functional, name) for name in FUNCTIONAL_FIELDS[2:]
    )
    if f_subtotal + f_tax != f_total:
        raise invalid(
            "total_mismatch",
            f"functional_subtotal + functional_tax is {dec(f_subtotal + f_tax)}, "
            f"not {dec(f_total)}",
            "functional_total",
        )
    return {
        "functional_subtotal": f_subtotal,
        "functional_tax": f_tax,
        "functional_total": f_total,
    }


def _reference(body: InvoiceIn) -> str | None:
    """The invoice's business key: as given, else ``milestone:{id}`` or the period.

    Without a reference the ERP keeps its older rule, one invoice per milestone or else per
    period; deriving the same keys makes both rules one, so an invoice created either way
    is found (and refused twice) by the same key.
    """
    if body.reference is not None:
        return body.reference
    if body.milestone_id is not None:
        return f"milestone:{body.milestone_id}"
    return body.period


def _open_invoice_for(
    session: Session, contract_id: str, reference: str | None
) -> ErpInvoice | None:
    """The contract's invoice that is not void with the same reference."""
    if reference is None:
        return None
    statement = select(ErpInvoice).where(
        col(ErpInvoice.contract_id) == contract_id,
        col(ErpInvoice.status) != "void",
        col(ErpInvoice.reference) == reference,
    )
    return session.exec(statement).first()
