"""Benchmark 4, webhook ingress: signed CLM approvals per second, with p50/p99 latency.

c2c: ``POST /webhooks/clm`` on ``c2c api`` (signature, parsing and validation, the inbound-event
ledger, starting the contract's workflow on the Temporal server). Baseline: the bare endpoint
(``bench.bare_endpoint``), on the same FastAPI and uvicorn, which only checks the signature.
Both get the same signed approvals (fresh contract ids) from the same client, ``--concurrency``
in flight, in alternating rounds so that a change in the machine's load hits both alike. No
worker runs: the contracts' workflows are started, not run, so the figure is the API's own.

    python -m bench.webhooks --requests 2000
"""

from __future__ import annotations

import argparse
import time

import httpx

from bench import cli
from bench.load import approval, billing_period, contract_ids, post_approvals, run_id
from bench.measure import median, percentile
from bench.profile import Profiler
from bench.report import Result, Row
from bench.stack import BenchStack

RATIO_GOAL = 0.5


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
    targets = {"c2c": f"{stack.api_url}/webhooks/clm", "bare": f"{stack.bare_url}/webhooks/clm"}
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    seconds: dict[str, float] = dict.fromkeys(targets, 0.0)
    per_round = max(1, args.requests // args.rounds)
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        # Warm both up (connections, imports, the first workflow start).
        for name, url in targets.items():
            warm = [approval(c, period) for c in contract_ids(f"{tag}W{name}", 20, prefix="H")]
            await post_approvals(http, url, stack.webhook_secret, warm, concurrency=4)
        profiler = None
        if args.profile:
            out = args.results_dir / f"webhooks-{tag}-api.pyspy.txt"
            profiler = Profiler(stack.pid("api"), out)
        for round_no in range(args.rounds):
            for name, url in targets.items():
                ids = contract_ids(f"{tag}R{round_no}{name}", per_round, prefix="H")
                payloads = [approval(c, period) for c in ids]
                started = time.perf_counter()
                latencies[name] += await post_approvals(
                    http, url, stack.webhook_secret, payloads, concurrency=args.concurrency
                )
                seconds[name] += time.perf_counter() - started
        profile = profiler.stop() if profiler else None
    stack.check_alive()
    rate = {name: len(latencies[name]) / seconds[name] for name in targets}
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
    for pct in (50, 99):
        c2c_ms = percentile(latencies["c2c"], pct) * 1000
        bare_ms = percentile(latencies["bare"], pct) * 1000
        result.add(Row(f"latency p{pct}", c2c_ms, "ms", baseline=bare_ms, ratio=bare_ms / c2c_ms))
    result.details = {
        "seconds": seconds,
        "median_ms": {name: median(v) * 1000 for name, v in latencies.items()},
        "profile_api": profile,
    }
    result.notes.append(
        "Every c2c request answered 202 and started a contract's workflow; latency ratios are "
        "bare ÷ c2c. The load generator runs on the same 2 cores as the servers."
    )
    return result


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    parser.add_argument(
        "--profile", action="store_true", help="sample the API with py-spy during the rounds"
    )
    cli.run(parser, run, components=("sandbox", "api", "bare"))


if __name__ == "__main__":
    main()
