"""Benchmark 2, month-end close: one ``c2c billing close-period`` over many active contracts.

N T&M contracts are approved through the API and parked ``active``; E approved, billable time
entries in total are spread over them through the sandbox's bulk seed route. Baseline, first,
on the same server: one parked workflow per contract that, on ``close_period``, reads the same
project's entries through c2c's PSA connector without pricing or invoicing; signalled all at
once as the close-period command signals contracts. c2c: the real ``c2c billing close-period
YYYY-MM`` command; timed from its start until the ERP has issued every contract's invoice
(the sandbox's request counters). Also: entries priced per second, the worker's peak memory,
the largest payload in any contract's history (paging keeps entries out of history), and a
check that the invoices bill exactly what the entries are worth.

    python -m bench.month_end --contracts 1000 --entries 100000 [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle

from bench import cli
from bench.baseline_worker import BASELINE_TASK_QUEUE, PARKED_BASELINE
from bench.load import (
    billing_period,
    contract_ids,
    expected_subtotal,
    psa_projects,
    run_id,
    seed_entries,
    time_entries,
    wait_route_count,
    workflow_ids,
)
from bench.measure import fetch_facts, process_memory_mb, wait_count
from bench.onboarding import onboard
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
from domain.names import SIGNAL_CLOSE_PERIOD
from domain.periods import Period

RATIO_GOAL = 0.7
MAX_PAYLOAD = 64 * 1024
#: As many signals in flight as ``c2c billing close-period`` sends (SIGNAL_CONCURRENCY).
SIGNAL_CONCURRENCY = 50


@dataclass
class CloseCommand:
    """``c2c billing close-period`` against the stack, as an operator runs it."""

    process: asyncio.subprocess.Process
    started: float
    ended: float | None = None
    output: str = ""
    _waiter: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    async def start(cls, stack: BenchStack, period: Period) -> CloseCommand:
        started = time.time()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "starter.cli",
            "billing",
            "close-period",
            str(period),
            env={**os.environ, **stack.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        command = cls(process, started)
        command._waiter = asyncio.create_task(command._wait())
        return command

    async def _wait(self) -> None:
        out, _ = await self.process.communicate()
        self.ended = time.time()
        self.output = out.decode(errors="replace").strip()

    async def finished(self) -> float:
        """Seconds from the start until the command exited; raises if it failed."""
        assert self._waiter is not None
        await self._waiter
        if self.process.returncode != 0:
            raise RuntimeError(f"close-period failed: {self.output}")
        assert self.ended is not None
        return self.ended - self.started


async def signal_all(client: Client, workflow_ids: list[str], period: Period) -> None:
    """``close_period`` to every workflow, ``SIGNAL_CONCURRENCY`` at a time."""
    semaphore = asyncio.Semaphore(SIGNAL_CONCURRENCY)

    async def one(workflow_id: str) -> None:
        async with semaphore:
            await client.get_workflow_handle(workflow_id).signal(
                SIGNAL_CLOSE_PERIOD, {"period": str(period)}
            )

    await asyncio.gather(*(one(w) for w in workflow_ids))


async def start_parked(
    client: Client, ids: list[str], projects: list[str | None], *, concurrency: int
) -> list[WorkflowHandle]:
    """Start one parked baseline per id (with its project, or none) and wait until all run."""
    semaphore = asyncio.Semaphore(concurrency)

    async def start(workflow_id: str, project_id: str | None) -> WorkflowHandle:
        async with semaphore:
            return await client.start_workflow(
                PARKED_BASELINE, project_id, id=workflow_id, task_queue=BASELINE_TASK_QUEUE
            )

    handles = await asyncio.gather(*(start(w, p) for w, p in zip(ids, projects, strict=True)))
    # Parked: each has run its first workflow task and waits for the signal.
    query = f"WorkflowType = '{PARKED_BASELINE}' AND ExecutionStatus = 'Running'"
    await wait_count(client, query, len(ids), timeout_s=600, what="parked baselines")
    return list(handles)


async def invoiced_subtotal(http: httpx.AsyncClient, sandbox_url: str) -> tuple[int, Decimal]:
    """How many ERP invoices are issued and what their subtotals add up to."""
    count, total, cursor = 0, Decimal(0), None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        response = await http.get(f"{sandbox_url}/erp/v1/invoices", params=params)
        response.raise_for_status()
        page = response.json()
        for invoice in page["items"]:
            if invoice["status"] == "issued":
                count += 1
                total += Decimal(invoice["subtotal"])
        cursor = page["next"]
        if not cursor:
            return count, total


async def run(stack: BenchStack, args: argparse.Namespace) -> Result:
    result = Result(
        name="month_end",
        title="Month-end close",
        sizes={"contracts": args.contracts, "entries": args.entries},
    )
    client = await stack.ready_client()
    period, tag = billing_period(), run_id()
    ids = contract_ids(tag, args.contracts)
    async with httpx.AsyncClient(timeout=120) as http:
        setup = time.monotonic()
        await onboard(
            stack, client, http, ids, period, concurrency=args.concurrency, timeout_s=args.timeout
        )
        projects = await psa_projects(http, stack.sandbox_url)
        per, extra = divmod(args.entries, args.contracts)
        entries = [
            entry
            for i, contract_id in enumerate(ids)
            for entry in time_entries(projects[contract_id], period, per + (i < extra))
        ]
        await seed_entries(http, stack.sandbox_url, entries)
        setup_s = time.monotonic() - setup

        # Baseline: read the same entries, nothing else.
        base_ids = [f"bench-read-{tag}-{i:05d}" for i in range(args.contracts)]
        handles = await start_parked(
            client, base_ids, [projects[c] for c in ids], concurrency=args.concurrency
        )
        cpu = CpuLaps(stack)
        started = time.time()
        await signal_all(client, base_ids, period)
        read = sum(await asyncio.gather(*(h.result() for h in handles)))
        base_s = time.time() - started
        cpu_baseline = cpu.lap()
        if read != len(entries):
            raise RuntimeError(f"the baseline read {read} entries, not {len(entries)}")

        # c2c: the operator's command; done when every contract's invoice is issued.
        profilers: dict[str, Profiler] = {}
        if args.profile:
            profilers = profile_components(
                stack, ("worker", "sandbox"), args.results_dir, f"month_end-{tag}"
            )
        command = await CloseCommand.start(stack, period)
        issued_at = await wait_route_count(
            http,
            stack.sandbox_url,
            "writes",
            "erp",
            "/issue",
            args.contracts,
            timeout_s=args.timeout,
        )
        c2c_s = issued_at - command.started
        await command.finished()
        summaries = stop_all(profilers)
        cpu_c2c = cpu.lap()
        stack.check_alive()
        issued, subtotal = await invoiced_subtotal(http, stack.sandbox_url)
    facts = await fetch_facts(client, workflow_ids(ids))
    worker_mem = process_memory_mb(stack.pid("worker"))
    expected = expected_subtotal(entries)
    if issued != args.contracts or subtotal != expected:
        raise RuntimeError(
            f"{issued} invoices issued for {subtotal}; expected {args.contracts} for {expected}"
        )
    c2c_rate, base_rate = len(entries) / c2c_s, len(entries) / base_s
    ratio = c2c_rate / base_rate
    largest = max(f.largest_payload for f in facts)
    result.add(
        Row(
            "close → every invoice issued",
            c2c_s,
            "s",
            baseline=base_s,
            ratio=ratio,
            goal=f"ratio ≥ {RATIO_GOAL}",
            met=ratio >= RATIO_GOAL,
        )
    )
    result.add(Row("entries priced per second", c2c_rate, "entries/s", baseline=base_rate))
    result.add(Row("contracts invoiced per second", args.contracts / c2c_s, "contracts/s"))
    # The baseline pages the same entries from the sandbox: each process has its counterpart.
    counterparts = {"worker": "baseline", "temporal": "temporal", "sandbox": "sandbox"}
    for row in cpu_rows(cpu_c2c, cpu_baseline, args.contracts, counterparts):
        result.add(row)
    result.add(Row("worker peak memory (VmHWM)", worker_mem["peak"], "MiB"))
    result.add(
        Row(
            "largest payload in any contract history",
            largest,
            "bytes",
            goal="≤ 64 KiB",
            met=largest <= MAX_PAYLOAD,
        )
    )
    result.add(
        Row("history events per contract after the close (max)", max(f.events for f in facts))
    )
    result.add(Row("invoiced subtotal = entries × rates", f"{subtotal} USD", met=True))
    result.details = {
        "setup_seconds": setup_s,
        "worker_memory_mb": worker_mem,
        "profiles": summaries,
        "close_period_output": command.output,
        "cpu_seconds_c2c_close": cpu_c2c,
        "cpu_seconds_baseline_close": cpu_baseline,
    }
    result.notes.append(
        "Ratio = c2c's entries/s ÷ the baseline's: parked workflows that, on `close_period`, "
        "only page the same entries through the PSA connector. c2c's time runs from the start "
        "of `c2c billing close-period` until the sandbox has issued N invoices."
    )
    result.notes.append(CPU_NOTE)
    if args.profile:
        result.notes.append(PROFILED_NOTE.format(what="the worker and the sandbox"))
    return result


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--contracts", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=100_000, help="time entries in total")
    parser.add_argument("--concurrency", type=int, default=10, help="approvals in flight")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for each phase")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the worker and the sandbox with py-spy during the close",
    )
    cli.run(parser, run)


if __name__ == "__main__":
    main()
