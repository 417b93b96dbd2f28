"""The nightly reconciliation that ``c2c up`` schedules: created once, then left as an
operator keeps it."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.reconcile import RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW_TYPE
from starter.stack.schedules import NIGHTLY_CRON, ensure_nightly_schedule

pytestmark = pytest.mark.usefixtures("temporal_env")


async def test_the_nightly_schedule_is_created_once(
    temporal_client: Client, settings: Settings
) -> None:
    assert await ensure_nightly_schedule(temporal_client, task_queue=settings.task_queue)
    handle = temporal_client.get_schedule_handle(RECONCILE_SCHEDULE_ID)
    await handle.pause(note="kept paused by an operator")
    assert not await ensure_nightly_schedule(temporal_client, task_queue=settings.task_queue)
    described = await handle.describe()
    # The server keeps the cron expression as a calendar: every day at 02:00 UTC.
    [calendar] = described.schedule.spec.calendars
    assert [(r.start, r.end) for r in calendar.hour] == [(2, 2)]
    assert NIGHTLY_CRON.startswith("0 2 ")
    assert described.schedule.state.paused
    action = described.schedule.action
    assert getattr(action, "workflow", None) == RECONCILE_WORKFLOW_TYPE
    await handle.delete()
