"""With ``C2C_ENCRYPTION_KEY`` set, the Temporal server holds only ciphertext.

A contract runs from approval to ``closed`` on the session's dev server through a client and a
worker that encrypt (as ``connect`` builds them); then its history is read raw, by a client
without the key, as anyone with access to the server or its database could.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from google.protobuf.message import Message
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History, MarkerRecordedEventAttributes
from temporalio.client import Client
from temporalio.worker import Replayer

from bench.measure import LOCAL_ACTIVITY_MARKER
from c2c.codec import ENCODING, KEY_ID_METADATA, Keyring
from c2c.settings import Settings
from c2c.temporal import connect
from domain.models import ClosePeriod
from starter.api.contracts import close_period_for, contract_result, start_contract
from tests.support import approval_payload
from tests.workflows.billing_helpers import pay, start_active, wait_invoices
from tests.workflows.helpers import add_time, approval, wait_stage
from worker import contract_worker
from workflows.contract_to_cash import ContractToCash

TAX_ID = "US-94-7788123"
TITLE = "Project Zephyr: confidential carve-out"
CUSTOMER = "Acme Corp"


@pytest.fixture(scope="module")
def encrypted_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "encryption_key": SecretStr(Keyring.new_entry("test-k1")),
            "task_queue": f"{settings.task_queue}-encrypted",
        }
    )


@pytest_asyncio.fixture(scope="module")
async def encrypted_client(encrypted_settings: Settings) -> Client:
    return await connect(encrypted_settings)


@pytest_asyncio.fixture(scope="module")
async def encrypted_worker(
    encrypted_client: Client, encrypted_settings: Settings
) -> AsyncIterator[None]:
    async with contract_worker(encrypted_client, encrypted_settings):
        yield


#: The SDK's own bookkeeping in marker events, which no codec sees: a patch's id, and a local
#: activity's sequence number, type and times. The activity's result beside it is encoded.
SDK_MARKER_DATA = {("core_patch", "patch-data"), (LOCAL_ACTIVITY_MARKER, "data")}


#: All that bookkeeping holds: no business content.
SDK_MARKER_FIELDS = {
    "id",
    "deprecated",
    "seq",
    "attempt",
    "activity_id",
    "activity_type",
    "complete_time",
    "backoff",
    "original_schedule_time",
    "activation_index",
}


def sdk_marker_data(history: History) -> list[Payload]:
    return [
        payload
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        for name, details in event.marker_recorded_event_attributes.details.items()
        if (event.marker_recorded_event_attributes.marker_name, name) in SDK_MARKER_DATA
        for payload in details.payloads
    ]


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every ``Payload`` inside a protobuf message (maps and lists included), except search
    attributes (the server indexes those, so they are plaintext by design) and the SDK's
    bookkeeping in markers (``SDK_MARKER_DATA``)."""
    if isinstance(message, Payload):
        yield message
        return
    if isinstance(message, MarkerRecordedEventAttributes):
        for name, details in message.details.items():
            if (message.marker_name, name) not in SDK_MARKER_DATA:
                yield from details.payloads
        return
    for field, value in message.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        entries: list[Message]
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            entries = list(value.values())
        elif isinstance(value, Message):
            entries = [value]
        else:
            entries = list(value)
        for entry in entries:
            yield from payloads_in(entry)


@pytest.mark.usefixtures("encrypted_worker")
async def test_the_server_stores_only_ciphertext_of_a_contract_run_to_closed(
    encrypted_client: Client,
    encrypted_settings: Settings,
    temporal_client: Client,
    sandbox: httpx.AsyncClient,
) -> None:
    customer = {**approval_payload()["customer"], "tax_id": TAX_ID}
    cid, status = await start_active(
        encrypted_client, encrypted_settings, title=TITLE, customer=customer
    )
    await add_time(sandbox, status.refs["psa_project_id"], "Senior Consultant", "2026-10-05", "8")
    await close_period_for(encrypted_client, cid, ClosePeriod(period="2026-10"))
    [invoice] = (await wait_invoices(encrypted_client, cid, 1)).invoices
    await pay(encrypted_client, cid, f"pay-{cid}", invoice.total, invoice_id=invoice.invoice_id)
    summary = await contract_result(encrypted_client, cid)
    assert summary.status.stage == "closed"

    # The raw history, fetched without the codec, as the server stores it.
    raw = await temporal_client.get_workflow_handle(f"contract-{cid}").fetch_history()
    history = History(events=raw.events)
    payloads = list(payloads_in(history))
    assert len(payloads) > 20, "the run should have carried many payloads"
    for payload in payloads:
        assert payload.metadata["encoding"] == ENCODING, payload
        assert payload.metadata[KEY_ID_METADATA] == b"test-k1"
        assert cid.encode() not in payload.SerializeToString()
    bookkeeping = sdk_marker_data(history)
    assert bookkeeping, "the ledger writes are local activities, recorded as markers"
    for payload in bookkeeping:
        assert payload.metadata["encoding"] == b"json/plain"
        assert set(json.loads(payload.data)) <= SDK_MARKER_FIELDS, payload

    # Nothing that identifies the customer or the deal is anywhere in the stored bytes.
    stored = history.SerializeToString()
    for secret in (CUSTOMER, TAX_ID, TITLE, "Senior Consultant", "cfo@c2c.example"):
        assert secret.encode() not in stored, f"{secret!r} is stored in plaintext"
    assert encrypted_settings.webhook_secret is not None
    assert encrypted_settings.webhook_secret.get_secret_value().encode() not in stored
    # Only the identifiers the server indexes (the workflow id, search attributes) show the
    # contract id; its business content does not.
    assert cid.encode() in stored

    # The client with the key reads the same history, and it replays on today's code.
    decoded = await encrypted_client.get_workflow_handle(f"contract-{cid}").fetch_history()
    await Replayer(
        workflows=[ContractToCash], data_converter=encrypted_client.data_converter
    ).replay_workflow(decoded)


async def test_a_key_rotated_mid_contract_keeps_the_contract_running(
    settings: Settings, temporal_client: Client, sandbox: httpx.AsyncClient
) -> None:
    old, new = Keyring.new_entry("rot-old"), Keyring.new_entry("rot-new")
    queue = f"{settings.task_queue}-rotation"
    before = settings.model_copy(update={"encryption_key": SecretStr(old), "task_queue": queue})
    after = before.model_copy(update={"encryption_key": SecretStr(f"{new},{old}")})

    old_client = await connect(before)
    async with contract_worker(old_client, before):
        cid, status = await start_active(old_client, before)

    # A new worker, with the new key first, replays the history sealed with the old one.
    new_client = await connect(after)
    async with contract_worker(new_client, after):
        await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-06", "2")
        await close_period_for(new_client, cid, ClosePeriod(period="2026-10"))
        [invoice] = (await wait_invoices(new_client, cid, 1)).invoices
        await pay(new_client, cid, f"pay-{cid}", invoice.total, invoice_id=invoice.invoice_id)
        assert (await contract_result(new_client, cid)).status.stage == "closed"

    raw = await temporal_client.get_workflow_handle(f"contract-{cid}").fetch_history()
    key_ids = [p.metadata[KEY_ID_METADATA] for p in payloads_in(History(events=raw.events))]
    # The approval was sealed with the old key; the result, after rotation, with the new one.
    assert key_ids[0] == b"rot-old"
    assert key_ids[-1] == b"rot-new"
    decoded = await new_client.get_workflow_handle(f"contract-{cid}").fetch_history()
    await Replayer(
        workflows=[ContractToCash], data_converter=new_client.data_converter
    ).replay_workflow(decoded)


@pytest.mark.usefixtures("encrypted_worker")
async def test_failure_messages_are_sealed_and_still_reach_the_exception_queue(
    encrypted_client: Client, encrypted_settings: Settings, temporal_client: Client
) -> None:
    entity = f"Z{uuid.uuid4().hex[:6].upper()}"
    event = approval(legal_entity=entity)
    await start_contract(encrypted_client, event, task_queue=encrypted_settings.task_queue)
    held = await wait_stage(encrypted_client, event.contract_id, "on_hold")
    # The workflow read the activity's error through the codec: the operator sees it whole.
    [exception] = held.open_exceptions
    assert exception.code == "unknown_legal_entity"
    assert entity in exception.message

    raw = await temporal_client.get_workflow_handle(f"contract-{event.contract_id}").fetch_history()
    failures = [
        e.activity_task_failed_event_attributes.failure
        for e in raw.events
        if e.HasField("activity_task_failed_event_attributes")
    ]
    assert failures
    for failure in failures:
        # The server sees a placeholder; the message and stack trace are in the sealed payload.
        assert failure.message == "Encoded failure"
        assert not failure.stack_trace
        assert failure.encoded_attributes.metadata["encoding"] == ENCODING
        assert exception.message.encode() not in failure.SerializeToString()
