"""Test and demo control (``/_admin``): fault rules, reset, stats, webhook deliveries, and bulk
seeding of PSA time for load tests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from sandbox import demo_data
from sandbox.db import Database, Db, clear_tables, get_referenced, next_ids
from sandbox.erp_billing import get_invoice, invoice_out
from sandbox.faults import FaultRule, FaultRules, get_fault_rules
from sandbox.paging import PageQuery
from sandbox.psa import PsaProject
from sandbox.psa_work import TimeEntryIn, check_time_entry, new_time_entry
from sandbox.schemas import Body, Key
from sandbox.stats import Stats, get_stats
from sandbox.webhooks import WebhookDispatcher, get_webhooks, list_deliveries

router = APIRouter(tags=["admin"])

Rules = Annotated[FaultRules, Depends(get_fault_rules)]


#: Most time entries one bulk seed request may add.
MAX_SEED_ENTRIES = 10_000


class FaultRulesIn(Body):
    rules: list[FaultRule]


class SeedTimeEntryIn(TimeEntryIn):
    project_id: Key


class SeedTimeEntriesIn(Body):
    entries: list[SeedTimeEntryIn] = Field(min_length=1, max_length=MAX_SEED_ENTRIES)


def _rules_out(rules: list[FaultRule]) -> dict[str, Any]:
    return {"rules": [r.model_dump() for r in rules]}


@router.get("/faults")
def list_faults(rules: Rules) -> dict[str, Any]:
    return _rules_out(rules.snapshot())


@router.put("/faults")
def replace_faults(body: FaultRulesIn, rules: Rules) -> dict[str, Any]:
    return _rules_out(rules.replace(body.rules))


@router.post("/faults", status_code=201)
def add_fault(body: FaultRule, rules: Rules) -> dict[str, Any]:
    return rules.add(body).model_dump()


@router.delete("/faults")
def clear_faults(rules: Rules) -> dict[str, Any]:
    rules.clear()
    return _rules_out([])


def reset_database(db: Database, *, load_demo: bool) -> None:
    """Empty every system's tables and, if asked, reload the demo data, in one transaction."""
    with db.write() as session:
        clear_tables(session)
        if load_demo:
            demo_data.load(session)


@router.post("/reset")
async def reset(
    request: Request,
    db: Db,
    rules: Rules,
    stats: Annotated[Stats, Depends(get_stats)],
    webhooks: Annotated[WebhookDispatcher, Depends(get_webhooks)],
) -> dict[str, Any]:
    load_demo: bool = request.app.state.load_demo
    await run_in_threadpool(reset_database, db, load_demo=load_demo)
    webhooks.cancel_in_flight()
    rules.clear()
    stats.reset()
    return {"reset": True, "demo_data": load_demo}


@router.get("/stats")
def read_stats(stats: Annotated[Stats, Depends(get_stats)]) -> dict[str, Any]:
    return stats.snapshot()


@router.delete("/stats/vendors")
def reset_vendor_load(stats: Annotated[Stats, Depends(get_stats)]) -> dict[str, Any]:
    """Zero each vendor's request count and maxima (those in flight stay in flight), so that a
    run measures its own load."""
    stats.vendors.reset()
    return {"vendors": stats.vendors.snapshot()}


@router.get("/webhooks")
def list_webhooks(
    db: Db, page: PageQuery, type: str | None = None, status: str | None = None
) -> dict[str, Any]:
    with db.read() as session:
        return list_deliveries(session, page, event_type=type, status=status)


@router.post("/seed/time-entries", status_code=201)
def seed_time_entries(body: SeedTimeEntriesIn, db: Db) -> dict[str, Any]:
    """Add many time entries, on any projects, in one transaction (load tests).

    Each entry is checked as ``POST /psa/v1/projects/{id}/time-entries`` checks it, and stored
    as that route stores it; the first refused entry refuses the whole request (``422`` naming
    ``entries.N.field``), so nothing is half seeded. Not part of any real PSA.
    """
    with db.write() as session:
        projects: dict[str, PsaProject] = {}
        for i, entry in enumerate(body.entries):
            if entry.project_id not in projects:
                projects[entry.project_id] = get_referenced(
                    session,
                    PsaProject,
                    PsaProject.project_id,
                    entry.project_id,
                    field=f"entries.{i}.project_id",
                    kind="project",
                )
            check_time_entry(projects[entry.project_id], entry, field_prefix=f"entries.{i}.")
        ids = next_ids(session, "TE", len(body.entries))
        session.add_all(
            new_time_entry(projects[entry.project_id], entry, entry_id)
            for entry, entry_id in zip(body.entries, ids, strict=True)
        )
    return {"created": len(ids), "entry_ids": [ids[0], ids[-1]]}


@router.post("/erp/invoices/{invoice_id}/void")
def void_invoice(invoice_id: str, db: Db) -> dict[str, Any]:
    """Void an invoice as a person would by hand in the ERP's own screens, outside c2c
    (tests of reconciliation). Not part of any real ERP's API."""
    with db.write() as session:
        invoice = get_invoice(session, invoice_id)
        invoice.status = "void"
        session.add(invoice)
        return invoice_out(invoice)
