"""A contract whose tax is AvaTax's and whose payments are Stripe's, over real HTTP, from
approval to closed: tax from the sandbox's AvaTax through Avalara's client, one PaymentIntent
per invoice opened by the billing step, paid by a signed ``payment_intent.succeeded`` that the
sandbox's Stripe sends to ``/webhooks/stripe``. A resent event is a duplicate; a wrong
signature and one older than Stripe's tolerance are 401; a refund's event that comes before
its payment's is recorded and the payment still applies."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.client import Client

from c2c.settings import Settings
from c2c.stripe_events import to_minor
from domain.models import ClosePeriod, MilestoneCompleted
from sandbox.avatax import DEFAULT_ACCOUNT_ID, DEFAULT_LICENSE_KEY
from sandbox.stripe import sign
from starter.api.contracts import close_period_for, complete_milestone
from tests.support import serve
from tests.workflows.billing_helpers import start_active, wait_invoices
from tests.workflows.helpers import wait_for
from worker import contract_worker

SECRET = "whsec_c2c_sandbox"
STRIPE_KEY = {"Authorization": "Bearer sk_test_c2c"}
#: Nothing answers here: a step that used the reference engine or gateway would fail.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def vendor_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "tax": "avatax",
            "payments": "stripe",
            "tax_url": f"{NOWHERE}/tax/v1",
            "payments_url": f"{NOWHERE}/payments/v1",
            "stripe_webhook_secret": SecretStr(SECRET),
            "task_queue": f"c2c-stripe-{uuid.uuid4().hex[:8]}",
            # Temporal's retry of the step is the only retry: a lost answer is seen by c2c.
            "connector_quick_retries": 0,
        }
    )


@pytest.fixture(scope="module")
def api_url(vendor_settings: Settings) -> Iterator[str]:
    with serve(vendor_settings) as url:
        yield url


@pytest_asyncio.fixture
async def vendor_worker(temporal_client: Client, vendor_settings: Settings) -> AsyncIterator[None]:
    async with contract_worker(temporal_client, vendor_settings):
        yield


@pytest_asyncio.fixture
async def stripe_sandbox(
    sandbox: httpx.AsyncClient, api_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    answer = await sandbox.put(
        "/_admin/stripe/webhook", json={"url": f"{api_url}/webhooks/stripe", "secrets": [SECRET]}
    )
    assert answer.status_code == 200, answer.text
    yield sandbox
    await sandbox.put("/_admin/stripe/webhook", json={"secrets": []})


async def post_signed(api_url: str, event: dict[str, Any], at: int) -> httpx.Response:
    payload = json.dumps(event).encode()
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{api_url}/webhooks/stripe",
            content=payload,
            headers={"Stripe-Signature": sign(payload, SECRET, at)},
        )


@pytest.mark.usefixtures("vendor_worker")
async def test_avatax_tax_and_stripe_payment_from_approval_to_closed(
    temporal_client: Client,
    vendor_settings: Settings,
    stripe_sandbox: httpx.AsyncClient,
    api_url: str,
) -> None:
    cid, status = await start_active(
        temporal_client,
        vendor_settings,
        billing_model="fixed_fee",
        milestones=[{"milestone_id": "M1", "name": "Discovery", "amount": "4000.00"}],
        not_to_exceed=None,
        start_date="2026-10-01",
        end_date="2026-10-31",
    )
    await complete_milestone(
        temporal_client, cid, MilestoneCompleted(milestone_id="M1", completed_on=date(2026, 10, 20))
    )
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    [invoice] = (await wait_invoices(temporal_client, cid, 1)).invoices
    assert invoice.tax > 0 and invoice.total == invoice.subtotal + invoice.tax

    # The tax document is AvaTax's, committed once the invoice was issued.
    code = f"contract-{cid}:invoice:{invoice.period}"
    document = await stripe_sandbox.get(
        f"/vendors/avatax/api/v2/companies/US01/transactions/{code}",
        auth=(DEFAULT_ACCOUNT_ID, DEFAULT_LICENSE_KEY),
    )
    assert document.status_code == 200, document.text
    assert document.json()["status"] == "Committed"
    assert Decimal(str(document.json()["totalTax"])) == invoice.tax

    # One PaymentIntent for the invoice's total, in cents, with c2c's ids.
    found = await stripe_sandbox.get(
        "/vendors/stripe/v1/payment_intents/search",
        params={"query": f"metadata['c2c_invoice_id']:'{invoice.invoice_id}'"},
        headers=STRIPE_KEY,
    )
    [intent] = found.json()["data"]
    assert intent["amount"] == to_minor(invoice.total, status.currency)
    assert intent["currency"] == status.currency.lower()
    assert intent["metadata"] == {"c2c_invoice_id": invoice.invoice_id, "c2c_contract_id": cid}

    # A refund's event before its payment's: recorded, nothing applied.
    refunded = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": "charge.refunded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": f"ch_{uuid.uuid4().hex}",
                "object": "charge",
                "payment_intent": intent["id"],
                "amount_refunded": 0,
                "currency": intent["currency"],
                "metadata": intent["metadata"],
            }
        },
    }
    early = await post_signed(api_url, refunded, int(time.time()))
    assert early.status_code == 200, early.text
    assert (await wait_for(temporal_client, cid, lambda s: True)).invoices[0].amount_paid == 0

    # The customer pays: Stripe sends the signed event, c2c applies it, the contract closes.
    paid = await stripe_sandbox.post(f"/_admin/stripe/payment_intents/{intent['id']}/succeed")
    sent = paid.json()
    assert sent["status"] == 202, sent
    closed = await wait_for(temporal_client, cid, lambda s: s.stage == "closed", what="closed")
    assert [i.status for i in closed.invoices] == ["paid"]
    assert closed.invoices[0].amount_paid == invoice.total

    # Stripe's retry of the same event is a duplicate.
    again = await stripe_sandbox.post(f"/_admin/stripe/events/{sent['event_id']}/send", json={})
    assert again.json()["status"] == 202 and again.json()["answer"]["duplicate"] is True
    # A wrong secret, and a signature older than Stripe's 300 s tolerance, are refused.
    wrong = await stripe_sandbox.post(
        f"/_admin/stripe/events/{sent['event_id']}/send", json={"secret": "whsec_other"}
    )
    assert wrong.json()["status"] == 401
    stale = await stripe_sandbox.post(
        f"/_admin/stripe/events/{sent['event_id']}/send", json={"at": int(time.time()) - 301}
    )
    assert stale.json()["status"] == 401
    assert stale.json()["answer"]["error"]["code"] == "invalid_signature"


@pytest.mark.usefixtures("vendor_worker")
async def test_a_lost_answer_and_a_forgotten_key_make_no_second_payment_intent(
    temporal_client: Client, vendor_settings: Settings, stripe_sandbox: httpx.AsyncClient
) -> None:
    cid, _ = await start_active(
        temporal_client,
        vendor_settings,
        billing_model="fixed_fee",
        milestones=[{"milestone_id": "M1", "name": "Discovery", "amount": "1500.00"}],
        not_to_exceed=None,
        start_date="2026-10-01",
        end_date="2026-10-31",
    )
    # Stripe makes the PaymentIntent, the answer is lost, and by the step's retry Stripe has
    # forgotten the key: only the look-up by the invoice's id keeps a second one from being made.
    lost = await stripe_sandbox.post(
        "/_admin/stripe/lose-answers", json={"count": 1, "forget_keys": True}
    )
    assert lost.status_code == 200
    await complete_milestone(
        temporal_client, cid, MilestoneCompleted(milestone_id="M1", completed_on=date(2026, 10, 20))
    )
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    [invoice] = (await wait_invoices(temporal_client, cid, 1)).invoices
    found = await stripe_sandbox.get(
        "/vendors/stripe/v1/payment_intents/search",
        params={"query": f"metadata['c2c_invoice_id']:'{invoice.invoice_id}'"},
        headers=STRIPE_KEY,
    )
    assert len(found.json()["data"]) == 1
    # The answer was lost (none is left to lose).
    reset = await stripe_sandbox.post("/_admin/stripe/lose-answers", json={"count": 0})
    assert reset.json()["were_left"] == 0
