"""``/webhooks/stripe`` without a worker: off until a secret is set, other event types
ignored, a paid event that names no c2c invoice kept as a dead letter naming the metadata key,
and a body changed after signing refused."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from c2c.settings import Settings
from sandbox.stripe import sign
from tests.support import serve

SECRET = "whsec_c2c_api"


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    with serve(settings.model_copy(update={"stripe_webhook_secret": SecretStr(SECRET)})) as url:
        yield url


@pytest.fixture(scope="module")
def closed_api_url(settings: Settings) -> Iterator[str]:
    with serve(settings) as url:
        yield url


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def post(url: str, body: dict[str, Any], *, tamper: bool = False) -> httpx.Response:
    payload = json.dumps(body).encode()
    header = sign(payload, SECRET, int(time.time()))
    if tamper:
        payload = payload.replace(b'"object"', b'"object" ', 1)
    return httpx.post(
        f"{url}/webhooks/stripe", content=payload, headers={"Stripe-Signature": header}
    )


def test_stripe_events_are_refused_until_a_secret_is_set(closed_api_url: str) -> None:
    answer = post(closed_api_url, event("payment_intent.succeeded", {}))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "source_disabled"


def test_other_event_types_are_ignored(api_url: str) -> None:
    answer = post(api_url, event("payout.paid", {"id": "po_1"}))
    assert answer.status_code == 200 and answer.json() == {"ignored": True}


def test_a_payment_naming_no_c2c_invoice_is_a_dead_letter(api_url: str) -> None:
    intent = {
        "id": "pi_x",
        "object": "payment_intent",
        "amount_received": 1000,
        "currency": "usd",
        "created": int(time.time()),
        "metadata": {},
    }
    answer = post(api_url, event("payment_intent.succeeded", intent))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == "data.object.metadata.c2c_invoice_id"


def test_a_body_changed_after_signing_is_refused(api_url: str) -> None:
    answer = post(api_url, event("charge.refunded", {"id": "ch_1"}), tamper=True)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_signature"
    missing = httpx.post(f"{api_url}/webhooks/stripe", content=b"{}")
    assert missing.status_code == 401
