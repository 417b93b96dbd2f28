"""The outbound-event metrics of the API's ``/metrics`` move as the dispatcher delivers over
real HTTP: deliveries by outcome (delivered, retried, failed, given up), the subscriber's
answer time, and the backlog (deliveries pending, the oldest one's age).

The API runs on a ledger of its own, so no other test's dispatcher takes its deliveries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from c2c.settings import Settings
from ledger import Ledger, get_ledger
from tests.subscriber import Subscriber, issue_invoice, subscribe, subscriber_endpoint, until
from tests.support import serve
from tests.telemetry.conftest import Samples, parse

EVENT = {"event_type": "invoice.issued"}


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    with subscriber_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def own(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'ledger.db'}",
            "outbound_backoff_s": 0.05,
            "outbound_max_attempts": 2,
        }
    )


async def scrape(api: httpx.AsyncClient) -> Samples:
    answer = await api.get("/metrics")
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


async def test_deliveries_latency_and_backlog_move_as_events_are_delivered(
    own: Settings, subscriber: Subscriber
) -> None:
    ledger: Ledger = get_ledger(own.ledger_url)
    with serve(own) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            subs = {}
            for path in ("/ok", "/flaky", "/down", "/gone"):
                subs[path] = (await subscribe(api, subscriber.url + path))["subscription_id"]
            for path in subs:  # held back, to see the backlog
                await api.post(f"/api/subscriptions/{subs[path]}/pause")
            before = await scrape(api)
            assert before.value("c2c_outbound_deliveries_pending") == 0
            assert before.value("c2c_outbound_oldest_pending_age_seconds") == 0

            event_id = issue_invoice(ledger, f"MET-{uuid.uuid4().hex[:8]}")
            await asyncio.sleep(1.1)
            waiting = await scrape(api)
            assert waiting.value("c2c_outbound_deliveries_pending") == 4
            assert waiting.value("c2c_outbound_oldest_pending_age_seconds") >= 1

            for path in subs:
                await api.post(f"/api/subscriptions/{subs[path]}/resume")

            async def settled() -> bool:
                found = ledger.get_outbound_event(event_id)
                assert found is not None
                return all(d.status != "pending" for d in found.deliveries)

            await until(settled, "every delivery settled")
            after = await scrape(api)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    outcomes = {
        outcome: moved("c2c_outbound_deliveries_total", outcome=outcome, **EVENT)
        for outcome in ("delivered", "retried", "failed", "given_up")
    }
    # /ok and /flaky's second attempt delivered; /flaky's and /down's first retried; /gone
    # refused at once; /down's second (the last of two attempts) given up.
    assert outcomes == {"delivered": 2, "retried": 2, "failed": 1, "given_up": 1}
    assert moved("c2c_outbound_delivery_duration_seconds_count", **EVENT) == 6
    assert moved("c2c_outbound_delivery_duration_seconds_sum", **EVENT) > 0
    assert after.value("c2c_outbound_deliveries_pending") == 0
    assert after.value("c2c_outbound_oldest_pending_age_seconds") == 0
    assert len(subscriber.of_event(event_id)) == 6
