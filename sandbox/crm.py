"""CRM stand-in (``/crm/v1``): accounts with a parent hierarchy, and their activities."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field as PydanticField
from sqlmodel import Field, Session, col

from sandbox.db import Db, Row, UtcDateTime, find, get_or_404, get_referenced, next_id, utcnow
from sandbox.errors import duplicate
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import Body, Country, Email, Key, Text, timestamp

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
    type: str
    subject: str
    body: str | None = None
    occurred_at: datetime = Field(sa_type=UtcDateTime)


class AccountIn(Body):
    crm_account_id: Key
    name: Text
    parent_crm_account_id: Key | None = None
    country: Country
    region: str | None = PydanticField(default=None, min_length=1, max_length=10)
    tax_id: str | None = PydanticField(default=None, max_length=40)
    billing_email: Email | None = None


class ActivityIn(Body):
    type: str = PydanticField(min_length=1, max_length=40)
    subject: Text
    body: str | None = PydanticField(default=None, max_length=10_000)
    occurred_at: datetime | None = None


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
        "occurred_at": timestamp(activity.occurred_at),
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


@router.post("/accounts/{crm_account_id}/activities", status_code=201)
def create_activity(crm_account_id: str, body: ActivityIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        _account(session, crm_account_id)
        activity = CrmActivity(
            activity_id=next_id(session, "ACT"),
            crm_account_id=crm_account_id,
            type=body.type,
            subject=body.subject,
            body=body.body,
            occurred_at=body.occurred_at or utcnow(),
        )
        session.add(activity)
        return activity_out(activity)


@router.get("/accounts/{crm_account_id}/activities")
def list_activities(crm_account_id: str, db: Db, page: PageQuery) -> dict[str, Any]:
    with db.read() as session:
        _account(session, crm_account_id)
        where = col(CrmActivity.crm_account_id) == crm_account_id
        return paginate(session, CrmActivity, page, activity_out, where)


def _account(session: Session, crm_account_id: str) -> CrmAccount:
    return get_or_404(session, CrmAccount, CrmAccount.crm_account_id, crm_account_id, "account")
