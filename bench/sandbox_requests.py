"""The sandbox's own CPU per request, by kind: what each system call of a contract costs the
stand-in systems on the machine that runs them.

Every month-end close and onboarding burst makes the sandbox answer several calls per
contract, on the same cores as the worker and the Temporal server, so its cost per request is
part of every ratio the other benchmarks report. Kinds, each sent one at a time, in alternating
rounds so that a change in the machine's load hits all of them alike:

- ``healthz``: the HTTP server and FastAPI alone (no system, no middleware work);
- ``read``: ``GET /erp/v1/invoices`` for one contract (routing, the middlewares, a query);
- ``write``: ``POST /tax/v1/calculate`` without a key (a body validated, a jurisdiction read);
- ``keyed write``: the same with a new ``Idempotency-Key`` each time, as every c2c write
  sends: the kept answer is looked up, and stored after the answer.

The CPU is the sandbox process's (user + system, from ``/proc``) over each round ÷ its
requests; the figures are medians over the rounds.

    python -m bench.sandbox_requests --requests 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from bench import cli
from bench.measure import median
from bench.profile import cpu_seconds
from bench.report import Result, Row
from bench.stack import BenchStack
from c2c.loops import resolve

TAX_BODY: dict[str, Any] = {
    "customer": {"country": "US", "region": "NY"},
    "legal_entity": "us-01",
    "currency": "USD",
    "date": "2026-11-30",
    "lines": [{"line_id": "1", "amount": "100.00"}, {"line_id": "2", "amount": "50.00"}],
}

Send = Callable[[httpx.Client], httpx.Response]


def kinds() -> dict[str, Send]:
    """Each kind of request, as a call that sends one."""

    def keyed(http: httpx.Client) -> httpx.Response:
        key = {"Idempotency-Key": f"bench-{uuid.uuid4().hex}"}
        return http.post("/tax/v1/calculate", json=TAX_BODY, headers=key)

    return {
        "healthz": lambda http: http.get("/healthz"),
        "read": lambda http: http.get("/erp/v1/invoices", params={"contract_id": "C-BENCH"}),
        "write": lambda http: http.post("/tax/v1/calculate", json=TAX_BODY),
        "keyed write": keyed,
    }


def server_stack(stack: BenchStack) -> str:
    """Which HTTP parser and event loop uvicorn serves the sandbox with."""
    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{parser} on {resolve(stack.settings().event_loop)}"


async def run(stack: BenchStack, args: argparse.Namespace) -> Result:
    result = Result(
        name="sandbox_requests",
        title="Sandbox CPU per request",
        sizes={"requests": args.requests, "rounds": args.rounds},
    )
    pid = {"sandbox": stack.pid("sandbox")}
    cpu_ms: dict[str, list[float]] = {name: [] for name in kinds()}
    wall_ms: dict[str, list[float]] = {name: [] for name in kinds()}
    with httpx.Client(base_url=stack.sandbox_url, timeout=30) as http:
        for send in kinds().values():  # warm every path once
            send(http).raise_for_status()
        for _ in range(args.rounds):
            for name, send in kinds().items():
                before, started = cpu_seconds(pid)["sandbox"], time.perf_counter()
                for _ in range(args.requests):
                    send(http).raise_for_status()
                wall = time.perf_counter() - started
                cpu_ms[name].append(1000 * (cpu_seconds(pid)["sandbox"] - before) / args.requests)
                wall_ms[name].append(1000 * wall / args.requests)
    floor = median(cpu_ms["healthz"])
    for name in kinds():
        cpu = median(cpu_ms[name])
        result.add(Row(f"{name}: sandbox CPU per request", cpu, "ms", baseline=floor))
        result.add(Row(f"{name}: latency (one at a time)", median(wall_ms[name]), "ms"))
    kept = median(cpu_ms["keyed write"]) - median(cpu_ms["write"])
    result.add(Row("the Idempotency-Key's cost (keyed write minus write)", kept, "ms"))
    server = server_stack(stack)
    result.details = {"server": server, "cpu_ms": cpu_ms, "wall_ms": wall_ms}
    result.notes.append(
        f"uvicorn serves the sandbox with {server}. Baseline column: `healthz`, the "
        "HTTP server and FastAPI alone. Medians over the rounds."
    )
    return result


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    cli.run(parser, run, components=("sandbox",))


if __name__ == "__main__":
    main()
