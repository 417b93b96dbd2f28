"""Which task queue a contract's steps take: a system's own only where a limit needs it.

A system with no rate or concurrency limit runs its steps after validation on the workflows'
queue, where the server can hand a step to the worker that scheduled it at once (eager
dispatch); the choice is validation's, recorded in history, so a replay takes the same queues.
"""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from c2c.settings import QUEUED_SYSTEMS, Settings
from starter.api.contracts import contract_handle, start_contract
from tests.workflows.helpers import approval, wait_stage


def test_a_system_keeps_its_own_queue_only_with_a_limit_or_in_a_split_fleet(
    settings: Settings,
) -> None:
    plain = settings.model_copy(
        update={"rate_limits": {}, "concurrency_limits": {}, "worker_queues": []}
    )
    assert plain.queued_systems() == []
    assert plain.model_copy(update={"rate_limits": {"erp": 5.0}}).queued_systems() == ["erp"]
    assert plain.model_copy(update={"concurrency_limits": {"psa": 2}}).queued_systems() == ["psa"]
    split = plain.model_copy(update={"worker_queues": ["workflows", "erp"]})
    assert split.queued_systems() == list(QUEUED_SYSTEMS)


@pytest.mark.usefixtures("worker")
async def test_with_no_limit_every_step_after_validation_runs_on_the_workflows_queue(
    temporal_client: Client, settings: Settings
) -> None:
    assert settings.queued_systems() == []
    event = approval()
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    await wait_stage(temporal_client, event.contract_id, "active")
    history = await contract_handle(temporal_client, event.contract_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    queues = {(a.activity_type.name, a.task_queue.name) for a in scheduled}
    assert {name for name, _ in queues} >= {"ensure_erp_customer", "activate_psa_project"}
    # Validation, which decides the queues, runs on its system's as before.
    after = {queue for name, queue in queues if name != "validate_contract"}
    assert after == {settings.task_queue}, queues
