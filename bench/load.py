"""Load the benchmarks send: signed CLM approvals, approved PSA time, and waits for results.

Everything goes through c2c's and the sandbox's public interfaces: approvals through the API's
signed webhook, time through the sandbox's bulk seed route (test control), contracts' PSA
projects from the PSA's list.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from c2c.signing import sign
from domain.models import RateCardEntry
from domain.names import SIGNATURE_HEADER, WORKFLOW_TYPE, contract_workflow_id
from domain.periods import Period
from starter.stack.demo_setup import demo_contract

T = TypeVar("T")

#: The rate card of every benchmark contract: (role, hourly rate).
RATES = (("Senior Consultant", Decimal("200.00")), ("Analyst", Decimal("120.00")))
#: Most entries per bulk seed request (the sandbox takes up to 10,000).
SEED_CHUNK = 5_000
ACTIVE_QUERY = f"WorkflowType = '{WORKFLOW_TYPE}' AND C2CStage = 'active'"


def run_id() -> str:
    """A short tag that makes a run's contract ids its own."""
    return secrets.token_hex(3).upper()


def billing_period(today: date | None = None) -> Period:
    """The month before this one: already started and over, so a close bills it."""
    today = today or datetime.now(UTC).date()
    return Period.of(today.replace(day=1) - timedelta(days=1))


def approval(contract_id: str, period: Period) -> dict[str, Any]:
    """The demo's T&M approval (ACME-US, billed from US01 in USD) under ``contract_id``, active
    in ``period`` and for a year, so a close of ``period`` is not its final one, without a cap
    (the benchmarks bill far more than the demo's), at the benchmark's rate card."""
    contract = demo_contract(period.last_day + timedelta(days=1), datetime.now(UTC))
    return contract.model_copy(
        update={
            "event_id": f"evt-{contract_id}",
            "contract_id": contract_id,
            "title": f"Benchmark SOW {contract_id}",
            "end_date": period.first_day + timedelta(days=364),
            "not_to_exceed": None,
            "rate_card": [RateCardEntry(role=role, hourly_rate=rate) for role, rate in RATES],
        }
    ).model_dump(mode="json")


def signed_request(payload: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """A ``contract.approved`` webhook body and its headers, signed now."""
    body = json.dumps({"type": "contract.approved", "data": payload}).encode()
    return body, {SIGNATURE_HEADER: sign(body, secret), "Content-Type": "application/json"}


async def bounded(
    items: Iterable[T], work: Callable[[T], Awaitable[float]], *, concurrency: int
) -> list[float]:
    """Run ``work`` on every item, ``concurrency`` at a time; the values it returned."""
    queue = list(items)
    results: list[float] = []

    async def runner() -> None:
        while queue:
            results.append(await work(queue.pop(0)))

    await asyncio.gather(*(runner() for _ in range(max(1, concurrency))))
    return results


async def post_approvals(
    http: httpx.AsyncClient,
    url: str,
    secret: str,
    payloads: Sequence[dict[str, Any]],
    *,
    concurrency: int,
    expect: int = 202,
) -> list[float]:
    """POST each payload as a signed ``contract.approved``; each request's latency in seconds.

    Raises:
        RuntimeError: on any answer but ``expect`` (a benchmark must not count failures).
    """

    async def post(payload: dict[str, Any]) -> float:
        body, headers = signed_request(payload, secret)
        started = time.perf_counter()
        response = await http.post(url, content=body, headers=headers)
        elapsed = time.perf_counter() - started
        if response.status_code != expect:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")
        return elapsed

    return await bounded(payloads, post, concurrency=concurrency)


async def psa_projects(http: httpx.AsyncClient, sandbox_url: str) -> dict[str, str]:
    """Every PSA project of the sandbox: contract id → project id."""
    projects: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        response = await http.get(f"{sandbox_url}/psa/v1/projects", params=params)
        response.raise_for_status()
        page = response.json()
        projects.update({p["contract_id"]: p["project_id"] for p in page["items"]})
        cursor = page["next"]
        if not cursor:
            return projects


def time_entries(project_id: str, period: Period, count: int) -> list[dict[str, Any]]:
    """``count`` approved, billable entries on ``project_id`` spread over ``period``."""
    days = (period.last_day - period.first_day).days + 1
    return [
        {
            "project_id": project_id,
            "consultant_id": f"u-{i % 7}",
            "role": RATES[i % len(RATES)][0],
            "work_date": (period.first_day + timedelta(days=i % days)).isoformat(),
            "hours": "7.5" if i % 3 else "8",
            "billable": True,
            "approved": True,
        }
        for i in range(count)
    ]


def expected_subtotal(entries: Iterable[dict[str, Any]]) -> Decimal:
    """What the entries bill at the benchmark's rate card (each line rounds exactly: cents)."""
    rates = dict(RATES)
    return sum((Decimal(e["hours"]) * rates[e["role"]] for e in entries), Decimal(0))


async def seed_entries(
    http: httpx.AsyncClient, sandbox_url: str, entries: Sequence[dict[str, Any]]
) -> None:
    """Add ``entries`` through ``POST /_admin/seed/time-entries``, a chunk at a time."""
    for start in range(0, len(entries), SEED_CHUNK):
        chunk = entries[start : start + SEED_CHUNK]
        response = await http.post(
            f"{sandbox_url}/_admin/seed/time-entries", json={"entries": chunk}, timeout=300
        )
        if response.status_code != 201:
            raise RuntimeError(f"seeding time answered {response.status_code}: {response.text}")


async def sandbox_stats(http: httpx.AsyncClient, sandbox_url: str) -> dict[str, Any]:
    response = await http.get(f"{sandbox_url}/_admin/stats")
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


def route_count(stats: dict[str, Any], kind: str, system: str, suffix: str) -> int:
    """Requests (``kind`` "requests") or writes of ``system`` on routes ending in ``suffix``."""
    routes: dict[str, int] = stats.get(kind, {}).get(system, {})
    return sum(n for route, n in routes.items() if route.endswith(suffix))


async def wait_route_count(
    http: httpx.AsyncClient,
    sandbox_url: str,
    kind: str,
    system: str,
    suffix: str,
    expected: int,
    *,
    timeout_s: float,
    poll_s: float = 0.25,
) -> float:
    """Poll the sandbox's stats until ``expected`` such requests were served; the
    ``time.time()`` at which the count was first seen reached."""
    deadline = time.monotonic() + timeout_s
    while True:
        count = route_count(await sandbox_stats(http, sandbox_url), kind, system, suffix)
        if count >= expected:
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} of {expected} {system} {suffix} after {timeout_s:.0f} s")
        await asyncio.sleep(poll_s)


def contract_ids(tag: str, count: int, *, prefix: str = "B") -> list[str]:
    return [f"{prefix}{tag}-{i:05d}" for i in range(count)]


def workflow_ids(ids: Iterable[str]) -> list[str]:
    return [contract_workflow_id(c) for c in ids]
