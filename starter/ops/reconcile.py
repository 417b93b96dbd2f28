"""Starting a reconciliation of the ledger with the ERP: the ``Reconcile`` workflow, run by
the worker, since the API and the CLI never call a system themselves."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from domain.reconcile import (
    RECONCILE_WORKFLOW_TYPE,
    ReconcileReport,
    ReconcileRequest,
    reconcile_workflow_id,
)

#: A run that takes longer than this is stopped by Temporal; the next run starts over.
RUN_TIMEOUT = timedelta(minutes=30)


async def reconcile(
    client: Client,
    request: ReconcileRequest,
    *,
    task_queue: str,
    today: date | None = None,
) -> tuple[str, ReconcileReport]:
    """Run the ``Reconcile`` workflow for ``request`` and wait for its report.

    One run per legal entity and day: while a run of the same id is open, this waits for it
    instead of starting a second; a later call that day starts a new run, which reports the
    same differences and opens no exception twice.

    Returns:
        The workflow id and its report.
    """
    on = today or datetime.now(UTC).date()
    workflow_id = reconcile_workflow_id(request.legal_entity, on)
    handle = await client.start_workflow(
        RECONCILE_WORKFLOW_TYPE,
        request,
        id=workflow_id,
        task_queue=task_queue,
        result_type=ReconcileReport,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        execution_timeout=RUN_TIMEOUT,
    )
    return workflow_id, await handle.result()
