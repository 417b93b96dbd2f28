"""A fault campaign: 30 contracts of every billing model while everything goes wrong.

The sandbox fails a fifth of the requests with ``503``, rate-limits with ``429`` and adds
latency; the worker process is killed with SIGKILL and restarted at random moments; the
Temporal dev server is restarted once on its persistent database. Afterwards every contract
must be ``closed`` and the systems of record must hold exactly the expected records: no
duplicate, none missing, every invoice total right. The test prints the counts it checked.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from c2c.ports import free_port
from domain.models import ClosePeriod, ContractApproved, MilestoneCompleted, PaymentReceived
from starter.api.contracts import (
    close_period_for,
    complete_milestone,
    get_status,
    record_payment,
    start_contract,
)
from starter.stack.components import UpOptions, component_argv, temporal_argv
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

    def __init__(self, state: Path, sandbox_url: str) -> None:
        self.options = UpOptions(temporal_port=free_port(), ui=False)
        self.state = state
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": self.options.temporal_address,
            "C2C_TASK_QUEUE": TASK_QUEUE,
            "C2C_SANDBOX_URL": sandbox_url,
            "C2C_DATABASE_URL": f"sqlite:///{state / 'ledger.db'}",
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


@pytest.fixture
def stack(tmp_path: Path, sandbox_url: str) -> Iterator[Stack]:
    running = Stack(tmp_path, sandbox_url)
    running.start_server()
    try:
        yield running
    finally:
        running.stop()


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


async def test_thirty_contracts_survive_faults_kills_and_a_server_restart(
    stack: Stack, sandbox: httpx.AsyncClient, chaos: None
) -> None:
    rng = random.Random(20261123)
    client = await stack.client()
    stack.start_worker()
    planned = [_contract(i) for i in range(CONTRACTS)]
    expected = {e.contract_id: e for _, e in planned}
    cids = list(expected)
    stop = asyncio.Event()
    killer = asyncio.create_task(_killer(stack, stop, rng))
    try:
        for event, _ in planned:
            await start_contract(client, event, task_queue=TASK_QUEUE)
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
                    await complete_milestone(
                        client,
                        cid,
                        MilestoneCompleted(milestone_id=mid, completed_on=date(2026, 10, day)),
                    )
            await close_period_for(client, cid, ClosePeriod(period="2026-10"))
        await _until(
            client,
            cids,
            lambda s: len(s.invoices) == len(expected[s.contract_id].invoices),
            "all invoices",
        )
        for cid in cids:
            status = await get_status(client, cid)
            await record_payment(
                client,
                cid,
                PaymentReceived(
                    payment_id=f"pay-{cid}",
                    amount=status.balance_due,
                    currency=status.currency,
                    received_on=date(2026, 11, 23),
                ),
            )
        await _until(client, cids, lambda s: s.stage == "closed", "closed")
    finally:
        stop.set()
        await killer
        if stack.worker is None or stack.worker.poll() is not None:
            stack.start_worker()

    await sandbox.delete("/_admin/faults")
    counts = {"contracts": 0, "invoices": 0, "payments": 0, "projects": 0, "psa_projects": 0}
    for cid, e in expected.items():
        invoices = await _items(sandbox, "/erp/v1/invoices", contract_id=cid)
        got = sorted((Decimal(i["subtotal"]), Decimal(i["total"])) for i in invoices)
        assert got == sorted(e.invoices), cid
        assert all(i["status"] == "paid" for i in invoices), cid
        payments = await _items(sandbox, "/erp/v1/payments", contract_id=cid)
        assert [p["payment_id"] for p in payments] == [f"pay-{cid}"], cid
        projects = await _items(sandbox, "/erp/v1/projects", contract_id=cid)
        psa_projects = await _items(sandbox, "/psa/v1/projects", contract_id=cid)
        assert len(projects) == len(psa_projects) == 1, cid
        assert projects[0]["status"] == psa_projects[0]["status"] == "closed", cid
        counts["contracts"] += 1
        counts["invoices"] += len(invoices)
        counts["payments"] += len(payments)
        counts["projects"] += len(projects)
        counts["psa_projects"] += len(psa_projects)
    for account in ("ACME-US", "GLOBEX-UK"):
        assert len(await _items(sandbox, "/erp/v1/customers", crm_account_id=account)) == 1
    print(f"\nfault campaign checked: {counts}, worker kills: {stack.kills}, server restarts: 1")
    assert stack.kills >= 2


async def _items(sandbox: httpx.AsyncClient, path: str, **params: str) -> list[dict[str, Any]]:
    response = await sandbox.get(path, params={**params, "limit": "500"})
    response.raise_for_status()
    return list(response.json()["items"])
