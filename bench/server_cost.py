"""What the Temporal server itself spends per workflow, for the features c2c's onboarding uses.

The onboarding benchmark's baseline runs as many do-nothing activities as a contract runs, yet
the dev server spends more CPU on a c2c contract than on a baseline workflow. This script finds
out which of c2c's uses of Temporal costs the server what: N workflows of each variant run on
one dev server (no c2c component: the workers run in this process), and the server's CPU time
per workflow is measured for each, in alternating rounds.

Variants, each ``--activities`` activities one after the other:

- ``plain``: do-nothing activities on one task queue (the onboarding baseline);
- ``upserts``: plus a search-attribute upsert after each activity (c2c's stage changes);
- ``details``: plus new current details after each activity (c2c's readable status);
- ``payloads``: each activity given a 1.4 KB input and returning 300 B (c2c's contract and
  results);
- ``queues``: the activities spread over four task queues (c2c's per-system queues);
- ``all``: everything above together.

    python -m bench.server_cost --workflows 200
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench import cli
from bench.measure import median
from bench.profile import cpu_seconds
from bench.report import Result, Row
from bench.stack import BenchStack

QUEUE = "bench-server-cost"
#: c2c's per-system queues beside the workflows' one.
QUEUES = (QUEUE, f"{QUEUE}-erp", f"{QUEUE}-psa", f"{QUEUE}-crm")
STAGE = SearchAttributeKey.for_keyword("C2CStage")
VARIANTS = ("plain", "upserts", "details", "payloads", "queues", "all")
INPUT = "x" * 1400
OUTPUT = "y" * 300


@activity.defn(name="bench_cost_noop")
async def noop(payload: str) -> str:
    """Does nothing; answers ``OUTPUT`` when given a payload, as c2c's steps answer records."""
    return OUTPUT if payload else ""


@workflow.defn(name="BenchServerCost")
class ServerCost:
    @workflow.run
    async def run(self, variant: str, activities: int) -> None:
        upserts = variant in ("upserts", "all")
        details = variant in ("details", "all")
        payload = INPUT if variant in ("payloads", "all") else ""
        spread = variant in ("queues", "all")
        for n in range(activities):
            await workflow.execute_activity(
                noop,
                payload,
                task_queue=QUEUES[n % len(QUEUES)] if spread else QUEUE,
                start_to_close_timeout=timedelta(seconds=60),
            )
            if upserts:
                workflow.upsert_search_attributes([STAGE.value_set(f"stage-{n}")])
            if details:
                workflow.set_current_details(f"**Stage:** {n}\n\n**Waiting for:** step {n + 1}")


async def run_variant(
    client: Client, variant: str, workflows: int, activities: int, concurrency: int
) -> None:
    """Run ``workflows`` of ``variant``, ``concurrency`` at a time, until all have ended."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await client.execute_workflow(
                ServerCost.run,
                args=[variant, activities],
                id=f"cost-{variant}-{uuid.uuid4().hex[:10]}",
                task_queue=QUEUE,
            )

    await asyncio.gather(*(one() for _ in range(workflows)))


async def run(stack: BenchStack, args: argparse.Namespace) -> Result:
    result = Result(
        name="server_cost",
        title="Temporal server CPU per workflow, by feature",
        sizes={"workflows": args.workflows, "activities": args.activities, "rounds": args.rounds},
    )
    client = await stack.ready_client()
    server = {"temporal": stack.pid("temporal")}
    spent: dict[str, list[float]] = {v: [] for v in VARIANTS}
    # The workflows on the first queue only; unsandboxed, since this module runs as __main__
    # (the sandbox re-imports a workflow's module) and only the server's CPU is measured.
    workers = [
        Worker(
            client,
            task_queue=q,
            workflows=[ServerCost] if q == QUEUE else [],
            activities=[noop],
            workflow_runner=UnsandboxedWorkflowRunner(),
        )
        for q in QUEUES
    ]
    async with _running(workers):
        await run_variant(client, "all", 20, args.activities, args.concurrency)  # warm up
        per_round = max(1, args.workflows // args.rounds)
        for _ in range(args.rounds):
            for variant in VARIANTS:
                before = cpu_seconds(server)["temporal"]
                await run_variant(client, variant, per_round, args.activities, args.concurrency)
                spent[variant].append((cpu_seconds(server)["temporal"] - before) / per_round)
    plain = median(spent["plain"]) * 1000
    for variant in VARIANTS:
        ms = median(spent[variant]) * 1000
        # CPU time is counted in clock ticks (10 ms): a tiny run may read none.
        ratio = plain / ms if ms else None
        result.add(
            Row(f"server CPU per workflow: {variant}", ms, "ms", baseline=plain, ratio=ratio)
        )
    result.details = {"per_round_s": spent}
    result.notes.append(
        f"Medians over {args.rounds} alternating rounds; the baseline column is `plain` "
        "(do-nothing activities on one queue), the ratio plain ÷ variant."
    )
    return result


class _running:
    """Run several workers for the length of an ``async with``."""

    def __init__(self, workers: Sequence[Worker]) -> None:
        self.workers = workers
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> None:
        self.tasks = [asyncio.create_task(w.run()) for w in self.workers]

    async def __aexit__(self, *_: object) -> None:
        await asyncio.gather(*(w.shutdown() for w in self.workers))


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--workflows", type=int, default=200, help="per variant")
    parser.add_argument("--activities", type=int, default=6, help="per workflow")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    parser.add_argument("--concurrency", type=int, default=20, help="workflows in flight")
    cli.run(parser, run, components=())


if __name__ == "__main__":
    main()
