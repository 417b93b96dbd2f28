"""The journal's entries balance in both currencies, whatever c2c recorded: invoices in any
currency at any rate, partial credits, partial and over payments at other rates, revenue
postings and catch-ups; the functional rounding and the realised FX gain or loss are lines of
their own."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.money import quantum, round_money
from ledger.journal import AccountRole, EntryKind, journal_entries
from ledger.models import BillingFact, CreditNoteFact, PaymentFact, RevenueFact

pytestmark = pytest.mark.unit

AT = datetime(2026, 10, 31, tzinfo=UTC)
DAY = date(2026, 10, 31)
CURRENCIES = ["USD", "EUR", "GBP", "JPY"]
rates = st.decimals(min_value=Decimal("0.005"), max_value=Decimal("200"), places=6)


@st.composite
def money(draw: st.DrawFn, currency: str, low: str = "0", high: str = "100000") -> Decimal:
    value = draw(st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=2))
    return round_money(value, currency)


@st.composite
def contract_facts(
    draw: st.DrawFn,
) -> tuple[list[BillingFact], list[CreditNoteFact], list[PaymentFact], list[RevenueFact]]:
    currency = draw(st.sampled_from(CURRENCIES))
    functional = draw(st.sampled_from(CURRENCIES))
    same = functional == currency
    invoices, notes, payments, revenue = [], [], [], []
    for n in range(draw(st.integers(min_value=1, max_value=4))):
        subtotal = draw(money(currency, "0.01"))
        tax_rate = Decimal(draw(st.sampled_from(["0", "0.0725", "0.19", "0.2"])))
        tax = round_money(subtotal * tax_rate, currency)
        rate = Decimal(1) if same else draw(rates)
        invoice_id = f"INV-{n}"
        invoices.append(
            BillingFact(
                fact_key=f"C-1:{n}", contract_id="C-1", reference=str(n), period="2026-10",
                period_close=True, legal_entity="UK01", currency=currency, requested_at=AT,
                invoice_id=invoice_id, invoice_date=DAY, due_on=DAY + timedelta(days=30),
                total=subtotal + tax, subtotal=subtotal, tax=tax, functional_currency=functional,
                exchange_rate=rate, issued_at=AT,
            )
        )  # fmt: skip
        # Partial credits: a part of the subtotal, its tax in proportion, never more.
        credited = draw(st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(1)]))
        if credited:
            note_subtotal = round_money(subtotal * credited, currency)
            note_tax = round_money(tax * credited, currency)
            notes.append(
                CreditNoteFact(
                    credit_note_id=f"CN-{n}", contract_id="C-1", invoice_id=invoice_id,
                    currency=currency, total=note_subtotal + note_tax, subtotal=note_subtotal,
                    tax=note_tax, issued_on=DAY, issued_at=AT,
                )
            )  # fmt: skip
        for k in range(draw(st.integers(min_value=0, max_value=2))):
            amount = draw(money(currency, "0.01", "200000"))
            applied = min(amount, draw(money(currency, "0", "200000")))
            payments.append(
                PaymentFact(
                    payment_id=f"P-{n}-{k}", contract_id="C-1", invoice_id=invoice_id,
                    currency=currency, amount=amount, received_on=DAY, recorded_at=AT,
                    applied_amount=applied, functional_currency=functional,
                    exchange_rate=Decimal(1) if same else draw(rates),
                )
            )  # fmt: skip
        sign = draw(st.sampled_from([1, 1, -1]))
        revenue.append(
            RevenueFact(
                entry_id=f"REV-{n}", contract_id="C-1", period="2026-10", currency=currency,
                amount=sign * draw(money(currency, "0.01")), recognised_on=DAY,
                functional_currency=functional,
                exchange_rate=Decimal(1) if same else draw(rates), recorded_at=AT,
            )
        )  # fmt: skip
    if draw(st.booleans()):  # cash held unapplied for the contract
        payments.append(
            PaymentFact(
                payment_id="P-unapplied", contract_id="C-1", currency=currency,
                amount=draw(money(currency, "0.01")), received_on=DAY, recorded_at=AT,
                applied_amount=Decimal(0), functional_currency=functional,
                exchange_rate=Decimal(1) if same else draw(rates),
            )
        )  # fmt: skip
    return invoices, notes, payments, revenue


@settings(max_examples=300, deadline=None)
@given(contract_facts())
def test_every_entry_balances_in_both_currencies(
    facts: tuple[list[BillingFact], list[CreditNoteFact], list[PaymentFact], list[RevenueFact]],
) -> None:
    invoices, notes, payments, revenue = facts
    entries = journal_entries(invoices, notes, payments, revenue, period="2026-10")
    assert len(entries) == sum(map(len, facts))
    for entry in entries:
        debit, credit, functional_debit, functional_credit = entry.totals()
        assert debit == credit and functional_debit == functional_credit, entry
        unit = quantum(entry.functional_currency)
        for line in entry.lines:
            assert line.debit >= 0 and line.credit >= 0 and not (line.debit and line.credit)
            assert line.functional_debit == line.functional_debit.quantize(unit)
            assert line.functional_credit == line.functional_credit.quantize(unit)
            if line.account_role is AccountRole.FX_GAIN_LOSS:
                # Functional only, and named: never folded into another line.
                assert (line.debit, line.credit, line.rate) == (0, 0, None)
        fx = [line for line in entry.lines if line.account_role is AccountRole.FX_GAIN_LOSS]
        assert len(fx) <= 1


def test_a_payment_at_another_rate_realises_the_difference() -> None:
    invoice = BillingFact(
        fact_key="C-1:2026-10", contract_id="C-1", reference="2026-10", period="2026-10",
        period_close=True, legal_entity="UK01", currency="USD", requested_at=AT,
        invoice_id="INV-1", invoice_date=DAY, due_on=DAY, total=Decimal("1200.00"),
        subtotal=Decimal("1000.00"), tax=Decimal("200.00"), functional_currency="GBP",
        exchange_rate=Decimal("0.80"), issued_at=AT,
    )  # fmt: skip
    payment = PaymentFact(
        payment_id="P-1", contract_id="C-1", invoice_id="INV-1", currency="USD",
        amount=Decimal("1000.00"), received_on=date(2026, 11, 23), recorded_at=AT,
        applied_amount=Decimal("1000.00"), functional_currency="GBP",
        exchange_rate=Decimal("0.75"),
    )  # fmt: skip
    [entry] = journal_entries([invoice], [], [payment], [], period="2026-11")
    assert entry.kind is EntryKind.PAYMENT
    lines = {line.account_role: line for line in entry.lines}
    assert lines[AccountRole.CASH].functional_debit == Decimal("750.00")
    assert lines[AccountRole.RECEIVABLE].functional_credit == Decimal("800.00")
    # The cash is worth less than the receivable it clears: a realised loss, a debit.
    assert lines[AccountRole.FX_GAIN_LOSS].functional_debit == Decimal("50.00")
