"""What the benchmarks measure besides wall time: process memory and workflow histories."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from domain.names import SA_STAGE

#: The marker the SDK records for each local activity's outcome.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


def process_memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of a process now (``rss``) and at its peak (``peak``), in MiB.

    Read from ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), so it needs no extra package.
    """
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values["rss" if key == "VmRSS" else "peak"] = int(rest.split()[0]) / 1024
    return values


def median(values: Sequence[float]) -> float:
    """The median, or 0 for no values."""
    return statistics.median(values) if values else 0.0


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank), or 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# ---------------------------------------------------------------------- histories


def _payloads(message: Message) -> Iterator[Payload]:
    """Every ``Payload`` inside ``message``, however deep (inputs, results, signals, memos,
    search attributes, failure details)."""
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items: Iterable[Any] = value.values()
        elif field.is_repeated:
            items = value
        else:
            items = (value,)
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, Message):
                yield from _payloads(item)


def is_local_activity(event: HistoryEvent) -> bool:
    """Whether ``event`` is the SDK's record of a local activity (c2c's ledger writes)."""
    return (
        event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
    )


def _is_active_upsert(event: HistoryEvent) -> bool:
    if event.event_type != EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        return False
    fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
    stage = fields.indexed_fields.get(SA_STAGE.name)
    return stage is not None and stage.data.strip(b'"') == b"active"


@dataclass(frozen=True)
class HistoryFacts:
    """What one workflow history says about cost and size."""

    workflow_id: str
    events: int
    #: Every activity, local ones included (each local one is a marker, not a task).
    activities: int
    local_activities: int
    largest_payload: int
    started_at: datetime
    ended_at: datetime
    #: Up to and including the search-attribute upsert that made the contract active.
    events_to_active: int | None = None
    activities_to_active: int | None = None
    active_at: datetime | None = None


def history_facts(workflow_id: str, events: Sequence[HistoryEvent]) -> HistoryFacts:
    """Count events and activities, find the largest payload and when the stage became active."""
    activities = local = events_to_active = activities_to_active = 0
    active_at: datetime | None = None
    largest = 0
    for n, event in enumerate(events, start=1):
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activities += 1
        elif is_local_activity(event):
            activities += 1
            local += 1
        largest = max([largest, *(p.ByteSize() for p in _payloads(event))])
        if active_at is None and _is_active_upsert(event):
            active_at = event.event_time.ToDatetime()
            events_to_active, activities_to_active = n, activities
    return HistoryFacts(
        workflow_id=workflow_id,
        events=len(events),
        activities=activities,
        local_activities=local,
        largest_payload=largest,
        started_at=events[0].event_time.ToDatetime(),
        ended_at=events[-1].event_time.ToDatetime(),
        events_to_active=events_to_active if active_at else None,
        activities_to_active=activities_to_active if active_at else None,
        active_at=active_at,
    )


async def fetch_facts(
    client: Client, workflow_ids: Sequence[str], *, concurrency: int = 16
) -> list[HistoryFacts]:
    """``history_facts`` of each workflow, fetched ``concurrency`` at a time."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(workflow_id: str) -> HistoryFacts:
        async with semaphore:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        return history_facts(workflow_id, history.events)

    return list(await asyncio.gather(*(one(w) for w in workflow_ids)))


async def count_workflows(client: Client, query: str) -> int:
    """How many workflows visibility finds for ``query``."""
    return (await client.count_workflows(query)).count


async def wait_count(
    client: Client,
    query: str,
    expected: int,
    *,
    timeout_s: float,
    poll_s: float = 0.5,
    what: str = "workflows",
) -> None:
    """Poll visibility until ``query`` finds ``expected`` workflows."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    found = 0
    while True:
        found = await count_workflows(client, query)
        if found >= expected:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"{found} of {expected} {what} after {timeout_s:.0f} s")
        await asyncio.sleep(poll_s)
