"""Outbound events of a consolidated invoice, through the real API with a worker running: a
subscriber on loopback receives one ``consolidated_invoice.issued`` when two consolidating
contracts close a period, and one ``consolidated_invoice.paid`` once the customer has paid it
all (not after a part), each signed; a repeated payment or a retried step sends nothing again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.consolidation import ConsolidationActivities
from c2c.settings import Settings
from c2c.signing import verify
from connectors.registry import build_connectors
from domain.names import SIGNATURE_HEADER
from domain.steps import ConsolidatedInvoicePaidInput
from ledger import Ledger, OutboundEventType
from ledger.outbound import EventDeliveries
from starter.api.contracts import customer_billing_status, record_customer_payment
from starter.ops.outbound import EVENT_ID_HEADER, EVENT_TYPE_HEADER
from tests.subscriber import Delivery, Subscriber, subscribe, subscriber_endpoint, until
from tests.support import serve
from tests.workflows.billing_helpers import consolidated_invoiced, two_consolidating_contracts
from tests.workflows.helpers import wait_for
from tests.workflows.test_consolidated_invoicing import _payment

pytestmark = pytest.mark.usefixtures("worker")

ISSUED = OutboundEventType.CONSOLIDATED_INVOICE_ISSUED.value
PAID = OutboundEventType.CONSOLIDATED_INVOICE_PAID.value


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    """The API on the worker's ledger (``api`` is the suite's client of it)."""
    with serve(settings.model_copy(update={"outbound_backoff_s": 0.1})) as url:
        yield url


@pytest.fixture
def endpoint() -> Iterator[Subscriber]:
    with subscriber_endpoint() as state:
        yield state


def received(endpoint: Subscriber, event_type: str, workflow_id: str) -> list[Delivery]:
    """The deliveries of ``event_type`` for the customer billing ``workflow_id``."""
    with endpoint.lock:
        return [
            d
            for d in endpoint.received
            if d.envelope["type"] == event_type
            and d.envelope["data"]["customer_billing_id"] == workflow_id
        ]


def events_of(ledger: Ledger, event_type: str, invoice_id: str) -> list[EventDeliveries]:
    """The ledger's events of ``event_type`` for the consolidated invoice ``invoice_id``."""
    return [
        e
        for e in ledger.list_outbound_events(event_type=event_type)
        if e.event.payload["invoice_id"] == invoice_id
    ]


async def pay(client: Client, workflow_id: str, number: str, amount: Decimal) -> str:
    payment_id = f"PAY-{uuid.uuid4().hex[:8]}"
    await record_customer_payment(client, workflow_id, _payment(payment_id, number, amount))
    return payment_id


async def test_a_subscriber_receives_a_consolidated_invoice_issued_and_paid_once_each(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    ledger: Ledger,
    api: httpx.AsyncClient,
    endpoint: Subscriber,
) -> None:
    sub = await subscribe(api, f"{endpoint.url}/ok", ISSUED, PAID)
    cids, workflow_id = await two_consolidating_contracts(
        temporal_client, settings, sandbox, ("10", "5")
    )
    sections = {
        s.contract_id: s.invoices[0]
        for s in [await consolidated_invoiced(temporal_client, cid) for cid in cids]
    }
    first = sections[min(cids)]
    invoice_id, number = first.consolidated_invoice_id, first.number
    assert invoice_id is not None and number is not None

    async def issued() -> list[Delivery]:
        return received(endpoint, ISSUED, workflow_id)

    [delivery] = await until(issued, "consolidated_invoice.issued")
    verify(delivery.headers.get(SIGNATURE_HEADER), delivery.body, [sub["secret"]])
    assert delivery.headers[EVENT_TYPE_HEADER] == ISSUED
    assert delivery.headers[EVENT_ID_HEADER] == delivery.envelope["id"]
    data: dict[str, Any] = delivery.envelope["data"]
    total = sum((s.total for s in sections.values()), Decimal(0))
    assert data["invoice_id"] == invoice_id and data["number"] == number
    assert (data["legal_entity"], data["crm_account_id"], data["currency"]) == (
        "US01",
        "ACME-US",
        "USD",
    )
    assert data["po_number"] and data["period"] == "2026-10"
    assert data["invoice_date"] == first.invoice_date.isoformat()
    assert data["due_on"] == first.due_on.isoformat()
    assert Decimal(data["total"]) == total
    assert Decimal(data["subtotal"]) + Decimal(data["tax"]) == total
    assert sorted((s["contract_id"], Decimal(s["total"])) for s in data["sections"]) == sorted(
        (cid, s.total) for cid, s in sections.items()
    )
    assert {s["section_id"] for s in data["sections"]} == {s.invoice_id for s in sections.values()}

    # A part paid: the invoice is not paid yet.
    await pay(temporal_client, workflow_id, number, Decimal("100.00"))
    await wait_for(
        temporal_client,
        min(cids),
        lambda s: s.invoices[0].amount_paid == Decimal("100.00"),
        what="100.00 paid",
    )
    assert not events_of(ledger, PAID, invoice_id)

    # The rest paid: one consolidated_invoice.paid, with the amount paid.
    rest = total - Decimal("100.00")
    last = await pay(temporal_client, workflow_id, number, rest)

    async def paid() -> list[Delivery]:
        return received(endpoint, PAID, workflow_id)

    [delivery] = await until(paid, "consolidated_invoice.paid")
    verify(delivery.headers.get(SIGNATURE_HEADER), delivery.body, [sub["secret"]])
    data = delivery.envelope["data"]
    assert data["invoice_id"] == invoice_id and Decimal(data["total"]) == total
    assert Decimal(data["amount_paid"]) == total and Decimal(data["credited"]) == 0
    assert data["paid_on"] == "2026-11-23"

    # The last payment again, and the paid step retried: nothing is written or sent again.
    await record_customer_payment(temporal_client, workflow_id, _payment(last, number, rest))
    await wait_for_history(temporal_client, workflow_id, f"payment {last} already allocated")
    billing = await customer_billing_status(temporal_client, workflow_id)
    invoice = next(i for i in billing.invoices if i.invoice_id == invoice_id)
    connectors = build_connectors(settings)
    try:
        steps = ConsolidationActivities(connectors, ledger, settings)
        await ActivityEnvironment().run(
            steps.record_consolidated_invoice_paid,
            ConsolidatedInvoicePaidInput(
                contract_id=workflow_id,
                key=billing.key,
                invoice=invoice,
                paid_on=date(2026, 11, 23),
            ),
        )
    finally:
        await connectors.aclose()
    # The issue step's write retried, as a retried step would make it.
    [issued_event] = events_of(ledger, ISSUED, invoice_id)
    ledger.record_consolidated_invoice_event(
        OutboundEventType.CONSOLIDATED_INVOICE_ISSUED,
        issued_event.event.payload,
        datetime.now(UTC),
    )
    mine = [*events_of(ledger, ISSUED, invoice_id), *events_of(ledger, PAID, invoice_id)]
    assert [e.event.type for e in mine] == [ISSUED, PAID]
    assert all(len(e.deliveries) == 1 for e in mine)
    assert len(received(endpoint, ISSUED, workflow_id)) == 1
    assert len(received(endpoint, PAID, workflow_id)) == 1


async def wait_for_history(client: Client, workflow_id: str, line: str) -> None:
    async def found() -> bool:
        billing = await customer_billing_status(client, workflow_id)
        return any(line in h for h in billing.history)

    await until(found, line)


async def test_a_subscription_to_an_unknown_consolidated_type_is_422(
    api: httpx.AsyncClient,
) -> None:
    answer = await api.post(
        "/api/subscriptions",
        json={"url": "https://hooks.example.com/c2c", "event_types": ["consolidated_invoice.sent"]},
    )
    assert answer.status_code == 422, answer.text
    assert "event_types" in answer.text
