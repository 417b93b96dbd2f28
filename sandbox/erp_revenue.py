"""ERP stand-in (``/erp/v1``), revenue: entries recognised on a contract, and its balances.

Revenue is posted by the caller (c2c computes it from the contract's revenue treatment); the
ERP keeps the entries and derives the contract balances that ASC 606 / IFRS 15 report: billed
ahead of revenue is a contract liability, revenue ahead of billing a contract asset.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlmodel import Session, col, select

from sandbox.db import Db, find, utcnow
from sandbox.erp import (
    ErpContract,
    ErpCreditNote,
    ErpInvoice,
    ErpPayment,
    ErpRevenueEntry,
)
from sandbox.erp_billing import NOT_ISSUED
from sandbox.erp_contracts import get_contract
from sandbox.errors import duplicate, invalid
from sandbox.money import Money, check_month, round_money
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import (
    Body,
    Key,
    LongText,
    check_amount,
    day,
    dec,
    fingerprint,
    normalised,
    timestamp,
)

router = APIRouter(tags=["erp"])

RevenueMethod = Literal["as_invoiced", "milestone_output", "ratable"]


class RevenueEntryIn(Body):
    entry_id: Key
    period: str
    amount: Money
    method: RevenueMethod
    description: LongText
    recognised_on: date


def revenue_entry_out(entry: ErpRevenueEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "erp_contract_id": entry.erp_contract_id,
        "contract_id": entry.contract_id,
        "period": entry.period,
        "amount": dec(entry.amount),
        "currency": entry.currency,
        "method": entry.method,
        "description": entry.description,
        "recognised_on": day(entry.recognised_on),
        "created_at": timestamp(entry.created_at),
    }


@router.post("/contracts/{erp_contract_id}/revenue", status_code=201, response_model=None)
def post_revenue(
    erp_contract_id: str, body: RevenueEntryIn, db: Db
) -> dict[str, Any] | JSONResponse:
    with db.write() as session:
        contract = get_contract(session, erp_contract_id)
        ccy = contract.currency
        request_hash = fingerprint(
            {
                "erp_contract_id": erp_contract_id,
                **body.model_dump(mode="json"),
                "amount": normalised(body.amount, ccy),
            }
        )
        existing = find(session, ErpRevenueEntry, ErpRevenueEntry.entry_id, body.entry_id)
        if existing is not None:
            if existing.request_hash != request_hash:
                raise duplicate(
                    f"revenue entry {body.entry_id!r} exists with other content",
                    existing.entry_id,
                )
            return JSONResponse(revenue_entry_out(existing), status_code=200)
        try:
            check_month(body.period)
        except ValueError as exc:
            raise invalid("invalid_period", str(exc), "period") from None
        amount = check_amount(body.amount, ccy, "amount", signed=True)
        recognised = _recognised(session, erp_contract_id, ccy)
        if recognised + amount < 0:
            raise invalid(
                "negative_revenue",
                f"revenue recognised to date is {dec(recognised)} {ccy}; "
                f"{dec(amount)} would make it negative",
                "amount",
            )
        entry = ErpRevenueEntry(
            **body.model_dump(exclude={"amount"}),
            amount=amount,
            erp_contract_id=erp_contract_id,
            contract_id=contract.contract_id,
            currency=ccy,
            request_hash=request_hash,
            created_at=utcnow(),
        )
        session.add(entry)
        return revenue_entry_out(entry)


@router.get("/contracts/{erp_contract_id}/revenue")
def list_revenue(
    erp_contract_id: str, db: Db, page: PageQuery, period: str | None = None
) -> dict[str, Any]:
    where = equal_to(
        (ErpRevenueEntry.erp_contract_id, erp_contract_id), (ErpRevenueEntry.period, period)
    )
    with db.read() as session:
        get_contract(session, erp_contract_id)
        return paginate(session, ErpRevenueEntry, page, revenue_entry_out, *where)


@router.get("/contracts/{erp_contract_id}/balances")
def read_balances(erp_contract_id: str, db: Db) -> dict[str, Any]:
    """Billed, recognised, and what the customer owes or holds, from the ERP's own records."""
    with db.read() as session:
        contract = get_contract(session, erp_contract_id)
        return balances(session, contract)


def balances(session: Session, contract: ErpContract) -> dict[str, Any]:
    """The contract's balances; every figure at the contract currency's scale."""
    ccy, contract_id = contract.currency, contract.contract_id
    issued = [
        invoice
        for invoice in session.exec(
            select(ErpInvoice).where(col(ErpInvoice.contract_id) == contract_id)
        ).all()
        if invoice.status not in NOT_ISSUED
    ]
    notes = session.exec(
        select(ErpCreditNote).where(col(ErpCreditNote.contract_id) == contract_id)
    ).all()
    payments = session.exec(
        select(ErpPayment).where(col(ErpPayment.contract_id) == contract_id)
    ).all()
    billed = _total([i.subtotal for i in issued], ccy) - _total([n.subtotal for n in notes], ccy)
    recognised = _recognised(session, contract.erp_contract_id, ccy)
    zero = round_money(Decimal(0), ccy)
    return {
        "contract_id": contract_id,
        "erp_contract_id": contract.erp_contract_id,
        "currency": ccy,
        "billed_to_date": dec(billed),
        "recognised_to_date": dec(recognised),
        "contract_asset": dec(max(zero, recognised - billed)),
        "contract_liability": dec(max(zero, billed - recognised)),
        "receivable": dec(_total([i.balance for i in issued], ccy)),
        "unapplied_cash": dec(
            _total([p.unapplied_amount for p in payments], ccy)
            + _total([n.unapplied_amount for n in notes], ccy)
        ),
    }


def _recognised(session: Session, erp_contract_id: str, currency: str) -> Decimal:
    entries = session.exec(
        select(ErpRevenueEntry).where(col(ErpRevenueEntry.erp_contract_id) == erp_contract_id)
    ).all()
    return _total([e.amount for e in entries], currency)


def _total(amounts: list[Decimal], currency: str) -> Decimal:
    # Amounts are stored as exact text, so they are summed here rather than by SQL.
    return round_money(sum(amounts, Decimal(0)), currency)
