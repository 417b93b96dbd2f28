"""Levers on the cost of onboarding a contract, each on and off in one run.

The floor (``bench.floor``: c2c's own onboarding activities, the same calls and ledger writes,
no Temporal) onboards N contracts per burst as each variant, in ABBA order, against one sandbox
and one ledger:

- ``levers``: this checkout as it is;
- ``no-cache``: this checkout with ``C2C_REFERENCE_CACHE_SECONDS=0`` (legal entities and tax
  jurisdictions read on every step);
- ``before`` (with ``--before DIR``): the floor of another checkout of c2c, e.g. the release
  before the levers (``git worktree add /tmp/c2c-main main``), run with the same Python and
  the same environment. ``no-cache`` against ``before`` is then what the other levers (one
  ledger transaction per step) changed.

For each burst: the wall time, the floor process's CPU per contract (measured by itself around
its work), the sandbox's CPU per contract (from ``/proc``) and the requests it served per
contract (from ``/_admin/stats``). The ratios are each variant's median ÷ ``levers``'s.

    python -m bench.levers --contracts 20 --pairs 2 [--before /tmp/c2c-main]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench import cli
from bench.goals import FLOOR_WARMUP, _read_json
from bench.load import billing_period, run_id
from bench.measure import median
from bench.profile import CpuLaps
from bench.report import Result, Row
from bench.stack import BenchStack

#: Each variant's environment beside the stack's.
VARIANT_ENV: dict[str, dict[str, str]] = {
    "levers": {},
    "no-cache": {"C2C_REFERENCE_CACHE_SECONDS": "0"},
    "before": {},
}


@dataclass
class FloorBurst:
    variant: str
    contracts: int
    seconds: float
    floor_cpu_s: float
    sandbox_cpu_s: float
    requests: int

    def per_contract(self, figure: str) -> float:
        value: float = getattr(self, figure)
        return value / self.contracts


def variants(before: Path | None) -> tuple[str, ...]:
    return ("levers", "no-cache", "before") if before else ("levers", "no-cache")


def order(pair: int, names: Sequence[str]) -> list[str]:
    """Forward in even pairs, reversed in odd ones (ABBA)."""
    return list(names) if pair % 2 == 0 else list(reversed(names))


async def served(http: httpx.AsyncClient, sandbox_url: str) -> int:
    stats = (await http.get(f"{sandbox_url}/_admin/stats")).json()["requests"]
    return sum(n for routes in stats.values() for n in routes.values())


async def floor_burst(
    stack: BenchStack,
    http: httpx.AsyncClient,
    cpu: CpuLaps,
    args: argparse.Namespace,
    variant: str,
    label: str,
) -> FloorBurst:
    out = stack.workdir / f"floor-{label}.json"
    tree = args.before if variant == "before" else None
    env = {**os.environ, **stack.env, **VARIANT_ENV[variant]}
    if tree is not None:
        # ``python -m`` puts the working directory first on the path: the other tree's code.
        env["PYTHONPATH"] = str(tree)
    cpu.lap()
    requests = await served(http, stack.sandbox_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.floor",
        *("--tag", label, "--contracts", str(args.contracts)),
        *("--concurrency", str(args.concurrency), "--period", str(args.period)),
        *("--warmup", str(FLOOR_WARMUP), "--out", str(out)),
        env=env,
        cwd=tree,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=args.timeout)
    if process.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"the floor ({variant}) exited with code {process.returncode}:\n"
            + output.decode(errors="replace")[-2000:]
        )
    floor = _read_json(out)
    spent = cpu.lap()
    # The sandbox also served the floor's warm-up contracts: its share of the measured ones.
    share = args.contracts / (args.contracts + FLOOR_WARMUP)
    requests = await served(http, stack.sandbox_url) - requests
    return FloorBurst(
        variant,
        args.contracts,
        float(floor["seconds"]),
        float(floor["cpu_s"]),
        spent.get("sandbox", 0.0) * share,
        round(requests * share),
    )


async def run(stack: BenchStack, args: argparse.Namespace) -> Result:
    if args.pairs < 2:
        raise ValueError("--pairs: at least 2 (one pair a run misleads: see bench/README.md)")
    names = variants(args.before)
    result = Result(
        name="levers",
        title="Onboarding levers, on and off in one run (the floor: c2c's calls, no Temporal)",
        sizes={
            "contracts per burst": args.contracts,
            "pairs": args.pairs,
            "concurrency": args.concurrency,
            "variants": ", ".join(names),
            "before": str(args.before or ""),
        },
    )
    args.period = billing_period()
    tag = run_id()
    cpu = CpuLaps(stack)
    bursts: list[FloorBurst] = []
    async with httpx.AsyncClient(timeout=30) as http:
        # A warm-up burst of each, thrown away: the sandbox's first requests pay set-up.
        for variant in names:
            await floor_burst(stack, http, cpu, args, variant, f"{tag}W{variant[0].upper()}")
        for n in range(args.pairs):
            for i, variant in enumerate(order(n, names)):
                label = f"{tag}P{n}{i}{variant[0].upper()}"
                bursts.append(await floor_burst(stack, http, cpu, args, variant, label))
                stack.check_alive()
    report(result, names, bursts)
    result.details = {"bursts": [asdict(b) for b in bursts]}
    return result


def report(result: Result, names: Sequence[str], bursts: Sequence[FloorBurst]) -> None:
    def med(variant: str, figure: str, scale: float = 1.0) -> float:
        return scale * median([b.per_contract(figure) for b in bursts if b.variant == variant])

    figures = (
        ("floor process CPU per contract", "floor_cpu_s", 1000.0, "ms"),
        ("sandbox CPU per contract", "sandbox_cpu_s", 1000.0, "ms"),
        ("sandbox requests per contract", "requests", 1.0, ""),
        ("wall time per contract", "seconds", 1000.0, "ms"),
    )
    for title, figure, scale, unit in figures:
        mine = med("levers", figure, scale)
        for variant in names:
            value = med(variant, figure, scale)
            result.add(
                Row(
                    f"{title}: {variant} (median)",
                    round(value, 2),
                    unit,
                    baseline=round(mine, 2),
                    ratio=round(value / mine, 3) if mine else None,
                )
            )
    result.notes.append(
        "Each burst is a fresh `bench.floor` process that onboards 2 warm-up contracts, then "
        "the measured ones; the baseline column is `levers`, the ratio variant ÷ levers. "
        "Variants in ABBA order per pair, after a thrown-away warm-up burst of each."
    )


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--contracts", type=int, default=20, help="contracts per burst")
    parser.add_argument("--pairs", type=int, default=2, help="ABBA pairs (at least 2)")
    parser.add_argument("--concurrency", type=int, default=10, help="contracts in flight")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another checkout of c2c whose floor runs as the variant 'before'",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds for each burst")
    cli.run(parser, run, components=("sandbox",))


if __name__ == "__main__":
    main()
