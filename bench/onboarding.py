"""Benchmark 1, onboarding throughput: N T&M contracts from CLM approval to ``active``.

c2c: N signed approvals POSTed to the API (``--concurrency`` at a time), the sandbox answering
without added latency; timed from the first POST until the last contract's history shows the
stage ``active``. Baseline, in the same run on the same server: N workflows, each running as
many do-nothing activities as a c2c contract ran to be parked active, started through the
client; timed from the first start until the last one's history ends. Also measured: activities
and history events per contract, and the median approval → active latency of single contracts
sent one at a time (before the burst). ``--profile`` samples the worker and the sandbox with
py-spy during c2c's burst.

    python -m bench.onboarding --contracts 300 [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

import httpx
from temporalio.client import Client, WorkflowHandle

from bench import cli
from bench.baseline_worker import BASELINE_TASK_QUEUE, ONBOARDING_BASELINE
from bench.load import (
    ACTIVE_QUERY,
    approval,
    billing_period,
    contract_ids,
    post_approvals,
    run_id,
    workflow_ids,
)
from bench.measure import HistoryFacts, count_workflows, fetch_facts, median, wait_count
from bench.profile import (
    CPU_NOTE,
    PROFILED_NOTE,
    CpuLaps,
    Profiler,
    cpu_rows,
    profile_components,
    stop_all,
)
from bench.report import Result, Row
from bench.stack import BenchStack
from domain.periods import Period

#: The figures c2c aims for (docs/performance.md).
RATIO_GOAL = 0.8
MAX_ACTIVITIES = 8
MAX_EVENTS = 60
SINGLE_LATENCY_GOAL_MS = 1000.0


@dataclass(frozen=True)
class Onboarded:
    """A burst of contracts brought to ``active``."""

    contract_ids: list[str]
    started: float
    facts: list[HistoryFacts]
    post_latencies: list[float]

    @property
    def seconds(self) -> float:
        """From the first POST until the last contract became active."""
        last = max(f.active_at for f in self.facts if f.active_at is not None)
        return last.replace(tzinfo=UTC).timestamp() - self.started


async def onboard(
    stack: BenchStack,
    client: Client,
    http: httpx.AsyncClient,
    ids: Sequence[str],
    period: Period,
    *,
    concurrency: int,
    timeout_s: float,
) -> Onboarded:
    """Approve ``ids`` through the API, wait until every one is active and has settled
    (its history no longer grows), and read their histories."""
    already = await count_workflows(client, ACTIVE_QUERY)
    payloads = [approval(c, period) for c in ids]
    started = time.time()
    latencies = await post_approvals(
        http,
        f"{stack.api_url}/webhooks/clm",
        stack.webhook_secret,
        payloads,
        concurrency=concurrency,
    )
    await wait_count(
        client, ACTIVE_QUERY, already + len(ids), timeout_s=timeout_s, what="active contracts"
    )
    stack.check_alive()
    facts = await settled_facts(client, workflow_ids(ids))
    return Onboarded(list(ids), started, facts, latencies)


async def settled_facts(client: Client, ids: Sequence[str]) -> list[HistoryFacts]:
    """Histories once they stop growing: a contract that just became active still writes its
    audit trail, and that work belongs to its onboarding."""
    facts = await fetch_facts(client, ids)
    while True:
        await asyncio.sleep(1.0)
        again = await fetch_facts(client, ids)
        if [f.events for f in again] == [f.events for f in facts]:
            return again
        facts = again


async def baseline_burst(
    client: Client, count: int, activities: int, local: int, *, concurrency: int, tag: str
) -> tuple[float, list[HistoryFacts]]:
    """Start ``count`` onboarding baselines of ``activities`` activities each (``local`` of
    them local) and wait for them all; (seconds, histories)."""
    ids = [f"bench-onboard-{tag}-{i:05d}" for i in range(count)]
    handles: list[WorkflowHandle] = []
    semaphore = asyncio.Semaphore(concurrency)

    async def start(workflow_id: str) -> None:
        async with semaphore:
            handles.append(
                await client.start_workflow(
                    ONBOARDING_BASELINE,
                    args=[activities, local],
                    id=workflow_id,
                    task_queue=BASELINE_TASK_QUEUE,
                )
            )

    started = time.time()
    await asyncio.gather(*(start(w) for w in ids))
    await asyncio.gather(*(h.result() for h in handles))
    facts = await fetch_facts(client, ids)
    ended = max(f.ended_at for f in facts)
    return ended.replace(tzinfo=UTC).timestamp() - started, facts


async def single_latencies(
    stack: BenchStack,
    client: Client,
    http: httpx.AsyncClient,
    period: Period,
    *,
    count: int,
    tag: str,
) -> tuple[list[float], list[HistoryFacts]]:
    """Approval → active of ``count`` contracts sent one at a time, in milliseconds."""
    latencies: list[float] = []
    facts: list[HistoryFacts] = []
    for contract_id in contract_ids(tag, count, prefix="S"):
        done = await onboard(
            stack, client, http, [contract_id], period, concurrency=1, timeout_s=60
        )
        latencies.append(done.seconds * 1000)
        facts.extend(done.facts)
    return latencies, facts


async def run(stack: BenchStack, args: argparse.Namespace) -> Result:
    result = Result(
        name="onboarding",
        title="Onboarding throughput",
        sizes={"contracts": args.contracts, "concurrency": args.concurrency},
    )
    client = await stack.ready_client()
    period, tag = billing_period(), run_id()
    async with httpx.AsyncClient(timeout=60) as http:
        single_ms, single_facts = await single_latencies(
            stack, client, http, period, count=args.single, tag=tag
        )
        activities = round(median([f.activities for f in single_facts]))
        local = round(median([f.local_activities for f in single_facts]))
        cpu = CpuLaps(stack)
        base_s, base_facts = await baseline_burst(
            client, args.contracts, activities, local, concurrency=args.concurrency, tag=tag
        )
        cpu_baseline = cpu.lap()
        profilers: dict[str, Profiler] = {}
        if args.profile:
            profilers = profile_components(
                stack, ("worker", "sandbox"), args.results_dir, f"onboarding-{tag}"
            )
        burst = await onboard(
            stack,
            client,
            http,
            contract_ids(tag, args.contracts),
            period,
            concurrency=args.concurrency,
            timeout_s=args.timeout,
        )
        profiles = stop_all(profilers)
        cpu_c2c = cpu.lap()
    c2c_rate = args.contracts / burst.seconds
    base_rate = args.contracts / base_s
    facts = burst.facts
    ratio = c2c_rate / base_rate
    acts = max(f.activities for f in facts)
    events = max(f.events for f in facts)
    result.add(
        Row(
            "approval → active throughput",
            c2c_rate,
            "contracts/s",
            baseline=base_rate,
            ratio=ratio,
            goal=f"ratio ≥ {RATIO_GOAL}",
            met=ratio >= RATIO_GOAL,
        )
    )
    result.add(Row("burst wall time", burst.seconds, "s", baseline=base_s))
    result.add(
        Row(
            "activities per contract (parked active; max)",
            acts,
            baseline=activities,
            goal=f"≤ {MAX_ACTIVITIES}",
            met=acts <= MAX_ACTIVITIES,
        )
    )
    result.add(
        Row(
            "of which local activities (ledger writes; max)",
            max(f.local_activities for f in facts),
            baseline=local,
        )
    )
    result.add(
        Row(
            "history events per contract (parked active; max)",
            events,
            baseline=max(f.events for f in base_facts),
            goal=f"≤ {MAX_EVENTS}",
            met=events <= MAX_EVENTS,
        )
    )
    result.add(
        Row(
            "history events up to the `active` upsert (max)",
            max(f.events_to_active or 0 for f in facts),
        )
    )
    result.add(
        Row(
            "single contract approval → active (median)",
            median(single_ms),
            "ms",
            goal=f"< {SINGLE_LATENCY_GOAL_MS:.0f} ms idle",
            met=median(single_ms) < SINGLE_LATENCY_GOAL_MS,
        )
    )
    result.add(
        Row("webhook POST latency in the burst (median)", median(burst.post_latencies) * 1000, "ms")
    )
    result.add(Row("largest payload in a history", max(f.largest_payload for f in facts), "bytes"))
    # The baseline calls no system and receives no webhook: no counterpart for those two.
    counterparts = {"worker": "baseline", "temporal": "temporal", "sandbox": None, "api": None}
    for row in cpu_rows(cpu_c2c, cpu_baseline, args.contracts, counterparts):
        result.add(row)
    result.details = {
        "single_latencies_ms": single_ms,
        "baseline_activities": activities,
        "c2c_seconds": burst.seconds,
        "baseline_seconds": base_s,
        "profiles": profiles,
        "cpu_seconds_c2c_burst": cpu_c2c,
        "cpu_seconds_baseline_burst": cpu_baseline,
    }
    result.notes.append(
        "Baseline: the same number of workflows, each running the median number of activities "
        "a single c2c contract ran until parked active, on the baseline worker of the same "
        "server. The single-contract latency is from the POST to the history's `active` "
        f"upsert, {args.single} contracts one at a time; the machine is shared, so it is not idle."
    )
    result.notes.append(CPU_NOTE)
    if args.profile:
        result.notes.append(PROFILED_NOTE.format(what="the worker and the sandbox"))
    return result


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--contracts", type=int, default=300, help="contracts in the burst")
    parser.add_argument("--single", type=int, default=5, help="contracts sent one at a time")
    parser.add_argument("--concurrency", type=int, default=10, help="requests in flight")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the burst")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the worker and the sandbox with py-spy during c2c's burst",
    )
    cli.run(parser, run)


if __name__ == "__main__":
    main()
