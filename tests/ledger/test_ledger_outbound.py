"""Outbound events in the ledger: each is written with the fact that causes it, once however
often the fact is reported, with a delivery to each subscription that takes its type;
dispatchers claim due deliveries one at a time; a replay starts a delivery over."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlmodel import Session

from c2c.secret_box import SEALED_PREFIX, SecretBox, SecretUnreadable, new_key
from domain.names import ExceptionQueue, Stage
from ledger import (
    BillingStartIn,
    ContractRecordIn,
    DeliveryStatus,
    ExceptionIn,
    InvoiceIssuedIn,
    Ledger,
    NotFoundInLedger,
    OutboundEventType,
    PaymentFactIn,
)
from ledger.models import Subscription
from ledger.outbound import OutboundBacklog, outbound_event_id

At = Callable[[float], datetime]
BOX = SecretBox([new_key()])


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
    invoices = ledger.add_subscription("https://a.example/hook", ["invoice.issued"], box=BOX)
    ledger.add_subscription("https://b.example/hook", ["exception.opened"], box=BOX)

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
    ledger.add_subscription("https://a.example/hook", ["invoice.issued"], box=BOX)
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
    first = ledger.add_subscription("https://a.example/hook", ["invoice.issued"], box=BOX)
    second = ledger.add_subscription("https://b.example/hook", ["invoice.issued"], box=BOX)
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


def test_a_paused_subscriptions_deliveries_wait_and_are_due_when_it_resumes(
    ledger: Ledger, at: At
) -> None:
    paused = ledger.add_subscription("https://a.example/hook", ["invoice.issued"], box=BOX)
    running = ledger.add_subscription("https://b.example/hook", ["invoice.issued"], box=BOX)
    ledger.pause_subscription(paused.subscription_id, at=at(0))
    issue(ledger, at)  # written while paused: recorded, and waits
    now = datetime.now(at(0).tzinfo) + timedelta(seconds=1)

    [claimed] = ledger.claim_due_deliveries(10, now=now)
    assert claimed.subscription.subscription_id == running.subscription_id
    assert ledger.outbound_backlog(now=now).pending == 2
    [listed, _] = ledger.list_subscriptions()
    assert listed.paused_at == at(0)

    resumed = ledger.pause_subscription(paused.subscription_id, paused=False, at=now)
    assert resumed.paused_at is None
    [waited] = ledger.claim_due_deliveries(10, now=now)
    assert waited.subscription.subscription_id == paused.subscription_id
    ledger.pause_subscription(paused.subscription_id, paused=False)  # again: no change
    ledger.remove_subscription(running.subscription_id)
    with pytest.raises(NotFoundInLedger):
        ledger.pause_subscription(running.subscription_id)  # removed
    with pytest.raises(NotFoundInLedger):
        ledger.pause_subscription("sub_nope")


def test_the_backlog_counts_pending_deliveries_and_the_oldest_ones_age(
    ledger: Ledger, at: At
) -> None:
    assert ledger.outbound_backlog(now=at(0)) == OutboundBacklog(pending=0, oldest_age_s=0.0)
    ledger.add_subscription("https://a.example/hook", ["invoice.issued"], box=BOX)
    issue(ledger, at)
    [item] = ledger.list_outbound_events()
    [delivery] = item.deliveries
    later = delivery.started_at + timedelta(seconds=90)

    assert ledger.outbound_backlog(now=later) == OutboundBacklog(pending=1, oldest_age_s=90.0)
    [claimed] = ledger.claim_due_deliveries(10, now=later)
    ledger.settle_delivery(
        claimed.delivery.delivery_id,
        status=DeliveryStatus.DELIVERED,
        status_code=204,
        error=None,
        at=later,
    )
    assert ledger.outbound_backlog(now=later).pending == 0
    last = ledger.last_deliveries()
    assert {k: (d.status, d.last_status_code) for k, d in last.items()} == {
        claimed.subscription.subscription_id: ("delivered", 204)
    }


def test_secrets_are_sealed_at_rest_and_resealed_with_the_current_key(ledger: Ledger) -> None:
    old, new = new_key(), new_key()
    created = ledger.add_subscription(
        "https://a.example/hook", ["invoice.issued"], box=SecretBox([old])
    )
    [stored] = ledger.list_subscriptions()
    assert created.secret.startswith("whsec_")
    assert stored.secret.startswith(SEALED_PREFIX) and created.secret not in stored.secret
    with Session(ledger.engine) as session:  # a secret stored in clear by c2c 0.10
        session.add(
            Subscription(
                subscription_id="sub_clear",
                url="https://b.example/hook",
                event_types=["invoice.issued"],
                secret="whsec_from_0_10",
                created_at=datetime.now(UTC),
            )
        )
        session.commit()

    with pytest.raises(SecretUnreadable, match=created.subscription_id):
        ledger.reseal_secrets(SecretBox([new]))  # the old key is missing: nothing changes
    assert {s.secret for s in ledger.list_subscriptions()} == {stored.secret, "whsec_from_0_10"}

    rotated = SecretBox([new, old])
    assert ledger.reseal_secrets(rotated) == 2
    assert ledger.reseal_secrets(rotated) == 0  # again: nothing to do
    only_new = SecretBox([new])
    opened = {s.subscription_id: only_new.open(s.secret) for s in ledger.list_subscriptions()}
    assert opened == {created.subscription_id: created.secret, "sub_clear": "whsec_from_0_10"}


def test_a_consolidated_invoices_event_is_written_once_by_its_invoice_id(
    ledger: Ledger, at: At
) -> None:
    sub = ledger.add_subscription(
        "https://a.example/hook", ["consolidated_invoice.issued"], box=BOX
    )
    data = {"invoice_id": "INV-CB-1", "number": "INV-0001", "total": "300.00"}
    issued = OutboundEventType.CONSOLIDATED_INVOICE_ISSUED
    ledger.record_consolidated_invoice_event(issued, data, at(1))
    ledger.record_consolidated_invoice_event(issued, data, at(2))  # a retried step

    [item] = ledger.list_outbound_events()
    assert item.event.event_id == outbound_event_id(issued, "INV-CB-1")
    assert (item.event.type, item.event.contract_id, item.event.payload) == (
        "consolidated_invoice.issued",
        None,
        data,
    )
    assert [d.subscription_id for d in item.deliveries] == [sub.subscription_id]

    with pytest.raises(ValueError, match="invoice_id"):
        ledger.record_consolidated_invoice_event(issued, {"number": "INV-0001"}, at(3))
    with pytest.raises(ValueError, match="event_type"):
        ledger.record_consolidated_invoice_event(OutboundEventType.INVOICE_PAID, data, at(3))
