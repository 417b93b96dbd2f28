"""The event queue (``C2C_WEBHOOK_QUEUE``): approvals answered once valid and recorded, and
started by the API's queue, over real HTTP, a real ledger and real Temporal dev servers.

No worker runs: the workflows are started, not run.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.names import contract_workflow_id
from ledger import InboundEvent, InboundSource, Ledger, get_ledger
from starter import dead_letters
from starter.components import UpOptions, temporal_argv
from starter.context import ApiContext
from starter.errors import ApiError
from starter.event_queue import EventQueue
from starter.webhooks import PROCESSORS, QUEUED_TYPES, queued_answer
from tests.starter.helpers import approval, event, signed
from tests.support import WEBHOOK_SECRET, free_port, serve

CLM = "/webhooks/clm"


def approved(data: dict[str, Any]) -> tuple[str, bytes]:
    event_id = f"evt_{uuid.uuid4().hex[:12]}"
    body = {"id": event_id, "type": "contract.approved", "data": data}
    return event_id, json.dumps(body).encode()


async def post(api: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await api.post(CLM, content=body, headers=signed(body, WEBHOOK_SECRET))


async def runs_of(client: Client, contract_id: str) -> int:
    query = f"WorkflowId = '{contract_workflow_id(contract_id)}'"
    return len([wf async for wf in client.list_workflows(query)])


async def settled(ledger: Ledger, event_id: str, timeout_s: float = 60) -> InboundEvent:
    """The event once the queue has processed it (or made it a dead letter)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        stored = ledger.get_inbound_event("clm", event_id)
        if stored is not None and stored.status in ("processed", "dead_letter"):
            return stored
        assert asyncio.get_running_loop().time() < deadline, f"{event_id} is {stored}"
        await asyncio.sleep(0.1)


@pytest.fixture
def queued_settings(api_settings: Settings, tmp_path: Path) -> Settings:
    """The API's settings with the queue on and a ledger of this test's own."""
    return api_settings.model_copy(
        update={
            "webhook_queue": True,
            "database_url": f"sqlite:///{tmp_path / 'queue-ledger.db'}",
        }
    )


@pytest.fixture
def queued_api(queued_settings: Settings) -> Iterator[str]:
    with serve(queued_settings) as url:
        yield url


async def test_an_approval_is_answered_once_recorded_and_the_queue_starts_its_workflow(
    queued_api: str, queued_settings: Settings, temporal_client: Client
) -> None:
    data = approval()
    eid, body = approved(data)
    async with httpx.AsyncClient(base_url=queued_api, timeout=30) as api:
        first = await post(api, body)
        assert first.status_code == 202, first.text
        assert first.json() == {
            "contract_id": data["contract_id"],
            "workflow_id": contract_workflow_id(data["contract_id"]),
            "run_id": None,
            "duplicate": False,
            "queued": True,
        }

        ledger = get_ledger(queued_settings.ledger_url)
        stored = await settled(ledger, eid)
        assert (stored.status, stored.attempts, stored.claimed_until) == ("processed", 1, None)
        assert stored.response_status == 202 and stored.response_body is not None
        assert stored.response_body["run_id"] and stored.response_body["duplicate"] is False
        assert await runs_of(temporal_client, data["contract_id"]) == 1

        # A later delivery is answered with what processing answered, run id included.
        again = await post(api, body)
        assert again.status_code == 202
        assert again.json() == {**stored.response_body, "duplicate": True}
        metrics = (await api.get("/metrics")).text
    assert 'c2c_webhooks_received_total{outcome="queued",source="clm"}' in metrics
    assert 'c2c_queued_events_total{outcome="processed",source="clm"}' in metrics
    assert 'c2c_inbound_events_waiting{source="clm"} 0.0' in metrics
    assert await runs_of(temporal_client, data["contract_id"]) == 1


async def test_an_invalid_approval_is_refused_naming_the_field_and_never_queued(
    queued_api: str, queued_settings: Settings, temporal_client: Client
) -> None:
    data = approval()
    del data["customer"]
    eid, body = approved(data)
    async with httpx.AsyncClient(base_url=queued_api, timeout=30) as api:
        response = await post(api, body)
    assert response.status_code == 422, response.text
    assert "data.customer" in response.text
    stored = get_ledger(queued_settings.ledger_url).get_inbound_event("clm", eid)
    assert stored is not None and stored.status == "dead_letter"
    assert await runs_of(temporal_client, data["contract_id"]) == 0


async def test_amendments_are_not_queued() -> None:
    amended = {"type": "contract.amended", "data": {"contract_id": "C-1", "amendment": {}}}
    assert queued_answer(json.dumps(amended).encode()) is None
    assert queued_answer(b"not json") is None


async def test_a_duplicate_of_a_waiting_approval_is_answered_without_processing_it(
    queued_settings: Settings, temporal_client: Client
) -> None:
    context = ApiContext(queued_settings, temporal_client)
    ledger = await context.ledger()
    data = approval()
    eid, body = approved(data)
    answer = queued_answer(body)
    assert answer is not None

    first = await dead_letters.enqueue(context, InboundSource.CLM, body, answer)
    second = await dead_letters.enqueue(context, InboundSource.CLM, body, answer)

    assert first is not None and first.body["duplicate"] is False and first.body["queued"]
    assert second is not None and second.body == {**answer.body, "duplicate": True}
    waiting = ledger.get_inbound_event("clm", eid)
    assert waiting is not None
    assert (waiting.status, waiting.attempts, waiting.claimed_until) == ("received", 0, None)
    assert ledger.count_waiting_events() == {"clm": 1}
    assert await runs_of(temporal_client, data["contract_id"]) == 0

    queue = EventQueue(context, PROCESSORS, QUEUED_TYPES, poll=timedelta(milliseconds=100))
    queue.start()
    try:
        await queue.drained()
    finally:
        await queue.stop()
    stored = await settled(ledger, eid)
    assert (stored.status, stored.attempts) == ("processed", 1)
    assert await runs_of(temporal_client, data["contract_id"]) == 1


async def test_approvals_taken_while_temporal_is_down_start_once_it_is_up(
    api_settings: Settings, tmp_path: Path
) -> None:
    """Temporal is not running when the approvals arrive: they are answered, kept waiting
    through failed attempts, and started when a server comes up at that address."""
    options = UpOptions(temporal_port=free_port(), ui_port=free_port(), ui=False)
    settings = api_settings.model_copy(
        update={
            "webhook_queue": True,
            "temporal_address": options.temporal_address,
            "database_url": f"sqlite:///{tmp_path / 'down-ledger.db'}",
        }
    )
    ledger = get_ledger(settings.ledger_url)
    contracts = [approval() for _ in range(3)]
    events = [approved(data) for data in contracts]
    server: subprocess.Popen[bytes] | None = None
    with serve(settings) as url:
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as api:
                for _, body in events:
                    response = await post(api, body)
                    assert response.status_code == 202, response.text
                    assert response.json()["queued"] is True
            # Each is tried, fails for want of Temporal, and waits for its next attempt.
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                stored = [ledger.get_inbound_event("clm", eid) for eid, _ in events]
                if all(e is not None and e.attempts >= 1 for e in stored):
                    break
                assert asyncio.get_running_loop().time() < deadline, stored
                await asyncio.sleep(0.1)
            assert all(e is not None and e.status == "received" for e in stored)

            (tmp_path / "temporal").mkdir()
            server = subprocess.Popen(
                temporal_argv(options, tmp_path / "temporal"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for eid, _ in events:
                done = await settled(ledger, eid, timeout_s=120)
                assert done.status == "processed" and done.attempts >= 2
                assert done.response_body is not None and done.response_body["run_id"]
            client = await Client.connect(options.temporal_address)
            for data in contracts:
                assert await runs_of(client, data["contract_id"]) == 1
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)


async def test_a_transient_failure_waits_and_a_permanent_one_makes_a_dead_letter(
    queued_settings: Settings, temporal_client: Client
) -> None:
    """The queue settles an event as its webhook would: a ``5xx`` leaves it waiting for its
    next attempt, a ``4xx`` keeps it as a dead letter with the reason."""
    context = ApiContext(queued_settings, temporal_client)
    ledger = await context.ledger()
    flaky, refused = approval(), approval()
    (flaky_id, flaky_body), (refused_id, refused_body) = approved(flaky), approved(refused)
    failures: list[str] = []

    async def processor(context: ApiContext, body: bytes) -> dead_letters.Answer:
        contract_id = json.loads(body)["data"]["contract_id"]
        if contract_id == refused["contract_id"]:
            raise ApiError(404, "contract_not_found", "no such account in the CRM")
        if contract_id not in failures:
            failures.append(contract_id)
            raise ApiError(503, "erp_unavailable", "the ERP did not answer; try again")
        return await PROCESSORS[InboundSource.CLM](context, body)

    for body in (flaky_body, refused_body):
        answer = queued_answer(body)
        assert answer is not None
        assert await dead_letters.enqueue(context, InboundSource.CLM, body, answer) is not None
    queue = EventQueue(
        context,
        {InboundSource.CLM: processor},
        QUEUED_TYPES,
        poll=timedelta(milliseconds=100),
    )
    queue.start()
    try:
        dead = await settled(ledger, refused_id)
        assert (dead.status, dead.reason) == (
            "dead_letter",
            "contract_not_found: no such account in the CRM",
        )
        left = ledger.get_inbound_event("clm", flaky_id)
        assert left is not None and left.status in ("received", "processed")
        done = await settled(ledger, flaky_id)
    finally:
        await queue.stop()
    assert (done.status, done.attempts) == ("processed", 2)
    assert failures == [flaky["contract_id"]]
    assert await runs_of(temporal_client, flaky["contract_id"]) == 1
    assert await runs_of(temporal_client, refused["contract_id"]) == 0


async def test_a_message_for_a_contract_whose_approval_waits_is_answered_503_not_404(
    queued_settings: Settings, temporal_client: Client
) -> None:
    """A milestone (or an amendment, a payment) that overtakes its contract's waiting approval
    asks the sender to retry instead of becoming a dead letter; once the workflow runs, the
    retry is processed. A contract nobody approved is still ``404``."""
    ledger = get_ledger(queued_settings.ledger_url)
    data = approval()
    eid, body = approved(data)
    answer = queued_answer(body)
    assert answer is not None
    context = ApiContext(queued_settings, temporal_client)
    assert await dead_letters.enqueue(context, InboundSource.CLM, body, answer) is not None
    milestone = {
        "contract_id": data["contract_id"],
        "milestone_id": "M1",
        "completed_on": "2026-10-10",
    }
    early = event("milestone.completed", milestone)
    stray = event("milestone.completed", {**milestone, "contract_id": f"{data['contract_id']}X"})
    # An API whose queue is off, on the same ledger: the approval waits until this test's queue.
    with serve(queued_settings.model_copy(update={"webhook_queue": False})) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            psa = {"content": early, "headers": signed(early, WEBHOOK_SECRET)}
            response = await api.post("/webhooks/psa", **psa)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "contract_starting"
            assert response.headers["Retry-After"] == "5"
            left = ledger.get_inbound_event("psa", json.loads(early)["id"])
            assert left is not None and left.status == "received"

            queue = EventQueue(context, PROCESSORS, QUEUED_TYPES, poll=timedelta(milliseconds=50))
            queue.start()
            try:
                await settled(ledger, eid)
            finally:
                await queue.stop()
            retried = await api.post("/webhooks/psa", **psa)
            assert retried.status_code == 202, retried.text
            refused = await api.post(
                "/webhooks/psa", content=stray, headers=signed(stray, WEBHOOK_SECRET)
            )
            assert refused.status_code == 404


async def test_concurrent_deliveries_are_recorded_together_and_each_event_once(
    queued_settings: Settings, temporal_client: Client
) -> None:
    """Deliveries that arrive while one is being written are committed together; of several
    deliveries of one event, exactly one records it."""
    context = ApiContext(queued_settings, temporal_client)
    ledger = await context.ledger()
    bodies = [approved(approval())[1] for _ in range(20)]
    deliveries = [body for body in bodies for _ in range(3)]

    async def deliver(body: bytes) -> dead_letters.Answer | None:
        answer = queued_answer(body)
        assert answer is not None
        return await dead_letters.enqueue(context, InboundSource.CLM, body, answer)

    answers = await asyncio.gather(*(deliver(body) for body in deliveries))

    assert all(answer is not None for answer in answers)
    first = [a for a in answers if a is not None and not a.body["duplicate"]]
    assert sorted(a.body["contract_id"] for a in first) == sorted(
        json.loads(body)["data"]["contract_id"] for body in bodies
    )
    assert ledger.count_waiting_events() == {"clm": 20}


async def test_a_queued_event_id_reused_for_another_body_is_a_conflict(
    queued_api: str, queued_settings: Settings
) -> None:
    data = approval()
    eid, body = approved(data)
    other = json.dumps(
        {"id": eid, "type": "contract.approved", "data": {**data, "title": "Another SOW"}}
    ).encode()
    async with httpx.AsyncClient(base_url=queued_api, timeout=30) as api:
        assert (await post(api, body)).status_code == 202
        refused = await post(api, other)
        again = await post(api, body)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "event_id_conflict"
    assert again.status_code == 202 and again.json()["duplicate"] is True
    ledger = get_ledger(queued_settings.ledger_url)
    dead = ledger.get_inbound_event("clm", refused.json()["conflicting_event_id"])
    assert dead is not None and dead.status == "dead_letter" and dead.body == other.decode()
