"""The outbound events page as an operator works it, in headless Chromium (screenshots under
``test-output/dashboard/``): from the navigation to a subscriber's delivered event; the
subscription paused, a new event waiting under the ``pending`` filter, then sent once it is
resumed; an event replayed; the subscription removed.

Everything behind the page is real: the API in a uvicorn thread with its dispatcher, the
ledger, and a subscriber's endpoint on loopback that the events are POSTed to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ledger import Ledger
from tests.dashboard.test_dashboard_browser import CHROMIUM, browser, expect, shot
from tests.subscriber import Subscriber, issue_invoice, subscribe, subscriber_endpoint, until

__all__ = ["browser"]  # the fixture, shared with the dashboard's other browser tests

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
)


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    with subscriber_endpoint() as endpoint:
        yield endpoint


async def reload_until(page: Any, locator: Any, text: str, tries: int = 30) -> None:
    """Reload the page until ``locator`` shows ``text`` (the dispatcher works meanwhile)."""
    for _ in range(tries):
        if await locator.count() and text in await locator.first.inner_text():
            return
        await page.wait_for_timeout(500)
        await page.reload()
    await expect(locator.first).to_contain_text(text)


async def test_an_operator_watches_pauses_resumes_replays_and_removes_a_subscription(
    browser: Any, dashboard_url: str, ledger: Ledger, subscriber: Subscriber
) -> None:
    path = f"/ok/{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=dashboard_url, timeout=30) as api:
        created = await subscribe(api, subscriber.url + path)
    sub_id, secret = created["subscription_id"], created["secret"]
    first = issue_invoice(ledger, f"EV-{uuid.uuid4().hex[:8]}")
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})

    async def confirm(dialog: Any) -> None:
        await dialog.accept()

    page.on("dialog", confirm)

    await page.goto(dashboard_url + "/")
    await page.click("header nav a[href='/events']")
    await expect(page.locator("#events-h")).to_contain_text("Outbound events")
    row = page.locator(f'#subscriptions tr[data-subscription="{sub_id}"]')
    await expect(row).to_contain_text(subscriber.url + path)
    await expect(row.locator(".sub-status")).to_have_text("running")
    delivery = page.locator(f'#deliveries tr[data-event="{first}"][data-subscriber="{sub_id}"]')
    await reload_until(page, delivery, "delivered")
    await expect(delivery).to_contain_text("HTTP 200")
    await expect(row.locator(".last")).to_contain_text("delivered")
    assert secret not in await page.content()
    await shot(page, "20-events.png")

    # Paused: a new event waits, shown under the pending filter with its next attempt.
    await row.locator("button.pause").click()
    await expect(page.locator("#flash")).to_contain_text(f"Paused subscription {sub_id}")
    await expect(row.locator(".sub-status")).to_have_text("paused")
    second = issue_invoice(ledger, f"EV-{uuid.uuid4().hex[:8]}")
    await page.select_option("#delivery-filters select[name=status]", "pending")
    await page.click("#delivery-filters button[type=submit]")
    assert page.url.endswith("/events?status=pending")
    waiting = page.locator(f'#deliveries tr[data-event="{second}"][data-subscriber="{sub_id}"]')
    await expect(waiting).to_contain_text("pending")
    await expect(waiting).to_contain_text("when resumed")  # its next attempt
    await expect(page.locator(f'#deliveries tr[data-event="{first}"]')).to_have_count(0)
    await shot(page, "21-events-paused.png")
    await page.wait_for_timeout(1500)  # more than one of the dispatcher's polls
    assert subscriber.of_event(second) == []

    # Resumed: what waited is sent.
    await row.locator("button.resume").click()
    await expect(page.locator("#flash")).to_contain_text(f"Resumed subscription {sub_id}")
    assert page.url.endswith("/events?status=pending")  # the filter is kept

    async def sent() -> bool:
        return len(subscriber.of_event(second)) == 1

    await until(sent, "the event that waited")
    await page.goto(dashboard_url + "/events?status=delivered")
    await reload_until(page, page.locator(f'#deliveries tr[data-event="{second}"]'), "delivered")

    # Replayed: delivered a second time.
    await page.locator(f'#deliveries tr[data-event="{first}"] button.replay').click()
    await expect(page.locator("#flash")).to_contain_text(f"Event {first} will be delivered again")

    async def again() -> bool:
        return len(subscriber.of_event(first)) == 2

    await until(again, "the replayed delivery")
    await shot(page, "22-events-replayed.png")

    # Removed: gone from the subscriptions, its log kept.
    await page.locator(f'#subscriptions tr[data-subscription="{sub_id}"] button.remove').click()
    await expect(page.locator("#flash")).to_contain_text(f"Removed subscription {sub_id}")
    await expect(page.locator(f'#subscriptions tr[data-subscription="{sub_id}"]')).to_have_count(0)
    await expect(page.locator(f'#deliveries tr[data-event="{first}"]')).to_contain_text(sub_id)
