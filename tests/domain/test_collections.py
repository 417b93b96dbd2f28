"""Collections: due dates, dunning levels, and how payments are applied to invoices."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.collections import (
    DEFAULT_DUNNING_OFFSETS,
    Application,
    CashBook,
    due_on,
    dunning_dates,
)


def D(text: str) -> Decimal:
    return Decimal(text)


def applied(payment_id: str, invoice_id: str, amount: str) -> Application:
    return Application(payment_id=payment_id, invoice_id=invoice_id, amount=D(amount))


def assert_balanced(book: CashBook) -> None:
    assert book.received == book.applied + book.unapplied
    assert all(book.balance(i.invoice_id) >= 0 for i in book.invoices)


# --- due dates and dunning ---------------------------------------------------------------


def test_due_on_adds_the_payment_terms() -> None:
    assert due_on(date(2026, 12, 1), 30) == date(2026, 12, 31)
    assert due_on(date(2026, 12, 15), 30) == date(2027, 1, 14)
    assert due_on(date(2026, 12, 1), 0) == date(2026, 12, 1)
    with pytest.raises(ValueError, match="payment_terms_days must not be negative"):
        due_on(date(2026, 12, 1), -1)


def test_dunning_levels_follow_the_offsets_in_order() -> None:
    due = date(2026, 12, 31)
    assert dunning_dates(due, DEFAULT_DUNNING_OFFSETS) == [
        (1, date(2027, 1, 7)),
        (2, date(2027, 1, 14)),
        (3, date(2027, 1, 30)),
    ]
    assert dunning_dates(due, [30, 7]) == [(1, date(2027, 1, 7)), (2, date(2027, 1, 30))]
    assert dunning_dates(due, []) == []


@pytest.mark.parametrize(
    ("offsets", "message"),
    [((7, 0), "must be positive"), ((-3,), "must be positive"), ((7, 14, 7), "7 appears twice")],
)
def test_bad_dunning_offsets_are_named(offsets: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dunning_dates(date(2026, 12, 31), offsets)


# --- cash book -----------------------------------------------------------------------------


def test_a_payment_naming_its_invoice_pays_it() -> None:
    book = CashBook()
    assert book.issue("INV-1", D("1000.00")) == []
    assert book.receive("PAY-1", D("400.00"), "INV-1") == [applied("PAY-1", "INV-1", "400.00")]
    assert book.balance("INV-1") == D("600.00")
    assert (book.balance_due, book.unapplied, book.received, book.applied) == (
        D("600.00"),
        D("0"),
        D("400.00"),
        D("400.00"),
    )
    assert_balanced(book)


def test_an_unnamed_payment_pays_the_oldest_invoice_with_a_balance() -> None:
    book = CashBook()
    book.issue("INV-1", D("100.00"))
    book.issue("INV-2", D("200.00"))
    book.receive("PAY-1", D("100.00"), "INV-1")
    assert book.receive("PAY-2", D("50.00"), None) == [applied("PAY-2", "INV-2", "50.00")]
    assert_balanced(book)


def test_an_overpayment_waits_as_unapplied_cash_for_the_next_invoice() -> None:
    book = CashBook()
    book.issue("INV-1", D("100.00"))
    book.issue("INV-2", D("200.00"))
    # The remainder is not spread over INV-2: c2c does not guess what it was meant for.
    assert book.receive("PAY-1", D("150.00"), "INV-1") == [applied("PAY-1", "INV-1", "100.00")]
    assert (book.balance("INV-2"), book.unapplied) == (D("200.00"), D("50.00"))
    assert book.issue("INV-3", D("30.00")) == [applied("PAY-1", "INV-3", "30.00")]
    assert book.unapplied == D("20.00")
    assert_balanced(book)


def test_a_payment_without_a_reference_settles_open_invoices_oldest_first() -> None:
    book = CashBook()
    book.issue("INV-1", D("100.00"))
    book.issue("INV-2", D("200.00"))
    assert book.receive("PAY-1", D("250.00"), None) == [
        applied("PAY-1", "INV-1", "100.00"),
        applied("PAY-1", "INV-2", "150.00"),
    ]
    assert (book.balance_due, book.unapplied) == (D("50.00"), D("0"))
    assert book.receive("PAY-2", D("80.00"), None) == [applied("PAY-2", "INV-2", "50.00")]
    assert book.unapplied == D("30.00")
    assert_balanced(book)


def test_issue_applies_waiting_cash_oldest_payment_first() -> None:
    book = CashBook()
    book.receive("PAY-A", D("70.00"), None)
    book.receive("PAY-B", D("50.00"), None)
    assert book.unapplied == D("120.00")
    assert book.issue("INV-1", D("100.00")) == [
        applied("PAY-A", "INV-1", "70.00"),
        applied("PAY-B", "INV-1", "30.00"),
    ]
    assert (book.balance("INV-1"), book.unapplied) == (D("0.00"), D("20.00"))
    assert_balanced(book)


def test_a_payment_for_an_invoice_not_yet_registered_waits_for_it() -> None:
    book = CashBook()
    assert book.receive("PAY-1", D("500.00"), "INV-9") == []
    assert book.issue("INV-9", D("500.00")) == [applied("PAY-1", "INV-9", "500.00")]
    assert book.balance_due == 0
    assert_balanced(book)


def test_a_payment_naming_a_paid_invoice_stays_unapplied() -> None:
    book = CashBook()
    book.issue("INV-1", D("100.00"))
    book.issue("INV-2", D("100.00"))
    book.receive("PAY-1", D("100.00"), "INV-1")
    assert book.receive("PAY-2", D("100.00"), "INV-1") == []
    assert book.unapplied == D("100.00")
    assert_balanced(book)


def test_a_repeated_payment_id_changes_nothing() -> None:
    book = CashBook()
    book.issue("INV-1", D("100.00"))
    book.receive("PAY-1", D("40.00"), None)
    before = book.model_dump()
    assert book.receive("PAY-1", D("40.00"), None) == []
    assert book.receive("PAY-1", D("99.00"), "INV-1") == []
    assert book.model_dump() == before


def test_a_repeated_invoice_id_applies_nothing_twice() -> None:
    book = CashBook()
    book.receive("PAY-1", D("40.00"), None)
    assert book.issue("INV-1", D("100.00")) == [applied("PAY-1", "INV-1", "40.00")]
    before = book.model_dump()
    assert book.issue("INV-1", D("100.00")) == []
    assert book.model_dump() == before


def test_a_credit_note_reduces_the_balance() -> None:
    book = CashBook()
    book.issue("INV-1", D("1000.00"))
    book.receive("PAY-1", D("600.00"), "INV-1")
    assert book.credit("INV-1", D("300.00")) == D("0")
    assert book.balance("INV-1") == D("100.00")
    assert book.received == D("600.00")
    assert_balanced(book)


def test_credit_beyond_the_open_balance_becomes_unapplied_cash() -> None:
    book = CashBook()
    book.issue("INV-1", D("1000.00"))
    book.receive("PAY-1", D("900.00"), "INV-1")
    assert book.credit("INV-1", D("250.00")) == D("150.00")
    assert book.balance("INV-1") == 0
    assert (book.unapplied, book.received) == (D("150.00"), D("1050.00"))
    assert book.credit("INV-1", D("50.00")) == D("50.00")
    assert [r.payment_id for r in book.receipts] == ["PAY-1", "credit:INV-1:1", "credit:INV-1:2"]
    # The customer's credit pays the next invoice.
    assert book.issue("INV-2", D("180.00")) == [
        applied("credit:INV-1:1", "INV-2", "150.00"),
        applied("credit:INV-1:2", "INV-2", "30.00"),
    ]
    assert_balanced(book)


def test_credit_notes_cannot_exceed_the_invoice_total() -> None:
    book = CashBook()
    book.issue("INV-1", D("100.00"))
    book.credit("INV-1", D("60.00"))
    with pytest.raises(ValueError, match=r"exceeds what is left to credit on INV-1 \(40.00\)"):
        book.credit("INV-1", D("40.01"))
    with pytest.raises(ValueError, match="greater than zero"):
        book.credit("INV-1", D("0"))
    with pytest.raises(KeyError, match="INV-2"):
        book.credit("INV-2", D("1"))
    with pytest.raises(KeyError, match="INV-2"):
        book.balance("INV-2")


def test_amounts_must_be_positive() -> None:
    book = CashBook()
    with pytest.raises(ValueError, match="greater than zero"):
        book.receive("PAY-1", D("0"), None)
    with pytest.raises(ValueError, match="must not be negative"):
        book.issue("INV-1", D("-1"))
    assert book.receipts == [] and book.invoices == []


def test_jpy_amounts() -> None:
    book = CashBook()
    book.issue("INV-1", D("550000"))
    book.receive("PAY-1", D("600000"), None)
    assert (str(book.balance("INV-1")), str(book.unapplied)) == ("0", "50000")


def test_the_cash_book_round_trips_through_json() -> None:
    book = CashBook()
    book.issue("INV-1", D("1000.00"))
    book.receive("PAY-1", D("1200.00"), "INV-1")
    book.credit("INV-1", D("100.00"))
    text = book.model_dump_json()
    assert '"1200.00"' in text
    again = CashBook.model_validate_json(text)
    assert again == book
    assert (again.received, again.applied, again.unapplied) == (
        D("1300.00"),
        D("1000.00"),
        D("300.00"),
    )
