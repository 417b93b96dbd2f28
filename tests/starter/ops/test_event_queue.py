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
from temporalio.worker import Worker

from c2c.ports import free_port
from c2c.settings import Settings
from domain.names import contract_workflow_id
from ledger import InboundEvent, InboundSource, Ledger, get_ledger
from ledger.models import utc_now
from starter.api.context import ApiContext
from starter.api.contracts import get_status
from starter.api.errors import ApiError
from starter.api.webhooks import PROCESSORS, QUEUED_TYPES, queued_answer
from starter.ops import dead_letters
from starter.ops.event_queue import EventQueue
from starter.stack.components import UpOptions, temporal_argv
from tests.starter.helpers import approval, event, signed
from tests.support import WEBHOOK_SECRET, serve

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


async def test_every_valid_event_is_queued_and_an_invalid_one_is_not() -> None:
    amendment = {"amendment_id": "A-1", "effective_date": "2026-12-01", "reason": "rates"}
    amended = {"type": "contract.amended", "data": {"contract_id": "C-1", "amendment": amendment}}
    answer = queued_answer(InboundSource.CLM, json.dumps(amended).encode())
    assert answer is not None and answer.status == 202
    assert answer.body == {
        "contract_id": "C-1",
        "workflow_id": contract_workflow_id("C-1"),
        "run_id": None,
        "duplicate": False,
        "queued": True,
    }
    milestone = {"contract_id": "C-1", "milestone_id": "M1", "completed_on": "2026-10-10"}
    done = {"type": "milestone.completed", "data": milestone}
    assert queued_answer(InboundSource.PSA, json.dumps(done).encode()) is not None
    payment = {
        "payment_id": "P-1",
        "invoice_id": "INV-1",
        "amount": "1.00",
        "currency": "USD",
        "received_on": "2026-11-02",
    }
    paid = queued_answer(
        InboundSource.PAYMENTS,
        json.dumps({"type": "payment.succeeded", "data": payment}).encode(),
    )
    assert paid is not None and paid.contract_id is None and paid.body["workflow_id"] is None
    # Invalid events are processed at once, to be refused (and kept) as without the queue.
    bad = {**amended, "data": {"contract_id": "C-1", "amendment": {}}}
    assert queued_answer(InboundSource.CLM, json.dumps(bad).encode()) is None
    assert queued_answer(InboundSource.CLM, b"not json") is None
    assert queued_answer(InboundSource.PSA, json.dumps(amended).encode()) is None
    no_invoice = {"type": "payment.succeeded", "data": {**payment, "invoice_id": None}}
    assert queued_answer(InboundSource.PAYMENTS, json.dumps(no_invoice).encode()) is None


async def test_a_duplicate_of_a_waiting_approval_is_answered_without_processing_it(
    queued_settings: Settings, temporal_client: Client
) -> None:
    context = ApiContext(queued_settings, temporal_client)
    ledger = await context.ledger()
    data = approval()
    eid, body = approved(data)
    answer = queued_answer(InboundSource.CLM, body)
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
        answer = queued_answer(InboundSource.CLM, body)
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


async def test_a_replica_whose_claim_ran_out_leaves_the_next_claim_as_it_is(
    queued_settings: Settings, temporal_client: Client
) -> None:
    """A replica processing an event past the end of its claim, while another replica has
    claimed it since, fails for now: it puts off only its own claim, not the other's, so no
    third replica takes the event while the second one processes it."""
    context = ApiContext(queued_settings, temporal_client)
    ledger = await context.ledger()
    event_id, body = approved(approval())
    answer = queued_answer(InboundSource.CLM, body)
    assert answer is not None
    assert await dead_letters.enqueue(context, InboundSource.CLM, body, answer) is not None
    now = utc_now()
    [late] = ledger.claim_waiting_events(
        QUEUED_TYPES, claim=timedelta(minutes=1), at=now - timedelta(minutes=2)
    )
    [current] = ledger.claim_waiting_events(QUEUED_TYPES, claim=timedelta(hours=1), at=now)
    assert late.event_id == current.event_id == event_id

    async def unavailable(context: ApiContext, body: bytes) -> dead_letters.Answer:
        raise ApiError(503, "temporal_unavailable", "Temporal did not answer; try again")

    assert await dead_letters.process_waiting(context, ledger, late, unavailable) is None
    stored = ledger.get_inbound_event("clm", event_id)
    assert stored is not None
    assert (stored.status, stored.claimed_until) == ("received", current.claimed_until)
    # The current claimer's own failure puts the event off.
    assert await dead_letters.process_waiting(context, ledger, current, unavailable) is None
    stored = ledger.get_inbound_event("clm", event_id)
    assert stored is not None and stored.claimed_until != current.claimed_until


async def test_a_message_for_a_contract_whose_approval_waits_is_answered_503_not_404(
    queued_settings: Settings, temporal_client: Client
) -> None:
    """A milestone (or an amendment, a payment) that overtakes its contract's waiting approval
    asks the sender to retry instead of becoming a dead letter; once the workflow runs, the
    retry is processed. A contract nobody approved is still ``404``."""
    ledger = get_ledger(queued_settings.ledger_url)
    data = approval()
    eid, body = approved(data)
    answer = queued_answer(InboundSource.CLM, body)
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
        answer = queued_answer(InboundSource.CLM, body)
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


async def test_no_event_is_lost_or_applied_twice_through_a_temporal_outage(
    api_settings: Settings, tmp_path: Path
) -> None:
    """Temporal is down for longer than every sender retries: each approval, milestone and
    payment is answered ``202`` on its first delivery (the retries are duplicates), waits in
    the ledger through failed attempts, and reaches its contract exactly once, in the order
    it arrived, when Temporal is back."""
    options = UpOptions(temporal_port=free_port(), ui_port=free_port(), ui=False)
    settings = api_settings.model_copy(
        update={
            "webhook_queue": True,
            "temporal_address": options.temporal_address,
            "database_url": f"sqlite:///{tmp_path / 'outage-ledger.db'}",
        }
    )
    ledger = get_ledger(settings.ledger_url)
    ledger.create_all()
    data = approval()
    contract_id = data["contract_id"]
    invoice_id = f"INV-{uuid.uuid4().hex[:8]}"
    ledger.record_xref(contract_id, "erp", "invoice", invoice_id)
    events = [
        ("clm", approved(data)),
        (
            "psa",
            with_id(
                "milestone.completed",
                {"contract_id": contract_id, "milestone_id": "M1", "completed_on": "2026-10-10"},
            ),
        ),
        (
            "payments",
            with_id(
                "payment.succeeded",
                {
                    "payment_id": f"PAY-{uuid.uuid4().hex[:8]}",
                    "invoice_id": invoice_id,
                    "amount": "1200.00",
                    "currency": "USD",
                    "received_on": "2026-11-02",
                },
            ),
        ),
    ]
    server: subprocess.Popen[bytes] | None = None
    with serve(settings) as url:
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as api:
                # A gateway's six attempts each, all while Temporal is down.
                for source, (_, body) in events:
                    answers = [await deliver_to(api, source, body) for _ in range(6)]
                    assert [a.status_code for a in answers] == [202] * 6, answers[0].text
                    assert [a.json()["duplicate"] for a in answers] == [False] + [True] * 5
                    assert all(a.json()["queued"] for a in answers)
            # The approval is tried and put off again and again; the rest wait their turn.
            deadline = asyncio.get_running_loop().time() + 60
            while (first := ledger.get_inbound_event("clm", events[0][1][0])) is None or (
                first.attempts < 3
            ):
                assert asyncio.get_running_loop().time() < deadline, first
                await asyncio.sleep(0.2)
            for source, (event_id, _) in events:
                waiting = ledger.get_inbound_event(source, event_id)
                assert waiting is not None and waiting.status == "received", waiting

            (tmp_path / "temporal").mkdir()
            server = subprocess.Popen(
                temporal_argv(options, tmp_path / "temporal"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for source, (event_id, _) in events:
                done = await settled_event(ledger, source, event_id, timeout_s=180)
                assert done.status == "processed", done
            client = await Client.connect(options.temporal_address)
            assert await runs_of(client, contract_id) == 1
            assert await signals_of(client, contract_id) == [
                "milestone_completed",
                "payment_received",
            ]

            # Delivered again now, each is a duplicate and reaches nothing.
            async with httpx.AsyncClient(base_url=url, timeout=30) as api:
                for source, (_, body) in events:
                    again = await deliver_to(api, source, body)
                    assert again.status_code == 202 and again.json()["duplicate"] is True
            assert await signals_of(client, contract_id) == [
                "milestone_completed",
                "payment_received",
            ]
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)


def with_id(kind: str, data: dict[str, Any]) -> tuple[str, bytes]:
    event_id = f"evt_{uuid.uuid4().hex[:12]}"
    return event_id, json.dumps({"id": event_id, "type": kind, "data": data}).encode()


async def deliver_to(api: httpx.AsyncClient, source: str, body: bytes) -> httpx.Response:
    return await api.post(f"/webhooks/{source}", content=body, headers=signed(body, WEBHOOK_SECRET))


async def settled_event(
    ledger: Ledger, source: str, event_id: str, timeout_s: float = 60
) -> InboundEvent:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        stored = ledger.get_inbound_event(source, event_id)
        if stored is not None and stored.status in ("processed", "dead_letter"):
            return stored
        assert asyncio.get_running_loop().time() < deadline, f"{event_id} is {stored}"
        await asyncio.sleep(0.2)


async def signals_of(client: Client, contract_id: str) -> list[str]:
    handle = client.get_workflow_handle(contract_workflow_id(contract_id))
    return [
        event.workflow_execution_signaled_event_attributes.signal_name
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]


async def test_a_queued_amendment_is_applied_once_and_its_result_kept(
    worker: Worker, settings: Settings, temporal_client: Client
) -> None:
    """An amendment is answered ``202`` once recorded; the queue applies it when its turn
    comes (after its contract's approval), and keeps the result (applied, or rejected with
    the reason) as the answer later deliveries get."""
    queued = settings.model_copy(update={"webhook_queue": True})
    ledger = get_ledger(queued.ledger_url)
    data = approval()
    contract_id = data["contract_id"]
    approval_id, approval_body = approved(data)

    def amended(amendment_id: str, effective_date: str) -> tuple[str, bytes]:
        amendment = {
            "amendment_id": amendment_id,
            "effective_date": effective_date,
            "rate_card": [{"role": "Analyst", "hourly_rate": "130.00"}],
            "reason": "rate review",
        }
        return with_id("contract.amended", {"contract_id": contract_id, "amendment": amendment})

    applied_id, applied_body = amended("A-1", "2026-10-15")
    rejected_id, rejected_body = amended("A-2", "2026-09-01")  # before the contract starts
    with serve(queued) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            # Sent back to back: each waits for the one before it of its contract.
            for body in (approval_body, applied_body, rejected_body):
                response = await deliver_to(api, "clm", body)
                assert response.status_code == 202, response.text
                assert response.json()["queued"] is True
            done = [
                await settled_event(ledger, "clm", event_id, timeout_s=120)
                for event_id in (approval_id, applied_id, rejected_id)
            ]
            again = await deliver_to(api, "clm", applied_body)
    assert [e.status for e in done] == ["processed"] * 3
    assert done[1].response_status == 200 and done[1].response_body is not None
    assert done[1].response_body["status"] == "applied"
    assert done[2].response_status == 409 and done[2].response_body is not None
    assert done[2].response_body["error"]["code"] == "amendment_rejected"
    assert again.status_code == 200 and again.json()["duplicate"] is True
    status = await get_status(temporal_client, contract_id)
    assert [(a.amendment_id, a.status) for a in status.amendments] == [
        ("A-1", "applied"),
        ("A-2", "rejected"),
    ]
