"""Outbound events through the real API with a worker running: a subscriber on loopback
receives ``invoice.issued`` and ``invoice.paid`` for a real contract, signed, each event id
accepted once though it answered 503 twice first; a 410 or 400 fails a delivery at once; a
replay delivers again; bad subscription input is 422 naming the field."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from c2c.settings import Settings
from c2c.signing import sign, verify
from domain.models import ClosePeriod
from domain.names import SIGNATURE_HEADER
from starter.api.contracts import close_period_for
from starter.ops.outbound import EVENT_ID_HEADER, EVENT_TYPE_HEADER
from tests.subscriber import serve_subscriber, subscribe, until
from tests.support import WEBHOOK_SECRET, serve
from tests.workflows.billing_helpers import start_active, wait_invoices
from tests.workflows.helpers import add_time, wait_for

pytestmark = pytest.mark.usefixtures("worker")

#: How many times the subscriber answers 503 to each event before it takes it.
REFUSALS = 2


@dataclass
class Subscriber:
    """A subscriber's endpoint: ``/flaky`` answers 503 to each event's first deliveries,
    ``/gone`` 410 and ``/bad`` 400; every delivery is kept, and each event id taken once."""

    url: str
    secrets: list[str] = field(default_factory=list)
    deliveries: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    taken: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.deliveries.append((path, headers, body))
            if path == "/gone":
                return 410
            if path == "/bad":
                return 400
            verify(headers.get(SIGNATURE_HEADER), body, self.secrets)  # raises if forged
            event_id = headers[EVENT_ID_HEADER]
            self.seen[event_id] = self.seen.get(event_id, 0) + 1
            if self.seen[event_id] <= REFUSALS:
                return 503
            self.taken.setdefault(event_id, json.loads(body))  # deduplicated by id
            return 200


@pytest.fixture(scope="module")
def subscriber() -> Iterator[Subscriber]:
    state = Subscriber(url="")
    with serve_subscriber(state.answer) as url:
        state.url = url
        yield state


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    fast = settings.model_copy(update={"outbound_backoff_s": 0.1})
    with serve(fast) as url:
        yield url


@pytest_asyncio.fixture
async def api(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        yield client


async def events_of(api: httpx.AsyncClient, cid: str, **query: str) -> list[dict[str, Any]]:
    answer = await api.get("/api/outbound-events", params={"contract_id": cid, **query})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_a_subscriber_receives_a_contracts_invoice_events_signed_once_each_and_replayed(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    api: httpx.AsyncClient,
    subscriber: Subscriber,
) -> None:
    sub = await subscribe(api, f"{subscriber.url}/flaky", "invoice.issued", "invoice.paid")
    subscriber.secrets.append(sub["secret"])
    try:
        cid, status = await start_active(temporal_client, settings)
        await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-05", "10")
        await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
        invoice = (await wait_invoices(temporal_client, cid, 1)).invoices[0]
        body = json.dumps(
            {
                "id": f"evt_{uuid.uuid4().hex}",
                "type": "payment.succeeded",
                "data": {
                    "payment_id": f"PAY-{cid}",
                    "invoice_id": invoice.invoice_id,
                    "amount": str(invoice.total),
                    "currency": "USD",
                    "received_on": "2026-11-20",
                },
            }
        ).encode()
        paid = await api.post(
            "/webhooks/payments",
            content=body,
            headers={SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET)},
        )
        assert paid.status_code in (200, 202), paid.text
        await wait_for(temporal_client, cid, lambda s: s.balance_due == 0, what="invoice paid")

        def taken_of_contract() -> dict[str, dict[str, Any]]:
            return {
                k: v for k, v in subscriber.taken.items() if v["data"].get("contract_id") == cid
            }

        async def both() -> bool:
            return {v["type"] for v in taken_of_contract().values()} == {
                "invoice.issued",
                "invoice.paid",
            }

        await until(both, "invoice.issued and invoice.paid taken")
        taken = taken_of_contract()
        assert len(taken) == 2
        by_type = {v["type"]: v for v in taken.values()}
        issued = by_type["invoice.issued"]
        assert issued["data"]["invoice_id"] == invoice.invoice_id
        assert issued["data"]["total"] == str(invoice.total)
        assert issued["data"]["currency"] == "USD"
        assert by_type["invoice.paid"]["data"]["amount_paid"] == str(invoice.total)
        for event_id, envelope in taken.items():
            assert envelope["id"] == event_id
            assert subscriber.seen[event_id] == REFUSALS + 1
        headers = next(
            h for _, h, b in subscriber.deliveries if json.loads(b)["id"] == issued["id"]
        )
        assert headers[EVENT_TYPE_HEADER] == "invoice.issued"

        # The delivery log: three attempts, the last answered 200.
        [logged] = await events_of(api, cid, type="invoice.issued", status="delivered")
        [delivery] = [
            d for d in logged["deliveries"] if d["subscription_id"] == sub["subscription_id"]
        ]
        assert (delivery["attempts"], delivery["last_status_code"]) == (REFUSALS + 1, 200)
        assert delivery["delivered_at"] is not None

        # A replay delivers it again (the subscriber's dedup keeps one copy).
        replayed = await api.post(f"/api/outbound-events/{issued['id']}/replay")
        assert replayed.status_code == 200, replayed.text

        async def again() -> bool:
            return subscriber.seen[issued["id"]] == REFUSALS + 2

        await until(again, "the replayed delivery")
        assert len(taken_of_contract()) == 2

        # A subscriber answering 410 or 400 is failed at once, without retries.
        for path, code in (("/gone", 410), ("/bad", 400)):
            refusing = await subscribe(api, f"{subscriber.url}{path}", "invoice.issued")
            one = {"subscription_id": refusing["subscription_id"]}
            answer = await api.post(f"/api/outbound-events/{issued['id']}/replay", json=one)
            assert answer.status_code == 200, answer.text

            async def failed(sub_id: str = refusing["subscription_id"]) -> dict[str, Any] | None:
                [event] = await events_of(api, cid, type="invoice.issued")
                for d in event["deliveries"]:
                    if d["subscription_id"] == sub_id and d["status"] == "failed":
                        return d
                return None

            delivery = await until(failed, f"the delivery refused with {code}")
            assert (delivery["attempts"], delivery["last_status_code"]) == (1, code)
            removed = await api.delete(f"/api/subscriptions/{refusing['subscription_id']}")
            assert removed.status_code == 200 and removed.json()["removed_at"]
    finally:
        await api.delete(f"/api/subscriptions/{sub['subscription_id']}")
    listed = (await api.get("/api/subscriptions")).json()["items"]
    assert sub["subscription_id"] not in [s["subscription_id"] for s in listed]
    assert all("secret" not in s for s in listed)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook", "event_types": ["invoice.issued"]}, "url"),
        ({"url": "https://", "event_types": ["invoice.issued"]}, "url"),
        ({"url": "https://u:p@example.com/", "event_types": ["invoice.issued"]}, "url"),
        ({"url": "https://example.com/hook", "event_types": ["invoice.voided"]}, "event_types.0"),
        ({"url": "https://example.com/hook", "event_types": []}, "event_types"),
        ({"event_types": ["invoice.issued"]}, "url"),
    ],
)
async def test_bad_subscription_input_is_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    answer = await api.post("/api/subscriptions", json=body)

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field


async def test_an_unknown_subscription_or_event_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.delete("/api/subscriptions/sub_nope")).status_code == 404
    assert (await api.post("/api/outbound-events/evt_nope/replay")).status_code == 404
