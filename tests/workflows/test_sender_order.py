"""Messages are decided in the order their senders sent them, whatever the worker caches.

c2c's API, CLI and webhooks stamp every business message with the instant it was sent (in the
payload's metadata, which a reset delivers again with it). When a workflow task brings signals
and updates together, as a reset does, the contract decides them in the order of their stamps,
not in the order the SDK happens to run their handlers: a worker that keeps no workflow in its
cache (every task replayed) decides each message after a reset as before.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from c2c.settings import Settings
from tests.workflows.test_reset_property import MILESTONES, Scenario, check
from worker import contract_worker

#: An update removing an invoiced milestone, then a period close, then a second update: after
#: a reset to the first task they all arrive together, signals and updates mixed.
INVOICED_MILESTONE_REMOVED = Scenario(
    terms={
        "start_date": "2026-10-01",
        "end_date": "2026-12-31",
        "billing_model": "fixed_fee",
        "milestones": MILESTONES,
        "milestone_invoicing": "on_completion",
        "not_to_exceed": None,
    },
    steps=(
        ("milestone", "M1", date(2026, 10, 15)),
        ("close", "2026-10"),
        ("milestone", "M2", date(2026, 11, 12)),
        ("amend", "update", date(2026, 11, 20), {"remove_milestones": ["M2"]}),
        ("close", "2026-11"),
        ("amend", "update", date(2026, 11, 2), {"remove_milestones": ["M2"]}),
        ("amend", "signal", date(2026, 12, 1), {"end_date": date(2026, 12, 31)}),
    ),
    reset="cli",
    seed=11,
)


@pytest_asyncio.fixture
async def uncached(temporal_client: Client, settings: Settings) -> AsyncIterator[Settings]:
    """A worker that caches no workflow, on a task queue of its own."""
    mine = settings.model_copy(
        update={
            "task_queue": f"c2c-uncached-{uuid.uuid4().hex[:8]}",
            "worker_max_cached_workflows": 0,
        }
    )
    async with contract_worker(temporal_client, mine):
        yield mine


@pytest.mark.parametrize("reset", ["cli", "client-first", "client-random", "ops"])
async def test_a_reset_decides_as_before_when_every_task_is_replayed(
    reset: str, temporal_client: Client, uncached: Settings, sandbox_url: str
) -> None:
    scenario = Scenario(
        terms=INVOICED_MILESTONE_REMOVED.terms,
        steps=INVOICED_MILESTONE_REMOVED.steps,
        reset=reset,
        seed=random.Random(reset).randint(0, 2**16),
    )
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as sandbox:
        await check(temporal_client, uncached, sandbox, scenario)
