"""Benchmark 4, webhook ingress: signed CLM approvals per second, with p50/p99 latency.

c2c: ``POST /webhooks/clm`` on ``c2c api`` (signature, parsing and validation, the inbound-event
ledger, starting the contract's workflow on the Temporal server). Baseline: the bare endpoint
(``bench.bare_endpoint``), on the same FastAPI and uvicorn, which only checks the signature.
Both get the same signed approvals (fresh contract ids) from the same client, ``--concurrency``
in flight, in alternating rounds so that a change in the machine's load hits both alike. No
worker runs: the contracts' workflows are started, not run, so the figure is the API's own.

A third party in the same rounds starts the same contracts' workflows straight from this
process with c2c's own start call (``starter.api.contracts.start_contract``, the same options),
at the same concurrency on the same server, without HTTP or the API: what the Temporal start
alone allows, so that the report can say how much of c2c's cost per approval is the start.

A fourth is ``c2c api`` with the event queue on (``C2C_WEBHOOK_QUEUE``): it answers each
approval once it is valid and recorded, and its queue starts the workflows. Its round is
timed to the last answer; then the benchmark waits until the queue has started every
workflow (the drain), so that no start spills into another party's round, and reports the
approvals started per second over both.

    python -m bench.webhooks --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx
from temporalio.client import Client

from bench import cli
from bench.load import (
    approval,
    billing_period,
    bounded,
    contract_ids,
    post_approvals,
    run_id,
)
from bench.measure import median, percentile
from bench.profile import Profiler
from bench.profile import cpu_seconds as process_cpu
from bench.report import Result, Row
from bench.stack import BenchStack
from domain.models import ContractApproved
from ledger import Ledger, get_ledger
from starter.api.contracts import start_contract

RATIO_GOAL = 0.5
#: The party that starts workflows straight from the client.
DIRECT = "direct"
#: The party whose API answers approvals before its event queue starts them.
QUEUED = "queued"


async def run(stack: BenchStack, args: argparse.Namespace) -> Result:
    result = Result(
        name="webhooks",
        title="Webhook ingress",
        sizes={
            "requests": args.requests,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
        },
    )
    period, tag = billing_period(), run_id()
    urls = {
        "c2c": f"{stack.api_url}/webhooks/clm",
        QUEUED: f"{stack.queued_api_url}/webhooks/clm",
        "bare": f"{stack.bare_url}/webhooks/clm",
    }
    parties = (*urls, DIRECT)
    latencies: dict[str, list[float]] = {name: [] for name in parties}
    seconds: dict[str, float] = dict.fromkeys(parties, 0.0)
    # The queued party's time from its last answer until its queue has started every workflow.
    drain_seconds = 0.0
    ledger = get_ledger(stack.settings().ledger_url)
    # CPU time of the process serving each HTTP party, over its own rounds only (the queued
    # API's includes its drain): unlike requests per second, it hardly moves with the load.
    servers = {"c2c": stack.pid("api"), QUEUED: stack.pid("queued_api"), "bare": stack.pid("bare")}
    cpu: dict[str, float] = dict.fromkeys(servers, 0.0)
    # And the Temporal server's, over the rounds that start workflows: what one start costs it.
    temporal_cpu: dict[str, float] = {"c2c": 0.0, QUEUED: 0.0, DIRECT: 0.0}
    per_round = max(1, args.requests // args.rounds)
    limits = httpx.Limits(max_connections=args.concurrency)
    client = await stack.client()
    task_queue = stack.settings().task_queue

    async def send(name: str, payloads: list[dict[str, Any]], concurrency: int) -> list[float]:
        if name == DIRECT:
            return await start_directly(client, task_queue, payloads, concurrency=concurrency)
        return await post_approvals(
            http, urls[name], stack.webhook_secret, payloads, concurrency=concurrency
        )

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        # Warm every party up (connections, imports, the first workflow start).
        for name in parties:
            await send(
                name,
                [approval(c, period) for c in contract_ids(f"{tag}W{name}", 20, prefix="H")],
                4,
            )
        await drained(ledger)
        profilers: dict[str, Profiler] = {}
        if args.profile:
            for name, component in (("api", "api"), ("queued_api", "queued_api")):
                out = args.results_dir / f"webhooks-{tag}-{name}.pyspy.txt"
                profilers[name] = Profiler(stack.pid(component), out)
        for round_no in range(args.rounds):
            for name in parties:
                ids = contract_ids(f"{tag}R{round_no}{name}", per_round, prefix="H")
                payloads = [approval(c, period) for c in ids]
                cpu_before = cpu_seconds(servers[name]) if name in servers else 0.0
                temporal_before = cpu_seconds(stack.pid("temporal"))
                started = time.perf_counter()
                latencies[name] += await send(name, payloads, args.concurrency)
                seconds[name] += time.perf_counter() - started
                if name == QUEUED:
                    answered = time.perf_counter()
                    await drained(ledger)
                    drain_seconds += time.perf_counter() - answered
                if name in servers:
                    cpu[name] += cpu_seconds(servers[name]) - cpu_before
                if name in temporal_cpu:
                    temporal_cpu[name] += cpu_seconds(stack.pid("temporal")) - temporal_before
        profiles = {name: profiler.stop() for name, profiler in profilers.items()}
    stack.check_alive()
    rate = {name: len(latencies[name]) / seconds[name] for name in parties}
    ratio = rate["c2c"] / rate["bare"]
    result.add(
        Row(
            "signed approvals per second",
            rate["c2c"],
            "req/s",
            baseline=rate["bare"],
            ratio=ratio,
            goal=f"ratio ≥ {RATIO_GOAL}",
            met=ratio >= RATIO_GOAL,
        )
    )
    queued_ratio = rate[QUEUED] / rate["bare"]
    result.add(
        Row(
            "signed approvals per second, event queue on (C2C_WEBHOOK_QUEUE)",
            rate[QUEUED],
            "req/s",
            baseline=rate["bare"],
            ratio=queued_ratio,
            goal=f"ratio ≥ {RATIO_GOAL}",
            met=queued_ratio >= RATIO_GOAL,
        )
    )
    started_rate = len(latencies[QUEUED]) / (seconds[QUEUED] + drain_seconds)
    result.add(
        Row(
            "event queue on: approvals answered and their workflows started, per second",
            started_rate,
            "/s",
            baseline=rate["bare"],
            ratio=started_rate / rate["bare"],
        )
    )
    result.add(
        Row(
            "workflow starts per second, straight from the client (no API)",
            rate[DIRECT],
            "starts/s",
            baseline=rate["bare"],
            ratio=rate[DIRECT] / rate["bare"],
        )
    )
    result.add(
        Row(
            "c2c approvals ÷ direct starts",
            rate["c2c"] / rate[DIRECT],
            "",
        )
    )
    cpu_ms = {name: 1000 * cpu[name] / len(latencies[name]) for name in servers}
    for name, label in (("c2c", "API"), (QUEUED, "API with the event queue, its starts included")):
        result.add(
            Row(
                f"server CPU per request ({label} ÷ bare endpoint process)",
                cpu_ms[name],
                "ms",
                baseline=cpu_ms["bare"],
                ratio=cpu_ms["bare"] / cpu_ms[name] if cpu_ms[name] else None,
            )
        )
    per_start = {name: 1000 * temporal_cpu[name] / len(latencies[name]) for name in temporal_cpu}
    result.add(
        Row(
            "Temporal server CPU per workflow start (c2c ÷ direct)",
            per_start["c2c"],
            "ms",
            baseline=per_start[DIRECT],
        )
    )
    for name, label in (("c2c", ""), (QUEUED, ", event queue on")):
        for pct in (50, 99):
            c2c_ms = percentile(latencies[name], pct) * 1000
            bare_ms = percentile(latencies["bare"], pct) * 1000
            result.add(
                Row(
                    f"latency p{pct}{label}",
                    c2c_ms,
                    "ms",
                    baseline=bare_ms,
                    ratio=bare_ms / c2c_ms,
                )
            )
    result.details = {
        "drain_seconds": drain_seconds,
        "seconds": seconds,
        "median_ms": {name: median(v) * 1000 for name, v in latencies.items()},
        "cpu_ms_per_request": cpu_ms,
        "temporal_cpu_ms_per_start": per_start,
        "profile_api": profiles.get("api"),
        "profile_queued_api": profiles.get("queued_api"),
    }
    result.notes.append(
        "Event queue on: a second c2c API (C2C_WEBHOOK_QUEUE=true) answers each approval once "
        "it is valid and recorded, and its queue starts the workflow; its approvals per second "
        "are timed to the last answer of each round, and 'answered and started' adds the time "
        "until the queue had started every workflow of the round (the benchmark waits for it "
        "before the next party's round). Its server CPU includes that drain."
    )
    result.notes.append(
        "Every c2c request answered 202 and started a contract's workflow; latency ratios are "
        "bare ÷ c2c. The load generator runs on the same 2 cores as the servers. Direct starts: "
        "the same contracts' workflows started from the benchmark's own client with c2c's start "
        "call, same concurrency, same server, no API; their ratio is to the bare endpoint. Server "
        "CPU: the API's and the bare endpoint's process CPU time over their own rounds, per "
        "request; its ratio is bare ÷ c2c. Temporal server CPU: the dev server's CPU time per "
        "workflow started, in the c2c rounds and in the direct ones."
    )
    return result


async def drained(ledger: Ledger, timeout_s: float = 600.0) -> None:
    """Wait until the ledger holds no webhook event still waiting to be processed.

    Raises:
        TimeoutError: Some still wait after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while ledger.count_waiting_events():
        if time.monotonic() > deadline:
            raise TimeoutError(f"events still waiting: {ledger.count_waiting_events()}")
        await asyncio.sleep(0.02)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used (``bench.profile.cpu_seconds`` of one)."""
    return process_cpu({"process": pid})["process"]


async def start_directly(
    client: Client, task_queue: str, payloads: list[dict[str, Any]], *, concurrency: int
) -> list[float]:
    """Start each payload's contract as the API would, from this process; each start's
    latency in seconds. The payloads are validated before the clock starts: only the start
    itself is timed."""
    events = [ContractApproved.model_validate(p) for p in payloads]

    async def start(event: ContractApproved) -> float:
        started = time.perf_counter()
        result = await start_contract(client, event, task_queue=task_queue)
        if result.duplicate:
            raise RuntimeError(f"{result.workflow_id} was started before")
        return time.perf_counter() - started

    return await bounded(events, start, concurrency=concurrency)


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    parser.add_argument(
        "--profile", action="store_true", help="sample both APIs with py-spy during the rounds"
    )
    cli.run(parser, run, components=("sandbox", "api", "queued_api", "bare"))


if __name__ == "__main__":
    main()
