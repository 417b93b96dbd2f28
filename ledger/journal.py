"""The general-ledger journal of what c2c did: invoices, credit notes, payments and revenue,
as double entries in the transaction currency and the legal entity's functional currency.

Each entry is built from the facts the activities recorded (``ledger.facts``), never from a copy
of the ERP. Every line's functional amount is its transaction amount at the entry's rate, rounded
once to the functional currency's minor unit; what is left between the functional debits and
credits goes to ``fx_gain_loss`` on a line of its own. On a payment that is the realised FX gain
or loss (the cash at the payment's rate against the receivable at the invoice's rate); elsewhere
it is the rounding of lines converted one by one. An entry therefore always balances in both
currencies, and nothing is adjusted silently.

Accounts, by role:

- invoice: debit ``receivable`` (total), credit ``tax_payable`` (tax) and ``deferred_revenue``
  (subtotal): billing is a contract liability until revenue is recognised;
- credit note: the invoice's entry in reverse for the note's amounts, at the invoice's rate;
- payment: debit ``cash`` at the payment's rate; credit ``receivable`` for the part applied to
  the invoice at the invoice's rate, and for unapplied cash (customer credit) at the payment's;
- revenue: debit ``deferred_revenue``, credit ``revenue`` at the rate of the day it is
  recognised (a negative catch-up reverses the sides).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.money import round_money
from ledger.models import BillingFact, CreditNoteFact, PaymentFact, RevenueFact

ZERO = Decimal(0)
ONE = Decimal(1)


class AccountRole(StrEnum):
    """The kind of account a journal line posts to; the ERP's chart maps each to an account."""

    RECEIVABLE = "receivable"
    REVENUE = "revenue"
    DEFERRED_REVENUE = "deferred_revenue"
    TAX_PAYABLE = "tax_payable"
    CASH = "cash"
    FX_GAIN_LOSS = "fx_gain_loss"


class EntryKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    PAYMENT = "payment"
    REVENUE = "revenue"


class JournalLine(BaseModel):
    """One side of an entry: amounts in the transaction currency and in the functional one."""

    account_role: AccountRole
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    currency: str
    functional_debit: Decimal = ZERO
    functional_credit: Decimal = ZERO
    #: Transaction currency to functional currency (``None`` on an ``fx_gain_loss`` line: it
    #: has no transaction amount).
    rate: Decimal | None
    #: The invoice, credit note, payment or revenue entry the line comes from.
    source_id: str


class JournalEntry(BaseModel):
    """One business event as a balanced double entry."""

    entry_id: str
    kind: EntryKind
    posted_on: date
    contract_id: str
    currency: str
    functional_currency: str
    lines: list[JournalLine]

    def totals(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """Debits and credits, in the transaction currency, then in the functional one."""
        return (
            sum((line.debit for line in self.lines), ZERO),
            sum((line.credit for line in self.lines), ZERO),
            sum((line.functional_debit for line in self.lines), ZERO),
            sum((line.functional_credit for line in self.lines), ZERO),
        )

    @property
    def balanced(self) -> bool:
        debit, credit, functional_debit, functional_credit = self.totals()
        return debit == credit and functional_debit == functional_credit


class Journal(BaseModel):
    """A legal entity's journal for one month."""

    period: str
    legal_entity: str
    entries: list[JournalEntry] = Field(default_factory=list)


class _Entry:
    """An entry under construction: lines added by role, balanced once at the end."""

    def __init__(
        self,
        entry_id: str,
        kind: EntryKind,
        posted_on: date,
        contract_id: str,
        currency: str,
        functional_currency: str,
    ) -> None:
        self.entry = JournalEntry(
            entry_id=entry_id,
            kind=kind,
            posted_on=posted_on,
            contract_id=contract_id,
            currency=currency,
            functional_currency=functional_currency,
            lines=[],
        )

    def post(
        self, role: AccountRole, amount: Decimal, rate: Decimal, source_id: str, *, debit: bool
    ) -> None:
        """Post ``amount`` (a negative amount posts to the other side); zero posts nothing."""
        if amount == 0:
            return
        if amount < 0:
            amount, debit = -amount, not debit
        functional = round_money(amount * rate, self.entry.functional_currency)
        self.entry.lines.append(
            JournalLine(
                account_role=role,
                debit=amount if debit else ZERO,
                credit=ZERO if debit else amount,
                currency=self.entry.currency,
                functional_debit=functional if debit else ZERO,
                functional_credit=ZERO if debit else functional,
                rate=rate,
                source_id=source_id,
            )
        )

    def balanced(self, source_id: str) -> JournalEntry:
        """The entry, with what the functional amounts leave unbalanced on ``fx_gain_loss``: a
        loss is a debit, a gain a credit."""
        _, _, debit, credit = self.entry.totals()
        if debit != credit:
            loss = credit > debit
            difference = abs(credit - debit)
            self.entry.lines.append(
                JournalLine(
                    account_role=AccountRole.FX_GAIN_LOSS,
                    currency=self.entry.currency,
                    functional_debit=difference if loss else ZERO,
                    functional_credit=ZERO if loss else difference,
                    rate=None,
                    source_id=source_id,
                )
            )
        return self.entry


def _books(currency: str, functional: str | None, rate: Decimal | None) -> tuple[str, Decimal]:
    """The functional currency and rate of a fact; a fact without them is in its own currency."""
    if functional is None or rate is None:
        return currency, ONE
    return functional, rate


def invoice_entry(invoice: BillingFact) -> JournalEntry:
    """The entry of an issued invoice.

    Raises:
        ValueError: The fact is of an invoice not issued yet.
    """
    if not invoice.invoice_id or invoice.invoice_date is None or invoice.total is None:
        raise ValueError(f"billing fact {invoice.fact_key} is of no issued invoice")
    functional, rate = _books(invoice.currency, invoice.functional_currency, invoice.exchange_rate)
    tax = invoice.tax or ZERO
    subtotal = invoice.subtotal if invoice.subtotal is not None else invoice.total - tax
    source = invoice.invoice_id
    entry = _Entry(
        source,
        EntryKind.INVOICE,
        invoice.invoice_date,
        invoice.contract_id,
        invoice.currency,
        functional,
    )
    entry.post(AccountRole.RECEIVABLE, invoice.total, rate, source, debit=True)
    entry.post(AccountRole.TAX_PAYABLE, tax, rate, source, debit=False)
    entry.post(AccountRole.DEFERRED_REVENUE, subtotal, rate, source, debit=False)
    return entry.balanced(source)


def credit_note_entry(note: CreditNoteFact, invoice: BillingFact | None) -> JournalEntry:
    """The entry of a credit note, at the rate of the invoice it credits."""
    functional, rate = (
        _books(invoice.currency, invoice.functional_currency, invoice.exchange_rate)
        if invoice is not None
        else (note.currency, ONE)
    )
    tax = note.tax or ZERO
    subtotal = note.subtotal if note.subtotal is not None else note.total - tax
    source = note.credit_note_id
    entry = _Entry(
        source, EntryKind.CREDIT_NOTE, note.issued_on, note.contract_id, note.currency, functional
    )
    entry.post(AccountRole.DEFERRED_REVENUE, subtotal, rate, source, debit=True)
    entry.post(AccountRole.TAX_PAYABLE, tax, rate, source, debit=True)
    entry.post(AccountRole.RECEIVABLE, note.total, rate, source, debit=False)
    return entry.balanced(source)


def payment_entry(payment: PaymentFact, invoice: BillingFact | None) -> JournalEntry:
    """The entry of a payment: the cash at the payment's rate, the receivable it clears at the
    invoice's, the difference realised on ``fx_gain_loss``."""
    functional, rate = _books(payment.currency, payment.functional_currency, payment.exchange_rate)
    invoice_rate = rate
    if invoice is not None and invoice.exchange_rate is not None:
        invoice_rate = invoice.exchange_rate
    applied = payment.amount if invoice is not None else ZERO
    if payment.applied_amount is not None:
        applied = payment.applied_amount
    source = payment.payment_id
    entry = _Entry(
        source,
        EntryKind.PAYMENT,
        payment.received_on,
        payment.contract_id,
        payment.currency,
        functional,
    )
    entry.post(AccountRole.CASH, payment.amount, rate, source, debit=True)
    entry.post(
        AccountRole.RECEIVABLE, applied, invoice_rate, payment.invoice_id or source, debit=False
    )
    entry.post(AccountRole.RECEIVABLE, payment.amount - applied, rate, source, debit=False)
    return entry.balanced(source)


def revenue_entry(posting: RevenueFact) -> JournalEntry:
    """The entry of revenue recognised: deferred revenue released to revenue."""
    functional, rate = _books(posting.currency, posting.functional_currency, posting.exchange_rate)
    source = posting.entry_id
    entry = _Entry(
        source,
        EntryKind.REVENUE,
        posting.recognised_on,
        posting.contract_id,
        posting.currency,
        functional,
    )
    entry.post(AccountRole.DEFERRED_REVENUE, posting.amount, rate, source, debit=True)
    entry.post(AccountRole.REVENUE, posting.amount, rate, source, debit=False)
    return entry.balanced(source)


def journal_entries(
    invoices: Iterable[BillingFact],
    credit_notes: Iterable[CreditNoteFact],
    payments: Iterable[PaymentFact],
    revenue: Iterable[RevenueFact],
    *,
    period: str | None = None,
) -> list[JournalEntry]:
    """The entries of the facts (only those dated in ``period``, ``YYYY-MM``, when given), in
    date order. ``invoices`` must hold every invoice the notes and payments refer to."""
    issued = {
        i.invoice_id: i for i in invoices if i.invoice_id and i.issued_at and i.total is not None
    }
    entries = [invoice_entry(i) for i in issued.values()]
    entries += [credit_note_entry(n, issued.get(n.invoice_id)) for n in credit_notes]
    entries += [
        payment_entry(p, issued.get(p.invoice_id) if p.invoice_id else None) for p in payments
    ]
    entries += [revenue_entry(r) for r in revenue]
    if period is not None:
        entries = [e for e in entries if e.posted_on.isoformat()[:7] == period]
    order = list(EntryKind)
    return sorted(entries, key=lambda e: (e.posted_on, order.index(e.kind), e.entry_id))
