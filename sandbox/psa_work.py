"""PSA stand-in (``/psa/v1``), work: time entries, expenses, and the billing batches of both."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field as PydanticField
from sqlalchemy import update
from sqlmodel import Session, col, select

from sandbox.db import Db, next_id, utcnow
from sandbox.errors import duplicate, invalid, not_found
from sandbox.money import Money, Quantity
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.psa import (
    PsaBillingBatch,
    PsaExpense,
    PsaProject,
    PsaTimeEntry,
    Work,
    get_project,
)
from sandbox.schemas import Body, Currency, Key, Text, check_amount, day, dec, timestamp

router = APIRouter(tags=["psa"])

MAX_HOURS = Decimal(24)


class TimeEntryIn(Body):
    consultant_id: Text
    role: Text
    work_date: date
    hours: Quantity
    billable: bool
    approved: bool
    notes: str | None = PydanticField(default=None, max_length=2000)


class ExpenseIn(Body):
    consultant_id: Text
    incurred_on: date
    amount: Money
    currency: Currency
    category: Text
    billable: bool
    approved: bool


class BatchIn(Body):
    batch_id: Key
    through_date: date
    include_expenses: bool


class BatchInvoicedIn(Body):
    invoice_id: Key


def _work_out(work: Work) -> dict[str, Any]:
    return {
        "project_id": work.project_id,
        "consultant_id": work.consultant_id,
        "billable": work.billable,
        "approved": work.approved,
        "batch_id": work.batch_id,
        "invoice_id": work.invoice_id,
        "created_at": timestamp(work.created_at),
    }


def entry_out(entry: PsaTimeEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        **_work_out(entry),
        "role": entry.role,
        "work_date": day(entry.work_date),
        "hours": dec(entry.hours),
        "notes": entry.notes,
    }


def expense_out(expense: PsaExpense) -> dict[str, Any]:
    return {
        "expense_id": expense.expense_id,
        **_work_out(expense),
        "incurred_on": day(expense.incurred_on),
        "amount": dec(expense.amount),
        "currency": expense.currency,
        "category": expense.category,
    }


def batch_out(batch: PsaBillingBatch) -> dict[str, Any]:
    return {
        "batch_id": batch.batch_id,
        "project_id": batch.project_id,
        "through_date": day(batch.through_date),
        "include_expenses": batch.include_expenses,
        "time_entry_count": batch.time_entry_count,
        "expense_count": batch.expense_count,
        "hours": dec(batch.hours),
        "status": batch.status,
        "invoice_id": batch.invoice_id,
        "created_at": timestamp(batch.created_at),
    }


def _work_filters(
    model: type[Work],
    project_id: str,
    approved: bool | None,
    billable: bool | None,
    billed: bool | None,
    batch_id: str | None,
) -> list[Any]:
    where = equal_to(
        (model.project_id, project_id),
        (model.approved, approved),
        (model.billable, billable),
        (model.batch_id, batch_id),
    )
    if billed is not None:
        invoice = col(model.invoice_id)
        where.append(invoice.is_not(None) if billed else invoice.is_(None))
    return where


def check_time_entry(project: PsaProject, body: TimeEntryIn, *, field_prefix: str = "") -> None:
    """Refuse time the project cannot take: a ``422`` naming ``{field_prefix}{field}``.

    The PSA takes time only on an active project, for a role on its rate card, within its
    dates and not after its time-entry end date, and for more than zero and at most 24 hours.
    """
    if project.status != "active":
        raise invalid(
            "project_not_active",
            f"project {project.project_id} is {project.status}",
            field_prefix.rstrip(".") or None,
        )
    if body.role not in {r["role"] for r in project.rate_card}:
        raise invalid(
            "unknown_role", f"role {body.role!r} is not on the rate card", f"{field_prefix}role"
        )
    if not 0 < body.hours <= MAX_HOURS:
        raise invalid(
            "invalid_hours", "hours must be more than 0 and at most 24", f"{field_prefix}hours"
        )
    if not project.start_date <= body.work_date <= project.end_date:
        raise invalid(
            "outside_project_dates",
            f"work_date must be within {day(project.start_date)}..{day(project.end_date)}",
            f"{field_prefix}work_date",
        )
    closed_after = project.time_entry_end_date
    if closed_after is not None and body.work_date > closed_after:
        raise invalid(
            "time_entry_closed",
            f"time entry on project {project.project_id} is closed after {day(closed_after)}",
            f"{field_prefix}work_date",
        )


def new_time_entry(project: PsaProject, body: TimeEntryIn, entry_id: str) -> PsaTimeEntry:
    """The row of a checked time entry (``check_time_entry``) under ``entry_id``."""
    return PsaTimeEntry(
        # Only the entry's own fields: a caller's body may say more (a bulk seed's project).
        **body.model_dump(include=set(TimeEntryIn.model_fields)),
        project_id=project.project_id,
        entry_id=entry_id,
        created_at=utcnow(),
    )


@router.post("/projects/{project_id}/time-entries", status_code=201)
def create_time_entry(project_id: str, body: TimeEntryIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        project = get_project(session, project_id)
        check_time_entry(project, body)
        entry = new_time_entry(project, body, next_id(session, "TE"))
        session.add(entry)
        return entry_out(entry)


@router.post("/projects/{project_id}/time-entries/{entry_id}/approve")
def approve_time_entry(project_id: str, entry_id: str, db: Db) -> dict[str, Any]:
    with db.write() as session:
        entry = session.exec(
            select(PsaTimeEntry).where(
                col(PsaTimeEntry.project_id) == project_id, col(PsaTimeEntry.entry_id) == entry_id
            )
        ).first()
        if entry is None:
            raise not_found("time entry", entry_id)
        if not entry.approved:
            entry.approved = True
            session.add(entry)
        return entry_out(entry)


@router.get("/projects/{project_id}/time-entries")
def list_time_entries(
    project_id: str,
    db: Db,
    page: PageQuery,
    approved: bool | None = None,
    billable: bool | None = None,
    billed: bool | None = None,
    batch_id: str | None = None,
) -> dict[str, Any]:
    where = _work_filters(PsaTimeEntry, project_id, approved, billable, billed, batch_id)
    with db.read() as session:
        get_project(session, project_id)
        return paginate(session, PsaTimeEntry, page, entry_out, *where)


@router.post("/projects/{project_id}/expenses", status_code=201)
def create_expense(project_id: str, body: ExpenseIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        get_project(session, project_id)
        amount = check_amount(body.amount, body.currency, "amount", positive=True)
        expense = PsaExpense(
            **body.model_dump(exclude={"amount"}),
            amount=amount,
            project_id=project_id,
            expense_id=next_id(session, "EXP"),
            created_at=utcnow(),
        )
        session.add(expense)
        return expense_out(expense)


@router.get("/projects/{project_id}/expenses")
def list_expenses(
    project_id: str,
    db: Db,
    page: PageQuery,
    approved: bool | None = None,
    billable: bool | None = None,
    billed: bool | None = None,
    batch_id: str | None = None,
) -> dict[str, Any]:
    where = _work_filters(PsaExpense, project_id, approved, billable, billed, batch_id)
    with db.read() as session:
        get_project(session, project_id)
        return paginate(session, PsaExpense, page, expense_out, *where)


@router.post("/projects/{project_id}/billing-batches", status_code=201, response_model=None)
def create_billing_batch(project_id: str, body: BatchIn, db: Db) -> dict[str, Any] | JSONResponse:
    # The write lock makes the select-then-mark below atomic: no entry lands in two batches.
    with db.write() as session:
        get_project(session, project_id)
        existing = _find_batch(session, project_id, body.batch_id)
        if existing is not None:
            return JSONResponse(batch_out(existing), status_code=200)
        _freeze(session, PsaTimeEntry, PsaTimeEntry.work_date, project_id, body)
        if body.include_expenses:
            _freeze(session, PsaExpense, PsaExpense.incurred_on, project_id, body)
        hours = _in_batch(session, PsaTimeEntry.hours, project_id, body.batch_id)
        expenses = _in_batch(session, PsaExpense.id, project_id, body.batch_id)
        batch = PsaBillingBatch(
            **body.model_dump(),
            project_id=project_id,
            time_entry_count=len(hours),
            expense_count=len(expenses),
            hours=sum(hours, Decimal(0)),
            created_at=utcnow(),
        )
        session.add(batch)
        return batch_out(batch)


@router.get("/projects/{project_id}/billing-batches/{batch_id}")
def get_billing_batch(project_id: str, batch_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        return batch_out(_batch(session, project_id, batch_id))


@router.post("/projects/{project_id}/billing-batches/{batch_id}/invoiced")
def mark_batch_invoiced(
    project_id: str, batch_id: str, body: BatchInvoicedIn, db: Db
) -> dict[str, Any]:
    with db.write() as session:
        batch = _batch(session, project_id, batch_id)
        if batch.invoice_id is not None:
            if batch.invoice_id != body.invoice_id:
                raise duplicate(
                    f"batch {batch_id} is already invoiced on {batch.invoice_id}",
                    batch.invoice_id,
                )
            return batch_out(batch)
        for model in (PsaTimeEntry, PsaExpense):
            # One UPDATE: loading a batch's rows to change one column each costs far more.
            session.execute(
                update(model)
                .where(col(model.project_id) == project_id, col(model.batch_id) == batch_id)
                .values(invoice_id=body.invoice_id)
                .execution_options(synchronize_session=False)
            )
        batch.invoice_id = body.invoice_id
        batch.status = "invoiced"
        session.add(batch)
        return batch_out(batch)


def _freeze(
    session: Session, model: type[Work], dated: Any, project_id: str, batch: BatchIn
) -> None:
    """Put every approved, billable, unbatched row dated on or before the batch's
    ``through_date`` into the batch, in one UPDATE (no row is loaded)."""
    session.execute(
        update(model)
        .where(
            col(model.project_id) == project_id,
            col(model.approved).is_(True),
            col(model.billable).is_(True),
            col(model.batch_id).is_(None),
            col(dated) <= batch.through_date,
        )
        .values(batch_id=batch.batch_id)
        .execution_options(synchronize_session=False)
    )


def _in_batch(session: Session, column: Any, project_id: str, batch_id: str) -> list[Any]:
    """``column`` of every row of the column's table in the batch."""
    table = column.class_
    return list(
        session.exec(
            select(column).where(
                col(table.project_id) == project_id, col(table.batch_id) == batch_id
            )
        ).all()
    )


def _find_batch(session: Session, project_id: str, batch_id: str) -> PsaBillingBatch | None:
    return session.exec(
        select(PsaBillingBatch).where(
            col(PsaBillingBatch.project_id) == project_id,
            col(PsaBillingBatch.batch_id) == batch_id,
        )
    ).first()


def _batch(session: Session, project_id: str, batch_id: str) -> PsaBillingBatch:
    batch = _find_batch(session, project_id, batch_id)
    if batch is None:
        raise not_found("billing batch", batch_id)
    return batch
