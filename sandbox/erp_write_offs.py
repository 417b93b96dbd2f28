"""ERP stand-in (``/erp/v1``), write-offs: work of a contract above its not-to-exceed cap that
the firm decided not to bill, recorded for finance (the work's cost stays in the books, the
revenue it would have earned never comes).

A write-off's id is the caller's: the same write-off sent again (on any later day) is
answered as it is, and the same id with another amount, period or reason is a ``409``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlmodel import col, select

from sandbox.db import Db, find, utcnow
from sandbox.erp import ErpContract, ErpWriteOff
from sandbox.errors import duplicate, invalid
from sandbox.money import Money, check_month
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import (
    Body,
    Currency,
    Key,
    LongText,
    Text,
    check_amount,
    day,
    dec,
    fingerprint,
    normalised,
    timestamp,
)

router = APIRouter(tags=["erp"])


class WriteOffIn(Body):
    write_off_id: Key
    contract_id: Key
    erp_contract_id: str | None = None
    erp_project_id: str | None = None
    legal_entity: str
    period: str
    amount: Money
    currency: Currency
    reason: LongText
    operator: Text
    written_off_on: date


def write_off_out(row: ErpWriteOff) -> dict[str, Any]:
    return {
        "write_off_id": row.write_off_id,
        "contract_id": row.contract_id,
        "erp_contract_id": row.erp_contract_id,
        "period": row.period,
        "amount": dec(row.amount),
        "currency": row.currency,
        "reason": row.reason,
        "operator": row.operator,
        "written_off_on": day(row.written_off_on),
        "created_at": timestamp(row.created_at),
    }


@router.post("/write-offs", status_code=201, response_model=None)
def record_write_off(body: WriteOffIn, db: Db) -> dict[str, Any] | JSONResponse:
    with db.write() as session:
        contract = session.exec(
            select(ErpContract).where(col(ErpContract.contract_id) == body.contract_id)
        ).first()
        if contract is None:
            raise invalid(
                "unknown_contract", f"the ERP has no contract {body.contract_id!r}", "contract_id"
            )
        ccy = contract.currency
        request_hash = fingerprint(
            {
                # The day is when it was first sent: a later repeat (a reset's) is the same.
                **body.model_dump(
                    mode="json", exclude={"erp_project_id", "legal_entity", "written_off_on"}
                ),
                "erp_contract_id": contract.erp_contract_id,
                "amount": normalised(body.amount, ccy),
            }
        )
        existing = find(session, ErpWriteOff, ErpWriteOff.write_off_id, body.write_off_id)
        if existing is not None:
            if existing.request_hash != request_hash:
                raise duplicate(
                    f"write-off {body.write_off_id!r} exists with other content",
                    existing.write_off_id,
                )
            return JSONResponse(write_off_out(existing), status_code=200)
        if body.erp_contract_id is not None and body.erp_contract_id != contract.erp_contract_id:
            raise invalid(
                "contract_mismatch",
                f"contract {body.contract_id!r} is {contract.erp_contract_id} in the ERP",
                "erp_contract_id",
            )
        if body.currency != ccy:
            raise invalid(
                "currency_mismatch",
                f"the contract is billed in {ccy}, not {body.currency}",
                "currency",
            )
        try:
            check_month(body.period)
        except ValueError as exc:
            raise invalid("invalid_period", str(exc), "period") from None
        amount = check_amount(body.amount, ccy, "amount", positive=True)
        row = ErpWriteOff(
            write_off_id=body.write_off_id,
            contract_id=body.contract_id,
            erp_contract_id=contract.erp_contract_id,
            period=body.period,
            amount=amount,
            currency=ccy,
            reason=body.reason,
            operator=body.operator,
            written_off_on=body.written_off_on,
            request_hash=request_hash,
            created_at=utcnow(),
        )
        session.add(row)
        return write_off_out(row)


@router.get("/write-offs")
def list_write_offs(db: Db, page: PageQuery, contract_id: str | None = None) -> dict[str, Any]:
    where = equal_to((ErpWriteOff.contract_id, contract_id))
    with db.read() as session:
        return paginate(session, ErpWriteOff, page, write_off_out, *where)
