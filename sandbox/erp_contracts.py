"""ERP stand-in (``/erp/v1``), contracts: terms, rate card, milestones, and their schedules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlmodel import Session

from domain.money import Money, Quantity
from domain.names import BillingModel
from sandbox.db import Db, find, get_or_404, get_referenced, next_id, utcnow
from sandbox.erp import ErpContract, ErpCustomer, ErpProject, check_entity_currency
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
    opt_dec,
    timestamp,
)

router = APIRouter(tags=["erp"])


class RateIn(Body):
    role: Text
    hourly_rate: Money
    effective_from: date


class MilestoneIn(Body):
    milestone_id: Key
    name: Text
    amount: Money
    due_date: date | None = None


class ContractIn(Body):
    contract_id: Key
    project_id: str
    customer_id: str
    legal_entity: str
    currency: Currency
    billing_model: BillingModel
    start_date: date
    end_date: date
    payment_terms_days: int = PydanticField(ge=0, le=365)
    not_to_exceed: Money | None = None
    contract_value: Money
    rate_card: list[RateIn] = PydanticField(default_factory=list, max_length=500)
    milestones: list[MilestoneIn] = PydanticField(default_factory=list, max_length=500)
    retainer_monthly_amount: Money | None = None
    retainer_included_hours: Quantity | None = None


class _Open(BaseModel):
    """A schedule part whose details are the caller's to choose (kept as sent)."""

    model_config = ConfigDict(extra="allow")


class ScheduleLineIn(_Open):
    kind: Literal["time_and_materials", "milestone", "retainer"]


class BillingScheduleIn(Body):
    frequency: Literal["monthly"]
    bill_on: Literal["period_close"]
    lines: list[ScheduleLineIn] = PydanticField(min_length=1, max_length=100)


class RevenueScheduleIn(_Open):
    method: Literal["as_invoiced", "milestone_output", "ratable"]


def contract_out(contract: ErpContract) -> dict[str, Any]:
    return {
        "erp_contract_id": contract.erp_contract_id,
        "contract_id": contract.contract_id,
        "project_id": contract.project_id,
        "customer_id": contract.customer_id,
        "legal_entity": contract.legal_entity,
        "currency": contract.currency,
        "billing_model": contract.billing_model,
        "start_date": day(contract.start_date),
        "end_date": day(contract.end_date),
        "payment_terms_days": contract.payment_terms_days,
        "not_to_exceed": opt_dec(contract.not_to_exceed),
        "contract_value": dec(contract.contract_value),
        "rate_card": contract.rate_card,
        "milestones": contract.milestones,
        "retainer_monthly_amount": opt_dec(contract.retainer_monthly_amount),
        "retainer_included_hours": opt_dec(contract.retainer_included_hours),
        "billing_schedule": contract.billing_schedule,
        "revenue_schedule": contract.revenue_schedule,
        "status": contract.status,
        "created_at": timestamp(contract.created_at),
    }


def get_contract(session: Session, erp_contract_id: str) -> ErpContract:
    """The contract, or a ``404``."""
    return get_or_404(
        session, ErpContract, ErpContract.erp_contract_id, erp_contract_id, "contract"
    )


@router.post("/contracts", status_code=201)
def create_contract(body: ContractIn, db: Db) -> dict[str, Any]:
    ccy = body.currency
    with db.write() as session:
        existing = find(session, ErpContract, ErpContract.contract_id, body.contract_id)
        if existing is not None:
            raise duplicate(
                f"contract {body.contract_id!r} exists as {existing.erp_contract_id}",
                existing.erp_contract_id,
            )
        get_referenced(
            session,
            ErpProject,
            ErpProject.project_id,
            body.project_id,
            field="project_id",
            kind="project",
        )
        get_referenced(
            session,
            ErpCustomer,
            ErpCustomer.customer_id,
            body.customer_id,
            field="customer_id",
            kind="customer",
        )
        check_entity_currency(session, body.legal_entity, ccy)
        if body.end_date < body.start_date:
            raise invalid("invalid_dates", "end_date must not be before start_date", "end_date")
        check_amount(body.contract_value, ccy, "contract_value")
        _check_optional(body.not_to_exceed, ccy, "not_to_exceed")
        _check_optional(body.retainer_monthly_amount, ccy, "retainer_monthly_amount")
        for i, rate in enumerate(body.rate_card):
            check_amount(rate.hourly_rate, ccy, f"rate_card.{i}.hourly_rate", positive=True)
        for i, milestone in enumerate(body.milestones):
            check_amount(milestone.amount, ccy, f"milestones.{i}.amount", positive=True)
        check_unique([m.milestone_id for m in body.milestones], "milestones", "milestone_id")
        dumped = body.model_dump(mode="json")
        contract = ErpContract(
            **body.model_dump(exclude={"rate_card", "milestones"}),
            rate_card=dumped["rate_card"],
            milestones=dumped["milestones"],
            erp_contract_id=next_id(session, "CTR"),
            created_at=utcnow(),
        )
        session.add(contract)
        return contract_out(contract)


@router.get("/contracts")
def list_contracts(db: Db, page: PageQuery, contract_id: str | None = None) -> dict[str, Any]:
    where = equal_to((ErpContract.contract_id, contract_id))
    with db.read() as session:
        return paginate(session, ErpContract, page, contract_out, *where)


@router.get("/contracts/{erp_contract_id}")
def read_contract(erp_contract_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        return contract_out(get_contract(session, erp_contract_id))


def _replace_schedule(
    db: Db, erp_contract_id: str, field: str, schedule: BaseModel
) -> dict[str, Any]:
    """Replace one of a contract's schedules: a PUT, so repeating it changes nothing."""
    with db.write() as session:
        contract = get_contract(session, erp_contract_id)
        setattr(contract, field, schedule.model_dump(mode="json"))
        session.add(contract)
        return contract_out(contract)


@router.put("/contracts/{erp_contract_id}/billing-schedule")
def put_billing_schedule(erp_contract_id: str, body: BillingScheduleIn, db: Db) -> dict[str, Any]:
    return _replace_schedule(db, erp_contract_id, "billing_schedule", body)


@router.put("/contracts/{erp_contract_id}/revenue-schedule")
def put_revenue_schedule(erp_contract_id: str, body: RevenueScheduleIn, db: Db) -> dict[str, Any]:
    return _replace_schedule(db, erp_contract_id, "revenue_schedule", body)


def _check_optional(amount: Decimal | None, currency: str, field: str) -> None:
    if amount is not None:
        check_amount(amount, currency, field, positive=True)
