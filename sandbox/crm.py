"""CRM stand-in (``/crm/v1``): accounts with a parent hierarchy, and their activities.

A change to an account (``PATCH /accounts/{id}``) is reported to c2c as a signed
``account.updated`` webhook (``/webhooks/crm``) carrying the fields that changed.

Activities are the account's timeline (meetings, calls, dunning reminders). One may name the
records it is about in ``related_to`` (``{"invoice_id": ..., "contract_id": ...}``) and carry
an ``activity_id`` chosen by the caller: the same id with the same content answers ``200``
and the activity as it is, with other content ``409``, as real CRMs do with external ids.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import Field as PydanticField
from sqlalchemy import JSON
from sqlmodel import Field, Session, col

from sandbox.db import Db, Row, UtcDateTime, find, get_or_404, get_referenced, next_id, utcnow
from sandbox.errors import duplicate, invalid
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import Body, Country, Email, Key, Text, fingerprint, timestamp
from sandbox.webhooks import WebhookDispatcher, get_webhooks

router = APIRouter(tags=["crm"])


class CrmAccount(Row, table=True):
    __tablename__ = "crm_account"

    crm_account_id: str = Field(unique=True)
    name: str
    parent_crm_account_id: str | None = Field(default=None, index=True)
    country: str
    region: str | None = None
    tax_id: str | None = None
    billing_email: str | None = None
    status: str = "active"
    created_at: datetime = Field(sa_type=UtcDateTime)


class CrmActivity(Row, table=True):
    __tablename__ = "crm_activity"

    activity_id: str = Field(unique=True)
    crm_account_id: str = Field(index=True)
    type: str = Field(index=True)
    subject: str
    body: str | None = None
    related_to: dict[str, str] | None = Field(default=None, sa_type=JSON)
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    request_hash: str


class AccountIn(Body):
    crm_account_id: Key
    name: Text
    parent_crm_account_id: Key | None = None
    country: Country
    region: str | None = PydanticField(default=None, min_length=1, max_length=10)
    tax_id: str | None = PydanticField(default=None, max_length=40)
    billing_email: Email | None = None


class AccountChangeIn(Body):
    """Fields of an account to change; a field left out is unchanged, ``null`` clears one."""

    name: Text | None = None
    parent_crm_account_id: Key | None = None
    country: Country | None = None
    region: str | None = PydanticField(default=None, min_length=1, max_length=10)
    tax_id: str | None = PydanticField(default=None, max_length=40)
    billing_email: Email | None = None
    status: Literal["active", "inactive"] | None = None


class RelatedToIn(Body):
    """The records an activity is about."""

    invoice_id: Key | None = None
    contract_id: Key | None = None


class ActivityIn(Body):
    activity_id: Key | None = None
    type: str = PydanticField(min_length=1, max_length=40)
    subject: Text
    body: str | None = PydanticField(default=None, max_length=10_000)
    related_to: RelatedToIn | None = None
    occurred_at: datetime | None = None
    #: The day it happened, for activities without a time (a reminder sent that day).
    occurred_on: date | None = None


def account_out(account: CrmAccount) -> dict[str, Any]:
    return {
        "crm_account_id": account.crm_account_id,
        "name": account.name,
        "parent_crm_account_id": account.parent_crm_account_id,
        "country": account.country,
        "region": account.region,
        "tax_id": account.tax_id,
        "billing_email": account.billing_email,
        "status": account.status,
        "created_at": timestamp(account.created_at),
    }


def activity_out(activity: CrmActivity) -> dict[str, Any]:
    return {
        "activity_id": activity.activity_id,
        "crm_account_id": activity.crm_account_id,
        "type": activity.type,
        "subject": activity.subject,
        "body": activity.body,
        "related_to": activity.related_to,
        "occurred_at": timestamp(activity.occurred_at),
        "occurred_on": activity.occurred_at.date().isoformat(),
    }


def new_account(body: AccountIn, *, status: Literal["active", "inactive"] = "active") -> CrmAccount:
    """A CRM account row from a request body (also used by the demo data)."""
    return CrmAccount(**body.model_dump(), status=status, created_at=utcnow())


@router.post("/accounts", status_code=201)
def create_account(body: AccountIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        if find(session, CrmAccount, CrmAccount.crm_account_id, body.crm_account_id):
            raise duplicate(f"account {body.crm_account_id!r} exists", body.crm_account_id)
        if body.parent_crm_account_id is not None:
            get_referenced(
                session,
                CrmAccount,
                CrmAccount.crm_account_id,
                body.parent_crm_account_id,
                field="parent_crm_account_id",
                kind="parent",
            )
        account = new_account(body)
        session.add(account)
        return account_out(account)


@router.get("/accounts")
def list_accounts(
    db: Db, page: PageQuery, parent_crm_account_id: str | None = None
) -> dict[str, Any]:
    where = equal_to((CrmAccount.parent_crm_account_id, parent_crm_account_id))
    with db.read() as session:
        return paginate(session, CrmAccount, page, account_out, *where)


@router.get("/accounts/{crm_account_id}")
def get_account(crm_account_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        return account_out(_account(session, crm_account_id))


@router.patch("/accounts/{crm_account_id}")
def update_account(
    crm_account_id: str,
    body: AccountChangeIn,
    db: Db,
    webhooks: Annotated[WebhookDispatcher, Depends(get_webhooks)],
) -> dict[str, Any]:
    """Change an account; the fields that changed go to c2c as ``account.updated``."""
    given = body.model_dump(exclude_unset=True)
    for required in ("name", "country", "status"):
        if required in given and given[required] is None:
            raise invalid("required", f"{required} cannot be cleared", required)
    with db.write() as session:
        account = _account(session, crm_account_id)
        parent = given.get("parent_crm_account_id")
        if parent is not None:
            if parent == crm_account_id:
                raise invalid(
                    "invalid_parent", "an account cannot be its own parent", "parent_crm_account_id"
                )
            get_referenced(
                session,
                CrmAccount,
                CrmAccount.crm_account_id,
                parent,
                field="parent_crm_account_id",
                kind="parent",
            )
        changes = {k: v for k, v in given.items() if getattr(account, k) != v}
        for field, value in changes.items():
            setattr(account, field, value)
        session.add(account)
        synced = {k: v for k, v in changes.items() if k != "status"}
        if synced:
            webhooks.emit(
                session,
                "/webhooks/crm",
                "account.updated",
                {"crm_account_id": crm_account_id, "changes": synced},
            )
        return account_out(account)


@router.get("/accounts/{crm_account_id}/hierarchy")
def get_hierarchy(crm_account_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        account = _account(session, crm_account_id)
        ancestors: list[dict[str, Any]] = []
        seen = {account.crm_account_id}
        parent_id = account.parent_crm_account_id
        while parent_id and parent_id not in seen:
            parent = find(session, CrmAccount, CrmAccount.crm_account_id, parent_id)
            if parent is None:
                break
            ancestors.append(account_out(parent))
            seen.add(parent_id)
            parent_id = parent.parent_crm_account_id
        return {"account": account_out(account), "ancestors": ancestors}


@router.post("/accounts/{crm_account_id}/activities", status_code=201, response_model=None)
def create_activity(crm_account_id: str, body: ActivityIn, db: Db) -> dict[str, Any] | JSONResponse:
    if body.occurred_at is not None and body.occurred_on is not None:
        raise invalid(
            "conflicting_fields", "give occurred_at or occurred_on, not both", "occurred_on"
        )
    related = body.related_to.model_dump(exclude_none=True) if body.related_to else None
    request_hash = fingerprint(
        {"crm_account_id": crm_account_id, **body.model_dump(mode="json", exclude_none=True)}
    )
    with db.write() as session:
        _account(session, crm_account_id)
        if body.activity_id is not None:
            existing = find(session, CrmActivity, CrmActivity.activity_id, body.activity_id)
            if existing is not None:
                if existing.request_hash != request_hash:
                    raise duplicate(
                        f"activity {body.activity_id!r} exists with other content",
                        existing.activity_id,
                    )
                return JSONResponse(activity_out(existing), status_code=200)
        activity = CrmActivity(
            activity_id=body.activity_id or _new_activity_id(session),
            crm_account_id=crm_account_id,
            type=body.type,
            subject=body.subject,
            body=body.body,
            related_to=related or None,
            occurred_at=_occurred_at(body),
            request_hash=request_hash,
        )
        session.add(activity)
        return activity_out(activity)


@router.get("/accounts/{crm_account_id}/activities")
def list_activities(
    crm_account_id: str,
    db: Db,
    page: PageQuery,
    activity_type: Annotated[str | None, Query(alias="type")] = None,
    invoice_id: str | None = None,
) -> dict[str, Any]:
    with db.read() as session:
        _account(session, crm_account_id)
        where = [
            col(CrmActivity.crm_account_id) == crm_account_id,
            *equal_to((CrmActivity.type, activity_type)),
        ]
        if invoice_id is not None:
            where.append(col(CrmActivity.related_to)["invoice_id"].as_string() == invoice_id)
        return paginate(session, CrmActivity, page, activity_out, *where)


def _occurred_at(body: ActivityIn) -> datetime:
    if body.occurred_on is not None:
        return datetime.combine(body.occurred_on, time(), tzinfo=UTC)
    return body.occurred_at or utcnow()


def _new_activity_id(session: Session) -> str:
    # A caller may have chosen an id of the same form; the CRM skips it rather than collide.
    while True:
        candidate = next_id(session, "ACT")
        if find(session, CrmActivity, CrmActivity.activity_id, candidate) is None:
            return candidate


def _account(session: Session, crm_account_id: str) -> CrmAccount:
    return get_or_404(session, CrmAccount, CrmAccount.crm_account_id, crm_account_id, "account")
