"""Outbound events in the ledger: each is written with the fact that causes it, once however
often the fact is reported, with a delivery to each subscription that takes its type;
dispatchers claim due deliveries one at a time; a replay starts a delivery over."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from domain.names import ExceptionQueue, Stage
from ledger import (
    BillingStartIn,
    ContractRecordIn,
    DeliveryStatus,
    ExceptionIn,
    InvoiceIssuedIn,
    Ledger,
    NotFoundInLedger,
    PaymentFactIn,
)
from ledger.outbound import outbound_event_id

At = Callable[[float], datetime]


def issue(ledger: Ledger, at: At, contract_id: str = "C-1", total: str = "1200.00") -> str:
    ledger.record_billing_started(
        BillingStartIn(
            contract_id=contract_id,
            reference="2026-10",
            period="2026-10",
            period_close=True,
            legal_entity="US01",
            currency="USD",
            requested_at=at(0),
        )
    )
    invoice_id = f"INV-{contract_id}"
    issued = InvoiceIssuedIn(
        contract_id=contract_id,
        reference="2026-10",
        invoice_id=invoice_id,
        invoice_date=date(2026, 10, 31),
        due_on=date(2026, 11, 30),
        total=Decimal(total),
        subtotal=Decimal(total),
        tax=Decimal(0),
        issued_at=at(1),
    )
    ledger.record_invoice_issued(issued)
    ledger.record_invoice_issued(issued)  # a retried activity reports it again
    return invoice_id


def pay(ledger: Ledger, at: At, payment_id: str, amount: str, invoice_id: str = "INV-C-1") -> None:
    ledger.record_payment_fact(
        PaymentFactIn(
            payment_id=payment_id,
            contract_id="C-1",
            invoice_id=invoice_id,
            currency="USD",
            amount=Decimal(amount),
            received_on=date(2026, 11, 20),
            recorded_at=at(10),
        )
    )


def test_an_issued_invoice_is_one_event_delivered_to_each_subscription_taking_it(
    ledger: Ledger, at: At
) -> None:
    invoices = ledger.add_subscription("https://a.example/hook", ["invoice.issued"])
    ledger.add_subscription("https://b.example/hook", ["exception.opened"])

    invoice_id = issue(ledger, at)

    [item] = ledger.list_outbound_events()
    assert item.event.event_id == outbound_event_id("invoice.issued", "C-1:2026-10")
    assert item.event.type == "invoice.issued"
    assert item.event.payload == {
        "invoice_id": invoice_id,
        "contract_id": "C-1",
        "reference": "2026-10",
        "period": "2026-10",
        "legal_entity": "US01",
        "currency": "USD",
        "total": "1200.00",
        "subtotal": "1200.00",
        "tax": "0",
        "invoice_date": "2026-10-31",
        "due_on": "2026-11-30",
    }
    assert [(d.subscription_id, d.status, d.attempts) for d in item.deliveries] == [
        (invoices.subscription_id, "pending", 0)
    ]


def test_an_invoice_is_paid_once_its_payments_cover_it(ledger: Ledger, at: At) -> None:
    issue(ledger, at)

    pay(ledger, at, "PAY-1", "200.00")
    assert [e.event.type for e in ledger.list_outbound_events()] == ["invoice.issued"]
    pay(ledger, at, "PAY-2", "1000.00")
    pay(ledger, at, "PAY-2", "1000.00")

    paid = ledger.list_outbound_events(event_type="invoice.paid")
    assert [e.event.payload for e in paid] == [
        {
            "invoice_id": "INV-C-1",
            "contract_id": "C-1",
            "legal_entity": "US01",
            "currency": "USD",
            "total": "1200.00",
            "amount_paid": "1200.00",
            "paid_on": "2026-11-20",
        }
    ]


def test_exceptions_opened_and_escalated_and_a_contract_closed_are_events_once(
    ledger: Ledger, at: At
) -> None:
    opened = ExceptionIn(
        exception_id="EXC-1",
        contract_id="C-1",
        workflow_id="contract-C-1",
        stage=Stage.ACTIVE,
        system="erp",
        code="tax_missing",
        message="Jane Doe's address lacks a tax region",
        queue=ExceptionQueue.FINANCE,
        opened_at=at(0),
    )
    ledger.open_exception(opened)
    ledger.open_exception(opened)
    ledger.escalate_exception("EXC-1", at(60))
    ledger.escalate_exception("EXC-1", at(90))
    for _ in range(2):
        ledger.upsert_contract(
            ContractRecordIn(
                contract_id="C-1", stage=Stage.CLOSED, updated_at=at(100), closed_at=at(100)
            )
        )

    events = ledger.list_outbound_events()
    assert [e.event.type for e in events] == [
        "exception.opened",
        "exception.escalated",
        "contract.closed",
    ]
    assert "message" not in events[0].event.payload
    assert events[1].event.payload["escalated_at"] == at(60).isoformat()
    assert events[2].event.payload["closed_at"] == at(100).isoformat()


def test_a_due_delivery_is_claimed_by_one_dispatcher_and_settled(ledger: Ledger, at: At) -> None:
    ledger.add_subscription("https://a.example/hook", ["invoice.issued"])
    issue(ledger, at)
    now = datetime.now(at(0).tzinfo) + timedelta(seconds=1)

    [claimed] = ledger.claim_due_deliveries(10, now=now)
    assert ledger.claim_due_deliveries(10, now=now) == []  # held by the first
    assert claimed.event.type == "invoice.issued"
    later = now + timedelta(seconds=30)
    ledger.settle_delivery(
        claimed.delivery.delivery_id,
        status=DeliveryStatus.PENDING,
        status_code=503,
        error="HTTP 503",
        next_attempt_at=later,
        at=now,
    )
    assert ledger.claim_due_deliveries(10, now=now) == []  # not due yet
    [again] = ledger.claim_due_deliveries(10, now=later)
    ledger.settle_delivery(
        again.delivery.delivery_id,
        status=DeliveryStatus.DELIVERED,
        status_code=200,
        error=None,
        at=later,
    )

    [item] = ledger.list_outbound_events(status="delivered")
    [delivery] = item.deliveries
    assert (delivery.attempts, delivery.last_status_code, delivery.delivered_at) == (2, 200, later)
    assert ledger.list_outbound_events(status="pending") == []


def test_a_replay_starts_the_delivery_over_and_a_removed_subscription_gets_nothing(
    ledger: Ledger, at: At
) -> None:
    first = ledger.add_subscription("https://a.example/hook", ["invoice.issued"])
    second = ledger.add_subscription("https://b.example/hook", ["invoice.issued"])
    issue(ledger, at)
    [item] = ledger.list_outbound_events()
    ledger.remove_subscription(second.subscription_id)

    [replayed] = ledger.replay_outbound_event(item.event.event_id)

    assert (replayed.subscription_id, replayed.status) == (first.subscription_id, "pending")
    assert [s.subscription_id for s in ledger.list_subscriptions()] == [first.subscription_id]
    event = ledger.get_outbound_event(item.event.event_id)
    assert event is not None
    statuses = {d.subscription_id: d.status for d in event.deliveries}
    assert statuses == {first.subscription_id: "pending", second.subscription_id: "failed"}
    with pytest.raises(NotFoundInLedger):
        ledger.replay_outbound_event(item.event.event_id, second.subscription_id)
    with pytest.raises(NotFoundInLedger):
        ledger.replay_outbound_event("evt_nope")
