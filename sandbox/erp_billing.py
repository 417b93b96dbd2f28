"""ERP stand-in (``/erp/v1``), billing: invoices, their issue, and payments applied to them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field as PydanticField
from pydantic import StringConstraints
from sqlmodel import Session, col, select

from domain.money import Money, Quantity, round_money
from domain.periods import Period
from sandbox.db import Db, find, get_or_404, get_referenced, next_id, next_number, utcnow
from sandbox.erp import ErpContract, ErpInvoice, ErpPayment
from sandbox.errors import duplicate, invalid
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import (
    Body,
    Currency,
    Key,
    Text,
    check_amount,
    check_unique,
    day,
    dec,
    opt_timestamp,
    timestamp,
)

router = APIRouter(tags=["erp"])

Description = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class InvoiceLineIn(Body):
    line_id: Key
    kind: Text
    description: Description
    role: str | None = None
    quantity: Quantity
    unit_price: Money
    amount: Money
    tax_amount: Money


class InvoiceIn(Body):
    contract_id: str
    erp_contract_id: str
    customer_id: str
    project_id: str
    legal_entity: str
    currency: Currency
    period: str | None = None
    milestone_id: str | None = None
    invoice_date: date
    due_on: date
    lines: list[InvoiceLineIn] = PydanticField(min_length=1, max_length=1000)
    subtotal: Money
    tax: Money
    total: Money


class PaymentIn(Body):
    payment_id: Key
    invoice_id: str
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
        "invoice_date": day(invoice.invoice_date),
        "due_on": day(invoice.due_on),
        "lines": invoice.lines,
        "subtotal": dec(invoice.subtotal),
        "tax": dec(invoice.tax),
        "total": dec(invoice.total),
        "amount_paid": dec(invoice.amount_paid),
        "balance": dec(invoice.balance),
        "issued_at": opt_timestamp(invoice.issued_at),
        "created_at": timestamp(invoice.created_at),
    }


def payment_out(payment: ErpPayment) -> dict[str, Any]:
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
        "created_at": timestamp(payment.created_at),
    }


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
        _check_invoice(body, contract)
        existing = _open_invoice_for(session, body)
        if existing is not None:
            what = f"milestone {body.milestone_id}" if body.milestone_id else body.period
            raise duplicate(
                f"contract {body.contract_id} already has invoice {existing.invoice_id} for {what}",
                existing.invoice_id,
            )
        ccy = body.currency
        invoice = ErpInvoice(
            **body.model_dump(exclude={"lines", "subtotal", "tax", "total"}),
            lines=body.model_dump(mode="json")["lines"],
            subtotal=round_money(body.subtotal, ccy),
            tax=round_money(body.tax, ccy),
            total=round_money(body.total, ccy),
            amount_paid=round_money(Decimal(0), ccy),
            balance=round_money(body.total, ccy),
            invoice_id=next_id(session, "INV"),
            created_at=utcnow(),
        )
        session.add(invoice)
        return invoice_out(invoice)


@router.get("/invoices")
def list_invoices(
    db: Db,
    page: PageQuery,
    contract_id: str | None = None,
    period: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    where = equal_to(
        (ErpInvoice.contract_id, contract_id),
        (ErpInvoice.period, period),
        (ErpInvoice.status, status),
    )
    with db.read() as session:
        return paginate(session, ErpInvoice, page, invoice_out, *where)


@router.get("/invoices/{invoice_id}")
def get_invoice(invoice_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        return invoice_out(_invoice(session, invoice_id))


@router.post("/invoices/{invoice_id}/issue")
def issue_invoice(invoice_id: str, db: Db) -> dict[str, Any]:
    with db.write() as session:
        invoice = _invoice(session, invoice_id)
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
            if existing.amount != body.amount or existing.invoice_id != body.invoice_id:
                raise duplicate(
                    f"payment {body.payment_id!r} exists with another amount or invoice",
                    existing.payment_id,
                )
            return JSONResponse(payment_out(existing), status_code=200)
        invoice = get_referenced(
            session,
            ErpInvoice,
            ErpInvoice.invoice_id,
            body.invoice_id,
            field="invoice_id",
            kind="invoice",
        )
        if invoice.status in ("draft", "void"):
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
        amount = check_amount(body.amount, body.currency, "amount", positive=True)
        applied = min(amount, invoice.balance)
        invoice.amount_paid += applied
        invoice.balance -= applied
        invoice.status = "paid" if invoice.balance == 0 else "partially_paid"
        payment = ErpPayment(
            **body.model_dump(exclude={"amount"}),
            amount=amount,
            applied_amount=applied,
            unapplied_amount=amount - applied,
            contract_id=invoice.contract_id,
            created_at=utcnow(),
        )
        session.add_all([invoice, payment])
        return payment_out(payment)


@router.get("/payments")
def list_payments(
    db: Db, page: PageQuery, invoice_id: str | None = None, contract_id: str | None = None
) -> dict[str, Any]:
    where = equal_to((ErpPayment.invoice_id, invoice_id), (ErpPayment.contract_id, contract_id))
    with db.read() as session:
        return paginate(session, ErpPayment, page, payment_out, *where)


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
            Period.parse(body.period)
        except ValueError as exc:
            raise invalid("invalid_period", str(exc), "period") from None
    if body.due_on < body.invoice_date:
        raise invalid("invalid_dates", "due_on must not be before invoice_date", "due_on")
    ccy = body.currency
    check_unique([line.line_id for line in body.lines], "lines", "line_id")
    for i, line in enumerate(body.lines):
        check_amount(line.amount, ccy, f"lines.{i}.amount")
        check_amount(line.tax_amount, ccy, f"lines.{i}.tax_amount")
    for name in ("subtotal", "tax", "total"):
        check_amount(getattr(body, name), ccy, name)
    lines_sum = sum((line.amount for line in body.lines), Decimal(0))
    if lines_sum != body.subtotal:
        raise invalid(
            "lines_do_not_add_up",
            f"the lines add up to {dec(lines_sum)}, not to the subtotal {dec(body.subtotal)}",
            "subtotal",
        )
    if body.subtotal + body.tax != body.total:
        raise invalid(
            "total_mismatch",
            f"subtotal + tax is {dec(body.subtotal + body.tax)}, not {dec(body.total)}",
            "total",
        )


def _open_invoice_for(session: Session, body: InvoiceIn) -> ErpInvoice | None:
    """The contract's invoice that is not void for the same milestone (or period)."""
    if body.milestone_id is not None:
        key = col(ErpInvoice.milestone_id) == body.milestone_id
    elif body.period is not None:
        key = (col(ErpInvoice.period) == body.period) & col(ErpInvoice.milestone_id).is_(None)
    else:
        return None
    statement = select(ErpInvoice).where(
        col(ErpInvoice.contract_id) == body.contract_id, col(ErpInvoice.status) != "void", key
    )
    return session.exec(statement).first()


def _invoice(session: Session, invoice_id: str) -> ErpInvoice:
    return get_or_404(session, ErpInvoice, ErpInvoice.invoice_id, invoice_id, "invoice")
