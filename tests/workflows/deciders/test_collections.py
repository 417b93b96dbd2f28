"""The collections decider as a pure function: payments (partial, over, repeated, in another
currency), unapplied cash, credit notes, voids and dunning, without a server."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.carried import CARRIED_PAYMENT_IDS
from domain.contract_state import ContractState
from domain.models import CreditInvoice, PaymentReceived, ResolveException
from domain.names import ExceptionAction
from domain.periods import Period
from domain.steps import (
    APPLY_CASH,
    APPLY_PAYMENT,
    BILL_PERIOD,
    ISSUE_CREDIT_NOTE,
    LOOK_UP_PAYMENT,
    SEND_DUNNING_REMINDER,
    CreditNoteInput,
    DunningInput,
    PaymentKnown,
)
from tests.workflows.deciders.support import Systems, at, contract, lines, steps
from workflows import billing, collections
from workflows.collections import CASH_STEP, DUNNING_STEP
from workflows.commands import CloseException, OpenException, ReadLedger

pytestmark = pytest.mark.unit


def invoiced(hours: str = "10", **changes: object) -> tuple[ContractState, Systems]:
    """A contract whose October is billed: INV-1, ``hours`` at 100.00, tax 10 %."""
    s = contract(end_date="2026-12-31", **changes)
    systems = Systems(hours={"2026-10": Decimal(hours)}, decisions=s.decisions)
    systems.run(billing.bill_period(s, systems, Period.parse("2026-10")))
    return s, systems


def payment(pid: str, amount: str, **changes: object) -> PaymentReceived:
    fields: dict[str, object] = {
        "payment_id": pid,
        "amount": amount,
        "currency": "USD",
        "received_on": "2026-11-20",
        **changes,
    }
    return PaymentReceived.model_validate(fields)


def status_of(s: ContractState, invoice_id: str) -> str:
    return next(v.status for v in collections.invoice_views(s) if v.invoice_id == invoice_id)


def test_a_partial_payment_applies_to_the_oldest_open_invoice() -> None:
    s, systems = invoiced()
    commands = systems.run(collections.receive(s, systems, payment("P1", "500.00")))
    (applied,) = steps(commands)
    assert applied.name == APPLY_PAYMENT
    assert applied.arg.invoice_id == "INV-1"  # type: ignore[attr-defined]
    assert applied.arg.erp_contract_id == "ERP-C-1"  # type: ignore[attr-defined]
    assert lines(commands) == ["payment P1: 500.00 USD applied to invoice N-1"]
    assert s.collections.book.balance("INV-1") == Decimal("600.00")
    assert status_of(s, "INV-1") == "partially_paid"


def test_an_overpayment_waits_as_unapplied_cash_for_the_next_invoice() -> None:
    s, systems = invoiced()
    systems.run(collections.receive(s, systems, payment("P1", "1500.00")))
    assert status_of(s, "INV-1") == "paid"
    assert s.collections.book.unapplied == Decimal("400.00")

    systems.hours["2026-11"] = Decimal("2")
    systems.now = at("2026-12-02")
    commands = systems.run(billing.bill_period(s, systems, Period.parse("2026-11")))
    (bill, cash) = steps(commands)
    assert bill.name == BILL_PERIOD
    assert cash.name == APPLY_CASH
    (application,) = cash.arg.applications  # type: ignore[attr-defined]
    assert (application.source_id, application.invoice_id) == ("P1", "INV-2")
    assert application.amount == Decimal("220.00")
    assert "unapplied cash of 220.00 USD applied to invoice N-2" in lines(commands)
    assert s.collections.book.unapplied == Decimal("180.00")


def test_a_repeated_payment_id_changes_nothing() -> None:
    s, systems = invoiced()
    systems.run(collections.receive(s, systems, payment("P1", "500.00")))
    commands = systems.run(collections.receive(s, systems, payment("P1", "500.00")))
    assert steps(commands) == []
    assert lines(commands) == ["payment P1 already applied: ignored"]
    assert s.collections.book.balance("INV-1") == Decimal("600.00")


def test_a_repeated_payment_id_an_earlier_run_left_behind_is_found_in_the_ledger() -> None:
    s, systems = invoiced()
    systems.run(collections.receive(s, systems, payment("P1", "500.00")))
    carried = s.collections.folded()
    carried.payments_seen, carried.payments_forgotten = [], 1
    s.collections = carried
    systems.results[LOOK_UP_PAYMENT] = PaymentKnown(known=True)
    commands = systems.run(collections.receive(s, systems, payment("P1", "500.00")))
    assert [c.name for c in commands if isinstance(c, ReadLedger)] == [LOOK_UP_PAYMENT]
    assert steps(commands) == []
    assert lines(commands) == ["payment P1 already applied: ignored"]
    # An id the ledger does not hold is a new payment.
    systems.results[LOOK_UP_PAYMENT] = PaymentKnown(known=False)
    commands = systems.run(collections.receive(s, systems, payment("P3", "100.00")))
    assert [c.name for c in steps(commands)] == [APPLY_PAYMENT]


def test_a_hand_over_carries_the_latest_payment_ids_and_those_of_open_cash() -> None:
    s, systems = invoiced()
    for n in range(CARRIED_PAYMENT_IDS + 30):
        systems.run(collections.receive(s, systems, payment(f"P{n}", "1.00")))
    carried = s.collections.folded()
    assert len(carried.payments_seen) == CARRIED_PAYMENT_IDS
    assert carried.payments_seen[-1] == f"P{CARRIED_PAYMENT_IDS + 29}"
    assert carried.payments_forgotten == 30


def test_a_payment_in_another_currency_goes_to_finance() -> None:
    s, systems = invoiced()
    commands = systems.run(collections.receive(s, systems, payment("P2", "500.00", currency="EUR")))
    assert steps(commands) == []
    (opened,) = [c for c in commands if isinstance(c, OpenException)]
    assert (opened.step, opened.code, opened.subject) == (
        CASH_STEP,
        "payment_currency_mismatch",
        "P2",
    )
    assert s.collections.payments_seen == ["P2"]
    assert s.collections.book.balance("INV-1") == Decimal("1100.00")


def test_a_credit_note_reduces_the_invoice_and_what_the_cap_counts() -> None:
    s, systems = invoiced()
    request = CreditInvoice(invoice_id="INV-1", amount=Decimal("200.00"), reason="discount")
    commands = systems.run(collections.credit(s, systems, request))
    (issued,) = steps(commands)
    arg = issued.arg
    assert isinstance(arg, CreditNoteInput) and issued.name == ISSUE_CREDIT_NOTE
    assert (arg.credit_note_id, arg.amount, arg.on) == (
        "INV-1-CN1",
        Decimal("200.00"),
        date(2026, 11, 2),
    )
    assert arg.revenue is not None and arg.revenue.amount == Decimal("-200.00")  # as invoiced
    assert s.billing.billed_to_date == Decimal("800.00")
    assert s.collections.credited_subtotal == {"INV-1": Decimal("200.00")}
    assert s.collections.book.balance("INV-1") == Decimal("880.00")


def test_credit_notes_are_refused_beyond_the_invoice_and_issued_once() -> None:
    s, systems = invoiced()
    too_much = CreditInvoice(invoice_id="INV-1", amount=Decimal("2000.00"), reason="all")
    commands = systems.run(collections.credit(s, systems, too_much))
    assert steps(commands) == []
    assert "between 0 and 1000 USD (before tax) is left to credit" in lines(commands)[0]

    keyed = CreditInvoice(
        invoice_id="INV-1", amount=Decimal("10.00"), reason="fee", credit_note_id="CN-A"
    )
    assert len(steps(systems.run(collections.credit(s, systems, keyed)))) == 1
    commands = systems.run(collections.credit(s, systems, keyed))
    assert lines(commands) == ["credit note CN-A already issued: ignored"]

    unknown = CreditInvoice(invoice_id="INV-9", amount=Decimal("10.00"), reason="fee")
    assert (
        "refused: not an open or recent invoice"
        in lines(systems.run(collections.credit(s, systems, unknown)))[0]
    )


def test_a_void_credits_only_what_nothing_was_paid_on() -> None:
    s, systems = invoiced()
    systems.hours["2026-11"] = Decimal("3")
    systems.now = at("2026-12-02")
    systems.run(billing.bill_period(s, systems, Period.parse("2026-11")))
    systems.run(collections.receive(s, systems, payment("P1", "10.00", invoice_id="INV-1")))
    commands = systems.run(collections.void_unpaid(s, systems, "contract aborted by operator"))
    (void,) = steps(commands)
    assert (void.arg.invoice_id, void.arg.amount) == ("INV-2", Decimal("300"))  # type: ignore[attr-defined]


def test_dunning_marks_overdue_reminds_and_escalates() -> None:
    s, systems = invoiced()  # INV-1 due 2026-12-02
    assert not collections.work_due(s, at("2026-12-02"))
    systems.now = at("2026-12-03")
    assert collections.next_wake(s) == at("2026-12-03").replace(hour=0)
    assert collections.work_due(s, systems.now)
    commands = systems.run(collections.do_due_work(s, systems))
    assert lines(commands) == ["invoice N-1 is overdue (due 2026-12-02)"]
    assert status_of(s, "INV-1") == "overdue"

    systems.now = at("2026-12-09")
    (reminder,) = steps(systems.run(collections.do_due_work(s, systems)))
    assert reminder.name == SEND_DUNNING_REMINDER
    assert isinstance(reminder.arg, DunningInput)
    assert (reminder.arg.level, reminder.arg.final, reminder.arg.on) == (
        1,
        False,
        date(2026, 12, 9),
    )

    # After a long pause only the latest reminder due goes out: the final one, escalated.
    systems.now = at("2027-01-05")
    commands = systems.run(collections.do_due_work(s, systems))
    (final,) = steps(commands)
    assert (final.arg.level, final.arg.final) == (3, True)  # type: ignore[attr-defined]
    (escalation,) = [c for c in commands if isinstance(c, OpenException)]
    assert (escalation.step, escalation.subject) == (DUNNING_STEP, "INV-1")
    assert s.collections.escalations == {"EXC-dunning-INV-1": "INV-1"}
    assert not collections.work_due(s, systems.now)

    # The finance queue retries: the final reminder goes out again.
    s.decisions["EXC-dunning-INV-1"] = ResolveException(
        exception_id="EXC-dunning-INV-1", action=ExceptionAction.RETRY, operator="fin"
    )
    assert collections.work_due(s, systems.now)
    commands = systems.run(collections.do_due_work(s, systems))
    assert isinstance(commands[0], CloseException)
    assert steps(commands)[0].arg.level == 4  # type: ignore[attr-defined]

    # Paid in full: the new escalation closes with the dunning.
    systems.run(collections.receive(s, systems, payment("P1", "1100.00")))
    closed = [c for c in systems.commands if isinstance(c, CloseException)]
    assert closed[-1].default is not None and closed[-1].default.action is ExceptionAction.SKIP
    assert s.collections.escalations == {} and s.collections.overdue == []
    assert collections.next_wake(s) is None


def test_a_skipped_escalation_stops_dunning_the_invoice() -> None:
    s, systems = invoiced()
    systems.now = at("2027-01-05")
    systems.run(collections.do_due_work(s, systems))  # overdue
    systems.run(collections.do_due_work(s, systems))  # final reminder, escalated
    (eid,) = s.collections.escalations
    s.decisions[eid] = ResolveException(
        exception_id=eid, action=ExceptionAction.SKIP, operator="fin", note="collected by agency"
    )
    commands = systems.run(collections.do_due_work(s, systems))
    assert lines(commands) == ["dunning of invoice N-1 stopped by fin: collected by agency"]
    assert s.collections.dunning_stopped == ["INV-1"]
    assert collections.next_wake(s) is None
