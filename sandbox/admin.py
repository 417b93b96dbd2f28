"""Test and demo control (``/_admin``): fault rules, reset, stats and webhook deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from sandbox import demo_data
from sandbox.db import Database, Db, clear_tables
from sandbox.faults import FaultRule, FaultRules, get_fault_rules
from sandbox.paging import PageQuery
from sandbox.schemas import Body
from sandbox.stats import Stats, get_stats
from sandbox.webhooks import WebhookDispatcher, get_webhooks, list_deliveries

router = APIRouter(tags=["admin"])

Rules = Annotated[FaultRules, Depends(get_fault_rules)]


class FaultRulesIn(Body):
    rules: list[FaultRule]


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


@router.get("/webhooks")
def list_webhooks(
    db: Db, page: PageQuery, type: str | None = None, status: str | None = None
) -> dict[str, Any]:
    with db.read() as session:
        return list_deliveries(session, page, event_type=type, status=status)
