"""A contract's history reads as a business story, and operators can find contracts by stage.

Every scheduled step and every timer carries a summary; the start carries the contract's id,
customer and value; the current details say the stage and what the contract waits for; and
the search attributes answer a query such as ``C2CStage = "on_hold" AND LegalEntity = "X"``.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from c2c.settings import Settings
from domain.models import ClosePeriod
from domain.names import SA_CONTRACT_VALUE, SA_CUSTOMER_ID, SA_LEGAL_ENTITY
from starter.api.contracts import close_period_for, contract_handle, contract_result, start_contract
from tests.workflows.billing_helpers import pay, wait_invoices
from tests.workflows.helpers import add_time, approval, wait_stage

pytestmark = pytest.mark.usefixtures("worker")

SUMMARISED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "step",
    EventType.EVENT_TYPE_TIMER_STARTED: "timer",
}


async def wait_details(client: Client, cid: str, *parts: str) -> str:
    """Poll the contract's current details (as the Temporal UI reads them) until they show
    every one of ``parts``."""
    details = ""
    for _ in range(100):
        metadata = await contract_handle(client, cid).query(
            "__temporal_workflow_metadata", result_type=WorkflowMetadata
        )
        details = metadata.current_details
        if all(part in details for part in parts):
            return details
        await asyncio.sleep(0.1)
    raise AssertionError(f"current details never showed {parts}: {details!r}")


async def test_every_step_and_timer_is_summarised_and_the_start_says_what_the_contract_is(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    event = approval(title="Data platform build-out", not_to_exceed="50000.00")
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    active = await wait_stage(temporal_client, cid, "active")

    description = await contract_handle(temporal_client, cid).describe()
    summary = await description.static_summary()
    assert summary is not None
    assert cid in summary and "Acme Corp" in summary and "50000.00 USD" in summary
    details = await description.static_details()
    assert details is not None and "US01" in details and "time and materials" in details
    attributes = description.typed_search_attributes
    assert attributes.get(SA_CUSTOMER_ID) == "ACME-US"
    assert attributes.get(SA_LEGAL_ENTITY) == "US01"
    assert attributes.get(SA_CONTRACT_VALUE) == 50000.0
    await wait_details(
        temporal_client,
        cid,
        "**Stage:** active",
        "**Waiting for:** close of the final period 2026-10",
    )

    await add_time(sandbox, active.refs["psa_project_id"], "Senior Consultant", "2026-10-06", "5")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    [invoice] = (await wait_invoices(temporal_client, cid, 1)).invoices
    # Unpaid: the contract sets a timer to the invoice's due date.
    await wait_details(temporal_client, cid, "**Waiting for:** payment of the balance due")
    await pay(temporal_client, cid, "pay-readable-1", invoice.total)
    result = await contract_result(temporal_client, cid)
    assert result.status.stage == "closed"

    history = await contract_handle(temporal_client, cid).fetch_history()
    converter = pydantic_data_converter.payload_converter
    seen = {kind: 0 for kind in SUMMARISED.values()}
    for history_event in history.events:
        kind = SUMMARISED.get(history_event.event_type)
        if kind is None:
            continue
        seen[kind] += 1
        assert history_event.user_metadata.HasField("summary"), (kind, history_event.event_id)
        text = converter.from_payload(history_event.user_metadata.summary, str)
        assert text.strip(), (kind, history_event.event_id)
    assert seen["step"] >= 8 and seen["timer"] >= 1, seen


async def test_operators_find_held_contracts_by_stage_and_legal_entity(
    temporal_client: Client, settings: Settings
) -> None:
    # An entity unknown to the ERP: validation holds the contract for the legal queue.
    entity = f"Q{uuid.uuid4().hex[:6].upper()}"
    held = [approval(legal_entity=entity) for _ in range(2)]
    running = approval()
    for event in (*held, running):
        await start_contract(temporal_client, event, task_queue=settings.task_queue)
    for event in held:
        await wait_stage(temporal_client, event.contract_id, "on_hold")
    await wait_stage(temporal_client, running.contract_id, "active")

    query = f'C2CStage = "on_hold" AND LegalEntity = "{entity}"'
    expected = {f"contract-{e.contract_id}" for e in held}
    found: set[str] = set()
    # Visibility is eventually consistent: the last upsert shows up shortly after.
    for _ in range(100):
        found = {wf.id async for wf in temporal_client.list_workflows(query)}
        if found == expected:
            break
        await asyncio.sleep(0.1)
    assert found == expected
