"""ERP stand-in (``/erp/v1``), contracts: terms, rate card, milestones, their schedules, and the
amendments that change them.

The rate card is a list of effective-dated revisions: an amendment adds revisions and never
rewrites the rates that priced work already billed.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlmodel import Session

from sandbox.db import Db, find, get_or_404, get_referenced, next_id, utcnow
from sandbox.erp import ErpContract, ErpCustomer, ErpProject, check_entity_currency
from sandbox.errors import duplicate, invalid
from sandbox.money import BillingModel, Money, Quantity
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import (
    Body,
    Currency,
    Key,
    LongText,
    Text,
    check_amount,
    check_unique,
    day,
    dec,
    fingerprint,
    normalised,
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
    #: When a completed milestone is invoiced: at the next period close, or at once.
    milestone_invoicing: Literal["period_close", "on_completion"] | None = None
    lines: list[ScheduleLineIn] = PydanticField(min_length=1, max_length=100)


class MilestoneChangeIn(Body):
    milestone_id: Key
    name: Text | None = None
    amount: Money | None = None
    due_date: date | None = None


class AmendmentIn(Body):
    amendment_id: Key
    effective_date: date
    end_date: date | None = None
    not_to_exceed: Money | None = None
    contract_value: Money | None = None
    rate_card: list[RateIn] = PydanticField(default_factory=list, max_length=500)
    add_milestones: list[MilestoneIn] = PydanticField(default_factory=list, max_length=500)
    change_milestones: list[MilestoneChangeIn] = PydanticField(default_factory=list, max_length=500)
    remove_milestones: list[Key] = PydanticField(default_factory=list, max_length=500)
    reason: LongText


class DocumentLinkIn(Body):
    document_url: str = PydanticField(min_length=1, max_length=2000, pattern=r"^https?://")
    sha256: str = PydanticField(pattern=r"^[0-9a-f]{64}$")


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
        "amendments": [
            {k: v for k, v in a.items() if k != "request_hash"} for a in contract.amendments
        ],
        "status": contract.status,
        "created_at": timestamp(contract.created_at),
        "document_url": contract.document_url,
        "document_sha256": contract.document_sha256,
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


@router.put("/contracts/{erp_contract_id}/document")
def put_document_link(erp_contract_id: str, body: DocumentLinkIn, db: Db) -> dict[str, Any]:
    """Attach the signed document's link to the contract (a PUT: repeating it changes
    nothing)."""
    with db.write() as session:
        contract = get_contract(session, erp_contract_id)
        contract.document_url = body.document_url
        contract.document_sha256 = body.sha256
        session.add(contract)
        return contract_out(contract)


@router.post("/contracts/{erp_contract_id}/amendments", status_code=201, response_model=None)
def amend_contract(
    erp_contract_id: str, body: AmendmentIn, db: Db
) -> dict[str, Any] | JSONResponse:
    """Apply an amendment to the contract's terms, once per ``amendment_id``."""
    with db.write() as session:
        contract = get_contract(session, erp_contract_id)
        request_hash = _amendment_hash(body, contract.currency)
        existing = next(
            (a for a in contract.amendments if a["amendment_id"] == body.amendment_id), None
        )
        if existing is not None:
            if existing["request_hash"] != request_hash:
                raise duplicate(
                    f"amendment {body.amendment_id!r} was applied with other content",
                    body.amendment_id,
                )
            return JSONResponse(contract_out(contract), status_code=200)
        _check_amendment(body, contract)
        _apply_amendment(body, contract)
        # New lists, so that the JSON columns are seen as changed.
        contract.amendments = [
            *contract.amendments,
            {
                "amendment_id": body.amendment_id,
                "effective_date": day(body.effective_date),
                "reason": body.reason,
                "applied_at": timestamp(utcnow()),
                "request_hash": request_hash,
            },
        ]
        session.add(contract)
        return contract_out(contract)


def _amendment_hash(body: AmendmentIn, currency: str) -> str:
    content = body.model_dump(mode="json")
    for name in ("not_to_exceed", "contract_value"):
        amount = getattr(body, name)
        content[name] = None if amount is None else normalised(amount, currency)
    for rate, sent in zip(content["rate_card"], body.rate_card, strict=True):
        rate["hourly_rate"] = normalised(sent.hourly_rate, currency)
    for milestone, sent_m in zip(content["add_milestones"], body.add_milestones, strict=True):
        milestone["amount"] = normalised(sent_m.amount, currency)
    for change, sent_c in zip(content["change_milestones"], body.change_milestones, strict=True):
        if sent_c.amount is not None:
            change["amount"] = normalised(sent_c.amount, currency)
    # Absent when empty: an amendment without them hashes as it did before they existed.
    for name in ("change_milestones", "remove_milestones"):
        if not content[name]:
            del content[name]
    return fingerprint(content)


def _check_amendment(body: AmendmentIn, contract: ErpContract) -> None:
    """The rules of an amendment, each failure naming its field."""
    ccy = contract.currency
    if body.effective_date < contract.start_date:
        raise invalid(
            "invalid_dates",
            f"effective_date must not be before the contract's start {day(contract.start_date)}",
            "effective_date",
        )
    if body.end_date is not None and body.end_date < contract.start_date:
        raise invalid(
            "invalid_dates",
            f"end_date must not be before the contract's start {day(contract.start_date)}",
            "end_date",
        )
    _check_optional(body.not_to_exceed, ccy, "not_to_exceed")
    if body.contract_value is not None:
        check_amount(body.contract_value, ccy, "contract_value")
    seen: set[tuple[str, date]] = set()
    for i, rate in enumerate(body.rate_card):
        check_amount(rate.hourly_rate, ccy, f"rate_card.{i}.hourly_rate", positive=True)
        if rate.effective_from < contract.start_date:
            raise invalid(
                "invalid_dates",
                f"a rate cannot take effect before the contract's start {day(contract.start_date)}",
                f"rate_card.{i}.effective_from",
            )
        if (rate.role, rate.effective_from) in seen:
            raise invalid(
                "duplicate_key",
                f"role {rate.role!r} has two rates from {day(rate.effective_from)}",
                f"rate_card.{i}.effective_from",
            )
        seen.add((rate.role, rate.effective_from))
    check_unique([m.milestone_id for m in body.add_milestones], "add_milestones", "milestone_id")
    existing = {m["milestone_id"] for m in contract.milestones}
    for i, milestone in enumerate(body.add_milestones):
        check_amount(milestone.amount, ccy, f"add_milestones.{i}.amount", positive=True)
        if milestone.milestone_id in existing:
            raise invalid(
                "milestone_exists",
                f"contract {contract.erp_contract_id} has milestone {milestone.milestone_id} "
                "already",
                f"add_milestones.{i}.milestone_id",
            )
    edited = [c.milestone_id for c in body.change_milestones] + list(body.remove_milestones)
    check_unique(edited, "change_milestones", "milestone_id")
    for i, change in enumerate(body.change_milestones):
        _check_optional(change.amount, ccy, f"change_milestones.{i}.amount")
        if change.milestone_id not in existing:
            raise invalid(
                "unknown_milestone",
                f"contract {contract.erp_contract_id} has no milestone {change.milestone_id}",
                f"change_milestones.{i}.milestone_id",
            )
    for i, mid in enumerate(body.remove_milestones):
        if mid not in existing:
            raise invalid(
                "unknown_milestone",
                f"contract {contract.erp_contract_id} has no milestone {mid}",
                f"remove_milestones.{i}",
            )


def _apply_amendment(body: AmendmentIn, contract: ErpContract) -> None:
    dumped = body.model_dump(mode="json")
    if dumped["rate_card"]:
        # A revision for a role and date that exists replaces it; every other one is kept.
        replaced = {(r["role"], r["effective_from"]) for r in dumped["rate_card"]}
        kept = [r for r in contract.rate_card if (r["role"], r["effective_from"]) not in replaced]
        contract.rate_card = [*kept, *dumped["rate_card"]]
    if dumped["change_milestones"] or dumped["remove_milestones"]:
        changes = {c.pop("milestone_id"): c for c in dumped["change_milestones"]}
        removed = set(dumped["remove_milestones"])
        contract.milestones = [
            {**m, **{k: v for k, v in changes.get(m["milestone_id"], {}).items() if v is not None}}
            for m in contract.milestones
            if m["milestone_id"] not in removed
        ]
    if dumped["add_milestones"]:
        contract.milestones = [*contract.milestones, *dumped["add_milestones"]]
    if body.end_date is not None:
        contract.end_date = body.end_date
    if body.not_to_exceed is not None:
        contract.not_to_exceed = body.not_to_exceed
    if body.contract_value is not None:
        contract.contract_value = body.contract_value


def _check_optional(amount: Decimal | None, currency: str, field: str) -> None:
    if amount is not None:
        check_amount(amount, currency, field, positive=True)
