"""A fault campaign: 30 contracts of every billing model while everything goes wrong.

The sandbox fails a fifth of the requests with ``503``, rate-limits with ``429`` and adds
latency; the worker process is killed with SIGKILL and restarted at random moments; the
Temporal dev server is restarted once on its persistent database. Afterwards every contract
must be ``closed`` and the systems of record must hold exactly the expected records: no
duplicate, none missing, every invoice total right. The test prints the counts it checked.

The campaign runs twice: with the ledger on SQLite and the contracts' events sent to their
workflows by a Temporal client; and with the ledger on PostgreSQL (``C2C_TEST_DATABASE_URL``,
a database of the run's own; skipped when it is not set) and every event (approvals, completed
milestones, payments) sent as a signed webhook to two ``c2c api`` replicas in turn, which
share the ledger's event queue. Then the ledger must also hold every event once, processed.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from c2c.ports import free_port
from domain.models import ClosePeriod, ContractApproved, MilestoneCompleted, PaymentReceived
from ledger import Ledger
from ledger.models import PaymentFact
from starter.api.contracts import (
    close_period_for,
    complete_milestone,
    get_status,
    record_payment,
    start_contract,
)
from starter.stack.components import UpOptions, component_argv, temporal_argv
from tests.campaign.processes import (
    ApiProcess,
    deliver_until_accepted,
    envelope,
    postgres_database,
)
from tests.support import approval_payload

CONTRACTS = 30
KILLS = 4
TASK_QUEUE = "c2c-campaign"
pytestmark = pytest.mark.timeout(900)


@dataclass
class Expected:
    """What one contract must leave in the ERP: its invoices' (subtotal, total)."""

    contract_id: str
    model: str
    invoices: list[tuple[Decimal, Decimal]]


def _contract(i: int) -> tuple[ContractApproved, Expected]:
    kind = ("time_and_materials", "fixed_fee", "retainer")[i % 3]
    changes: dict[str, Any] = {"billing_model": kind, "not_to_exceed": None}
    if kind == "time_and_materials":
        # 8 h x 200.00 = 1600.00; California 7.25 %.
        invoices = [(Decimal("1600.00"), Decimal("1716.00"))]
    elif kind == "fixed_fee":
        changes["milestones"] = [
            {"milestone_id": "M1", "name": "Design", "amount": "1000.00"},
            {"milestone_id": "M2", "name": "Build", "amount": "2000.00"},
        ]
        invoices = [(Decimal("3000.00"), Decimal("3217.50"))]
    else:
        changes |= {
            "customer": {"crm_account_id": "GLOBEX-UK", "name": "Globex Ltd", "country": "GB"},
            "legal_entity": "UK01",
            "currency": "GBP",
            "retainer_monthly_amount": "5000.00",
            "retainer_included_hours": "6",
            "rate_card": [{"role": "Senior Consultant", "hourly_rate": "100.00"}],
        }
        # October in advance (+20 % VAT), then 2 h of overage at its close.
        invoices = [
            (Decimal("5000.00"), Decimal("6000.00")),
            (Decimal("200.00"), Decimal("240.00")),
        ]
    event = ContractApproved.model_validate(approval_payload(**changes))
    return event, Expected(event.contract_id, kind, invoices)


class Stack:
    """A dev server on a persistent database and a worker process, both killable."""

    def __init__(self, state: Path, sandbox_url: str, database_url: str | None = None) -> None:
        self.options = UpOptions(temporal_port=free_port(), ui=False)
        self.state = state
        self.database_url = database_url or f"sqlite:///{state / 'ledger.db'}"
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": self.options.temporal_address,
            "C2C_TASK_QUEUE": TASK_QUEUE,
            "C2C_SANDBOX_URL": sandbox_url,
            "C2C_DATABASE_URL": self.database_url,
            "C2C_STATE_DIR": str(state),
            "C2C_LOG_LEVEL": "ERROR",
            # A short budget would turn the campaign's faults into exceptions; keep retrying.
            "C2C_STEP_MAX_ATTEMPTS": "100",
            # A killed worker's steps are noticed (and run again elsewhere) after this long.
            "C2C_STEP_TIMEOUT_S": "5",
        }
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start_server(self) -> None:
        self.server = subprocess.Popen(
            temporal_argv(self.options, self.state),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_server(self) -> None:
        assert self.server is not None
        self.server.terminate()
        self.server.wait(30)

    def start_worker(self) -> None:
        with (self.state / "worker.log").open("ab") as log:
            self.worker = subprocess.Popen(
                component_argv("worker"), env=self.env, stdout=log, stderr=log
            )

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(30)
        self.kills += 1

    def stop(self) -> None:
        for process in (self.worker, self.server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(30)

    async def client(self) -> Client:
        for _ in range(200):
            try:
                return await Client.connect(
                    self.options.temporal_address, data_converter=pydantic_data_converter
                )
            except Exception:
                await asyncio.sleep(0.2)
        raise AssertionError("the dev server did not come up")


@contextmanager
def _started(state: Path, sandbox_url: str, database_url: str | None = None) -> Iterator[Stack]:
    running = Stack(state, sandbox_url, database_url)
    running.start_server()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def stack(tmp_path: Path, sandbox_url: str) -> Iterator[Stack]:
    with _started(tmp_path, sandbox_url) as running:
        yield running


@pytest.fixture
def pg_stack(tmp_path: Path, sandbox_url: str) -> Iterator[Stack]:
    """A stack whose ledger is a new PostgreSQL database (skipped without one)."""
    with postgres_database() as url, _started(tmp_path, sandbox_url, url) as running:
        yield running


@pytest.fixture
def replicas(pg_stack: Stack, tmp_path: Path) -> Iterator[list[ApiProcess]]:
    """Two ``c2c api`` processes on the stack, sharing its ledger (and so its event queue)."""
    env = {**pg_stack.env, "C2C_LOG_LEVEL": "WARNING"}
    apis = [ApiProcess(env, tmp_path / f"api-{n}.log") for n in (1, 2)]
    try:
        for api in apis:
            api.start()
        yield apis
    finally:
        for api in apis:
            api.stop()


CHAOS = [
    {"probability": 0.2, "status": 503},
    # The write is made and its answer lost: only idempotency keys save the retry.
    {"probability": 0.05, "status": 503, "phase": "after"},
    {"probability": 0.05, "status": 429, "retry_after_s": 1},
    {"probability": 0.3, "latency_ms": 50},
]


async def add_chaos(sandbox: httpx.AsyncClient) -> None:
    for system in ("crm", "erp", "psa", "tax"):
        for rule in CHAOS:
            response = await sandbox.post("/_admin/faults", json={"system": system, **rule})
            assert response.status_code in (200, 201), response.text


@pytest_asyncio.fixture
async def chaos(sandbox: httpx.AsyncClient) -> AsyncIterator[None]:
    await add_chaos(sandbox)
    yield
    await sandbox.delete("/_admin/faults")


async def _until(client: Client, cids: list[str], check: Any, what: str) -> None:
    for _ in range(1500):
        done = 0
        for cid in cids:
            try:
                if check(await get_status(client, cid)):
                    done += 1
            except Exception:
                pass
        if done == len(cids):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"not every contract reached {what}")


async def _killer(stack: Stack, stop: asyncio.Event, rng: random.Random) -> None:
    """SIGKILL the worker at random moments (a few times) and start a new one."""
    while not stop.is_set() and stack.kills < KILLS:
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(4, 12))
        if stop.is_set():
            return
        stack.kill_worker()
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        stack.start_worker()


class Inbox:
    """How the contracts' events reach them: signals and starts from a Temporal client."""

    def __init__(self) -> None:
        #: The webhooks sent and accepted: (source, event id).
        self.sent: list[tuple[str, str]] = []

    async def approve(self, client: Client, event: ContractApproved) -> None:
        await start_contract(client, event, task_queue=TASK_QUEUE)

    async def complete(self, client: Client, cid: str, milestone: MilestoneCompleted) -> None:
        await complete_milestone(client, cid, milestone)

    async def delivered(self) -> None:
        """Return once every event sent has reached its contract (signals: at once)."""

    async def pay(self, client: Client, cid: str) -> list[str]:
        """Pay what the contract is due; the payment ids sent."""
        status = await get_status(client, cid)
        payment = PaymentReceived(
            payment_id=f"pay-{cid}",
            amount=status.balance_due,
            currency=status.currency,
            received_on=date(2026, 11, 23),
        )
        await record_payment(client, cid, payment)
        return [payment.payment_id]


class Webhooks(Inbox):
    """Every event a signed webhook, sent to each API replica in turn until it accepts it."""

    def __init__(self, apis: list[ApiProcess], http: httpx.AsyncClient, ledger: Ledger) -> None:
        super().__init__()
        self.apis = cycle(apis)
        self.http = http
        self.ledger = ledger

    async def delivered(self) -> None:
        """Wait until the replicas' queue has processed every event sent (an accepted event is
        delivered later, and a milestone must reach its contract before the period closes)."""
        for source, event_id in self.sent:
            for _ in range(3000):
                stored = self.ledger.get_inbound_event(source, event_id)
                if stored is not None and stored.status != "received":
                    break
                await asyncio.sleep(0.2)

    async def send(self, source: str, kind: str, data: dict[str, Any]) -> None:
        event_id, body = envelope(kind, data)
        api = next(self.apis)
        await deliver_until_accepted(self.http, f"{api.url}/webhooks/{source}", body)
        self.sent.append((source, event_id))

    async def approve(self, client: Client, event: ContractApproved) -> None:
        await self.send("clm", "contract.approved", event.model_dump(mode="json"))

    async def complete(self, client: Client, cid: str, milestone: MilestoneCompleted) -> None:
        await self.send(
            "psa", "milestone.completed", {"contract_id": cid, **milestone.model_dump(mode="json")}
        )

    async def pay(self, client: Client, cid: str) -> list[str]:
        """Pay each invoice by itself, as a payment gateway reports each payment."""
        status = await get_status(client, cid)
        ids = []
        for n, invoice in enumerate(status.invoices):
            payment = PaymentReceived(
                payment_id=f"pay-{cid}-{n}",
                invoice_id=invoice.invoice_id,
                amount=invoice.total,
                currency=status.currency,
                received_on=date(2026, 11, 23),
            )
            await self.send("payments", "payment.succeeded", payment.model_dump(mode="json"))
            ids.append(payment.payment_id)
        return ids


async def test_thirty_contracts_survive_faults_kills_and_a_server_restart(
    stack: Stack, sandbox: httpx.AsyncClient, chaos: None
) -> None:
    await _campaign(stack, sandbox, Inbox())


@pytest.mark.timeout(1500)  # webhooks, a queue and PostgreSQL: more work than the above
async def test_the_campaign_on_postgresql_with_webhooks_to_two_api_replicas(
    pg_stack: Stack, replicas: list[ApiProcess], sandbox: httpx.AsyncClient, chaos: None
) -> None:
    for api in replicas:
        await api.ready()
    ledger = Ledger(pg_stack.database_url)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            inbox = Webhooks(replicas, http, ledger)
            await _campaign(pg_stack, sandbox, inbox)
        await inbox.delivered()
        for source, event_id in inbox.sent:
            stored = ledger.get_inbound_event(source, event_id)
            assert stored is not None and stored.status == "processed", (event_id, stored)
        assert len(ledger.list_inbound_events()) == len(inbox.sent)
    finally:
        ledger.dispose()
    print(f"ledger on PostgreSQL: {len(inbox.sent)} webhooks, each processed once")


async def _campaign(stack: Stack, sandbox: httpx.AsyncClient, inbox: Inbox) -> None:
    rng = random.Random(20261123)
    client = await stack.client()
    stack.start_worker()
    planned = [_contract(i) for i in range(CONTRACTS)]
    expected = {e.contract_id: e for _, e in planned}
    cids = list(expected)
    paid: dict[str, list[str]] = {}
    stop = asyncio.Event()
    killer = asyncio.create_task(_killer(stack, stop, rng))
    try:
        for event, _ in planned:
            await inbox.approve(client, event)
        await _until(client, cids, lambda s: s.stage == "active", "active")

        # Work recorded in the PSA, outside the chaos (it is the test's own doing).
        await sandbox.delete("/_admin/faults")
        for cid, e in expected.items():
            status = await get_status(client, cid)
            psa = status.refs["psa_project_id"]
            hours = {"time_and_materials": "8", "retainer": "8"}.get(e.model)
            if hours:
                response = await sandbox.post(
                    f"/psa/v1/projects/{psa}/time-entries",
                    json={
                        "consultant_id": "u-1",
                        "role": "Senior Consultant",
                        "work_date": "2026-10-05",
                        "hours": hours,
                        "billable": True,
                        "approved": True,
                    },
                )
                assert response.status_code == 201, response.text
        await add_chaos(sandbox)

        # The dev server restarts once, on its persistent database, with work in flight.
        stack.stop_server()
        stack.start_server()
        client = await stack.client()
        for cid, e in expected.items():
            if e.model == "fixed_fee":
                for mid, day in (("M1", 10), ("M2", 20)):
                    await inbox.complete(
                        client,
                        cid,
                        MilestoneCompleted(milestone_id=mid, completed_on=date(2026, 10, day)),
                    )
        await inbox.delivered()
        for cid in cids:
            await close_period_for(client, cid, ClosePeriod(period="2026-10"))
        await _until(
            client,
            cids,
            lambda s: len(s.invoices) == len(expected[s.contract_id].invoices),
            "all invoices",
        )
        for cid in cids:
            paid[cid] = await inbox.pay(client, cid)
        await _until(client, cids, lambda s: s.stage == "closed", "closed")
    finally:
        stop.set()
        await killer
        if stack.worker is None or stack.worker.poll() is not None:
            stack.start_worker()

    await sandbox.delete("/_admin/faults")
    counts = {"contracts": 0, "invoices": 0, "payments": 0, "projects": 0, "psa_projects": 0}
    ledger = Ledger(stack.database_url)
    for cid, e in expected.items():
        invoices = await _items(sandbox, "/erp/v1/invoices", contract_id=cid)
        got = sorted((Decimal(i["subtotal"]), Decimal(i["total"])) for i in invoices)
        assert got == sorted(e.invoices), cid
        assert all(i["status"] == "paid" for i in invoices), cid
        payments = await _items(sandbox, "/erp/v1/payments", contract_id=cid)
        assert sorted(p["payment_id"] for p in payments) == sorted(paid[cid]), cid
        with Session(ledger.engine) as session:
            facts = session.exec(select(PaymentFact).where(PaymentFact.contract_id == cid)).all()
        assert sorted(f.payment_id for f in facts) == sorted(paid[cid]), cid
        projects = await _items(sandbox, "/erp/v1/projects", contract_id=cid)
        psa_projects = await _items(sandbox, "/psa/v1/projects", contract_id=cid)
        assert len(projects) == len(psa_projects) == 1, cid
        assert projects[0]["status"] == psa_projects[0]["status"] == "closed", cid
        counts["contracts"] += 1
        counts["invoices"] += len(invoices)
        counts["payments"] += len(payments)
        counts["projects"] += len(projects)
        counts["psa_projects"] += len(psa_projects)
    ledger.dispose()
    for account in ("ACME-US", "GLOBEX-UK"):
        assert len(await _items(sandbox, "/erp/v1/customers", crm_account_id=account)) == 1
    print(f"\nfault campaign checked: {counts}, worker kills: {stack.kills}, server restarts: 1")
    assert stack.kills >= 2


async def _items(sandbox: httpx.AsyncClient, path: str, **params: str) -> list[dict[str, Any]]:
    response = await sandbox.get(path, params={**params, "limit": "500"})
    response.raise_for_status()
    return list(response.json()["items"])
