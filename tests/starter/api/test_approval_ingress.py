"""CLM approvals, the event whose processing is idempotent by itself: a new one is processed
first (the workflow started) and recorded after, with its answer, in one ledger transaction.

Every case ``starter.ops.dead_letters`` documents still holds: duplicates answered as the first
time, concurrent first deliveries (one answers ``duplicate: false``), a crash between the
start and the record, dead letters, and transient failures left for the sender's retry. No
worker runs: the workflows are started, not run.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ContractApproved
from domain.names import contract_workflow_id
from ledger import InboundSource, Ledger, get_ledger
from starter.api.context import ApiContext
from starter.api.contracts import start_contract
from starter.api.errors import ApiError
from starter.api.webhooks import IDEMPOTENT_TYPES, process_clm
from starter.ops import dead_letters
from starter.ops.dead_letters import Answer
from tests.starter.helpers import approval, signed
from tests.support import WEBHOOK_SECRET, serve

CLM = "/webhooks/clm"
APPROVALS = IDEMPOTENT_TYPES[InboundSource.CLM]


def approved(data: dict[str, Any], event_id: str | None = None) -> tuple[str, bytes]:
    """An approval's event id and its webhook body."""
    event_id = event_id or f"evt_{uuid.uuid4().hex[:12]}"
    return event_id, json.dumps(
        {"id": event_id, "type": "contract.approved", "data": data}
    ).encode()


async def post(api: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await api.post(CLM, content=body, headers=signed(body, WEBHOOK_SECRET))


@pytest.fixture(scope="module")
def inbound(api_settings: Settings) -> Ledger:
    """The ledger of the API under test, read directly."""
    return get_ledger(api_settings.ledger_url)


async def runs_of(client: Client, contract_id: str) -> int:
    query = f"WorkflowId = '{contract_workflow_id(contract_id)}'"
    return len([wf async for wf in client.list_workflows(query)])


async def test_a_new_approval_is_recorded_once_processed_with_the_answer_duplicates_get(
    api: httpx.AsyncClient, temporal_client: Client, inbound: Ledger
) -> None:
    data = approval()
    eid, body = approved(data)

    first = await post(api, body)
    assert first.status_code == 202, first.text
    answer = first.json()
    assert answer["duplicate"] is False and answer["run_id"]
    assert answer["workflow_id"] == contract_workflow_id(data["contract_id"])
    stored = inbound.get_inbound_event("clm", eid)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.claimed_until) == ("processed", 1, None)
    assert (stored.response_status, stored.response_body) == (202, answer)
    assert stored.contract_id == data["contract_id"] and stored.processed_at is not None

    again = await post(api, body)
    assert again.status_code == 202 and again.json() == {**answer, "duplicate": True}
    stored_again = inbound.get_inbound_event("clm", eid)
    assert stored_again is not None and stored_again.attempts == 1
    assert await runs_of(temporal_client, data["contract_id"]) == 1


async def test_concurrent_first_deliveries_start_one_workflow_and_one_answers_first(
    api: httpx.AsyncClient, temporal_client: Client, inbound: Ledger
) -> None:
    data = approval()
    eid, body = approved(data)

    responses = await asyncio.gather(*(post(api, body) for _ in range(6)))

    assert [r.status_code for r in responses] == [202] * 6
    answers = [r.json() for r in responses]
    assert sorted(a["duplicate"] for a in answers) == [False] + [True] * 5
    assert len({a["run_id"] for a in answers}) == 1
    assert await runs_of(temporal_client, data["contract_id"]) == 1
    stored = inbound.get_inbound_event("clm", eid)
    assert stored is not None and stored.status == "processed"
    assert stored.response_body is not None
    assert stored.response_body["run_id"] == answers[0]["run_id"]
    # A later delivery gets the answer recorded, as a duplicate.
    late = await post(api, body)
    assert late.json() == {**stored.response_body, "duplicate": True}


async def test_a_workflow_started_before_its_event_was_recorded_answers_a_duplicate_of_its_run(
    api: httpx.AsyncClient, api_settings: Settings, temporal_client: Client, inbound: Ledger
) -> None:
    """As after a crash between the start and the record: nothing recorded, the workflow
    running; the sender's retry is answered with that run."""
    data = approval()
    eid, body = approved(data)
    started = await start_contract(
        temporal_client, ContractApproved.model_validate(data), task_queue=api_settings.task_queue
    )
    assert inbound.get_inbound_event("clm", eid) is None

    retried = await post(api, body)

    assert retried.status_code == 202, retried.text
    assert retried.json() == {
        "workflow_id": started.workflow_id,
        "run_id": started.run_id,
        "duplicate": True,
    }
    stored = inbound.get_inbound_event("clm", eid)
    assert stored is not None and (stored.status, stored.attempts) == ("processed", 1)
    assert await runs_of(temporal_client, data["contract_id"]) == 1


async def test_an_invalid_approval_is_a_dead_letter_until_a_valid_delivery_of_it(
    api: httpx.AsyncClient, temporal_client: Client, inbound: Ledger
) -> None:
    data = approval()
    eid, bad = approved({**data, "currency": "dollars"})

    refused = await post(api, bad)

    assert refused.status_code == 422, refused.text
    answer = refused.json()
    assert (answer["event_id"], answer["dead_letter"]) == (eid, True)
    dead = inbound.get_inbound_event("clm", eid)
    assert dead is not None
    assert (dead.status, dead.attempts, dead.contract_id) == ("dead_letter", 1, data["contract_id"])
    assert dead.reason is not None and dead.reason.startswith("validation_error")
    assert dead.body == bad.decode()
    assert await runs_of(temporal_client, data["contract_id"]) == 0
    # Delivered again as it was: still a dead letter, a second attempt.
    assert (await post(api, bad)).status_code == 422
    again = inbound.get_inbound_event("clm", eid)
    assert again is not None and (again.status, again.attempts) == ("dead_letter", 2)

    # The sender corrects it under the same event id: processed, as the third attempt.
    _, good = approved(data, eid)
    fixed = await post(api, good)
    assert fixed.status_code == 202 and fixed.json()["duplicate"] is False
    done = inbound.get_inbound_event("clm", eid)
    assert done is not None and (done.status, done.attempts) == ("processed", 3)
    assert await runs_of(temporal_client, data["contract_id"]) == 1


async def test_an_approval_that_temporal_could_not_take_is_left_for_the_retry(
    api: httpx.AsyncClient, api_settings: Settings, temporal_client: Client, inbound: Ledger
) -> None:
    data = approval()
    eid, body = approved(data)
    down = api_settings.model_copy(update={"temporal_address": "127.0.0.1:9"})
    with serve(down) as down_url:
        async with httpx.AsyncClient(base_url=down_url, timeout=30) as unreachable:
            response = await post(unreachable, body)
    assert (
        response.status_code == 503 and response.json()["error"]["code"] == "temporal_unavailable"
    )
    left = inbound.get_inbound_event("clm", eid)
    assert left is not None
    assert (left.status, left.claimed_until, left.attempts) == ("received", None, 1)

    retried = await post(api, body)

    assert retried.status_code == 202 and retried.json()["duplicate"] is False
    stored = inbound.get_inbound_event("clm", eid)
    assert stored is not None and (stored.status, stored.attempts) == ("processed", 2)
    assert stored.response_body == retried.json()
    assert await runs_of(temporal_client, data["contract_id"]) == 1


async def deliver_held(
    context: ApiContext, body: bytes
) -> tuple[asyncio.Task[Answer], asyncio.Event]:
    """Deliver ``body`` in a task that pauses once its workflow is started, before recording
    the event; returns the task and the event that lets it go on."""
    gate, processed = asyncio.Event(), asyncio.Event()

    async def held(context: ApiContext, body: bytes) -> Answer:
        answer = await process_clm(context, body)
        processed.set()
        await gate.wait()
        return answer

    task = asyncio.create_task(
        dead_letters.deliver(context, InboundSource.CLM, body, held, idempotent_types=APPROVALS)
    )
    await processed.wait()
    return task, gate


async def test_the_delivery_that_started_the_workflow_answers_first_whoever_records_first(
    api_settings: Settings, temporal_client: Client, inbound: Ledger
) -> None:
    """The start that succeeded is held before its record while a second delivery, refused
    by Temporal, records the event: the first still answers ``duplicate: false``."""
    context = ApiContext(api_settings, temporal_client)
    data = approval()
    eid, body = approved(data)
    first, gate = await deliver_held(context, body)

    second = await dead_letters.deliver(
        context, InboundSource.CLM, body, process_clm, idempotent_types=APPROVALS
    )
    gate.set()
    winner = await first

    assert winner.body["duplicate"] is False and second.body["duplicate"] is True
    assert winner.body["run_id"] == second.body["run_id"]
    stored = inbound.get_inbound_event("clm", eid)
    assert stored is not None and (stored.status, stored.attempts) == ("processed", 1)
    assert await runs_of(temporal_client, data["contract_id"]) == 1


async def test_a_start_settles_an_event_that_another_delivery_left_for_a_retry(
    api_settings: Settings, temporal_client: Client, inbound: Ledger
) -> None:
    """The start that succeeded is held before its record while a second delivery fails
    transiently and records the event ``received``: the first settles it with its answer."""
    context = ApiContext(api_settings, temporal_client)
    unreachable = ApiContext(api_settings.model_copy(update={"temporal_address": "127.0.0.1:9"}))
    data = approval()
    eid, body = approved(data)
    first, gate = await deliver_held(context, body)

    with pytest.raises(ApiError) as failed:
        await dead_letters.deliver(
            unreachable, InboundSource.CLM, body, process_clm, idempotent_types=APPROVALS
        )
    assert failed.value.status == 503
    left = inbound.get_inbound_event("clm", eid)
    assert left is not None and left.status == "received"
    gate.set()
    winner = await first

    assert winner.body["duplicate"] is False
    stored = inbound.get_inbound_event("clm", eid)
    assert stored is not None and stored.status == "processed"
    assert stored.response_body == winner.body
