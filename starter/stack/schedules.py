"""The Temporal Schedules that ``c2c up`` makes sure exist: the nightly reconciliation of the
ledger with the ERP (``workflows/reconcile.py``)."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleSpec,
)

from domain.reconcile import (
    ALL_ENTITIES,
    RECONCILE_SCHEDULE_ID,
    RECONCILE_WORKFLOW_TYPE,
    ReconcileRequest,
)

#: The nightly run: 02:00 UTC, after the day's payments and period closes.
NIGHTLY_CRON = "0 2 * * *"


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
