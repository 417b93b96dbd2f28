"""PSA stand-in (``/psa/v1``), projects: rate cards, milestones, activation and closing.

The PSA's tables all live here; time, expenses and billing batches are served by
``sandbox.psa_work`` on the same root.

A project's rate card is kept as revisions: a rate sent without ``effective_from`` holds from
the project's start, one with it from that date. A card sent without dates replaces every
revision (the older, undated behaviour); dated rates are added beside the revisions there are,
so an amendment's new rates never rewrite the ones that priced earlier work.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field as PydanticField
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, Session

from sandbox.db import Db, DecimalText, Row, UtcDateTime, find, get_or_404, next_id, utcnow
from sandbox.errors import duplicate, invalid, not_found
from sandbox.money import Money
from sandbox.paging import PageQuery, equal_to, paginate, paginate_list
from sandbox.schemas import Body, Currency, Key, Text, check_amount, check_unique, day, timestamp
from sandbox.webhooks import WebhookDispatcher, get_webhooks

router = APIRouter(tags=["psa"])


class PsaProject(Row, table=True):
    __tablename__ = "psa_project"

    project_id: str = Field(unique=True)
    contract_id: str = Field(unique=True)
    name: str
    customer_name: str
    erp_project_id: str
    currency: str
    start_date: date
    end_date: date
    #: The last day time may be entered for (a termination's effective date): later time is
    #: refused. ``None``: the project's end date.
    time_entry_end_date: date | None = None
    project_template: str
    rate_card: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    milestones: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    status: str = "draft"
    created_at: datetime = Field(sa_type=UtcDateTime)


class Work(Row):
    """What time entries and expenses share: approval, billability and where they were billed."""

    project_id: str = Field(index=True)
    consultant_id: str
    billable: bool
    approved: bool
    batch_id: str | None = Field(default=None, index=True)
    invoice_id: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)


class PsaTimeEntry(Work, table=True):
    __tablename__ = "psa_time_entry"

    entry_id: str = Field(unique=True)
    role: str
    work_date: date
    hours: Decimal = Field(sa_type=DecimalText)
    notes: str | None = None


class PsaExpense(Work, table=True):
    __tablename__ = "psa_expense"

    expense_id: str = Field(unique=True)
    incurred_on: date
    amount: Decimal = Field(sa_type=DecimalText)
    currency: str
    category: str


class PsaBillingBatch(Row, table=True):
    __tablename__ = "psa_billing_batch"
    __table_args__ = (UniqueConstraint("project_id", "batch_id"),)

    batch_id: str
    project_id: str
    through_date: date
    include_expenses: bool
    time_entry_count: int
    expense_count: int
    hours: Decimal = Field(sa_type=DecimalText)
    status: str = "open"
    invoice_id: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)


class RoleRateIn(Body):
    role: Text
    hourly_rate: Money
    effective_from: date | None = None


class MilestoneIn(Body):
    milestone_id: Key
    name: Text
    amount: Money
    due_date: date | None = None


class ProjectIn(Body):
    contract_id: Key
    name: Text
    customer_name: Text
    erp_project_id: str
    currency: Currency
    start_date: date
    end_date: date
    project_template: Text
    rate_card: list[RoleRateIn] = PydanticField(default_factory=list, max_length=200)
    milestones: list[MilestoneIn] = PydanticField(default_factory=list, max_length=500)


class RateCardIn(Body):
    rate_card: list[RoleRateIn] = PydanticField(max_length=200)


class ProjectPatchIn(Body):
    end_date: date | None = None
    #: Close time entry after this day (time dated later is refused).
    time_entry_end_date: date | None = None


class MilestonePatchIn(Body):
    name: Text | None = None
    amount: Money | None = None
    due_date: date | None = None


class MilestonesIn(Body):
    milestones: list[MilestoneIn] = PydanticField(min_length=1, max_length=500)


class MilestoneCompleteIn(Body):
    completed_on: date


def project_out(project: PsaProject) -> dict[str, Any]:
    return {
        "project_id": project.project_id,
        "contract_id": project.contract_id,
        "name": project.name,
        "customer_name": project.customer_name,
        "erp_project_id": project.erp_project_id,
        "currency": project.currency,
        "start_date": day(project.start_date),
        "end_date": day(project.end_date),
        "time_entry_end_date": day(project.time_entry_end_date)
        if project.time_entry_end_date
        else None,
        "project_template": project.project_template,
        "rate_card": current_rates(project),
        "rate_revisions": project.rate_card,
        "milestones": project.milestones,
        "status": project.status,
        "created_at": timestamp(project.created_at),
    }


def get_project(session: Session, project_id: str) -> PsaProject:
    """The project, or a ``404``."""
    return get_or_404(session, PsaProject, PsaProject.project_id, project_id, "project")


def current_rates(project: PsaProject) -> list[dict[str, Any]]:
    """Each role's latest revision (an undated one holds from the project's start), in the
    order the roles first appeared."""
    start = day(project.start_date)
    latest: dict[str, dict[str, Any]] = {}
    for revision in project.rate_card:
        held = latest.get(revision["role"])
        since = revision.get("effective_from") or start
        if held is None or since >= (held.get("effective_from") or start):
            latest[revision["role"]] = revision
    return list(latest.values())


def _rate_card(
    rates: list[RoleRateIn], currency: str, start_date: date
) -> tuple[list[dict[str, Any]], bool]:
    """The revisions ``rates`` describe, and whether they are dated (and so add to a card)."""
    for i, rate in enumerate(rates):
        check_amount(rate.hourly_rate, currency, f"rate_card.{i}.hourly_rate", positive=True)
    dated = [rate.effective_from is not None for rate in rates]
    if any(dated) and not all(dated):
        raise invalid(
            "invalid_rate_card",
            "effective_from is given for every rate or for none",
            f"rate_card.{dated.index(False)}.effective_from",
        )
    if not any(dated):
        check_unique((r.role for r in rates), "rate_card", "role")
        return [r.model_dump(mode="json", exclude_none=True) for r in rates], False
    seen: set[tuple[str, date | None]] = set()
    for i, rate in enumerate(rates):
        field = f"rate_card.{i}.effective_from"
        if rate.effective_from is not None and rate.effective_from < start_date:
            raise invalid(
                "invalid_dates",
                f"a rate cannot take effect before the project's start {day(start_date)}",
                field,
            )
        if (rate.role, rate.effective_from) in seen:
            raise invalid("duplicate_key", f"role {rate.role!r} has two rates from one date", field)
        seen.add((rate.role, rate.effective_from))
    return [r.model_dump(mode="json") for r in rates], True


def _merge_rates(
    revisions: list[dict[str, Any]], added: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``revisions`` with ``added`` appended; an added rate replaces the one of its role and
    date."""
    replaced = {(r["role"], r.get("effective_from")) for r in added}
    kept = [r for r in revisions if (r["role"], r.get("effective_from")) not in replaced]
    return [*kept, *added]


def _milestones(milestones: list[MilestoneIn], currency: str) -> list[dict[str, Any]]:
    for i, milestone in enumerate(milestones):
        check_amount(milestone.amount, currency, f"milestones.{i}.amount", positive=True)
    check_unique((m.milestone_id for m in milestones), "milestones", "milestone_id")
    return [
        {**m.model_dump(mode="json"), "status": "open", "completed_on": None} for m in milestones
    ]


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        existing = find(session, PsaProject, PsaProject.contract_id, body.contract_id)
        if existing is not None:
            raise duplicate(
                f"contract {body.contract_id!r} already has project {existing.project_id}",
                existing.project_id,
            )
        if body.end_date < body.start_date:
            raise invalid("invalid_dates", "end_date must not be before start_date", "end_date")
        project = PsaProject(
            **body.model_dump(exclude={"rate_card", "milestones"}),
            rate_card=_rate_card(body.rate_card, body.currency, body.start_date)[0],
            milestones=_milestones(body.milestones, body.currency),
            project_id=next_id(session, "PSA"),
            created_at=utcnow(),
        )
        session.add(project)
        return project_out(project)


@router.get("/projects")
def list_projects(db: Db, page: PageQuery, contract_id: str | None = None) -> dict[str, Any]:
    where = equal_to((PsaProject.contract_id, contract_id))
    with db.read() as session:
        return paginate(session, PsaProject, page, project_out, *where)


@router.get("/projects/{project_id}")
def read_project(project_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        return project_out(get_project(session, project_id))


@router.post("/projects/{project_id}/activate")
def activate_project(project_id: str, db: Db) -> dict[str, Any]:
    with db.write() as session:
        project = get_project(session, project_id)
        if project.status == "closed":
            raise invalid("project_closed", f"project {project_id} is closed")
        if project.status != "active":
            project.status = "active"
            session.add(project)
        return project_out(project)


@router.post("/projects/{project_id}/close")
def close_project(project_id: str, db: Db) -> dict[str, Any]:
    with db.write() as session:
        project = get_project(session, project_id)
        if project.status != "closed":
            project.status = "closed"
            session.add(project)
        return project_out(project)


@router.patch("/projects/{project_id}")
def update_project(project_id: str, body: ProjectPatchIn, db: Db) -> dict[str, Any]:
    """Change a project's dates (an amendment that extends or shortens the term), or close
    time entry after a day (a termination)."""
    with db.write() as session:
        project = get_project(session, project_id)
        if body.end_date is not None and body.end_date != project.end_date:
            if body.end_date < project.start_date:
                raise invalid("invalid_dates", "end_date must not be before start_date", "end_date")
            project.end_date = body.end_date
            session.add(project)
        closes = body.time_entry_end_date
        if closes is not None and closes != project.time_entry_end_date:
            if closes < project.start_date:
                raise invalid(
                    "invalid_dates",
                    "time_entry_end_date must not be before start_date",
                    "time_entry_end_date",
                )
            project.time_entry_end_date = closes
            session.add(project)
        return project_out(project)


@router.put("/projects/{project_id}/rate-card")
def put_rate_card(project_id: str, body: RateCardIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        project = get_project(session, project_id)
        revisions, dated = _rate_card(body.rate_card, project.currency, project.start_date)
        project.rate_card = _merge_rates(project.rate_card, revisions) if dated else revisions
        session.add(project)
        return project_out(project)


@router.post("/projects/{project_id}/milestones", status_code=201)
def add_milestones(project_id: str, body: MilestonesIn, db: Db) -> dict[str, Any]:
    """Add milestones to a project; one whose id the project has already is refused."""
    with db.write() as session:
        project = get_project(session, project_id)
        existing = {m["milestone_id"] for m in project.milestones}
        for i, milestone in enumerate(body.milestones):
            if milestone.milestone_id in existing:
                raise invalid(
                    "milestone_exists",
                    f"project {project_id} has milestone {milestone.milestone_id} already",
                    f"milestones.{i}.milestone_id",
                )
        project.milestones = [
            *project.milestones,
            *_milestones(body.milestones, project.currency),
        ]
        session.add(project)
        return project_out(project)


def _milestone_index(project: PsaProject, milestone_id: str) -> int:
    index = next(
        (i for i, m in enumerate(project.milestones) if m["milestone_id"] == milestone_id), None
    )
    if index is None:
        raise not_found("milestone", milestone_id)
    return index


@router.patch("/projects/{project_id}/milestones/{milestone_id}")
def update_milestone(
    project_id: str, milestone_id: str, body: MilestonePatchIn, db: Db
) -> dict[str, Any]:
    """Change a milestone's name, amount or due date (the fields sent)."""
    with db.write() as session:
        project = get_project(session, project_id)
        index = _milestone_index(project, milestone_id)
        if body.amount is not None:
            check_amount(body.amount, project.currency, "amount", positive=True)
        changes = body.model_dump(mode="json", exclude_none=True)
        milestones = list(project.milestones)
        milestones[index] = {**milestones[index], **changes}
        project.milestones = milestones
        session.add(project)
        return project_out(project)


@router.delete("/projects/{project_id}/milestones/{milestone_id}")
def remove_milestone(project_id: str, milestone_id: str, db: Db) -> dict[str, Any]:
    """Remove a milestone from the project (an amendment that drops it)."""
    with db.write() as session:
        project = get_project(session, project_id)
        index = _milestone_index(project, milestone_id)
        project.milestones = [m for i, m in enumerate(project.milestones) if i != index]
        session.add(project)
        return project_out(project)


@router.get("/projects/{project_id}/milestones")
def list_milestones(project_id: str, db: Db, page: PageQuery) -> dict[str, Any]:
    with db.read() as session:
        return paginate_list(list(get_project(session, project_id).milestones), page)


@router.post("/projects/{project_id}/milestones/{milestone_id}/complete")
def complete_milestone(
    project_id: str,
    milestone_id: str,
    body: MilestoneCompleteIn,
    db: Db,
    webhooks: Annotated[WebhookDispatcher, Depends(get_webhooks)],
) -> dict[str, Any]:
    with db.write() as session:
        project = get_project(session, project_id)
        index = _milestone_index(project, milestone_id)
        milestone = project.milestones[index]
        if milestone["status"] == "completed":
            return dict(milestone)
        milestone = {**milestone, "status": "completed", "completed_on": day(body.completed_on)}
        # A new list, so that the JSON column is seen as changed.
        project.milestones = [
            *project.milestones[:index],
            milestone,
            *project.milestones[index + 1 :],
        ]
        session.add(project)
        webhooks.emit(
            session,
            "/webhooks/psa",
            "milestone.completed",
            {
                "contract_id": project.contract_id,
                "psa_project_id": project.project_id,
                "milestone_id": milestone_id,
                "completed_on": day(body.completed_on),
            },
        )
        return milestone
