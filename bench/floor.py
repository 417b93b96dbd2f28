"""The floor: c2c's onboarding calls for N contracts, made by a plain asyncio program.

No Temporal server: the reference's calls (``bench/reference.py``) run in this process, each
contract's in sequence, ``--concurrency`` contracts at a time, through c2c's real activity
functions with the worker's connectors, ledger and settings (from the environment, as
``c2c worker`` reads them). ``--warmup`` contracts go first and are not measured, as a worker
that has served before is measured. Prints one JSON line: the contracts, the wall seconds and
this process's CPU seconds (user + system) for the measured ones (also to ``--out``).

    python -m bench.floor --tag ABC123 --contracts 30 --concurrency 10 --period 2026-11
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from activities.registry import build_steps
from bench.load import approval, contract_ids
from bench.reference import onboard_directly
from c2c.logs import configure_logging
from c2c.settings import get_settings
from connectors.registry import build_connectors
from domain.models import ContractApproved
from domain.names import contract_workflow_id
from domain.periods import Period
from ledger import get_ledger


async def onboard_all(
    steps: Mapping[str, Callable[..., Any]], ids: list[str], period: Period, concurrency: int
) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(contract_id: str) -> None:
        contract = ContractApproved.model_validate(approval(contract_id, period))
        async with semaphore:
            await onboard_directly(steps, contract_workflow_id(contract_id), contract)

    await asyncio.gather(*(one(c) for c in ids))


async def run(args: argparse.Namespace) -> dict[str, float]:
    settings = get_settings()
    connectors = build_connectors(settings)
    steps = build_steps(connectors, get_ledger(settings.ledger_url), settings)
    period = Period.parse(args.period)
    try:
        warm = contract_ids(f"{args.tag}W", args.warmup, prefix="F")
        await onboard_all(steps, warm, period, args.concurrency)
        ids = contract_ids(args.tag, args.contracts, prefix="F")
        cpu, started = time.process_time(), time.monotonic()
        await onboard_all(steps, ids, period, args.concurrency)
        seconds, cpu_s = time.monotonic() - started, time.process_time() - cpu
    finally:
        await connectors.aclose()
    return {"contracts": args.contracts, "seconds": seconds, "cpu_s": cpu_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tag", required=True, help="makes this run's contract ids its own")
    p.add_argument("--contracts", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--period", required=True, help="YYYY-MM: the contracts' first month")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON line here")
    args = p.parse_args()
    # Logged as c2c's worker is (level and format from C2C_LOG_*), so neither pays for more.
    configure_logging("bench-floor")
    line = json.dumps(asyncio.run(run(args)))
    if args.out is not None:
        args.out.write_text(line + "\n", encoding="utf-8")
    print(line, flush=True)
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
