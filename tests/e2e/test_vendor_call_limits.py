"""Vendor call limits hold across worker processes: two ``c2c worker`` processes run several
contracts on the sandbox's NetSuite and PSA, and the sandbox, counting what it is sent, never
sees more of NetSuite's requests in flight, or of the PSA's in one second, than
``C2C_CALL_LIMITS`` allows; nor more of the CRM's in flight than its own limit, though
validation calls it from steps on the ERP's queue. A worker killed while it holds NetSuite
slots frees them when their leases expire, and the other worker carries its contracts on.

The sandbox's NetSuite also answers ``CONCURRENCY_LIMIT_EXCEEDED`` past the same limit, so a
breach would show as rejections too; its latency makes the calls overlap.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from c2c.call_limits import POLL_MAX_S
from c2c.ports import free_port
from c2c.settings import Settings
from c2c.telemetry import CALL_SLOT_WAIT
from domain.names import system_task_queue
from ledger import Ledger
from starter.api.contracts import start_contract
from starter.stack.components import component_argv
from tests.netsuite_support import segments
from tests.telemetry.conftest import parse
from tests.workflows.helpers import approval, wait_stage

IN_FLIGHT = 2
PER_SECOND = 4
CRM_IN_FLIGHT = 1
LEASE_S = 4.0
CONTRACTS = 6


class Workers:
    """Two worker processes on one task queue and one ledger, each serving its metrics."""

    def __init__(self, settings: Settings, state: Path) -> None:
        self.ledger_url = f"sqlite:///{state / 'ledger.db'}"
        self.task_queue = f"c2c-limits-{uuid.uuid4().hex[:8]}"
        self.state = state
        self.metrics = [f"127.0.0.1:{free_port()}" for _ in range(2)]
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": settings.temporal_address,
            "TEMPORAL_NAMESPACE": settings.temporal_namespace,
            "C2C_TASK_QUEUE": self.task_queue,
            "C2C_SANDBOX_URL": settings.sandbox_url,
            "C2C_DATABASE_URL": self.ledger_url,
            "C2C_STATE_DIR": str(state),
            "C2C_LOG_LEVEL": "WARNING",
            "C2C_ERP_ROUTES": json.dumps({"US01": "netsuite", "*": "reference"}),
            "C2C_NETSUITE_SEGMENTS": segments().model_dump_json(by_alias=True),
            "C2C_CALL_LIMITS": json.dumps(
                {
                    "netsuite": {"in_flight": IN_FLIGHT, "lease_s": LEASE_S},
                    "psa": {"per_second": PER_SECOND},
                    "crm": {"in_flight": CRM_IN_FLIGHT},
                }
            ),
            # Every system's steps on its own queue, as in a fleet split by queue, so that both
            # workers take steps of every contract, not only of the contracts they run.
            "C2C_WORKER_QUEUES": "workflows,erp,psa,crm",
            # A killed worker's steps run again on the other after this long.
            "C2C_STEP_TIMEOUT_S": "8",
            "C2C_STEP_MAX_ATTEMPTS": "100",
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for n, address in enumerate(self.metrics):
            with (self.state / f"worker-{n}.log").open("ab") as log:
                env = {**self.env, "C2C_WORKER_METRICS_ADDRESS": address}
                self.processes.append(
                    subprocess.Popen(component_argv("worker"), env=env, stdout=log, stderr=log)
                )

    def holder(self, n: int) -> str:
        return f"{socket.gethostname()}:{self.processes[n].pid}"

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(settings, tmp_path)
    Ledger(running.ledger_url).create_all()
    try:
        running.start()
        yield running
    finally:
        running.stop()


async def governance(sandbox: httpx.AsyncClient, **change: int | bool) -> dict[str, int]:
    answer = await sandbox.put("/_admin/netsuite", json=change)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def vendor_load(sandbox: httpx.AsyncClient) -> dict[str, dict[str, int]]:
    return dict((await sandbox.get("/_admin/stats")).json()["vendors"])


async def slot_waits(address: str) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        samples = parse((await http.get(f"http://{address}/metrics")).text)
    return samples.value(f"{CALL_SLOT_WAIT}_count", system="netsuite")


async def both_polling(client: Client, task_queue: str, count: int = 2) -> None:
    """Wait until ``count`` workers poll ``task_queue`` for activities: a worker still starting
    on a loaded machine would leave every step to the other."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    )
    for _ in range(600):
        answer = await client.workflow_service.describe_task_queue(request)
        if len({poller.identity for poller in answer.pollers}) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} workers poll {task_queue}")


async def test_two_worker_processes_keep_the_vendors_limits_and_a_killed_one_frees_its_slots(
    temporal_client: Client, sandbox: httpx.AsyncClient, workers: Workers
) -> None:
    await both_polling(temporal_client, system_task_queue(workers.task_queue, "erp"))
    await sandbox.delete("/_admin/stats/vendors")
    await governance(sandbox, latency_ms=150, concurrency_limit=IN_FLIGHT, reset_counters=True)
    try:
        events = [approval() for _ in range(CONTRACTS)]
        for event in events:
            await start_contract(temporal_client, event, task_queue=workers.task_queue)
        await asyncio.gather(
            *(wait_stage(temporal_client, e.contract_id, "active", timeout=180) for e in events)
        )
        load = await vendor_load(sandbox)
        assert load["netsuite"]["requests"] >= CONTRACTS * 3
        assert load["netsuite"]["max_in_flight"] <= IN_FLIGHT, load["netsuite"]
        assert load["psa"]["max_per_second"] <= PER_SECOND, load["psa"]
        assert load["crm"]["requests"] >= CONTRACTS
        assert load["crm"]["max_in_flight"] <= CRM_IN_FLIGHT, load["crm"]
        assert (await sandbox.get("/_admin/netsuite")).json()["rejected"] == 0
        # Both workers called NetSuite, and timed their waits for its slots.
        for address in workers.metrics:
            assert await slot_waits(address) > 0, address

        # Calls that take 3 s: a worker is killed while it holds NetSuite slots.
        await governance(sandbox, latency_ms=3000)
        ledger = Ledger(workers.ledger_url)
        more = [approval() for _ in range(2)]
        for event in more:
            await start_contract(temporal_client, event, task_queue=workers.task_queue)
        deadline = time.monotonic() + 60
        held: dict[str, int] = {}
        while time.monotonic() < deadline:
            held = ledger.leases("netsuite", time.time())
            if any(held.get(workers.holder(n)) for n in (0, 1)):
                break
            await asyncio.sleep(POLL_MAX_S)
        victim = 0 if held.get(workers.holder(0)) else 1
        holder = workers.holder(victim)
        assert held.get(holder), held
        workers.processes[victim].send_signal(signal.SIGKILL)
        workers.processes[victim].wait(30)
        killed_at = time.time()
        # Its slots still count: nobody knows yet that it died.
        assert ledger.leases("netsuite", killed_at).get(holder)
        await governance(sandbox, latency_ms=0)
        # Then they expire with their leases.
        while ledger.leases("netsuite", time.time()).get(holder):
            assert time.time() < killed_at + LEASE_S + 1, "the dead worker's slots were kept"
            await asyncio.sleep(0.1)
        await asyncio.gather(
            *(wait_stage(temporal_client, e.contract_id, "active", timeout=180) for e in more)
        )
        assert not ledger.leases("netsuite", time.time()).get(holder)
        load = await vendor_load(sandbox)
        assert load["netsuite"]["max_in_flight"] <= IN_FLIGHT, load["netsuite"]
        assert load["psa"]["max_per_second"] <= PER_SECOND, load["psa"]
        ledger.dispose()
    finally:
        await governance(sandbox, latency_ms=0, concurrency_limit=5)
