"""The dashboard's reconciliation page: the latest ``Reconcile`` runs with what each found, the
differences still open in the ``integration`` queue, and (for operators) a button that runs a
reconciliation now. The runs are read from Temporal, the differences from the ledger.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy

from c2c.logs import get_logger
from domain.reconcile import (
    RECONCILE_STEP,
    RECONCILE_WORKFLOW_TYPE,
    ReconcileReport,
    ReconcileRequest,
    reconcile_workflow_id,
)
from ledger import ExceptionStatus
from starter.api import scope
from starter.api.context import context_of
from starter.dashboard.pages import (
    DashboardError,
    check_csrf,
    operator,
    read_form,
    redirect,
    render,
    viewer,
)
from starter.ops import exception_queue
from starter.ops.reconcile import RUN_TIMEOUT

log = get_logger("c2c.dashboard")
router = APIRouter(include_in_schema=False)

#: Runs shown, newest first.
RUNS_SHOWN = 10
_ENTITY = re.compile(r"^[A-Z0-9]{2,10}$")


async def _runs(client: Client, entities: frozenset[str] | None) -> list[dict[str, Any]]:
    """The latest reconciliation runs the identity may see (a scoped one: its entities' runs
    only), each with its report once it has finished."""
    found = []
    async for wf in client.list_workflows(
        f"WorkflowType = '{RECONCILE_WORKFLOW_TYPE}'", limit=RUNS_SHOWN * 3
    ):
        found.append(wf)
    found.sort(key=lambda wf: wf.start_time, reverse=True)
    runs: list[dict[str, Any]] = []
    for wf in found:
        # ``reconcile-<entity or all>-<date>[-nightly-<time>]``
        entity = wf.id.split("-")[1] if wf.id.count("-") >= 2 else "all"
        if entities is not None and entity not in entities:
            continue
        status = (wf.status or WorkflowExecutionStatus.RUNNING).name.lower()
        report: ReconcileReport | None = None
        if wf.status == WorkflowExecutionStatus.COMPLETED:
            handle = client.get_workflow_handle(
                wf.id, run_id=wf.run_id, result_type=ReconcileReport
            )
            try:
                report = await handle.result()
            except Exception as exc:  # a run we cannot read is still listed
                log.warning("reconcile report unreadable", workflow_id=wf.id, error=str(exc))
        runs.append(
            {
                "workflow_id": wf.id,
                "legal_entity": entity,
                "status": status,
                "started_at": wf.start_time,
                "closed_at": wf.close_time,
                "report": report,
            }
        )
        if len(runs) == RUNS_SHOWN:
            break
    return runs


@router.get("/reconciliation", response_class=HTMLResponse)
async def reconciliation_page(request: Request) -> Response:
    """The latest reconciliation runs and the differences still open."""
    session = viewer(request)
    context = context_of(request)
    ledger = await context.ledger()
    try:
        client = await context.temporal()
    except Exception:
        raise DashboardError(503, "Temporal is not reachable; try again shortly") from None
    runs, items = await asyncio.gather(
        _runs(client, session.identity.entities),
        exception_queue.list_exceptions(ledger, status=ExceptionStatus.OPEN),
    )
    visible = await scope.contracts_of(ledger, session.identity)
    open_differences = [
        i
        for i in items
        if i.step == RECONCILE_STEP and (visible is None or i.contract_id in visible)
    ]
    entities = sorted(session.identity.entities or ())
    return render(
        request,
        "reconciliation.html",
        session,
        runs=runs,
        differences=open_differences,
        entities=entities,
    )


@router.post("/ui/reconcile")
async def run_reconciliation(request: Request) -> Response:
    """Start a reconciliation of one legal entity (or all) now; its report shows on the page
    once the worker has run it."""
    session = operator(request)
    form = await read_form(request)
    check_csrf(request, session, form)
    entity = form.get("legal_entity", "").strip() or None
    if entity is not None and not _ENTITY.fullmatch(entity):
        raise DashboardError(
            422, "must be a legal entity code (2-10 capitals or digits)", field="legal_entity"
        )
    identity = session.identity
    if identity.entities is not None and (entity is None or entity not in identity.entities):
        raise DashboardError(
            403,
            f"reconcile one of your legal entities ({'+'.join(sorted(identity.entities))})",
            field="legal_entity",
        )
    context = context_of(request)
    try:
        client = await context.temporal()
    except Exception:
        raise DashboardError(503, "Temporal is not reachable; try again shortly") from None
    workflow_id = reconcile_workflow_id(entity, datetime.now(UTC).date())
    await client.start_workflow(
        RECONCILE_WORKFLOW_TYPE,
        ReconcileRequest(legal_entity=entity),
        id=workflow_id,
        task_queue=context.settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        execution_timeout=RUN_TIMEOUT,
    )
    log.info(
        "reconciliation started from the dashboard",
        workflow_id=workflow_id,
        operator=session.operator,
    )
    return redirect(
        request,
        "/reconciliation",
        kind="ok",
        text=f"Reconciliation {workflow_id} started; its report shows here once it is done.",
    )
