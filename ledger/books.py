"""The books read from the ledger's facts: a legal entity's journal for a month
(``ledger.journal``) and its accounts-receivable aging.

Aging is as of a day: every invoice of the entity issued by then (a draft never counts) with
its open balance on that day: its total less its credit notes issued by then, the payments
received by then that were applied to it, and the cash held for the contract (a payment's
unapplied part, a credit note's customer credit) applied to it by then. Cash applied later has
no journal entry of its own: the held cash was credited to the receivable when it came in, so
applying it moves the credit from the customer's account to the invoice within the receivable.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from domain.money import round_money
from ledger.journal import Journal, journal_entries
from ledger.models import (
    BillingFact,
    CashApplicationFact,
    CreditNoteFact,
    PaymentFact,
    RevenueFact,
)

if TYPE_CHECKING:
    from ledger.store import Ledger

ZERO = Decimal(0)

#: Aging buckets, by days past the invoice's due date (``current``: not yet due).
AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def aging_bucket(days_past_due: int) -> str:
    """The bucket of an open invoice ``days_past_due`` days after its due date."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


def _empty_buckets() -> dict[str, Decimal]:
    return dict.fromkeys(AGING_BUCKETS, ZERO)


class AgedInvoice(BaseModel):
    """One issued invoice with a balance still open."""

    invoice_id: str
    contract_id: str
    currency: str
    due_on: date
    days_past_due: int
    bucket: str
    open_balance: Decimal
    #: In the legal entity's functional currency, at the invoice's rate.
    functional_open_balance: Decimal


class CurrencyAging(BaseModel):
    """Open balances in one invoice currency, by bucket."""

    currency: str
    buckets: dict[str, Decimal] = Field(default_factory=_empty_buckets)


class AgingReport(BaseModel):
    """A legal entity's receivables by how long past due they are, on ``as_of``."""

    legal_entity: str
    as_of: date
    #: The entity's currency (``None`` when it has no open invoice to say it).
    functional_currency: str | None = None
    #: In the functional currency, at each invoice's rate.
    buckets: dict[str, Decimal] = Field(default_factory=_empty_buckets)
    by_currency: list[CurrencyAging] = Field(default_factory=list)
    invoices: list[AgedInvoice] = Field(default_factory=list)


def journal(ledger: Ledger, *, legal_entity: str, period: str) -> Journal:
    """The entity's journal for ``period`` (``YYYY-MM``), from the facts c2c recorded."""
    return Journal(
        period=period,
        legal_entity=legal_entity,
        entries=journal_entries(
            ledger.rows_of_entity(BillingFact, legal_entity),
            ledger.rows_of_entity(CreditNoteFact, legal_entity),
            ledger.rows_of_entity(PaymentFact, legal_entity),
            ledger.rows_of_entity(RevenueFact, legal_entity),
            period=period,
        ),
    )


def open_balances(
    invoices: list[BillingFact],
    notes: list[CreditNoteFact],
    payments: list[PaymentFact],
    applications: list[CashApplicationFact] | None = None,
    *,
    as_of: date | None = None,
) -> dict[str, Decimal]:
    """Each issued invoice's open balance (on ``as_of``, when given: only what was issued,
    received and applied by then): total, less credit notes and cash applied."""

    def by(on: date | None) -> bool:
        return as_of is None or (on is not None and on <= as_of)

    balance = {
        i.invoice_id: i.total
        for i in invoices
        if i.invoice_id
        and i.issued_at is not None
        and i.total is not None
        and by(i.invoice_date or i.issued_at.date())
    }
    for note in notes:
        if note.invoice_id in balance and by(note.issued_on):
            balance[note.invoice_id] -= note.total
    for payment in sorted(payments, key=lambda p: (p.received_on, p.payment_id)):
        if payment.invoice_id in balance and by(payment.received_on):
            applied = payment.applied_amount
            if applied is None:  # recorded before c2c kept it: what the balance could take
                applied = min(payment.amount, max(balance[payment.invoice_id], ZERO))
            balance[payment.invoice_id] -= applied
    for application in applications or ():
        if application.invoice_id in balance and by(application.applied_on):
            balance[application.invoice_id] -= application.amount
    return {invoice_id: max(open_, ZERO) for invoice_id, open_ in balance.items()}


def aging(ledger: Ledger, *, legal_entity: str, as_of: date) -> AgingReport:
    """The entity's open receivables on ``as_of``, bucketed by days past due."""
    return aging_of(
        legal_entity,
        as_of,
        ledger.rows_of_entity(BillingFact, legal_entity),
        ledger.rows_of_entity(CreditNoteFact, legal_entity),
        ledger.rows_of_entity(PaymentFact, legal_entity),
        ledger.rows_of_entity(CashApplicationFact, legal_entity),
    )


def aging_of(
    legal_entity: str,
    as_of: date,
    invoices: list[BillingFact],
    notes: list[CreditNoteFact],
    payments: list[PaymentFact],
    applications: list[CashApplicationFact] | None = None,
) -> AgingReport:
    """The aging of the entity's invoices (and the notes, payments and cash applications of
    its contracts) on ``as_of``."""
    balances = open_balances(invoices, notes, payments, applications, as_of=as_of)
    report = AgingReport(legal_entity=legal_entity, as_of=as_of)
    by_currency: dict[str, dict[str, Decimal]] = defaultdict(_empty_buckets)
    for invoice in sorted(invoices, key=lambda i: (i.due_on or as_of, i.fact_key)):
        open_ = balances.get(invoice.invoice_id or "", ZERO)
        if not open_ or invoice.due_on is None or invoice.invoice_id is None:
            continue
        functional = invoice.functional_currency or invoice.currency
        rate = invoice.exchange_rate if invoice.functional_currency else Decimal(1)
        functional_open = round_money(open_ * (rate or Decimal(1)), functional)
        days = (as_of - invoice.due_on).days
        bucket = aging_bucket(days)
        report.functional_currency = report.functional_currency or functional
        report.buckets[bucket] += functional_open
        by_currency[invoice.currency][bucket] += open_
        report.invoices.append(
            AgedInvoice(
                invoice_id=invoice.invoice_id,
                contract_id=invoice.contract_id,
                currency=invoice.currency,
                due_on=invoice.due_on,
                days_past_due=max(days, 0),
                bucket=bucket,
                open_balance=open_,
                functional_open_balance=functional_open,
            )
        )
    report.by_currency = [
        CurrencyAging(currency=currency, buckets=buckets)
        for currency, buckets in sorted(by_currency.items())
    ]
    return report
