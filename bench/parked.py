"""Benchmark 3, parked contracts: many active contracts waiting for their next period.

N T&M contracts are approved through the API and left ``active`` with nothing to bill; then
N empty baseline workflows are parked beside them on the same server (each waits for
``close_period`` and ends). Measured: the c2c worker's and the Temporal server's memory with
the contracts parked, the baseline worker's and the server's with the baselines parked too;
then the time to deliver ``close_period`` to all: for the baselines, signalling them (as the
close-period command does, 50 at a time) until the last one has ended; for c2c, the real
``c2c billing close-period`` until every contract has handled it (its billing step read the
contract's ERP balances, the step's last request, once per contract).

    python -m bench.parked --contracts 5000
"""

from __future__ import annotations

import argparse
import time

import httpx

from bench import cli
from bench.baseline_worker import PARKED_BASELINE
from bench.load import billing_period, contract_ids, run_id, wait_route_count
from bench.measure import process_memory_mb, wait_count
from bench.month_end import CloseCommand, signal_all, start_parked
from bench.onboarding import onboard
from bench.report import Result, Row
from bench.stack import BenchStack


async def run(stack: BenchStack, args: argparse.Namespace) -> Result:
    result = Result(name="parked", title="Parked contracts", sizes={"contracts": args.contracts})
    client = await stack.ready_client()
    period, tag = billing_period(), run_id()
    memory: dict[str, dict[str, float]] = {
        "idle": {name: process_memory_mb(stack.pid(name))["rss"] for name in stack.children}
    }
    async with httpx.AsyncClient(timeout=120) as http:
        started = time.time()
        await onboard(
            stack,
            client,
            http,
            contract_ids(tag, args.contracts),
            period,
            concurrency=args.concurrency,
            timeout_s=args.timeout,
        )
        onboard_s = time.time() - started
        memory["contracts parked"] = {
            name: process_memory_mb(stack.pid(name))["rss"] for name in stack.children
        }
        base_ids = [f"bench-parked-{tag}-{i:05d}" for i in range(args.contracts)]
        handles = await start_parked(
            client, base_ids, [None] * args.contracts, concurrency=args.concurrency
        )
        memory["baselines parked too"] = {
            name: process_memory_mb(stack.pid(name))["rss"] for name in stack.children
        }

        started = time.time()
        await signal_all(client, base_ids, period)
        base_signalled = time.time() - started
        for handle in handles:
            await handle.result()
        done = f"WorkflowType = '{PARKED_BASELINE}' AND ExecutionStatus = 'Completed'"
        await wait_count(client, done, args.contracts, timeout_s=args.timeout)
        base_s = time.time() - started

        command = await CloseCommand.start(stack, period)
        # Every contract's billing step ends by reading its ERP balances.
        handled_at = await wait_route_count(
            http,
            stack.sandbox_url,
            "requests",
            "erp",
            "/balances",
            args.contracts,
            timeout_s=args.timeout,
        )
        c2c_signalled = await command.finished()
        c2c_s = handled_at - command.started
        stack.check_alive()
    memory["after the close"] = {
        name: process_memory_mb(stack.pid(name))["rss"] for name in stack.children
    }
    parked, with_base = memory["contracts parked"], memory["baselines parked too"]
    idle = memory["idle"]
    c2c_worker = parked["worker"] - idle["worker"]
    base_worker = with_base["baseline"] - parked["baseline"]
    result.add(
        Row(
            "worker memory for the parked workflows (RSS growth)",
            c2c_worker,
            "MiB",
            baseline=base_worker,
            ratio=c2c_worker / base_worker if base_worker > 0 else None,
        )
    )
    result.add(
        Row(
            "server memory for the parked workflows (RSS growth)",
            parked["temporal"] - idle["temporal"],
            "MiB",
            baseline=with_base["temporal"] - parked["temporal"],
        )
    )
    result.add(Row("c2c worker RSS with the contracts parked", parked["worker"], "MiB"))
    result.add(Row("server RSS with both parked", with_base["temporal"], "MiB"))
    result.add(
        Row(
            "close_period delivered and handled by all",
            c2c_s,
            "s",
            baseline=base_s,
            ratio=base_s / c2c_s,
        )
    )
    result.add(
        Row(
            "signals sent (close-period command / bench signaller)",
            c2c_signalled,
            "s",
            baseline=base_signalled,
            ratio=base_signalled / c2c_signalled,
        )
    )
    result.add(Row("onboarding the contracts", onboard_s, "s"))
    result.details = {"memory_rss_mb": memory, "close_period_output": command.output}
    result.notes.append(
        "Ratios are baseline ÷ c2c for times (1 = as fast as signalling empty workflows) and "
        "c2c ÷ baseline for memory. c2c's command time includes listing the running contracts "
        "through visibility and starting a Python process; the baseline signaller is given the "
        "workflow ids. A c2c contract handles the close by running its billing step (the PSA "
        "freezes an empty batch, no invoice, the ERP balances are read)."
    )
    return result


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--contracts", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=10, help="approvals in flight")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for each phase")
    cli.run(parser, run)


if __name__ == "__main__":
    main()
