"""What a contract carries into its next run: settled invoices fold into exact sums."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.carried import BillingState, CarriedState, CollectionsState
from domain.collections import CashBook
from domain.models import CreditNoteSummary, InvoiceSummary, SettledInvoices
from domain.periods import Period


def D(text: str) -> Decimal:
    return Decimal(text)


def invoice(invoice_id: str, total: str) -> InvoiceSummary:
    amount = D(total)
    return InvoiceSummary(
        invoice_id=invoice_id,
        number=f"N-{invoice_id}",
        period="2026-01",
        subtotal=amount,
        tax=D("0.00"),
        total=amount,
        due_on=date(2026, 3, 1),
    )


def credit_note(credit_note_id: str, invoice_id: str, amount: str) -> CreditNoteSummary:
    return CreditNoteSummary(
        credit_note_id=credit_note_id,
        invoice_id=invoice_id,
        subtotal=D(amount),
        tax=D("0.00"),
        total=D(amount),
        reason="correction",
    )


def state(*totals: str) -> CollectionsState:
    """Invoices INV-1… of these totals, issued in order."""
    s = CollectionsState()
    for n, total in enumerate(totals, start=1):
        s.invoices.append(invoice(f"INV-{n}", total))
        s.book.issue(f"INV-{n}", D(total))
    return s


def pay(s: CollectionsState, payment_id: str, amount: str, invoice_id: str | None) -> None:
    s.payments_seen.append(payment_id)
    s.book.receive(payment_id, D(amount), invoice_id)


def figures(s: CollectionsState) -> tuple[Decimal, ...]:
    """What the status reports of the cash, whatever is folded."""
    book = s.book
    return (book.balance_due, book.unapplied, book.received, book.applied)


def assert_balanced(book: CashBook) -> None:
    assert book.received == book.applied + book.unapplied
    assert all(book.balance(i.invoice_id) >= 0 for i in book.invoices)


def test_settled_invoices_fold_into_sums_and_open_ones_stay() -> None:
    s = state("100.00", "200.00", "300.00")
    pay(s, "P1", "100.00", "INV-1")
    pay(s, "P2", "50.00", "INV-2")
    s.overdue = ["INV-2"]
    s.dunned = {"INV-1": 1, "INV-2": 2}

    folded = s.folded()

    assert [i.invoice_id for i in folded.invoices] == ["INV-2", "INV-3"]
    assert [r.invoice_id for r in folded.book.invoices] == ["INV-2", "INV-3"]
    assert [r.payment_id for r in folded.book.receipts] == []
    assert folded.settled == SettledInvoices(
        count=1,
        subtotal=D("100.00"),
        tax=D("0.00"),
        total=D("100.00"),
        amount_paid=D("100.00"),
    )
    assert folded.dunned == {"INV-2": 2} and folded.overdue == ["INV-2"]
    assert figures(folded) == figures(s) == (D("450.00"), D("0"), D("150.00"), D("150.00"))
    assert_balanced(folded.book)
    # Folding again changes nothing; the sums carry on from the fold before.
    assert folded.folded() == folded


def test_unapplied_cash_stays_and_is_applied_to_the_next_invoice() -> None:
    s = state("100.00")
    pay(s, "P1", "130.00", "INV-1")
    folded = s.folded()
    assert folded.invoices == [] and folded.settled.count == 1
    assert [(r.payment_id, r.unapplied) for r in folded.book.receipts] == [("P1", D("30.00"))]
    assert folded.book.issue("INV-2", D("50.00"))[0].amount == D("30.00")
    assert folded.book.balance_due == D("20.00")
    assert folded.book.received == D("130.00") == folded.book.applied
    assert_balanced(folded.book)


def test_escalated_and_kept_invoices_are_carried_whole() -> None:
    s = state("100.00", "200.00", "300.00")
    pay(s, "P1", "100.00", "INV-1")
    pay(s, "P2", "200.00", "INV-2")
    s.escalations = {"EXC-1": "INV-1"}
    folded = s.folded(keep={"INV-2"})
    assert [i.invoice_id for i in folded.invoices] == ["INV-1", "INV-2", "INV-3"]
    assert folded.settled.count == 0


def test_credit_notes_fold_with_their_invoice() -> None:
    s = state("100.00", "200.00")
    s.credit_notes = [credit_note("CN-1", "INV-1", "100.00")]
    s.credited_subtotal = {"INV-1": D("100.00")}
    s.book.credit("INV-1", D("100.00"))
    folded = s.folded()
    assert folded.credit_notes == [] and folded.credited_subtotal == {}
    assert folded.settled.count == 1 and folded.settled.credit_notes == 1
    assert folded.settled.amount_credited == D("100.00")
    assert folded.settled.amount_paid == D("0")
    assert figures(folded) == figures(s)


def test_a_repeated_payment_id_is_still_known_after_folding() -> None:
    s = state("100.00")
    pay(s, "P1", "100.00", "INV-1")
    folded = s.folded()
    # The book no longer has the receipt; the payment ids seen stay, and the workflow looks
    # there first, so the payment is applied once in every later run.
    assert folded.book.receipts == []
    assert folded.payments_seen == ["P1"]


def test_a_late_payment_on_a_folded_invoice_becomes_unapplied_cash() -> None:
    s = state("100.00")
    pay(s, "P1", "100.00", "INV-1")
    folded = s.folded()
    # Naming an invoice the book no longer holds is an overpayment on a settled invoice.
    assert folded.book.receive("P2", D("25.00"), "INV-1") == []
    assert folded.book.unapplied == D("25.00")
    assert folded.book.balance_due == 0
    assert_balanced(folded.book)


def test_a_late_credit_on_a_folded_invoice_becomes_unapplied_cash() -> None:
    s = state("100.00")
    pay(s, "P1", "100.00", "INV-1")
    folded = s.folded()
    assert not folded.book.holds("INV-1")
    with pytest.raises(KeyError):
        folded.book.credit("INV-1", D("10.00"))
    folded.book.credit_settled("credit:INV-1-CN-2026-02", D("10.00"))
    assert folded.book.unapplied == D("10.00")
    assert_balanced(folded.book)
    folded.credit_notes.append(credit_note("INV-1-CN-2026-02", "INV-1", "10.00"))
    again = folded.folded()
    # The credit note of an invoice folded before folds into the sums at the next hand-over;
    # its cash stays until it is applied.
    assert again.credit_notes == []
    assert again.settled.credit_notes == 1 and again.settled.amount_credited == D("10.00")
    assert again.book.unapplied == D("10.00")


def test_only_settled_invoices_fold_in_the_book() -> None:
    book = CashBook()
    book.issue("INV-1", D("10.00"))
    with pytest.raises(ValueError, match="still owed on INV-1"):
        book.fold({"INV-1"})


def test_a_state_carried_before_folding_validates_and_folds() -> None:
    """A payload a run carried before folding existed (no sums, every invoice) still starts
    the next run, and its next hand-over folds it."""
    old = {
        "run": 2,
        "stage": "active",
        "resume_stage": "active",
        "refs": {},
        "terms": {
            "currency": "USD",
            "start_date": "2026-01-01",
            "end_date": "2026-12-31",
            "rates": [],
            "milestones": [],
        },
        "validated": None,
        "history": [{"at": "2026-01-01T00:00:00Z", "stage": "active", "event": "x"}] * 80,
        "collections": {
            "book": {
                "invoices": [{"invoice_id": "INV-1", "total": "100.00", "paid": "100.00"}],
                "receipts": [{"payment_id": "P1", "amount": "100.00", "unapplied": "0"}],
            },
            "invoices": [invoice("INV-1", "100.00").model_dump(mode="json")],
            "payments_seen": ["P1"],
        },
    }
    carried = CarriedState.model_validate(old)
    assert carried.history_omitted == 0 and len(carried.history) == 80
    folded = carried.collections.folded()
    assert folded.invoices == [] and folded.settled.amount_paid == D("100.00")
    assert folded.book.received == folded.book.applied == D("100.00")


@given(
    totals=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=8),
    payments=st.lists(
        st.tuples(st.integers(min_value=1, max_value=12_000), st.integers(0, 9)), max_size=12
    ),
)
def test_folding_changes_no_figure(totals: list[int], payments: list[tuple[int, int]]) -> None:
    s = state(*(str(Decimal(t) / 100) for t in totals))
    for n, (cents, target) in enumerate(payments):
        named = f"INV-{target}" if target <= len(totals) and target else None
        pay(s, f"P{n}", str(Decimal(cents) / 100), named)
    folded = s.folded()
    assert figures(folded) == figures(s)
    assert_balanced(folded.book)
    held = sum((i.total for i in folded.invoices), Decimal(0))
    assert held + folded.settled.total == sum((i.total for i in s.invoices), Decimal(0))
    paid = sum((r.paid for r in folded.book.invoices), Decimal(0))
    assert paid + folded.settled.amount_paid == s.book.applied
    # What is still open is all still there.
    assert {r.invoice_id for r in s.book.invoices if r.balance > 0} <= {
        i.invoice_id for i in folded.invoices
    }


@given(st.lists(st.integers(0, 300), unique=True, max_size=60))
def test_closed_periods_round_trip_as_runs_of_months(offsets: list[int]) -> None:
    """Carried as runs of consecutive months, the closed periods come back exactly, in order;
    a contract closed month after month carries one entry."""
    periods = [str(_month(n)) for n in offsets]
    carried = BillingState(closed_periods=periods).model_dump_json()
    assert BillingState.model_validate_json(carried).closed_periods == periods
    monthly = [str(_month(n)) for n in range(120)]
    assert json.loads(BillingState(closed_periods=monthly).model_dump_json())["closed_periods"] == [
        "2016-11..2026-10"
    ]


def _month(n: int) -> Period:
    period = Period.parse("2016-11")
    for _ in range(n):
        period = period.next()
    return period
