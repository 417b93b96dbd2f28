"""Soak: c2c under a steady load for half an hour, with the sandbox injecting faults.

A steady stream of time-and-materials contracts goes through their whole life, each through
c2c's public interfaces: a signed ``contract.approved`` on ``POST /webhooks/clm``, approved
time entered in the sandbox's PSA once the contract's project exists there, a period close on
``POST /api/billing/close-period``, and a signed ``payment.succeeded`` on
``POST /webhooks/payments`` for the invoice once the ERP has it and c2c lists it. Every fifth
approval and payment is delivered twice, as senders retry. Contracts are grouped by the minute
they are approved; each group bills its own past month, so that a period close finds every
contract of its month with its time entered.

The stack (``bench/stack.py``) runs the API with the event queue on, as c2c runs by default,
on ports from ``--base-port`` (7 of them); the sandbox fails a share of c2c's requests to every
system with ``503`` (some after the write is made), rate-limits with ``429`` and adds latency
(``--fault-rate``). The soak's own requests to the sandbox retry through the faults.

It reports:

- the resident memory of every process (worker, API, Temporal server, sandbox) after the
  warm-up and at the end of the load, and its growth (goal: under 10 %), with a sample per
  interval;
- the webhooks' p50 and p99 latency per interval;
- events lost or duplicated (goal: 0), checked once the load has drained and the faults are
  off: per contract, the ERP holds one project, one invoice billing exactly its time, and one
  payment; the PSA holds one project; both projects are closed (the contract was paid and
  closed); and in the ledger every webhook delivered is recorded once and processed.

Run ``python -m bench.soak`` (30 minutes) or ``--minutes 2`` to try it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from decimal import Decimal
from typing import Any

import httpx

from bench.cli import parser, run
from bench.load import billing_period
from bench.measure import percentile, process_memory_mb
from bench.report import Result, Row
from bench.stack import BenchStack
from c2c.signing import sign
from domain.models import RateCardEntry
from domain.names import SIGNATURE_HEADER
from domain.periods import Period
from ledger import InboundStatus, get_ledger
from starter.stack.demo_setup import demo_contract

#: The processes whose memory is watched.
PROCESSES = ("worker", "api", "temporal", "sandbox")
#: The time each contract records: (role, hours, rate); 1600.00 + 600.00.
WORK = (("Senior Consultant", "8", "200.00"), ("Analyst", "5", "120.00"))
SUBTOTAL = Decimal("2200.00")
#: Every this-many-th approval and payment is delivered a second time.
REDELIVER_EVERY = 5
#: How often a waiting contract looks at the sandbox.
POLL_S = 2.0
#: The most retries of one request that fails for lack of a 2xx.
RETRIES = 60
GROWTH_GOAL = 0.10


def fault_rules(rate: float) -> list[dict[str, Any]]:
    """The fault campaign's mix of faults, scaled to ``rate`` (its ``503`` share)."""
    return [
        {"probability": rate, "status": 503},
        # The write is made and its answer lost: only idempotency keys save the retry.
        {"probability": rate / 4, "status": 503, "phase": "after"},
        {"probability": rate / 4, "status": 429, "retry_after_s": 1},
        {"probability": 0.3, "latency_ms": 50},
    ]


def month_back(period: Period, months: int) -> Period:
    """The period ``months`` before ``period``."""
    index = period.first_day.year * 12 + period.first_day.month - 1 - months
    return Period.of(date(index // 12, index % 12 + 1, 1))


def approval(contract_id: str, period: Period) -> dict[str, Any]:
    """The demo's T&M approval (ACME-US, billed from US01 in USD) under ``contract_id``,
    running for ``period`` only, without a cap, at the soak's rate card."""
    approved = datetime.combine(period.first_day - timedelta(days=3), day_time(10), tzinfo=UTC)
    contract = demo_contract(period.last_day + timedelta(days=1), approved)
    return contract.model_copy(
        update={
            "event_id": f"evt-{contract_id}",
            "contract_id": contract_id,
            "title": f"Soak SOW {contract_id}",
            "not_to_exceed": None,
            "rate_card": [
                RateCardEntry(role=role, hourly_rate=Decimal(rate)) for role, _, rate in WORK
            ],
        }
    ).model_dump(mode="json")


@dataclass
class Webhook:
    """One webhook delivery: when it was sent (s after the start), its latency, its answer."""

    kind: str
    at: float
    latency: float
    status: int


@dataclass
class Soak:
    """The run's state: what was sent and answered, and what each contract is."""

    stack: BenchStack
    http: httpx.AsyncClient
    started: float = field(default_factory=time.monotonic)
    webhooks: list[Webhook] = field(default_factory=list)
    #: Event ids answered 2xx, by source.
    accepted: dict[str, set[str]] = field(default_factory=lambda: {"clm": set(), "payments": set()})
    #: Contract id -> payment id.
    contracts: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    sandbox_retries: int = 0
    closes: list[str] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    async def webhook(self, source: str, event_id: str, kind: str, data: dict[str, Any]) -> None:
        """Deliver a signed event until it is answered 2xx (each attempt is measured)."""
        body = json.dumps({"id": event_id, "type": kind, "data": data}).encode()
        url = f"{self.stack.api_url}/webhooks/{source}"
        for attempt in range(RETRIES):
            headers = {
                SIGNATURE_HEADER: sign(body, self.stack.webhook_secret),
                "Content-Type": "application/json",
            }
            at = self.now()
            started = time.perf_counter()
            try:
                response = await self.http.post(url, content=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            self.webhooks.append(Webhook(kind, at, time.perf_counter() - started, status))
            if 200 <= status < 300:
                self.accepted[source].add(event_id)
                return
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        raise RuntimeError(f"{url} never answered 2xx for {event_id}")

    async def sandbox(
        self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """A request to the sandbox, retried through its injected faults (writes with one
        ``Idempotency-Key``, so that a retry after a lost answer does not write twice)."""
        headers = {"Idempotency-Key": uuid.uuid4().hex} if method != "GET" else {}
        for attempt in range(RETRIES):
            try:
                response = await self.http.request(
                    method,
                    f"{self.stack.sandbox_url}{path}",
                    json=body,
                    params=params,
                    headers=headers,
                )
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code < 300:
                return response.json()
            if response is not None and response.status_code < 429:
                answer = f"{response.status_code}: {response.text}"
                raise RuntimeError(f"{method} {path} answered {answer}")
            self.sandbox_retries += 1
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        raise RuntimeError(f"{method} {path} failed {RETRIES} times")

    async def items(self, path: str, **params: str) -> list[dict[str, Any]]:
        page = await self.sandbox("GET", path, params={**params, "limit": "500"})
        return list(page["items"])

    async def wait_for(
        self, path: str, contract_id: str, deadline: float, *, status: str | None = None
    ) -> dict[str, Any]:
        """The first item of a sandbox list for the contract (in ``status``, if given), once
        there is one."""
        while True:
            found = await self.items(path, contract_id=contract_id)
            found = [item for item in found if status is None or item["status"] == status]
            if found:
                return found[0]
            if self.now() > deadline:
                raise TimeoutError(f"no {path} for {contract_id}")
            await asyncio.sleep(POLL_S)

    async def invoice_known(self, contract_id: str, invoice_id: str, deadline: float) -> None:
        """Wait until the contract's status (``GET /api/contracts/{id}``) lists the invoice."""
        url = f"{self.stack.api_url}/api/contracts/{contract_id}"
        while True:
            try:
                response = await self.http.get(url)
                if response.status_code == 200 and any(
                    i["invoice_id"] == invoice_id for i in response.json()["invoices"]
                ):
                    return
            except httpx.HTTPError:
                pass
            if self.now() > deadline:
                raise TimeoutError(f"{contract_id} never listed invoice {invoice_id}")
            await asyncio.sleep(POLL_S)


class Cohort:
    """The contracts approved in one minute, billing one month: closed once all are ready."""

    def __init__(self, period: Period) -> None:
        self.period = period
        self.size = 0
        self.ready = 0
        self.sealed = False
        self.closed = asyncio.Event()

    def maybe_close(self, soak: Soak) -> asyncio.Task[None] | None:
        if self.sealed and self.ready == self.size and not self.closed.is_set():
            self.closed.set()
            return asyncio.create_task(self._close(soak))
        return None

    async def _close(self, soak: Soak) -> None:
        body = json.dumps({"period": str(self.period)}).encode()
        url = f"{soak.stack.api_url}/api/billing/close-period"
        for attempt in range(RETRIES):
            try:
                response = await soak.http.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
                if response.status_code == 202:
                    soak.closes.append(str(self.period))
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        soak.failures.append(f"close of {self.period} never accepted")


async def contract_life(
    soak: Soak, cohort: Cohort, contract_id: str, n: int, deadline: float
) -> None:
    """One contract from approval to payment."""
    soak.contracts[contract_id] = f"pay-{contract_id}"
    try:
        await approve_and_enter_time(soak, cohort.period, contract_id, n, deadline)
    finally:
        # Counted even if it failed (the failure is reported): its month still closes.
        cohort.ready += 1
    closing = cohort.maybe_close(soak)
    invoice = await soak.wait_for("/erp/v1/invoices", contract_id, deadline)
    if closing is not None:
        await closing
    # As a payment gateway's customer pays an invoice c2c has sent: once c2c knows it (a
    # payment of an invoice c2c has not recorded yet is a dead letter, for an operator).
    await soak.invoice_known(contract_id, invoice["invoice_id"], deadline)
    await pay(soak, cohort.period, contract_id, invoice, n)


async def approve_and_enter_time(
    soak: Soak, period: Period, contract_id: str, n: int, deadline: float
) -> None:
    """Approve the contract; once its PSA project is active, enter its time there."""
    payload = approval(contract_id, period)
    await soak.webhook("clm", payload["event_id"], "contract.approved", payload)
    if n % REDELIVER_EVERY == 0:
        await soak.webhook("clm", payload["event_id"], "contract.approved", payload)
    project = await soak.wait_for("/psa/v1/projects", contract_id, deadline, status="active")
    for i, (role, hours, _) in enumerate(WORK):
        await soak.sandbox(
            "POST",
            f"/psa/v1/projects/{project['project_id']}/time-entries",
            body={
                "consultant_id": f"u-{i}",
                "role": role,
                "work_date": (period.first_day + timedelta(days=4 + i)).isoformat(),
                "hours": hours,
                "billable": True,
                "approved": True,
            },
        )


async def pay(
    soak: Soak, period: Period, contract_id: str, invoice: dict[str, Any], n: int
) -> None:
    """Deliver the payment of the contract's invoice, as the payment gateway does."""
    payment_id = soak.contracts[contract_id]
    data = {
        "payment_id": payment_id,
        "invoice_id": invoice["invoice_id"],
        "amount": invoice["total"],
        "currency": invoice["currency"],
        "received_on": (period.last_day + timedelta(days=20)).isoformat(),
    }
    event_id = f"evt-{payment_id}"
    await soak.webhook("payments", event_id, "payment.succeeded", data)
    if n % REDELIVER_EVERY == 0:
        await soak.webhook("payments", event_id, "payment.succeeded", data)


async def settle(soak: Soak, deadline: float) -> None:
    """Wait until every contract's ERP project is closed (paid and closed) and the ledger holds
    no event waiting, or until ``deadline``; what is not is reported as lost."""
    ledger = get_ledger(soak.stack.settings().ledger_url)
    pending = set(soak.contracts)
    while soak.now() < deadline:
        for contract_id in sorted(pending):
            projects = await soak.items("/erp/v1/projects", contract_id=contract_id)
            if projects and all(p["status"] == "closed" for p in projects):
                pending.discard(contract_id)
        if not pending and not any(ledger.count_waiting_events().values()):
            return
        await asyncio.sleep(POLL_S)


def memory(stack: BenchStack) -> dict[str, float]:
    """Each watched process's resident memory now, in MiB."""
    return {name: round(process_memory_mb(stack.pid(name))["rss"], 1) for name in PROCESSES}


def intervals(webhooks: list[Webhook], interval_s: float) -> list[dict[str, Any]]:
    """The webhooks' p50 and p99 latency (ms) and count per interval of the run."""
    buckets: dict[int, list[float]] = {}
    for hook in webhooks:
        if 200 <= hook.status < 300:
            buckets.setdefault(int(hook.at // interval_s), []).append(hook.latency)
    return [
        {
            "from_s": round(index * interval_s),
            "webhooks": len(values),
            "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p99_ms": round(percentile(values, 99) * 1000, 1),
        }
        for index, values in sorted(buckets.items())
    ]


async def check(soak: Soak) -> dict[str, Any]:
    """What the systems of record and the ledger hold, against what was sent."""
    lost: list[str] = []
    duplicated: list[str] = []
    counts: Counter[str] = Counter()
    for contract_id, payment_id in sorted(soak.contracts.items()):
        invoices = await soak.items("/erp/v1/invoices", contract_id=contract_id)
        payments = await soak.items("/erp/v1/payments", contract_id=contract_id)
        projects = await soak.items("/erp/v1/projects", contract_id=contract_id)
        psa_projects = await soak.items("/psa/v1/projects", contract_id=contract_id)
        for what, found in (
            ("invoice", invoices),
            ("payment", payments),
            ("ERP project", projects),
            ("PSA project", psa_projects),
        ):
            counts[what] += len(found)
            if not found:
                lost.append(f"{contract_id}: no {what}")
            elif len(found) > 1:
                duplicated.append(f"{contract_id}: {len(found)} {what}s")
        if invoices and sum(Decimal(i["subtotal"]) for i in invoices) != SUBTOTAL:
            lost.append(f"{contract_id}: invoiced {[i['subtotal'] for i in invoices]}")
        if payments and [p["payment_id"] for p in payments] != [payment_id]:
            duplicated.append(f"{contract_id}: payments {[p['payment_id'] for p in payments]}")
        if any(i["status"] != "paid" for i in invoices):
            lost.append(f"{contract_id}: an invoice is not paid")
        if any(p["status"] != "closed" for p in [*projects, *psa_projects]):
            lost.append(f"{contract_id}: a project is not closed")
    ledger = get_ledger(soak.stack.settings().ledger_url)
    events = ledger.list_inbound_events()
    by_key = Counter((e.source, e.event_id) for e in events)
    statuses = Counter(e.status for e in events)
    for source, ids in soak.accepted.items():
        for event_id in ids:
            if by_key[(source, event_id)] != 1:
                lost.append(f"{source} event {event_id}: {by_key[(source, event_id)]} records")
    unsettled = [
        f"{e.source} event {e.event_id}: {e.status}"
        for e in events
        if e.status not in (InboundStatus.PROCESSED.value, InboundStatus.REPLAYED.value)
    ]
    return {
        "lost": lost + unsettled,
        "duplicated": duplicated,
        "records": dict(counts),
        "ledger_events_by_status": dict(statuses),
        "events_accepted": {source: len(ids) for source, ids in soak.accepted.items()},
    }


async def run_soak(stack: BenchStack, args: argparse.Namespace) -> Result:
    minutes: float = args.minutes
    warmup_s = (args.warmup_minutes if args.warmup_minutes is not None else minutes / 6) * 60
    load_s = minutes * 60
    result = Result(
        name="soak",
        title="Soak",
        sizes={
            "minutes": minutes,
            "contracts per minute": args.per_minute,
            "fault rate": args.fault_rate,
        },
    )
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        soak = Soak(stack, http)
        await stack.ready_client()
        for system in ("crm", "erp", "psa", "tax"):
            for rule in fault_rules(args.fault_rate):
                await soak.sandbox("POST", "/_admin/faults", body={"system": system, **rule})
        soak.started = time.monotonic()
        tag = uuid.uuid4().hex[:4].upper()
        first = billing_period()
        gap = 60.0 / args.per_minute
        drain_deadline = load_s + args.drain_minutes * 60
        lives: list[asyncio.Task[None]] = []
        cohorts: dict[int, Cohort] = {}
        samples: list[dict[str, Any]] = []
        memory_start: dict[str, float] | None = None
        next_sample = 0.0
        rng = random.Random(20261207)
        n = 0
        while soak.now() < load_s:
            stack.check_alive()
            if soak.now() >= next_sample:
                samples.append({"at_s": round(soak.now()), **memory(stack)})
                next_sample += args.interval_s
            if memory_start is None and soak.now() >= warmup_s:
                memory_start = memory(stack)
            minute = int(soak.now() // 60)
            cohort = cohorts.get(minute)
            if cohort is None:
                for earlier in cohorts.values():
                    if not earlier.sealed:
                        earlier.sealed = True
                        if (task := earlier.maybe_close(soak)) is not None:
                            lives.append(task)
                cohort = cohorts[minute] = Cohort(month_back(first, minute))
            cohort.size += 1
            contract_id = f"S{tag}-{n:05d}"
            lives.append(
                asyncio.create_task(contract_life(soak, cohort, contract_id, n, drain_deadline))
            )
            n += 1
            await asyncio.sleep(gap * rng.uniform(0.8, 1.2))
        memory_end = memory(stack)
        samples.append({"at_s": round(soak.now()), **memory_end})
        memory_start = memory_start or samples[0]
        for cohort in cohorts.values():
            cohort.sealed = True
            if (task := cohort.maybe_close(soak)) is not None:
                lives.append(task)
        print(f"load sent: {n} contracts; draining", flush=True)
        outcomes = await asyncio.gather(*lives, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                soak.failures.append(repr(outcome))
        await settle(soak, drain_deadline)
        drained_s = soak.now() - load_s
        stack.check_alive()
        memory_drained = memory(stack)
        await soak.sandbox("DELETE", "/_admin/faults")
        stats = await soak.sandbox("GET", "/_admin/stats")
        checked = await check(soak)

    lost = len(checked["lost"]) + len(soak.failures)
    duplicated = len(checked["duplicated"])
    result.add(Row("contracts approved", n))
    result.add(Row("contracts paid and closed", len(soak.contracts) - len(checked["lost"])))
    result.add(Row("webhooks answered 2xx", sum(len(v) for v in soak.accepted.values())))
    result.add(Row("webhook deliveries (redeliveries included)", len(soak.webhooks)))
    result.add(Row("events lost", lost, goal="0", met=lost == 0))
    result.add(Row("events duplicated", duplicated, goal="0", met=duplicated == 0))
    for name in PROCESSES:
        start, end = memory_start[name], memory_end[name]
        growth = (end - start) / start if start else 0.0
        result.add(
            Row(
                f"{name} RSS after warm-up → end of load",
                f"{start:.0f} → {end:.0f} MiB ({growth:+.1%})",
                goal="< +10 %",
                met=growth < GROWTH_GOAL,
            )
        )
    lat = intervals(soak.webhooks, args.interval_s)
    ok = [h.latency for h in soak.webhooks if 200 <= h.status < 300]
    result.add(Row("webhook p50 (whole run)", round(percentile(ok, 50) * 1000, 1), "ms"))
    result.add(Row("webhook p99 (whole run)", round(percentile(ok, 99) * 1000, 1), "ms"))
    result.add(Row("drain after the load", round(drained_s), "s"))
    result.details = {
        "memory_after_warmup_mb": memory_start,
        "memory_end_of_load_mb": memory_end,
        "memory_after_drain_mb": memory_drained,
        "memory_samples_mb": samples,
        "webhook_latency_per_interval": lat,
        "webhook_answers": dict(Counter(h.status for h in soak.webhooks)),
        "period_closes": soak.closes,
        "soak_sandbox_retries": soak.sandbox_retries,
        "sandbox_faults_fired": stats.get("faults_fired"),
        "check": checked,
        "failures": soak.failures[:50],
        "warmup_s": warmup_s,
        "interval_s": args.interval_s,
    }
    result.notes.append(
        "Webhook latency per interval (p50 / p99 ms, count): "
        + "; ".join(
            f"{_clock(i['from_s'])} {i['p50_ms']:.0f}/{i['p99_ms']:.0f} ({i['webhooks']})"
            for i in lat
        )
    )
    result.notes.append(
        "RSS per interval (MiB, worker/api/temporal/sandbox): "
        + "; ".join(
            f"{_clock(s['at_s'])} " + "/".join(f"{s[name]:.0f}" for name in PROCESSES)
            for s in samples
        )
    )
    for problem in (checked["lost"] + checked["duplicated"] + soak.failures)[:20]:
        result.notes.append(f"problem: {problem}")
    return result


def _clock(seconds: int) -> str:
    """``m:ss`` after the start of the load."""
    return f"{seconds // 60}:{seconds % 60:02d}"


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--minutes", type=float, default=30.0, help="how long the load runs")
    p.add_argument(
        "--warmup-minutes",
        type=float,
        default=None,
        help="memory is measured from the end of this (default: a sixth of --minutes)",
    )
    p.add_argument("--per-minute", type=float, default=20.0, help="contracts approved a minute")
    p.add_argument(
        "--fault-rate", type=float, default=0.1, help="share of c2c's system requests failing 503"
    )
    p.add_argument("--interval-s", type=float, default=60.0, help="latency and memory interval")
    p.add_argument(
        "--drain-minutes",
        type=float,
        default=15.0,
        help="how long contracts may take to be paid and closed after the load",
    )
    p.add_argument(
        "--base-port",
        type=int,
        default=30470,
        help="the stack listens on this port and the next six (0: free ports picked at random)",
    )
    run(
        p,
        run_soak,
        components=("sandbox", "worker", "api"),
        env={
            "C2C_LOG_LEVEL": "WARNING",
            # A short budget would turn the injected faults into exceptions; keep retrying.
            "C2C_STEP_MAX_ATTEMPTS": "100",
        },
        stack_options=lambda args: {"base_port": args.base_port or None, "api_queue": True},
        failure=_lost_or_duplicated,
    )


def _lost_or_duplicated(result: Result) -> str | None:
    if any(row.met is False for row in result.rows if row.metric.startswith("events")):
        return "events lost or duplicated"
    return None


if __name__ == "__main__":
    main()
