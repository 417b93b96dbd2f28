"""Starting a reconciliation of the ledger with the ERP: the ``Reconcile`` workflow, run by
the worker, since the API and the CLI never call a system themselves."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleSpec,
)
from temporalio.common import WorkflowIDConflictPolicy

from domain.reconcile import (
    ALL_ENTITIES,
    RECONCILE_SCHEDULE_ID,
    RECONCILE_WORKFLOW_TYPE,
    ReconcileReport,
    ReconcileRequest,
    reconcile_workflow_id,
)

#: How long a caller waits for the report before it is told to look at the run instead.
REPORT_WAIT = timedelta(minutes=10)
#: The nightly run: 02:00 UTC, after the day's payments and period closes.
NIGHTLY_CRON = "0 2 * * *"


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
        execution_timeout=REPORT_WAIT * 3,
    )
    return workflow_id, await handle.result()


async def ensure_nightly_schedule(client: Client, *, task_queue: str) -> bool:
    """Create the nightly reconciliation of every legal entity, unless it exists (an operator
    may have paused or changed it: that is kept).

    Returns:
        Whether it was created now.
    """
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW_TYPE,
            ReconcileRequest(),
            # Temporal appends each run's scheduled time to this id.
            id=f"reconcile-{ALL_ENTITIES}-nightly",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(cron_expressions=[NIGHTLY_CRON]),
    )
    try:
        await client.create_schedule(RECONCILE_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        return False
    return True
