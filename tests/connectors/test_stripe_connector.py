"""The Stripe connector (Stripe's ``stripe`` client) against the sandbox's Stripe over real
HTTP: an invoice's PaymentIntent in minor units with c2c's metadata, Stripe's idempotency
(same key and parameters: the same intent; other parameters: ``idempotency_error``), one
intent even when the answer was lost and Stripe forgot the key before the retry, and refunds
that are not made twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio

from c2c.stripe_events import from_minor, to_minor
from connectors.stripe import StripePayments
from domain.errors import BusinessError, TransientError
from domain.write_models import InvoiceCollection, RefundRequest

API_KEY = "sk_test_c2c"


@pytest_asyncio.fixture
async def stripe_payments(sandbox_url: str) -> AsyncIterator[StripePayments]:
    connector = StripePayments(f"{sandbox_url}/vendors/stripe", api_key=API_KEY)
    yield connector
    await connector.aclose()


def invoice(amount: str = "1234.50", currency: str = "USD") -> InvoiceCollection:
    return InvoiceCollection(
        invoice_id=f"INV-{uuid.uuid4().hex[:10]}",
        contract_id="C-STRIPE",
        number="2026-0001",
        amount=Decimal(amount),
        currency=currency,
    )


async def intents_of(sandbox: httpx.AsyncClient, invoice_id: str) -> list[dict[str, object]]:
    answer = await sandbox.get(
        "/vendors/stripe/v1/payment_intents/search",
        params={"query": f"metadata['c2c_invoice_id']:'{invoice_id}'"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert answer.status_code == 200, answer.text
    data: list[dict[str, object]] = answer.json()["data"]
    return data


def test_minor_units_are_exact() -> None:
    assert to_minor(Decimal("1234.50"), "USD") == 123450
    assert to_minor(Decimal("5000"), "JPY") == 5000
    assert to_minor(Decimal("1.235"), "KWD") == 1235
    assert from_minor(123450, "usd") == Decimal("1234.50")
    assert from_minor(5000, "JPY") == Decimal("5000")
    with pytest.raises(ValueError, match="minor units"):
        to_minor(Decimal("10.5"), "JPY")


async def test_an_invoice_is_collected_by_one_payment_intent(
    stripe_payments: StripePayments, sandbox: httpx.AsyncClient
) -> None:
    owed = invoice()
    opened = await stripe_payments.collect_invoice(owed, idempotency_key=f"k-{owed.invoice_id}")
    assert (opened.amount, opened.currency, opened.status) == (
        Decimal("1234.50"),
        "USD",
        "requires_payment_method",
    )
    again = await stripe_payments.collect_invoice(owed, idempotency_key=f"k-{owed.invoice_id}")
    assert again == opened
    [intent] = await intents_of(sandbox, owed.invoice_id)
    assert intent["amount"] == 123450 and intent["currency"] == "usd"
    assert intent["metadata"] == {"c2c_invoice_id": owed.invoice_id, "c2c_contract_id": "C-STRIPE"}
    yen = invoice("500000", "JPY")
    opened_yen = await stripe_payments.collect_invoice(yen, idempotency_key=f"k-{yen.invoice_id}")
    [yen_intent] = await intents_of(sandbox, yen.invoice_id)
    assert yen_intent["amount"] == 500000 and opened_yen.amount == Decimal("500000")


async def test_stripe_idempotency_same_parameters_same_answer_others_refused(
    sandbox: httpx.AsyncClient,
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": uuid.uuid4().hex}
    form = {"amount": "1000", "currency": "eur", "metadata[c2c_invoice_id]": "INV-X"}
    first = await sandbox.post("/vendors/stripe/v1/payment_intents", data=form, headers=headers)
    second = await sandbox.post("/vendors/stripe/v1/payment_intents", data=form, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    other = await sandbox.post(
        "/vendors/stripe/v1/payment_intents", data={**form, "amount": "1001"}, headers=headers
    )
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    bad = await sandbox.post(
        "/vendors/stripe/v1/payment_intents",
        data={"amount": "12.5", "currency": "eur"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert bad.status_code == 400
    assert bad.json()["error"] | {"message": ""} == {
        "type": "invalid_request_error",
        "code": "parameter_invalid_integer",
        "param": "amount",
        "message": "",
    }


async def test_no_second_intent_after_a_lost_answer_and_a_forgotten_key(
    stripe_payments: StripePayments, sandbox: httpx.AsyncClient
) -> None:
    owed = invoice("99.99", "GBP")
    key = f"contract-C-STRIPE:invoice:{owed.invoice_id}:collect"
    lost = await sandbox.post("/_admin/stripe/lose-answers", json={"count": 1})
    assert lost.status_code == 200
    with pytest.raises(TransientError):
        await stripe_payments.collect_invoice(owed, idempotency_key=key)
    # Stripe made the intent; the answer never came back. A day later Stripe forgets the key.
    expired = await sandbox.post("/_admin/stripe/idempotency-keys/expire")
    assert expired.json()["expired"] >= 1
    retried = await stripe_payments.collect_invoice(owed, idempotency_key=key)
    [intent] = await intents_of(sandbox, owed.invoice_id)
    assert retried.collection_id == intent["id"]


async def test_a_refund_is_made_once_even_after_the_key_is_forgotten(
    stripe_payments: StripePayments, sandbox: httpx.AsyncClient
) -> None:
    owed = invoice("200.00", "USD")
    opened = await stripe_payments.collect_invoice(owed, idempotency_key=f"k-{owed.invoice_id}")
    with pytest.raises(BusinessError) as unpaid:
        await stripe_payments.refund_payment(
            RefundRequest(payment_id=opened.collection_id, amount=None, currency="USD"),
            idempotency_key="r-unpaid",
        )
    assert unpaid.value.rejection.code == "charge_not_refundable"
    paid = await sandbox.post(
        f"/_admin/stripe/payment_intents/{opened.collection_id}/succeed", json={"send": False}
    )
    assert paid.status_code == 200, paid.text
    key = f"k-{owed.invoice_id}:refund-1"
    refund = await stripe_payments.refund_payment(
        RefundRequest(payment_id=opened.collection_id, amount=Decimal("50.00"), currency="USD"),
        idempotency_key=key,
    )
    assert (refund.amount, refund.status) == (Decimal("50.00"), "succeeded")
    await sandbox.post("/_admin/stripe/idempotency-keys/expire")
    again = await stripe_payments.refund_payment(
        RefundRequest(payment_id=opened.collection_id, amount=Decimal("50.00"), currency="USD"),
        idempotency_key=key,
    )
    assert again.refund_id == refund.refund_id
    with pytest.raises(BusinessError) as too_much:
        await stripe_payments.refund_payment(
            RefundRequest(
                payment_id=opened.collection_id, amount=Decimal("150.01"), currency="USD"
            ),
            idempotency_key="r2",
        )
    assert too_much.value.rejection.field == "amount"
