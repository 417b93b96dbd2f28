"""The tax of credit notes: never more than the invoice carried, and the last note takes
exactly the rest, over random invoices with several tax lines and random partial credits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain.collections import CashBook
from domain.money import minor_units, round_money
from domain.tax import apply_tax, credit_note_tax, tax_code
from domain.write_models import (
    CreditNoteDraft,
    CreditNoteLineDraft,
    InvoiceDraft,
    InvoiceLineDraft,
    TaxLineResult,
    TaxResult,
)

EXAMPLES = settings(max_examples=300, deadline=None)
CURRENCIES = st.sampled_from(["USD", "EUR", "JPY"])
#: Rates of the demo jurisdictions, and 0 (reverse charge, exempt lines).
RATES = st.sampled_from(
    [Decimal(r) for r in ("0", "0.0725", "0.08875", "0.0625", "0.19", "0.20", "0.10", "0.081")]
)
ZERO = Decimal(0)


@dataclass
class Invoice:
    currency: str
    lines: list[tuple[Decimal, Decimal, Decimal]]  # amount, rate, tax

    @property
    def subtotal(self) -> Decimal:
        return sum((a for a, _, _ in self.lines), ZERO)

    @property
    def tax(self) -> Decimal:
        return sum((t for _, _, t in self.lines), ZERO)


def money(currency: str, low: int, high: int) -> st.SearchStrategy[Decimal]:
    places = minor_units(currency)
    return st.integers(low, high).map(lambda n: Decimal(n).scaleb(-places))


@st.composite
def invoices(draw: st.DrawFn) -> Invoice:
    """An invoice of one to six lines, each taxed at its own rate and rounded on its own."""
    currency = draw(CURRENCIES)
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        amount = draw(money(currency, 1, 10**9))
        rate = draw(RATES)
        lines.append((amount, rate, round_money(amount * rate, currency)))
    return Invoice(currency, lines)


@st.composite
def quotes(draw: st.DrawFn, invoice: Invoice, amount: Decimal) -> Decimal:
    """What an engine might quote for ``amount``: at one of the invoice's rates, rounded on
    its own; or any figure at all (an engine c2c does not control)."""
    rate = draw(st.sampled_from([r for _, r, _ in invoice.lines]))
    at_a_rate = round_money(amount * rate, invoice.currency)
    anything = money(invoice.currency, 0, 10**10)
    return draw(st.one_of(st.just(at_a_rate), anything))


@given(st.data(), invoices(), st.booleans())
@EXAMPLES
def test_credit_notes_never_exceed_the_invoice_and_the_last_leaves_zero(
    data: st.DataObject, invoice: Invoice, to_the_end: bool
) -> None:
    ccy, places = invoice.currency, minor_units(invoice.currency)
    unit = Decimal(1).scaleb(-places)
    credited_subtotal = credited_tax = ZERO
    notes: list[tuple[Decimal, Decimal]] = []
    for _ in range(data.draw(st.integers(1, 8))):
        left = invoice.subtotal - credited_subtotal
        if left == 0:
            break
        amount = data.draw(money(ccy, 1, int(left / unit)))
        tax = credit_note_tax(
            invoice_subtotal=invoice.subtotal,
            invoice_tax=invoice.tax,
            credited_subtotal=credited_subtotal,
            credited_tax=credited_tax,
            amount=amount,
            quoted_tax=data.draw(quotes(invoice, amount)),
            currency=ccy,
        )
        assert tax >= 0 and round_money(tax, ccy) == tax
        notes.append((amount, tax))
        credited_subtotal += amount
        credited_tax += tax
        assert credited_subtotal <= invoice.subtotal
        assert credited_tax <= invoice.tax
    left = invoice.subtotal - credited_subtotal
    if to_the_end and left > 0:
        tax = credit_note_tax(
            invoice_subtotal=invoice.subtotal,
            invoice_tax=invoice.tax,
            credited_subtotal=credited_subtotal,
            credited_tax=credited_tax,
            amount=left,
            quoted_tax=data.draw(quotes(invoice, left)),
            currency=ccy,
        )
        notes.append((left, tax))
        credited_subtotal += left
        credited_tax += tax
    whole = credited_subtotal == invoice.subtotal
    event(f"{len(notes)} notes, {'to the end' if whole else 'partial'}")
    if whole:
        # The last note leaves exactly zero, and the invoice is settled by its notes.
        assert credited_tax == invoice.tax
        book = CashBook()
        total = invoice.subtotal + invoice.tax
        book.issue("INV-1", total)
        for amount, tax in notes:
            book.credit("INV-1", amount + tax)
        assert book.balance("INV-1") == 0
        [record] = book.invoices
        assert record.credit_notes == record.total


def test_the_reported_case_one_cent_over() -> None:
    """3,291.11 + 238.60 tax (two lines of 1,645.55 and 1,645.56 at 7.25 %: 119.30 each).
    0.10 is quoted 0.01 (0.00725 rounds up); the rest, 3,291.01, is quoted 238.60, one cent
    more than the 238.59 left: the last note takes 238.59."""
    invoice = {"invoice_subtotal": Decimal("3291.11"), "invoice_tax": Decimal("238.60")}
    first = credit_note_tax(
        **invoice,
        credited_subtotal=ZERO,
        credited_tax=ZERO,
        amount=Decimal("0.10"),
        quoted_tax=Decimal("0.01"),
        currency="USD",
    )
    rest = credit_note_tax(
        **invoice,
        credited_subtotal=Decimal("0.10"),
        credited_tax=first,
        amount=Decimal("3291.01"),
        quoted_tax=Decimal("238.60"),
        currency="USD",
    )
    assert (first, rest) == (Decimal("0.01"), Decimal("238.59"))
    assert first + rest == Decimal("238.60")


def test_the_mirror_case_one_cent_left() -> None:
    """3,291.11 + 238.61 tax (one line: 238.605475 rounds up). 0.06 is quoted 0.00 (0.00435);
    the rest, 3,291.05, is quoted 238.60 (238.601125), a cent short of the 238.61 left."""
    invoice = {"invoice_subtotal": Decimal("3291.11"), "invoice_tax": Decimal("238.61")}
    first = credit_note_tax(
        **invoice,
        credited_subtotal=ZERO,
        credited_tax=ZERO,
        amount=Decimal("0.06"),
        quoted_tax=Decimal("0.00"),
        currency="USD",
    )
    rest = credit_note_tax(
        **invoice,
        credited_subtotal=Decimal("0.06"),
        credited_tax=first,
        amount=Decimal("3291.05"),
        quoted_tax=Decimal("238.60"),
        currency="USD",
    )
    assert (first, rest) == (Decimal("0.00"), Decimal("238.61"))


def test_yen_have_no_minor_unit() -> None:
    # 100,001 yen at 10 % is 10,000 yen of tax (10,000.1 rounds down); 1 yen credited first is
    # quoted 0 (0.1), the rest 10,000 (10,000.0): the rest takes all 10,000 left.
    first = credit_note_tax(
        invoice_subtotal=Decimal(100001),
        invoice_tax=Decimal(10000),
        credited_subtotal=ZERO,
        credited_tax=ZERO,
        amount=Decimal(1),
        quoted_tax=Decimal(0),
        currency="JPY",
    )
    rest = credit_note_tax(
        invoice_subtotal=Decimal(100001),
        invoice_tax=Decimal(10000),
        credited_subtotal=Decimal(1),
        credited_tax=first,
        amount=Decimal(100000),
        quoted_tax=Decimal(10000),
        currency="JPY",
    )
    assert (first, rest) == (Decimal(0), Decimal(10000))
    with pytest.raises(ValueError, match="quoted_tax"):
        credit_note_tax(
            invoice_subtotal=Decimal(100001),
            invoice_tax=Decimal(10000),
            credited_subtotal=ZERO,
            credited_tax=ZERO,
            amount=Decimal(1),
            quoted_tax=Decimal("0.1"),
            currency="JPY",
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount": Decimal("3291.12")}, "amount: between 0 and 3291.11"),
        ({"amount": Decimal(0)}, "amount: between 0 and 3291.11"),
        ({"amount": Decimal("0.001")}, "amount: "),
        ({"quoted_tax": Decimal("-1.00")}, "quoted_tax: must not be negative"),
        ({"credited_tax": Decimal("238.61")}, "exceed the invoice"),
    ],
)
def test_refusals_name_the_figure(changes: dict[str, Decimal], message: str) -> None:
    figures = {
        "invoice_subtotal": Decimal("3291.11"),
        "invoice_tax": Decimal("238.60"),
        "credited_subtotal": ZERO,
        "credited_tax": ZERO,
        "amount": Decimal("1.00"),
        "quoted_tax": Decimal("0.07"),
    }
    with pytest.raises(ValueError, match=message):
        credit_note_tax(**(figures | changes), currency="USD")


def test_tax_codes_by_line_kind() -> None:
    assert tax_code("time") == tax_code("milestone") == "SV-PROFESSIONAL"
    assert tax_code("expense") == "SV-EXPENSE"
    assert tax_code("something new") == "SV-PROFESSIONAL"


def _draft(amounts: list[Decimal], currency: str = "USD") -> InvoiceDraft:
    return InvoiceDraft(
        contract_id="K-1",
        reference="2026-10",
        customer_id="C-1",
        legal_entity="US01",
        currency=currency,
        period="2026-10",
        invoice_date=date(2026, 10, 31),
        due_on=date(2026, 11, 30),
        lines=tuple(
            InvoiceLineDraft(line_id=str(n), kind="time", amount=amount)
            for n, amount in enumerate(amounts, start=1)
        ),
    )


def _result(taxes: dict[str, Decimal]) -> TaxResult:
    return TaxResult(
        lines=tuple(
            TaxLineResult(number=number, amount=Decimal(0), tax=tax)
            for number, tax in taxes.items()
        )
    )


def test_an_invoice_carries_the_sum_of_its_lines_taxes() -> None:
    taxed = apply_tax(
        _draft([Decimal("1645.55"), Decimal("1645.56")]),
        _result({"1": Decimal("119.30"), "2": Decimal("119.30"), "other": Decimal("5.00")}),
    )
    assert (taxed.subtotal, taxed.tax, taxed.total) == (
        Decimal("3291.11"),
        Decimal("238.60"),
        Decimal("3529.71"),
    )
    assert [line.tax_amount for line in taxed.lines] == [Decimal("119.30"), Decimal("119.30")]


def test_a_credit_note_is_taxed_by_the_same_function() -> None:
    note = CreditNoteDraft(
        credit_note_id="CN-1",
        reason="Hours billed twice",
        currency="USD",
        lines=(CreditNoteLineDraft(line_id="1", amount=Decimal("100.00")),),
    )
    taxed = apply_tax(note, _result({"1": Decimal("7.25")}))
    assert (taxed.subtotal, taxed.tax, taxed.total) == (
        Decimal("100.00"),
        Decimal("7.25"),
        Decimal("107.25"),
    )
    assert taxed.lines[0].tax_amount == Decimal("7.25")


@pytest.mark.parametrize(
    ("taxes", "message"),
    [
        ({"1": Decimal("1.00")}, "no tax for line"),
        ({"1": Decimal("1.00"), "2": Decimal("0.5")}, "tax of line 2"),
    ],
)
def test_an_invoice_refuses_taxes_it_cannot_carry(taxes: dict[str, Decimal], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_tax(_draft([Decimal(10), Decimal(5)], "JPY"), _result(taxes))
