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
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

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
    #: History events after which the workflow continues as new once at rest
    #: (``C2C_CONTINUE_AS_NEW_EVENTS``; the server may suggest it earlier). Runs started
    #: before it was set have none and go by the server's suggestion alone.
    continue_as_new_events: int | None = Field(default=None, exclude_if=lambda value: value is None)
    #: From the second run on: what the runs before decided (``fold`` keeps it small).
    carried: CustomerBillingCarried | None = Field(
        default=None, exclude_if=lambda value: value is None
    )


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


def consolidated_invoice_data(
    customer_billing_id: str,
    key: CustomerBillingKey,
    period: str,
    invoice: ConsolidatedInvoiceIssued,
    sections: Sequence[SectionShare],
) -> dict[str, Any]:
    """The ``data`` of a consolidated invoice's outbound events: ids, amounts as strings,
    dates, and its sections (no personal data)."""
    return {
        "invoice_id": invoice.invoice_id,
        "number": invoice.number,
        "customer_billing_id": customer_billing_id,
        "legal_entity": key.legal_entity,
        "crm_account_id": key.crm_account_id,
        "currency": key.currency,
        "po_number": key.po_number,
        "period": period,
        "invoice_date": invoice.invoice_date.isoformat(),
        "due_on": invoice.due_on.isoformat(),
        "subtotal": str(invoice.subtotal),
        "tax": str(invoice.tax),
        "total": str(invoice.total),
        "sections": [
            {"section_id": s.section_id, "contract_id": s.contract_id, "total": str(s.total)}
            for s in sections
        ],
    }


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
    #: Which run of the workflow this is (it continues as new when its history is long).
    run: int = 1
    #: How many earlier history lines and payment ids earlier runs left behind.
    history_omitted: int = 0
    payments_forgotten: int = 0
    #: Paid invoices of older periods folded away (not in ``invoices``): how many, and their
    #: total.
    settled_invoices: int = 0
    settled_total: Money = ZERO


#: Paid consolidated invoices of this many latest invoiced periods are carried whole into the
#: next run; older paid ones fold (``fold``).
CARRIED_SETTLED_PERIODS = 2
#: The latest payment ids carried into the next run.
CARRIED_PAYMENT_IDS = 100
#: History lines a run hands to the next (the latest); the status counts the others.
CARRIED_HISTORY_LINES = 20


class FoldedInvoice(NamedTuple):
    """A paid consolidated invoice folded away: what answering a section sent again and
    routing a payment that names the invoice still need. Carried as a JSON array."""

    invoice_id: str
    number: str
    invoice_date: date
    due_on: date
    period: str
    batch: int
    #: Its sections' contracts, in their order on it, as their places among the carried
    #: members (which only ever grow); a section's id is ``section_id(contract, period)``.
    #: An invoice whose sections are not so is never folded.
    members: tuple[int, ...]

    def contracts(self, members: list[str]) -> list[str]:
        """Its sections' contracts, given the contract ids of the members in order."""
        return [members[n] for n in self.members]

    def section_ids(self, members: list[str]) -> list[str]:
        return [section_id(cid, self.period) for cid in self.contracts(members)]


class CustomerBillingCarried(BaseModel):
    """What one run of ``CustomerBilling`` hands to the next when it continues as new: its
    whole state, folded (``fold``) so that it grows with what is open, not with the years."""

    #: Which run this is: 2 for the first continuation.
    run: int = Field(ge=2)
    #: Every contract that joined, and those of them that left.
    members: list[BillingMember] = Field(default_factory=list)
    left: list[str] = Field(default_factory=list)
    #: The sections kept: waiting for their invoice, on an invoice still held, or empty
    #: (those of the latest periods); in the order received.
    sections: list[InvoiceSection] = Field(default_factory=list)
    #: Where each kept section went: an invoice id, "" when empty.
    placed: dict[str, str] = Field(default_factory=dict)
    #: When each period's first waiting section came (its cut-off's start).
    waiting_since: dict[str, datetime] = Field(default_factory=dict)
    #: Invoices held whole: those with something owed, and the paid ones of the latest
    #: ``CARRIED_SETTLED_PERIODS`` periods.
    invoices: list[ConsolidatedInvoice] = Field(default_factory=list)
    #: The older paid invoices, folded, oldest first.
    folded: list[FoldedInvoice] = Field(default_factory=list)
    #: How many invoices folded, and their total (all paid).
    folded_total: Money = ZERO
    #: The latest ``CARRIED_PAYMENT_IDS`` payment ids allocated or refused, in order, and how
    #: many earlier ones were left behind (the ledger knows those the ERP recorded).
    payments: list[str] = Field(default_factory=list)
    payments_forgotten: int = 0
    #: The latest history lines, and how many earlier ones were left behind.
    history: list[str] = Field(default_factory=list)
    history_omitted: int = 0


def fold(state: CustomerBillingCarried) -> CustomerBillingCarried:
    """``state`` with what is settled folded away.

    An invoice folds when nothing is owed on it, it is not of the latest
    ``CARRIED_SETTLED_PERIODS`` invoiced periods, and its sections' ids are those derived from
    their contracts (members) and period; its sections fold with it into its
    ``FoldedInvoice``. Empty sections fold once their period is older than those periods and
    nothing of it waits.
    Only the latest payment ids and history lines are kept, with a count of the others.
    """
    periods = sorted({i.period for i in state.invoices}, reverse=True)
    place = {m.contract_id: n for n, m in enumerate(state.members)}
    recent = set(periods[:CARRIED_SETTLED_PERIODS])
    waiting = set(state.waiting_since) | {
        s.period for s in state.sections if s.section_id not in state.placed
    }

    def folds(invoice: ConsolidatedInvoice) -> bool:
        return (
            invoice.balance <= 0
            and invoice.period not in recent
            and all(
                s.contract_id in place and s.section_id == section_id(s.contract_id, invoice.period)
                for s in invoice.sections
            )
        )

    gone = [i for i in state.invoices if folds(i)]
    kept = [i for i in state.invoices if not folds(i)]
    held = {i.invoice_id for i in kept}
    latest = periods[CARRIED_SETTLED_PERIODS - 1] if len(periods) >= CARRIED_SETTLED_PERIODS else ""

    def keeps(section: InvoiceSection) -> bool:
        where = state.placed.get(section.section_id)
        if where is None:
            return True  # waiting
        if where == "":
            return section.period >= latest or section.period in waiting
        return where in held

    sections = [s for s in state.sections if keeps(s)]
    placed = {
        s.section_id: state.placed[s.section_id] for s in sections if s.section_id in state.placed
    }
    payments = state.payments[-CARRIED_PAYMENT_IDS:]
    history = state.history[-CARRIED_HISTORY_LINES:]
    return state.model_copy(
        update={
            "sections": sections,
            "placed": placed,
            "invoices": kept,
            "folded": [
                *state.folded,
                *(
                    FoldedInvoice(
                        invoice_id=i.invoice_id,
                        number=i.number,
                        invoice_date=i.invoice_date,
                        due_on=i.due_on,
                        period=i.period,
                        batch=i.batch,
                        members=tuple(place[s.contract_id] for s in i.sections),
                    )
                    for i in gone
                ),
            ],
            "folded_total": state.folded_total + sum((i.total for i in gone), ZERO),
            "payments": payments,
            "payments_forgotten": state.payments_forgotten + len(state.payments) - len(payments),
            "history": history,
            "history_omitted": state.history_omitted + len(state.history) - len(history),
        }
    )


CustomerBillingStart.model_rebuild()
