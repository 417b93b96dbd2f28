"""The performance goals, measured against the same work, in one run on one server.

c2c is compared with what makes its own calls: the **reference** (c2c's onboarding activities,
the same calls and payloads, driven by a plain workflow on one task queue:
``bench/reference.py``), the **floor** (the same calls from a plain asyncio program with no
Temporal: ``bench/floor.py``) and, for the server's share, the **do-nothing baseline** with the
same activity count (``bench/baseline_worker.py``). In order:

1. single contracts sent one at a time on the idle stack: approval → active, the first after
   start reported apart, and the activity count the baseline copies;
2. a warm-up burst of each party, thrown away (the first heavy phase after start-up runs
   slower);
3. ``--pairs`` ABBA pairs: pair 1 runs c2c, the reference, the baseline, the floor; pair 2 the
   same in reverse order; and so on. Each burst onboards ``--contracts`` contracts;
4. ``--pairs`` ABBA pairs of month-end closes, c2c and the reference (``ReferenceContract``:
   the reference's onboarding parked until ``close_period``, then c2c's billing step with the
   input c2c's workflow gives it), each closing ``--contracts`` fresh contracts with
   ``--entries`` approved time entries each.

Reported: every pair and the medians; CPU per process per contract (from ``/proc``), c2c's own
processes (worker, API, Temporal server) apart from the stand-in systems (the sandbox); and the
goals G1 (throughput, c2c ÷ reference), G1' (own CPU, c2c ÷ reference), G2 (server CPU,
c2c ÷ do-nothing baseline), G3 (worker CPU, c2c ÷ floor's client), history events per
contract, approval → active latency and the largest history payload.

    python -m bench.goals --contracts 30 --pairs 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle

from bench import cli
from bench.load import (
    approval,
    billing_period,
    contract_ids,
    expected_subtotal,
    psa_projects,
    route_count,
    run_id,
    sandbox_stats,
    seed_entries,
    time_entries,
    wait_route_count,
    workflow_ids,
)
from bench.measure import HistoryFacts, median
from bench.month_end import invoiced_subtotal, signal_all
from bench.onboarding import baseline_burst, onboard, settled_facts, single_latencies
from bench.profile import PROFILED_NOTE, CpuLaps, Profiler, profile_components, stop_all
from bench.reference import REFERENCE_CONTRACT, REFERENCE_ONBOARDING, REFERENCE_TASK_QUEUE
from bench.report import Result, Row
from bench.stack import BenchStack
from domain.models import ContractApproved
from domain.periods import Period

PARTIES = ("c2c", "reference", "baseline", "floor")
#: The parties of the month-end close.
CLOSING = ("c2c", "reference")
#: The processes each party's CPU is counted in: c2c's own, and the stand-in systems apart.
OWN = {
    "c2c": ("worker", "api", "temporal"),
    "reference": ("reference", "temporal"),
    "baseline": ("baseline", "temporal"),
    "floor": ("floor",),
}
STAND_INS = ("sandbox",)
#: The process ``--profile`` samples during each party's first onboarding burst.
PROFILED = {"c2c": "worker", "reference": "reference"}

G1_GOAL = 1.0
G1_CPU_GOAL = 1.0
G2_GOAL = 1.3
G3_GOAL = 1.5
MONTH_END_GOAL = 1.1
MAX_EVENTS = 36
P50_GOAL_MS = 250.0
FIRST_GOAL_MS = 1000.0
MAX_PAYLOAD = 64 * 1024
#: Contracts the floor's process onboards before it measures (its first calls pay set-up).
FLOOR_WARMUP = 2


@dataclass
class Burst:
    """One party's burst: its wall time, the CPU each process used, and its histories."""

    party: str
    contracts: int
    seconds: float
    cpu_s: dict[str, float]
    events: list[int] = field(default_factory=list)
    largest_payload: int = 0

    @property
    def rate(self) -> float:
        return self.contracts / self.seconds

    def ms(self, process: str) -> float:
        """CPU milliseconds per contract of ``process``."""
        return 1000 * self.cpu_s.get(process, 0.0) / self.contracts

    def own_ms(self) -> float:
        return sum(self.ms(p) for p in OWN[self.party])


def _with_facts(burst: Burst, facts: Sequence[HistoryFacts]) -> Burst:
    burst.events = [f.events for f in facts]
    burst.largest_payload = max((f.largest_payload for f in facts), default=0)
    return burst


@dataclass
class Pair:
    """One pair of the run: its order and a burst of every party."""

    order: list[str]
    bursts: dict[str, Burst]

    def ratios(self) -> dict[str, float]:
        b = self.bursts
        c2c, ref, base, floor = b["c2c"], b["reference"], b["baseline"], b["floor"]
        return {
            "G1": c2c.rate / ref.rate,
            "G1_cpu": c2c.own_ms() / ref.own_ms(),
            "G2": c2c.ms("temporal") / base.ms("temporal"),
            "G3": c2c.ms("worker") / floor.ms("floor"),
        }


class Run:
    """The parties' bursts against one stack."""

    def __init__(
        self,
        stack: BenchStack,
        client: Client,
        http: httpx.AsyncClient,
        args: argparse.Namespace,
        period: Period,
        tag: str,
        activities: int,
        local: int,
    ) -> None:
        self.stack, self.client, self.http, self.args = stack, client, http, args
        self.period, self.tag = period, tag
        self.activities, self.local = activities, local
        self.cpu = CpuLaps(stack)
        self._bursts = 0
        #: py-spy's summaries (``--profile``), by party and process.
        self.profiles: dict[str, str] = {}

    def _label(self, party: str) -> str:
        self._bursts += 1
        return f"{self.tag}{party[0].upper()}{self._bursts:02d}"

    async def burst(self, party: str, count: int, *, profile: bool = False) -> Burst:
        """One burst of ``party``; with ``profile``, its process sampled by py-spy."""
        bursts: dict[str, Callable[[int, str], Any]] = {
            "c2c": self._c2c,
            "reference": self._reference,
            "baseline": self._baseline,
            "floor": self._floor,
        }
        label = self._label(party)
        profilers: dict[str, Profiler] = {}
        if profile and party in PROFILED:
            profilers = profile_components(
                self.stack, (PROFILED[party],), self.args.results_dir, f"goals-{label}"
            )
        self.cpu.lap()
        result: Burst = await bursts[party](count, label)
        for process, summary in stop_all(profilers).items():
            self.profiles[f"{party}: {process}"] = summary
        self.stack.check_alive()
        return result

    async def _c2c(self, count: int, label: str) -> Burst:
        done = await onboard(
            self.stack,
            self.client,
            self.http,
            contract_ids(label, count),
            self.period,
            concurrency=self.args.concurrency,
            timeout_s=self.args.timeout,
        )
        return _with_facts(Burst("c2c", count, done.seconds, self.cpu.lap()), done.facts)

    async def _reference(self, count: int, label: str) -> Burst:
        ids = contract_ids(label, count, prefix="R")
        semaphore = asyncio.Semaphore(self.args.concurrency)
        handles: list[WorkflowHandle[Any, Any]] = []

        async def start(contract_id: str) -> None:
            contract = ContractApproved.model_validate(approval(contract_id, self.period))
            async with semaphore:
                handles.append(
                    await self.client.start_workflow(
                        REFERENCE_ONBOARDING,
                        contract,
                        id=f"bench-reference-{contract_id}",
                        task_queue=REFERENCE_TASK_QUEUE,
                    )
                )

        started = time.time()
        await asyncio.wait_for(asyncio.gather(*(start(c) for c in ids)), timeout=self.args.timeout)
        await asyncio.wait_for(
            asyncio.gather(*(h.result() for h in handles)), timeout=self.args.timeout
        )
        facts = await settled_facts(self.client, [h.id for h in handles])
        ended = max(f.ended_at for f in facts).replace(tzinfo=UTC).timestamp()
        return _with_facts(Burst("reference", count, ended - started, self.cpu.lap()), facts)

    async def _baseline(self, count: int, label: str) -> Burst:
        seconds, facts = await baseline_burst(
            self.client,
            count,
            self.activities,
            self.local,
            concurrency=self.args.concurrency,
            tag=label,
        )
        await settled_facts(self.client, [f.workflow_id for f in facts])
        return _with_facts(Burst("baseline", count, seconds, self.cpu.lap()), facts)

    async def _floor(self, count: int, label: str) -> Burst:
        out = self.stack.workdir / f"floor-{label}.json"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.floor",
            *("--tag", label, "--contracts", str(count)),
            *("--concurrency", str(self.args.concurrency), "--period", str(self.period)),
            *("--warmup", str(FLOOR_WARMUP), "--out", str(out)),
            env={**os.environ, **self.stack.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=self.args.timeout)
        if process.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"the floor exited with code {process.returncode}:\n"
                + output.decode(errors="replace")[-2000:]
            )
        floor = _read_json(out)
        cpu = self.cpu.lap()
        # Its own process: counted from what it measured around its work (its start-up and
        # warm-up left out), not from /proc. The other processes served its warm-up too.
        share = count / (count + FLOOR_WARMUP)
        cpu = {name: spent * share for name, spent in cpu.items()}
        cpu["floor"] = float(floor["cpu_s"])
        return Burst("floor", count, float(floor["seconds"]), cpu)

    async def close(self, party: str, count: int) -> Burst:
        """``count`` contracts of ``party`` parked active with ``--entries`` approved time
        entries each, then closed: from the first ``close_period`` signal (sent as
        ``c2c billing close-period`` sends them) until the ERP has issued every invoice."""
        label = self._label(f"m{party}")
        ids = contract_ids(label, count, prefix="M" if party == "c2c" else "Q")
        if party == "c2c":
            await onboard(
                self.stack,
                self.client,
                self.http,
                ids,
                self.period,
                concurrency=self.args.concurrency,
                timeout_s=self.args.timeout,
            )
            wids = workflow_ids(ids)
        else:
            wids = await self._park_reference(ids)
        projects = await psa_projects(self.http, self.stack.sandbox_url)
        entries = [
            entry
            for c in ids
            for entry in time_entries(projects[c], self.period, self.args.entries)
        ]
        await seed_entries(self.http, self.stack.sandbox_url, entries)
        await settled_facts(self.client, wids)
        _, invoiced_before = await invoiced_subtotal(self.http, self.stack.sandbox_url)
        stats = await sandbox_stats(self.http, self.stack.sandbox_url)
        issued = route_count(stats, "writes", "erp", "/issue")
        self.cpu.lap()
        started = time.time()
        await signal_all(self.client, wids, self.period)
        ended = await wait_route_count(
            self.http,
            self.stack.sandbox_url,
            "writes",
            "erp",
            "/issue",
            issued + count,
            timeout_s=self.args.timeout,
        )
        facts = await settled_facts(self.client, wids)
        cpu = self.cpu.lap()
        self.stack.check_alive()
        _, invoiced = await invoiced_subtotal(self.http, self.stack.sandbox_url)
        if invoiced - invoiced_before != expected_subtotal(entries):
            raise RuntimeError(
                f"{party}'s close invoiced {invoiced - invoiced_before}, "
                f"not the {expected_subtotal(entries)} its entries are worth"
            )
        return _with_facts(Burst(party, count, ended - started, cpu), facts)

    async def _park_reference(self, ids: Sequence[str]) -> list[str]:
        """Start a parked reference contract per id; wait until each has its PSA project."""
        semaphore = asyncio.Semaphore(self.args.concurrency)

        async def start(contract_id: str) -> str:
            contract = ContractApproved.model_validate(approval(contract_id, self.period))
            async with semaphore:
                handle = await self.client.start_workflow(
                    REFERENCE_CONTRACT,
                    contract,
                    id=f"bench-reference-{contract_id}",
                    task_queue=REFERENCE_TASK_QUEUE,
                )
            return handle.id

        wids = list(await asyncio.gather(*(start(c) for c in ids)))
        deadline = time.monotonic() + self.args.timeout
        while not set(ids) <= set(await psa_projects(self.http, self.stack.sandbox_url)):
            if time.monotonic() > deadline:
                raise TimeoutError("the reference's contracts did not reach their PSA projects")
            await asyncio.sleep(0.5)
        return wids


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def abba(pair: int) -> list[str]:
    """The parties' order in ``pair`` (from 0): forward in even pairs, reversed in odd ones."""
    return list(PARTIES) if pair % 2 == 0 else list(reversed(PARTIES))


async def run(stack: BenchStack, args: argparse.Namespace) -> Result:
    result = Result(
        name="goals",
        title="Performance goals against the same work",
        sizes={
            "contracts per burst": args.contracts,
            "pairs": args.pairs,
            "warm-up contracts": args.warmup,
            "single contracts": args.single,
            "concurrency": args.concurrency,
            "entries per contract at month end": args.entries,
        },
    )
    if args.pairs < 2:
        raise ValueError("--pairs: at least 2 (one pair a run misleads: see bench/README.md)")
    client = await stack.ready_client()
    period, tag = billing_period(), run_id()
    async with httpx.AsyncClient(timeout=60) as http:
        single_ms, single_facts = await single_latencies(
            stack, client, http, period, count=args.single, tag=tag
        )
        activities = round(median([f.activities for f in single_facts]))
        local = round(median([f.local_activities for f in single_facts]))
        bench = Run(stack, client, http, args, period, tag, activities, local)
        warmup = [await bench.burst(party, args.warmup) for party in PARTIES if party != "floor"]
        pairs: list[Pair] = []
        for n in range(args.pairs):
            order = abba(n)
            bursts = {
                party: await bench.burst(party, args.contracts, profile=args.profile and n == 0)
                for party in order
            }
            pairs.append(Pair(order, bursts))
        closes: list[dict[str, Burst]] = []
        for n in range(args.pairs if args.entries else 0):
            order = list(CLOSING) if n % 2 == 0 else list(reversed(CLOSING))
            closes.append({party: await bench.close(party, args.contracts) for party in order})
    report(result, pairs, single_ms, activities, local)
    report_closes(result, closes, args.entries)
    if args.profile:
        result.notes.append(
            PROFILED_NOTE.format(what="c2c's worker and the reference's in the first pair")
        )
    result.details = {
        "single_latencies_ms": single_ms,
        "baseline_activities": activities,
        "baseline_local_activities": local,
        "warmup": [asdict(b) for b in warmup],
        "pairs": [
            {
                "order": p.order,
                "ratios": p.ratios(),
                "bursts": {k: asdict(b) for k, b in p.bursts.items()},
            }
            for p in pairs
        ],
        "profiles": bench.profiles,
        "month_end_pairs": [
            {"order": list(c), "bursts": {k: asdict(b) for k, b in c.items()}} for c in closes
        ],
    }
    return result


def _median_of(pairs: Sequence[Pair], figure: Callable[[Pair], float]) -> float:
    return median([figure(p) for p in pairs])


def _spread(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def report(
    result: Result, pairs: Sequence[Pair], single_ms: Sequence[float], activities: int, local: int
) -> None:
    """The goals' rows, every pair's ratios, and CPU per process per party."""
    ratios = [p.ratios() for p in pairs]

    def ms(party: str, process: str) -> float:
        return _median_of(pairs, lambda p: p.bursts[party].ms(process))

    def goal_row(
        metric: str,
        key: str,
        value: float,
        base: float,
        unit: str,
        goal: str,
        ok: Callable[[float], bool],
    ) -> None:
        ratio = median([r[key] for r in ratios])
        result.add(Row(metric, value, unit, baseline=base, ratio=ratio, goal=goal, met=ok(ratio)))

    goal_row(
        "G1 onboarding throughput, c2c ÷ reference",
        "G1",
        _median_of(pairs, lambda p: p.bursts["c2c"].rate),
        _median_of(pairs, lambda p: p.bursts["reference"].rate),
        "contracts/s",
        f"≥ {G1_GOAL}",
        lambda r: r >= G1_GOAL,
    )
    goal_row(
        "G1' own CPU per contract (worker + API + server), c2c ÷ reference",
        "G1_cpu",
        _median_of(pairs, lambda p: p.bursts["c2c"].own_ms()),
        _median_of(pairs, lambda p: p.bursts["reference"].own_ms()),
        "ms",
        f"≤ {G1_CPU_GOAL}",
        lambda r: r <= G1_CPU_GOAL,
    )
    goal_row(
        "G2 server CPU per contract, c2c ÷ do-nothing baseline",
        "G2",
        ms("c2c", "temporal"),
        ms("baseline", "temporal"),
        "ms",
        f"≤ {G2_GOAL}",
        lambda r: r <= G2_GOAL,
    )
    goal_row(
        "G3 worker CPU per contract, c2c ÷ floor's client",
        "G3",
        ms("c2c", "worker"),
        ms("floor", "floor"),
        "ms",
        f"≤ {G3_GOAL}",
        lambda r: r <= G3_GOAL,
    )
    events = [e for p in pairs for e in p.bursts["c2c"].events]
    ref_events = [e for p in pairs for e in p.bursts["reference"].events]
    result.add(
        Row(
            "history events per onboarded contract (median)",
            median(events),
            baseline=median(ref_events),
            goal=f"≤ {MAX_EVENTS}",
            met=median(events) <= MAX_EVENTS,
        )
    )
    idle = single_ms[1:] or single_ms
    result.add(
        Row(
            "approval → active, one contract on the idle stack (p50)",
            median(idle),
            "ms",
            goal=f"< {P50_GOAL_MS:.0f} ms",
            met=median(idle) < P50_GOAL_MS,
        )
    )
    result.add(
        Row(
            "approval → active, the first after start",
            single_ms[0],
            "ms",
            goal=f"< {FIRST_GOAL_MS:.0f} ms",
            met=single_ms[0] < FIRST_GOAL_MS,
        )
    )
    payload = max(p.bursts["c2c"].largest_payload for p in pairs)
    result.add(
        Row(
            "largest history payload",
            payload,
            "bytes",
            baseline=max(p.bursts["reference"].largest_payload for p in pairs),
            goal=f"< {MAX_PAYLOAD // 1024} KB",
            met=payload < MAX_PAYLOAD,
        )
    )
    for n, (pair, r) in enumerate(zip(pairs, ratios, strict=True), start=1):
        result.add(
            Row(
                f"pair {n} ({' → '.join(pair.order)}): G1, G1', G2, G3",
                _spread([r["G1"], r["G1_cpu"], r["G2"], r["G3"]]),
            )
        )
    for party in PARTIES:
        for process in (*OWN[party], *STAND_INS):
            if party == "baseline" and process in STAND_INS:
                continue  # it calls no system
            stand_in = " (stand-in system)" if process in STAND_INS else ""
            result.add(
                Row(
                    f"CPU per contract, {party}: {process}{stand_in} (median)",
                    ms(party, process),
                    "ms",
                )
            )
    result.add(
        Row(
            "wall seconds per burst (median): c2c, reference, baseline, floor",
            _spread([median([p.bursts[x].seconds for p in pairs]) for x in PARTIES]),
            "s",
        )
    )
    result.notes += [
        "Ratios are c2c ÷ the other party, each the median of the pairs' ratios; the c2c and "
        "baseline columns hold the medians of the pairs' figures.",
        "The reference: c2c's own onboarding activities (activities/registry.py), the same "
        "calls and payloads, run in a row by a plain workflow on one task queue, the last "
        "audit write as a local activity. The floor: the same calls from a plain asyncio "
        "program, no Temporal (its CPU measured around its work, after a warm-up). The "
        f"do-nothing baseline: {activities} activities per workflow, {local} of them local, "
        "as a single c2c contract ran until parked active.",
        "CPU per contract: user + system CPU each process used during a burst (from /proc) ÷ "
        "contracts. Own CPU: c2c's worker, API and Temporal server; the reference's worker and "
        "the server. The sandbox stands in for the systems and is reported apart.",
        "Timing: c2c from the first signed approval POSTed to the API until the last "
        "contract's `active` upsert; the reference and the baseline from the first start "
        "through a client until the last workflow ended; the floor around its own work.",
        "Order: single contracts on the idle stack (the first after start apart), a warm-up "
        "burst of c2c, the reference and the baseline thrown away, then ABBA pairs.",
        "On a shared machine these figures are not a verdict: read the load average above.",
    ]


def report_closes(result: Result, closes: Sequence[dict[str, Burst]], entries: int) -> None:
    """The month-end goal: c2c's own CPU per contract closed ÷ the reference's."""
    if not closes:
        result.add(
            Row(
                "month-end close, own CPU per contract, c2c ÷ reference",
                "not measured (--entries 0)",
                goal=f"≤ {MONTH_END_GOAL}",
            )
        )
        return
    ratios = [c["c2c"].own_ms() / c["reference"].own_ms() for c in closes]
    ratio = median(ratios)
    result.add(
        Row(
            "month-end close, own CPU per contract, c2c ÷ reference",
            median([c["c2c"].own_ms() for c in closes]),
            "ms",
            baseline=median([c["reference"].own_ms() for c in closes]),
            ratio=ratio,
            goal=f"≤ {MONTH_END_GOAL}",
            met=ratio <= MONTH_END_GOAL,
        )
    )
    for n, (close, r) in enumerate(zip(closes, ratios, strict=True), start=1):
        result.add(Row(f"month-end pair {n} ({' → '.join(close)}): own CPU ratio", f"{r:.2f}"))
    for party in CLOSING:
        for process in (*OWN[party], *STAND_INS):
            stand_in = " (stand-in system)" if process in STAND_INS else ""
            result.add(
                Row(
                    f"month-end CPU per contract, {party}: {process}{stand_in} (median)",
                    median([c[party].ms(process) for c in closes]),
                    "ms",
                )
            )
    result.add(
        Row(
            "month-end wall seconds per close (median): c2c, reference",
            _spread([median([c[x].seconds for c in closes]) for x in CLOSING]),
            "s",
        )
    )
    result.notes.append(
        f"Month-end: per pair, each party's contracts parked active with {entries} approved "
        "time entries each in the PSA, then closed by `close_period` signals as `c2c billing "
        "close-period` sends them, until the ERP issued every invoice (checked: they bill what the "
        "entries are worth). The reference makes "
        "c2c's calls: its billing step with the input c2c's workflow gives it, then the audit "
        "write (local). Pairs in ABBA order."
    )


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--contracts", type=int, default=100, help="contracts per burst")
    parser.add_argument("--pairs", type=int, default=2, help="ABBA pairs (at least 2)")
    parser.add_argument("--warmup", type=int, default=10, help="contracts per warm-up burst")
    parser.add_argument("--single", type=int, default=5, help="contracts sent one at a time")
    parser.add_argument("--concurrency", type=int, default=10, help="contracts in flight")
    parser.add_argument(
        "--entries",
        type=int,
        default=20,
        help="approved time entries per contract at the month-end close (0: no close)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for each burst")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample c2c's worker and the reference's with py-spy in the first pair",
    )
    cli.run(
        parser,
        run,
        components=("sandbox", "worker", "api", "baseline", "reference"),
    )


if __name__ == "__main__":
    main()
