"""Consolidated invoicing: one invoice per customer and period across its contracts.

A customer whose legal entity (or contract) asks for it gets, at each period close, one
invoice per legal entity, currency and period (and purchase order, in ``customer_po`` mode)
with one section per contract, instead of one invoice per contract. A ``CustomerBilling``
workflow per such key collects its contracts' sections and makes the invoice; the payments of
it are allocated back to the sections (``allocate``) so every contract keeps its own balance.
The names here are shared by the contract's workflow, the customer's and their activities.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.models import ConsolidatedInvoicing, Customer
from domain.money import Money

ZERO = Decimal(0)
CUSTOMER_BILLING_PREFIX = "customer-billing-"


class CustomerBillingKey(BaseModel):
    """What one consolidated invoice is per (with the period): its customer's billing key."""

    legal_entity: str
    crm_account_id: str
    currency: str
    #: Only in ``customer_po`` mode: the purchase order the invoice is for.
    po_number: str | None = None


def customer_billing_workflow_id(key: CustomerBillingKey) -> str:
    """The workflow id of a customer's billing: one per key, ever, so every contract of the
    customer reaches the same one (and a start that finds it running is a no-op)."""
    parts = [key.legal_entity, key.crm_account_id, key.currency]
    if key.po_number:
        # A purchase order number may hold any character: its digest keeps the id plain.
        parts.append("po-" + hashlib.sha256(key.po_number.encode()).hexdigest()[:12])
    return CUSTOMER_BILLING_PREFIX + "-".join(parts)


def is_customer_billing(owner: str) -> bool:
    """Whether an id the ledger names as an invoice's owner is a customer billing workflow's
    (a consolidated invoice) rather than a contract's."""
    return owner.startswith(CUSTOMER_BILLING_PREFIX)


def section_id(contract_id: str, period: str) -> str:
    """A contract's section of its period's consolidated invoice: derived again by a reset.
    At most 64 characters, as every id c2c sends (a long contract id is digested)."""
    plain = f"SEC-{contract_id}-{period}"
    if len(plain) <= 64:
        return plain
    return f"SEC-{hashlib.sha256(contract_id.encode()).hexdigest()[:24]}-{period}"


def is_section(invoice_id: str | None) -> bool:
    """Whether an invoice id a contract holds is its section of a consolidated invoice."""
    return invoice_id is not None and invoice_id.startswith("SEC-")


def consolidated_reference(period: str, batch: int) -> str:
    """The ERP business key of a customer's ``batch``-th consolidated invoice of ``period``
    (the first, then one per section that came after it was issued)."""
    return period if batch == 1 else f"{period}:{batch}"


class CustomerBillingStart(BaseModel):
    """The customer billing workflow's input: its key, set by the first contract to reach it."""

    key: CustomerBillingKey
    mode: ConsolidatedInvoicing
    #: The ERP customer the invoices are made out to.
    erp_customer_id: str
    #: How long after a period's first section the invoice is made without the sections
    #: still missing (configuration; a late section goes on an invoice of its own).
    cutoff_s: float = 3600.0


class BillingMember(BaseModel):
    """A contract joining (at activation) or leaving (at close) its customer's billing."""

    contract_id: str
    #: The periods it bills: a member is waited for in these only.
    first_period: str
    last_period: str


class InvoiceSection(BaseModel):
    """One contract's section of its customer's invoice for ``period``: priced, capped and
    taxed by the contract as it would price its own invoice. Its lines are in the ledger (the
    ``section`` row under ``section_id``); an empty section says the contract bills nothing
    this period."""

    section_id: str
    contract_id: str
    period: str
    subtotal: Money = ZERO
    tax: Money = ZERO
    total: Money = ZERO
    payment_terms_days: int = 30
    invoice_date: date
    #: The tax document of the section (committed when the invoice is issued).
    tax_code: str | None = None
    erp_contract_id: str | None = None
    erp_project_id: str | None = None
    #: The contract's title and customer, as its section of the invoice's documents prints
    #: them (absent from sections sent before the documents were rendered).
    title: str | None = None
    customer: Customer | None = None
    customer_tax_id: str | None = None

    @property
    def empty(self) -> bool:
        return self.tax_code is None


class SectionShare(BaseModel):
    """A section on a consolidated invoice, and what has been paid of it."""

    section_id: str
    contract_id: str
    total: Money
    paid: Money = ZERO
    #: What its contract's credit notes took off it, and their ids (each counted once).
    credited: Money = ZERO
    credit_notes: list[str] = Field(default_factory=list)

    @property
    def balance(self) -> Decimal:
        return self.total - self.paid - self.credited


class ConsolidatedInvoiceIssued(BaseModel):
    """A consolidated invoice as the ERP numbered and issued it."""

    invoice_id: str
    number: str
    invoice_date: date
    due_on: date
    subtotal: Money
    tax: Money
    total: Money


class InvoiceDocumentLink(BaseModel):
    """One archived document of an invoice: ``pdf`` or ``einvoice`` (UBL, Peppol BIS Billing
    3.0), its SHA-256, and where c2c's API serves it."""

    kind: str
    sha256: str
    url: str


class ConsolidatedInvoice(ConsolidatedInvoiceIssued):
    """One invoice the customer receives: its sections, numbered in the ERP."""

    period: str
    batch: int
    reference: str
    sections: list[SectionShare]
    #: Its archived documents (none for an invoice made before they were rendered).
    documents: list[InvoiceDocumentLink] = Field(default_factory=list)

    @property
    def balance(self) -> Decimal:
        return sum((s.balance for s in self.sections), ZERO)


class Allocation(BaseModel):
    """The part of a payment that goes to one section, under its own payment id."""

    payment_id: str
    section_id: str
    contract_id: str
    amount: Money


def allocation_payment_id(payment_id: str, section: str) -> str:
    """The id under which a contract applies its part of a payment: the same on every resend
    (the payment's id, and a digest of the payment and the section)."""
    digest = hashlib.sha256(f"{payment_id}|{section}".encode()).hexdigest()[:16]
    return f"{payment_id[:40]}:{digest}"


def allocate(
    payment_id: str, amount: Decimal, invoices: list[ConsolidatedInvoice], named: str | None
) -> list[Allocation]:
    """Split ``amount`` over the open sections: the named invoice's first, then the other
    invoices' oldest first (by period, then batch), each invoice's sections in the order they
    appear on it, each up to its balance. What is left over goes to the first section of the
    named invoice (or of the newest invoice) as its contract's unapplied cash."""
    ordered = sorted(invoices, key=lambda i: (i.invoice_id != named, i.period, i.batch))
    left, parts = amount, []
    for invoice in ordered:
        for share in invoice.sections:
            take = min(left, share.balance)
            if take <= 0:
                continue
            parts.append(
                Allocation(
                    payment_id=allocation_payment_id(payment_id, share.section_id),
                    section_id=share.section_id,
                    contract_id=share.contract_id,
                    amount=take,
                )
            )
            left -= take
    if left > 0 and ordered:
        first = ordered[0].sections[0]
        found = next((p for p in parts if p.section_id == first.section_id), None)
        if found is not None:
            found.amount += left
        else:
            parts.insert(
                0,
                Allocation(
                    payment_id=allocation_payment_id(payment_id, first.section_id),
                    section_id=first.section_id,
                    contract_id=first.contract_id,
                    amount=left,
                ),
            )
    return parts


class CustomerBillingStatus(BaseModel):
    """The customer billing workflow's ``status`` query."""

    workflow_id: str
    key: CustomerBillingKey
    mode: str
    members: list[BillingMember] = Field(default_factory=list)
    #: Sections received and not yet on an invoice, by period.
    waiting: dict[str, list[str]] = Field(default_factory=dict)
    invoices: list[ConsolidatedInvoice] = Field(default_factory=list)
    payments: list[str] = Field(default_factory=list)
    history: list[str] = Field(default_factory=list)
