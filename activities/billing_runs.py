"""Scheduled billing runs: the period close sent to every running contract of a legal entity,
as ``POST /api/billing/close-period`` sends it to all (``workflows/billing_run.py``).

A contract that closed the period already records "already closed: nothing to do", so a
retried activity or a second run of the same day bills nothing twice.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.base import StepActivities
from domain.billing_runs import CLOSE_PERIOD_FOR_ENTITY, OTHER_ENTITIES, CloseForEntity
from domain.models import ClosePeriod
from domain.names import SIGNAL_CLOSE_PERIOD, WORKFLOW_TYPE

#: Signals in flight at once.
SIGNAL_CONCURRENCY = 16


def running_contracts_query(request: CloseForEntity) -> str:
    """The visibility query for the running contracts a run closes the period of."""
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
    if request.task_queue:
        query += f" AND TaskQueue = '{request.task_queue}'"
    if request.legal_entity != OTHER_ENTITIES:
        return query + f" AND LegalEntity = '{request.legal_entity}'"
    if request.excluded:
        codes = ", ".join(f"'{code}'" for code in sorted(request.excluded))
        query += f" AND LegalEntity NOT IN ({codes})"
    return query


async def _signal(client: Client, workflow_id: str, message: ClosePeriod) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).signal(SIGNAL_CLOSE_PERIOD, message)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # it ended since it was listed
            return False
        raise
    return True


class BillingRunActivities(StepActivities):
    @activity.defn(name=CLOSE_PERIOD_FOR_ENTITY)
    async def close_period_for_entity(self, request: CloseForEntity) -> int:
        """Send ``close_period`` to each running contract of the entity; returns how many
        took it."""
        for code in [request.legal_entity, *request.excluded]:
            if code != OTHER_ENTITIES and not code.isalnum():
                raise ValueError(f"not a legal entity code: {code!r}")
        if request.task_queue and "'" in request.task_queue:
            raise ValueError(f"not a task queue name: {request.task_queue!r}")
        client = activity.client()
        message = ClosePeriod(period=request.period, requested_by=request.requested_by)
        semaphore = asyncio.Semaphore(SIGNAL_CONCURRENCY)
        signalled = 0

        async def one(workflow_id: str) -> None:
            nonlocal signalled
            async with semaphore:
                if await _signal(client, workflow_id, message):
                    signalled += 1
                    activity.heartbeat(signalled)

        tasks = [
            asyncio.create_task(one(wf.id))
            async for wf in client.list_workflows(running_contracts_query(request))
        ]
        await asyncio.gather(*tasks)
        return signalled
