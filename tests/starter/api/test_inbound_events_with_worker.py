"""Inbound events through the real API with a worker running: a payment and a milestone
delivered several times at once take effect once, the later deliveries answered as
duplicates; a milestone of a contract that starts later is a dead letter until replayed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from c2c.settings import Settings
from c2c.signing import sign
from domain.models import ClosePeriod
from domain.names import (
    SIGNAL_MILESTONE_COMPLETED,
    SIGNAL_PAYMENT_RECEIVED,
    SIGNATURE_HEADER,
    contract_workflow_id,
)
from ledger import Ledger
from starter.api.contracts import close_period_for
from tests.support import WEBHOOK_SECRET, new_contract_id, serve
from tests.workflows.billing_helpers import start_active, wait_invoices
from tests.workflows.helpers import add_time, items, wait_for

pytestmark = pytest.mark.usefixtures("worker")

#: How many times each event is delivered at once.
DELIVERIES = 5

FIXED_FEE: dict[str, Any] = {
    "billing_model": "fixed_fee",
    "milestones": [
        {"milestone_id": "M1", "name": "Discovery", "amount": "4000.00"},
        {"milestone_id": "M2", "name": "Build", "amount": "6000.00"},
    ],
    "not_to_exceed": None,
    "start_date": "2026-10-01",
    "end_date": "2026-11-15",
}


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    with serve(settings) as url:
        yield url


@pytest_asyncio.fixture
async def api(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        yield client


def webhook(kind: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": kind, "data": data}).encode()


async def deliver(api: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    headers = {SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET), "Content-Type": "application/json"}
    return await api.post(path, content=body, headers=headers)


async def deliver_at_once(api: httpx.AsyncClient, path: str, body: bytes) -> list[dict[str, Any]]:
    """Deliver ``body`` ``DELIVERIES`` times concurrently; every answer must be ``202``."""
    answers = await asyncio.gather(*(deliver(api, path, body) for _ in range(DELIVERIES)))
    assert [a.status_code for a in answers] == [202] * DELIVERIES, [a.text for a in answers]
    return [a.json() for a in answers]


async def signals(client: Client, cid: str, name: str) -> int:
    """How many ``name`` signals reached the contract's workflow."""
    history = await client.get_workflow_handle(contract_workflow_id(cid)).fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == name
    )


def assert_once(answers: list[dict[str, Any]], cid: str) -> None:
    assert sorted(a["duplicate"] for a in answers) == [False] + [True] * (DELIVERIES - 1)
    assert {a["workflow_id"] for a in answers} == {contract_workflow_id(cid)}


async def test_a_payment_delivered_several_times_at_once_is_applied_once(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    api: httpx.AsyncClient,
    ledger: Ledger,
) -> None:
    cid, status = await start_active(temporal_client, settings)
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-05", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    invoice = (await wait_invoices(temporal_client, cid, 1)).invoices[0]
    body = webhook(
        "payment.succeeded",
        {
            "payment_id": f"PAY-{cid}",
            "invoice_id": invoice.invoice_id,
            "amount": str(invoice.total),
            "currency": "USD",
            "received_on": "2026-11-20",
        },
    )

    answers = await deliver_at_once(api, "/webhooks/payments", body)

    assert_once(answers, cid)
    status = await wait_for(
        temporal_client, cid, lambda s: s.balance_due == Decimal(0), what="the invoice paid"
    )
    assert [i.status for i in status.invoices] == ["paid"]
    assert await signals(temporal_client, cid, SIGNAL_PAYMENT_RECEIVED) == 1
    assert not any("already applied" in h.event for h in status.history)
    assert len(await items(sandbox, "/erp/v1/payments", invoice_id=invoice.invoice_id)) == 1
    # Delivered again later: the same answer, still applied once.
    late = await deliver(api, "/webhooks/payments", body)
    assert late.status_code == 202 and late.json()["duplicate"] is True
    assert await signals(temporal_client, cid, SIGNAL_PAYMENT_RECEIVED) == 1
    stored = ledger.get_inbound_event("payments", json.loads(body)["id"])
    assert stored is not None
    assert (stored.status, stored.contract_id, stored.attempts) == ("processed", cid, 1)


async def test_a_milestone_delivered_several_times_at_once_completes_once(
    temporal_client: Client, settings: Settings, api: httpx.AsyncClient
) -> None:
    cid, status = await start_active(temporal_client, settings, **FIXED_FEE)
    body = webhook(
        "milestone.completed",
        {
            "contract_id": cid,
            "psa_project_id": status.refs["psa_project_id"],
            "milestone_id": "M1",
            "completed_on": "2026-10-20",
        },
    )

    answers = await deliver_at_once(api, "/webhooks/psa", body)

    assert_once(answers, cid)
    status = await wait_for(
        temporal_client,
        cid,
        lambda s: any(m.milestone_id == "M1" and m.status == "completed" for m in s.milestones),
        what="M1 completed",
    )
    assert await signals(temporal_client, cid, SIGNAL_MILESTONE_COMPLETED) == 1
    completions = [h.event for h in status.history if h.event.startswith("milestone M1")]
    assert completions == ["milestone M1 (Discovery) completed on 2026-10-20"]


async def test_a_milestone_before_its_contract_is_a_dead_letter_replayed_once_it_starts(
    temporal_client: Client, settings: Settings, api: httpx.AsyncClient
) -> None:
    cid = new_contract_id()
    body = webhook(
        "milestone.completed",
        {"contract_id": cid, "milestone_id": "M1", "completed_on": "2026-10-20"},
    )
    event_id = json.loads(body)["id"]
    refused = await deliver(api, "/webhooks/psa", body)
    assert refused.status_code == 404, refused.text
    [dead] = (await api.get("/api/dead-letters", params={"contract_id": cid})).json()["items"]
    assert (dead["event_id"], dead["reason"]) == (event_id, "contract_not_found: no such contract")

    await start_active(temporal_client, settings, contract_id=cid, **FIXED_FEE)
    replayed = await api.post(f"/api/dead-letters/psa/{event_id}/replay")

    assert replayed.status_code == 200, replayed.text
    result = replayed.json()
    assert (result["event"]["status"], result["event"]["attempts"]) == ("replayed", 2)
    assert result["response_status"] == 202
    assert result["response"]["workflow_id"] == contract_workflow_id(cid)
    status = await wait_for(
        temporal_client,
        cid,
        lambda s: any(m.milestone_id == "M1" and m.status == "completed" for m in s.milestones),
        what="M1 completed by the replay",
    )
    assert "milestone M1 (Discovery) completed on 2026-10-20" in [h.event for h in status.history]
    assert (await api.get("/api/dead-letters", params={"contract_id": cid})).json()["items"] == []
    listed = await api.get("/api/dead-letters", params={"contract_id": cid, "status": "replayed"})
    assert [i["event_id"] for i in listed.json()["items"]] == [event_id]
    # The sender's late retry is a duplicate of the replay, and a replay is done once.
    again = await deliver(api, "/webhooks/psa", body)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert (await api.post(f"/api/dead-letters/psa/{event_id}/replay")).status_code == 409
    assert await signals(temporal_client, cid, SIGNAL_MILESTONE_COMPLETED) == 1

    # An amendment the contract rejects is answered (409): a processed event, not a dead letter.
    amended = webhook(
        "contract.amended",
        {
            "contract_id": cid,
            "amendment": {
                "amendment_id": "A-end",
                "effective_date": "2026-11-01",
                "end_date": "2026-09-01",
                "reason": "undo",
            },
        },
    )
    rejected = await deliver(api, "/webhooks/clm", amended)
    assert rejected.status_code == 409 and rejected.json()["error"]["code"] == "amendment_rejected"
    repeated = await deliver(api, "/webhooks/clm", amended)
    assert repeated.status_code == 409 and repeated.json()["duplicate"] is True
    assert repeated.json()["error"] == rejected.json()["error"]
    processed = await api.get(
        "/api/dead-letters", params={"contract_id": cid, "status": "processed"}
    )
    assert [i["type"] for i in processed.json()["items"]] == ["contract.amended"]
