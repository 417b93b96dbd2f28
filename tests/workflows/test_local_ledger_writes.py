"""c2c's writes to its own ledger run as local activities: a ledger that fails loses nothing.

A worker whose ledger refuses its first audit writes from local activities (as SQLite does
with ``database is locked``, or PostgreSQL during a failover) still brings the contract to
``active``: the SDK retries the write inside the workflow task, every audit line lands once,
and the history holds markers, not failed activities.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.exc import OperationalError
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory

from bench.measure import is_local_activity
from c2c.settings import Settings
from domain.steps import RECORD_AUDIT
from ledger import AuditEventIn, Ledger
from starter.api.contracts import contract_handle, start_contract
from tests.workflows.helpers import approval, wait_stage
from worker import contract_worker

T = TypeVar("T")


class FlakyLedger(Ledger):
    """A real SQLite ledger that refuses its first ``failures`` audit writes made by local
    activities, and the first ``flush_failures`` made by an ordinary ``record_audit``."""

    def __init__(self, url: str, failures: int, flush_failures: int = 0) -> None:
        super().__init__(url)
        self.failures = failures
        self.flush_failures = flush_failures
        self.refused = 0
        self.flushes_refused = 0

    def record_audit(self, events: Sequence[AuditEventIn]) -> int:
        if activity.in_activity():
            info = activity.info()
            if info.is_local and self.refused < self.failures:
                self.refused += 1
                raise OperationalError("INSERT INTO ledger_audit_event", {}, Exception("locked"))
            if info.activity_type == RECORD_AUDIT and self.flushes_refused < self.flush_failures:
                self.flushes_refused += 1
                raise OperationalError("INSERT INTO ledger_audit_event", {}, Exception("locked"))
        return super().record_audit(events)


def own_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "task_queue": f"c2c-flaky-ledger-{uuid.uuid4().hex[:8]}",
            "database_url": f"sqlite:///{tmp_path / 'ledger.db'}",
        }
    )


@pytest.mark.usefixtures("sandbox")
async def test_a_failing_ledger_write_is_retried_locally_and_lands_once(
    temporal_client: Client, settings: Settings, tmp_path: Path
) -> None:
    # The write after activation (the audit flush when the contract parks) is refused twice,
    # then made.
    own = own_settings(settings, tmp_path)
    ledger = FlakyLedger(own.ledger_url, failures=2)
    history = await park_with_audit(
        temporal_client,
        own,
        ledger,
        lambda events: any(is_local_activity(e) for e in events),
        "the local activity's marker",
    )
    assert ledger.refused == 2
    kinds = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED not in kinds
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds
    assert [(m["activity_type"], m["attempt"]) for m in markers(history)] == [(RECORD_AUDIT, 3)]


@pytest.mark.usefixtures("sandbox")
async def test_a_ledger_that_keeps_refusing_is_retried_as_an_ordinary_activity(
    temporal_client: Client, settings: Settings, tmp_path: Path
) -> None:
    """After ``LOCAL_LEDGER_RETRY``'s attempts the write stops retrying inside workflow tasks
    (long retries there add history events) and goes on as an activity, pending where
    operators look."""
    # Every local write is refused; the same write as an ordinary activity lands at its third
    # attempt (after 1 + 2 s), the retries being the server's: they add no history events.
    own = own_settings(settings, tmp_path)
    ledger = FlakyLedger(own.ledger_url, failures=10**6, flush_failures=2)
    history = await park_with_audit(
        temporal_client,
        own,
        ledger,
        lambda events: any(
            e.activity_task_completed_event_attributes.scheduled_event_id
            == audit_activity_id(events)
            for e in events
        ),
        "the ordinary record_audit activity to complete",
    )
    assert [(m["activity_type"], m["attempt"]) for m in markers(history)] == [(RECORD_AUDIT, 4)]
    assert ledger.flushes_refused == 2
    kinds = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED not in kinds
    # Parked active with the write done: as many events as a contract whose ledger answered,
    # plus the failed marker's and the activity's (no event per attempt); the run's one patch
    # marker (the release's, ``workflows.releases``) with the search attribute the SDK upserts
    # beside it, and the invoice's documents step are among them.
    assert len(history.events) <= 52, len(history.events)


def markers(history: WorkflowHistory) -> list[dict[str, Any]]:
    """The SDK's record of each local activity: its type, attempt and times."""
    return [
        json.loads(e.marker_recorded_event_attributes.details["data"].payloads[0].data)
        for e in history.events
        if is_local_activity(e)
    ]


async def park_with_audit(
    client: Client,
    settings: Settings,
    ledger: FlakyLedger,
    written: Callable[[Sequence[HistoryEvent]], bool],
    what: str,
) -> WorkflowHistory:
    """Run a contract to ``active`` on a worker writing to ``ledger``; wait until the ledger's
    audit trail holds every line of its status, once, and its history shows ``written``."""
    event = approval()
    cid = event.contract_id
    async with contract_worker(client, settings, ledger=ledger):
        await start_contract(client, event, task_queue=settings.task_queue)
        active = await wait_stage(client, cid, "active")
        lines = [h.event for h in active.history]
        await poll(
            lambda: asyncio.to_thread(ledger.audit_trail, cid),
            lambda trail: [e.event for e in trail] == lines,
            what="the audit trail to hold every line",
        )
        history = await poll(
            contract_handle(client, cid).fetch_history, lambda h: written(h.events), what=what
        )
    trail = ledger.audit_trail(cid)
    assert len({e.event_key for e in trail}) == len(trail) == len(lines)
    return history


def audit_activity_id(events: Sequence[HistoryEvent]) -> int:
    """The event id of the ordinary ``record_audit`` activity, or 0."""
    return next(
        (
            e.event_id
            for e in events
            if e.activity_task_scheduled_event_attributes.activity_type.name == RECORD_AUDIT
        ),
        0,
    )


async def poll(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, what: str) -> T:
    for _ in range(300):
        value = await read()
        if done(value):
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
