"""Operating outbound events through the real API and its dispatcher, over HTTP to a loopback
subscriber: a subscription's secret is shown once and kept sealed; a secret stored in clear by
0.10 still signs and is sealed on first read; a paused subscription's deliveries wait and are
sent when it resumes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session

from c2c.secret_box import SEALED_PREFIX, secret_box
from c2c.settings import Settings
from c2c.signing import verify
from domain.names import SIGNATURE_HEADER
from ledger import Ledger, Subscription
from ledger.models import utc_now
from starter.ops.outbound import EVENT_ID_HEADER
from tests.subscriber import Subscriber, issue_invoice, subscribe, subscriber_endpoint, until
from tests.support import serve


@pytest.fixture(scope="module")
def subscriber() -> Iterator[Subscriber]:
    with subscriber_endpoint() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    with serve(settings.model_copy(update={"outbound_backoff_s": 0.1})) as url:
        yield url


@pytest_asyncio.fixture
async def api(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        yield client


def stored_secret(ledger: Ledger, subscription_id: str) -> str:
    [row] = [
        s
        for s in ledger.list_subscriptions(include_removed=True)
        if s.subscription_id == subscription_id
    ]
    return row.secret


async def delivered(api: httpx.AsyncClient, event_id: str, subscription_id: str) -> bool:
    answer = await api.get("/api/outbound-events", params={"status": "delivered"})
    for item in answer.json()["items"]:
        if item["event_id"] == event_id:
            return any(d["subscription_id"] == subscription_id for d in item["deliveries"])
    return False


async def test_a_secret_is_shown_once_kept_sealed_and_signs_the_deliveries(
    api: httpx.AsyncClient, ledger: Ledger, subscriber: Subscriber
) -> None:
    path = f"/ok/{uuid.uuid4().hex[:8]}"
    sub = await subscribe(api, subscriber.url + path)
    secret = sub["secret"]
    try:
        stored = stored_secret(ledger, sub["subscription_id"])
        assert stored.startswith(SEALED_PREFIX) and secret not in stored
        listed = await api.get("/api/subscriptions")
        assert secret not in listed.text and "secret" not in listed.json()["items"][0]
        event_id = issue_invoice(ledger, f"SEC-{uuid.uuid4().hex[:8]}")

        async def received() -> list[Any]:
            return [d for d in subscriber.of_event(event_id) if d.path == path]

        [delivery] = await until(received, "the signed delivery")
        verify(delivery.headers.get(SIGNATURE_HEADER), delivery.body, [secret])
        assert delivery.headers[EVENT_ID_HEADER] == event_id
        await until(lambda: delivered(api, event_id, sub["subscription_id"]), "delivered")
        events = await api.get("/api/outbound-events", params={"type": "invoice.issued"})
        assert secret not in events.text
    finally:
        await api.delete(f"/api/subscriptions/{sub['subscription_id']}")
    assert secret not in (await api.delete(f"/api/subscriptions/{sub['subscription_id']}")).text


async def test_a_secret_stored_in_clear_by_0_10_still_signs_and_is_sealed_on_first_read(
    api: httpx.AsyncClient, ledger: Ledger, settings: Settings, subscriber: Subscriber
) -> None:
    subscription_id = f"sub_clear{uuid.uuid4().hex[:8]}"
    clear = f"whsec_{uuid.uuid4().hex}"
    path = f"/ok/{subscription_id}"
    with Session(ledger.engine) as session:
        session.add(
            Subscription(
                subscription_id=subscription_id,
                url=subscriber.url + path,
                event_types=["invoice.issued"],
                secret=clear,
                created_at=utc_now(),
            )
        )
        session.commit()
    try:
        event_id = issue_invoice(ledger, f"CLR-{uuid.uuid4().hex[:8]}")

        async def received() -> list[Any]:
            return [d for d in subscriber.of_event(event_id) if d.path == path]

        [delivery] = await until(received, "the delivery signed with the clear secret")
        verify(delivery.headers.get(SIGNATURE_HEADER), delivery.body, [clear])
        await until(lambda: delivered(api, event_id, subscription_id), "delivered")
        stored = stored_secret(ledger, subscription_id)
        assert stored.startswith(SEALED_PREFIX) and clear not in stored
        assert secret_box(settings).open(stored) == clear
    finally:
        await api.delete(f"/api/subscriptions/{subscription_id}")


async def test_a_paused_subscriptions_deliveries_wait_until_it_is_resumed(
    api: httpx.AsyncClient, ledger: Ledger, subscriber: Subscriber
) -> None:
    path = f"/ok/{uuid.uuid4().hex[:8]}"
    sub_id = (await subscribe(api, subscriber.url + path))["subscription_id"]
    try:
        paused = await api.post(f"/api/subscriptions/{sub_id}/pause")
        assert paused.status_code == 200 and paused.json()["paused_at"], paused.text
        event_id = issue_invoice(ledger, f"PAU-{uuid.uuid4().hex[:8]}")
        metrics = await api.get("/metrics")
        assert "c2c_outbound_deliveries_pending" in metrics.text

        await asyncio.sleep(2.5)  # more than two of the dispatcher's one-second polls
        assert subscriber.of_event(event_id) == []
        pending = await api.get("/api/outbound-events", params={"status": "pending"})
        assert event_id in [i["event_id"] for i in pending.json()["items"]]

        resumed = await api.post(f"/api/subscriptions/{sub_id}/resume")
        assert resumed.status_code == 200 and resumed.json()["paused_at"] is None
        await until(lambda: delivered(api, event_id, sub_id), "delivered once resumed")
        assert len(subscriber.of_event(event_id)) == 1

        unknown = await api.post("/api/subscriptions/sub_nope/pause")
        assert unknown.status_code == 404
        bad = await api.post(f"/api/subscriptions/{sub_id}/stop")
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "action"
    finally:
        await api.delete(f"/api/subscriptions/{sub_id}")
    gone = await api.post(f"/api/subscriptions/{sub_id}/resume")
    assert gone.status_code == 404
