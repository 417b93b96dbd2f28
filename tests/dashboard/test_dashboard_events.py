"""The outbound events page's refusals over plain HTTP: a viewer reads the delivery log but
may not replay or pause; a form without its CSRF token is refused and changes nothing; a login
limited to one legal entity sees only its contracts' deliveries, not the subscriptions, and
may not act; a bad filter is 422 naming it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from c2c.secret_box import secret_box
from c2c.settings import Settings
from ledger import Ledger, Subscription
from tests.dashboard.helpers import OPERATOR_TOKEN, VIEWER_TOKEN, log_in, page_token
from tests.subscriber import Subscriber, issue_invoice, subscriber_endpoint
from tests.support import serve

SCOPED_TOKEN = "dash-scoped-operator-token-5e1d"


@pytest.fixture(scope="module")
def subscriber() -> Iterator[Subscriber]:
    with subscriber_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def subscription(ledger: Ledger, settings: Settings, subscriber: Subscriber) -> Iterator[str]:
    row = ledger.add_subscription(
        f"{subscriber.url}/ok/{uuid.uuid4().hex[:8]}",
        ["invoice.issued"],
        "test",
        box=secret_box(settings),
    )
    yield row.subscription_id
    ledger.remove_subscription(row.subscription_id)


def current(ledger: Ledger, subscription_id: str) -> Subscription:
    [row] = [s for s in ledger.list_subscriptions() if s.subscription_id == subscription_id]
    return row


async def test_a_viewer_reads_the_log_but_may_not_replay_or_pause(
    secured: httpx.AsyncClient, ledger: Ledger, subscription: str
) -> None:
    event_id = issue_invoice(ledger, f"VW-{uuid.uuid4().hex[:8]}")
    assert (await log_in(secured, VIEWER_TOKEN)).status_code == 303

    page = await secured.get("/events")
    assert page.status_code == 200
    assert subscription in page.text and event_id in page.text
    assert "/ui/subscriptions/" not in page.text and "/replay" not in page.text
    assert 'href="/events"' in page.text  # in the navigation

    csrf = await page_token(secured, "/events")
    replay = await secured.post(f"/ui/events/{event_id}/replay", data={"csrf_token": csrf})
    pause = await secured.post(f"/ui/subscriptions/{subscription}/pause", data={"csrf_token": csrf})
    assert (replay.status_code, pause.status_code) == (403, 403)
    assert current(ledger, subscription).paused_at is None


async def test_an_operators_form_needs_its_csrf_token_and_a_bad_filter_is_named(
    secured: httpx.AsyncClient, ledger: Ledger, subscription: str
) -> None:
    assert (await log_in(secured, OPERATOR_TOKEN)).status_code == 303
    page = await secured.get("/events")
    assert f"/ui/subscriptions/{subscription}/pause" in page.text

    forged = await secured.post(f"/ui/subscriptions/{subscription}/pause", data={})
    wrong = await secured.post(
        f"/ui/subscriptions/{subscription}/remove", data={"csrf_token": "forged"}
    )
    assert (forged.status_code, wrong.status_code) == (403, 403)
    assert "csrf_token" in forged.text
    assert current(ledger, subscription).paused_at is None  # nothing changed

    csrf = await page_token(secured, "/events")
    paused = await secured.post(
        f"/ui/subscriptions/{subscription}/pause", data={"csrf_token": csrf, "status": "failed"}
    )
    assert paused.status_code == 303 and paused.headers["location"] == "/events?status=failed"
    assert current(ledger, subscription).paused_at is not None
    unknown = await secured.post(
        f"/ui/subscriptions/{subscription}/stop", data={"csrf_token": csrf}
    )
    assert unknown.status_code == 404 and "action" in unknown.text
    missing = await secured.post("/ui/events/evt_nope/replay", data={"csrf_token": csrf})
    assert missing.status_code == 404

    bad = await secured.get("/events?status=lost")
    assert bad.status_code == 422 and "status" in bad.text


async def test_a_login_limited_to_one_entity_sees_only_its_contracts_deliveries(
    settings: Settings, ledger: Ledger, subscription: str, subscriber: Subscriber
) -> None:
    ours = issue_invoice(ledger, f"UK-{uuid.uuid4().hex[:8]}", legal_entity="UK01")
    theirs = issue_invoice(ledger, f"US-{uuid.uuid4().hex[:8]}", legal_entity="US01")
    tokens = SecretStr(f"{SCOPED_TOKEN}:operator:UK01@ursula")
    with serve(settings.model_copy(update={"api_tokens": tokens})) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as ursula:
            assert (await log_in(ursula, SCOPED_TOKEN)).status_code == 303
            page = await ursula.get("/events")
            assert page.status_code == 200
            assert ours in page.text and theirs not in page.text
            # The deliveries name their subscriber; the subscriptions (their URLs) are not shown.
            assert 'id="subscriptions"' not in page.text and subscriber.url not in page.text
            assert 'id="subscriptions-hidden"' in page.text
            assert "/replay" not in page.text

            csrf = await page_token(ursula, "/events")
            replay = await ursula.post(f"/ui/events/{ours}/replay", data={"csrf_token": csrf})
            pause = await ursula.post(
                f"/ui/subscriptions/{subscription}/pause", data={"csrf_token": csrf}
            )
            assert (replay.status_code, pause.status_code) == (403, 403)
            assert "legal entities" in replay.text
    assert current(ledger, subscription).paused_at is None
