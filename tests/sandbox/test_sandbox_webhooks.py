"""Webhooks: signed, delivered, retried until a 2xx, and recorded with their attempts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from c2c.signing import verify
from domain.names import SIGNATURE_HEADER
from sandbox.testing import run_sandbox_in_thread
from tests.sandbox.support import (
    WEBHOOK_SECRET,
    WebhookReceiver,
    create_erp_contract,
    invoice_body,
    ok,
)


def pay_an_invoice(client: httpx.Client, amount: str = "250.00") -> dict[str, Any]:
    refs = create_erp_contract(client)
    invoice = ok(client.post("/erp/v1/invoices", json=invoice_body(refs)), 201)
    payment: dict[str, Any] = ok(
        client.post(
            "/payments/v1/payments",
            json={"invoice_id": invoice["invoice_id"], "amount": amount, "currency": "USD"},
        ),
        201,
    )
    return payment


def wait_for_status(client: httpx.Client, status: str, timeout_s: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        items = ok(client.get("/_admin/webhooks"))["items"]
        if items and items[0]["status"] == status:
            delivery: dict[str, Any] = items[0]
            return delivery
        time.sleep(0.05)
    raise AssertionError(f"no delivery reached {status!r}")


def test_payment_succeeded_is_delivered_signed(
    client: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    payment = pay_an_invoice(client)

    [received] = webhook_receiver.wait_for(1, payment["payment_id"])

    assert received.path == "/webhooks/payments"
    verify(received.headers[SIGNATURE_HEADER], received.body, [WEBHOOK_SECRET])
    event = received.json()
    assert event["id"].startswith("evt_") and len(event["id"]) == 36
    assert event["type"] == "payment.succeeded"
    assert isinstance(event["created"], int)
    assert event["data"] == {
        "payment_id": payment["payment_id"],
        "invoice_id": payment["invoice_id"],
        "amount": "250.00",
        "currency": "USD",
        "received_on": payment["created_at"][:10],
    }
    delivery = wait_for_status(client, "delivered")
    assert delivery["event_id"] == event["id"]
    assert [a["status_code"] for a in delivery["attempts"]] == [200]


def test_failed_attempts_are_retried_until_a_2xx(
    client: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.planned["/webhooks/payments"] = [500]
    payment = pay_an_invoice(client)

    first, second = webhook_receiver.wait_for(2, payment["payment_id"])

    assert first.body == second.body
    delivery = wait_for_status(client, "delivered")
    assert [(a["number"], a["status_code"]) for a in delivery["attempts"]] == [(1, 500), (2, 200)]
    assert delivery["attempts"][0]["error"] == "HTTP 500"


def test_gateway_payments_are_checked_against_the_erp(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    invoice = ok(client.post("/erp/v1/invoices", json=invoice_body(refs)), 201)

    unknown = client.post(
        "/payments/v1/payments",
        json={"invoice_id": "INV-404", "amount": "1.00", "currency": "USD"},
    )
    wrong_currency = client.post(
        "/payments/v1/payments",
        json={"invoice_id": invoice["invoice_id"], "amount": "1.00", "currency": "EUR"},
    )

    assert unknown.json()["error"]["field"] == "invoice_id"
    assert wrong_currency.json()["error"]["code"] == "currency_mismatch"
    assert ok(client.get("/_admin/webhooks"))["items"] == []


def test_without_a_secret_webhooks_are_recorded_not_sent(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    with (
        run_sandbox_in_thread(
            f"sqlite:///{tmp_path / 'unsigned.db'}", webhook_receiver.url, []
        ) as base_url,
        httpx.Client(base_url=base_url) as client,
    ):
        payment = pay_an_invoice(client)
        deliveries = ok(client.get("/_admin/webhooks"))["items"]

    assert [d["status"] for d in deliveries] == ["not_sent"]
    assert deliveries[0]["attempts"] == []
    assert webhook_receiver.matching(payment["payment_id"]) == []
