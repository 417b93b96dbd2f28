"""Payment gateway stand-in (``/payments/v1``): card or bank payments against ERP invoices.

A payment succeeds at once and sends ``payment.succeeded``; applying the cash in the ERP is
c2c's job, as with a real gateway.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field as PydanticField
from sqlmodel import Field

from sandbox.db import (
    Db,
    DecimalText,
    Row,
    UtcDateTime,
    get_or_404,
    get_referenced,
    next_id,
    utcnow,
)
from sandbox.erp import ErpInvoice
from sandbox.errors import invalid
from sandbox.money import Money
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import Body, Currency, check_amount, dec, timestamp
from sandbox.webhooks import WebhookDispatcher, get_webhooks

router = APIRouter(tags=["payments"])


class PayPayment(Row, table=True):
    __tablename__ = "pay_payment"

    payment_id: str = Field(unique=True)
    invoice_id: str = Field(index=True)
    amount: Decimal = Field(sa_type=DecimalText)
    currency: str
    payer: str | None = None
    status: str = "succeeded"
    created_at: datetime = Field(sa_type=UtcDateTime)


class PaymentIn(Body):
    invoice_id: str
    amount: Money
    currency: Currency
    payer: str | None = PydanticField(default=None, max_length=200)


def payment_out(payment: PayPayment) -> dict[str, Any]:
    return {
        "payment_id": payment.payment_id,
        "invoice_id": payment.invoice_id,
        "amount": dec(payment.amount),
        "currency": payment.currency,
        "payer": payment.payer,
        "status": payment.status,
        "created_at": timestamp(payment.created_at),
    }


@router.post("/payments", status_code=201)
def create_payment(
    body: PaymentIn,
    db: Db,
    webhooks: Annotated[WebhookDispatcher, Depends(get_webhooks)],
) -> dict[str, Any]:
    with db.write() as session:
        invoice = get_referenced(
            session,
            ErpInvoice,
            ErpInvoice.invoice_id,
            body.invoice_id,
            field="invoice_id",
            kind="invoice",
        )
        if body.currency != invoice.currency:
            raise invalid(
                "currency_mismatch",
                f"invoice {invoice.invoice_id} is in {invoice.currency}",
                "currency",
            )
        amount = check_amount(body.amount, body.currency, "amount", positive=True)
        now = utcnow()
        payment = PayPayment(
            **body.model_dump(exclude={"amount"}),
            amount=amount,
            payment_id=next_id(session, "PAY"),
            created_at=now,
        )
        session.add(payment)
        webhooks.emit(
            session,
            "/webhooks/payments",
            "payment.succeeded",
            {
                "payment_id": payment.payment_id,
                "invoice_id": payment.invoice_id,
                "amount": dec(amount),
                "currency": payment.currency,
                "received_on": now.date().isoformat(),
            },
        )
        return payment_out(payment)


@router.get("/payments")
def list_payments(db: Db, page: PageQuery, invoice_id: str | None = None) -> dict[str, Any]:
    where = equal_to((PayPayment.invoice_id, invoice_id))
    with db.read() as session:
        return paginate(session, PayPayment, page, payment_out, *where)


@router.get("/payments/{payment_id}")
def get_payment(payment_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        payment = get_or_404(session, PayPayment, PayPayment.payment_id, payment_id, "payment")
        return payment_out(payment)
