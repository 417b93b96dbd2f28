"""What c2c writes to the systems of record, in c2c's own terms.

Activities build these from the contract's state and hand them to a port
(``connectors/ports.py``); each connector maps them to its vendor's wire format. No activity
knows a vendor's field names, and a connector for another vendor's system needs nothing but
these models. Money is ``Decimal`` at the currency's scale; dates are dates.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.money import Money, Quantity

ZERO = Decimal(0)


class WriteModel(BaseModel):
    """A write to another system: immutable, and a misspelt field is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- the customer, the project and the contract ------------------------------------------


class CustomerDraft(WriteModel):
    """The ERP customer of a CRM account, in the legal entity that bills it."""

    crm_account_id: str
    name: str
    country: str
    region: str | None = None
    tax_id: str | None = None
    billing_email: str | None = None
    legal_entity: str
    currency: str


class AddressDraft(WriteModel):
    """The street part of a billing address; country and region are fields of their own."""

    street: str | None = None
    city: str | None = None
    postal_code: str | None = None


class CustomerChanges(WriteModel):
    """A change to a customer's master data: only the fields set are changed, and a field set
    to ``None`` is cleared."""

    name: str | None = None
    country: str | None = None
    region: str | None = None
    tax_id: str | None = None
    billing_email: str | None = None
    billing_address: AddressDraft | None = None
    #: The ERP customer of the account's parent in the account hierarchy.
    parent_customer_id: str | None = None

    def changed(self) -> dict[str, Any]:
        """The fields set, by name, as JSON (a cleared field as ``None``)."""
        return self.model_dump(mode="json", include=self.model_fields_set)


class ProjectDraft(WriteModel):
    """The ERP project a contract's invoices and revenue belong to."""

    contract_id: str
    customer_id: str
    legal_entity: str
    name: str
    currency: str
    start_date: date
    end_date: date
    project_template: str | None = None


class RateDraft(WriteModel):
    """A role's hourly rate from ``effective_from`` (an ERP contract's rates always carry it;
    a PSA card without dates is the whole card)."""

    role: str
    hourly_rate: Money
    effective_from: date | None = None


class MilestoneDraft(WriteModel):
    milestone_id: str
    name: str
    amount: Money
    due_date: date | None = None


class MilestoneChangeDraft(WriteModel):
    """The fields of a milestone that change (the others stay as they are)."""

    milestone_id: str
    name: str | None = None
    amount: Money | None = None
    due_date: date | None = None


class BillingScheduleLine(WriteModel):
    """What is billed: time and materials, one milestone, or a monthly retainer."""

    kind: Literal["time_and_materials", "milestone", "retainer"]
    expenses_billable: bool | None = None
    expense_markup_percent: Money | None = None
    milestone_id: str | None = None
    amount: Money | None = None
    monthly_amount: Money | None = None
    included_hours: Quantity | None = None


class BillingSchedule(WriteModel):
    frequency: Literal["monthly"] = "monthly"
    bill_on: Literal["period_close"] = "period_close"
    milestone_invoicing: Literal["period_close", "on_completion"] | None = None
    lines: tuple[BillingScheduleLine, ...] = ()


class RevenueSchedule(WriteModel):
    """The contract's revenue treatment (ASC 606 / IFRS 15 as services firms apply it)."""

    method: str
    contract_value: Money | None = None


class ContractDraft(WriteModel):
    """The ERP contract, with its rate card, milestones and both schedules.

    The schedules are written after the contract (``ErpPort.put_billing_schedule`` and
    ``put_revenue_schedule``), with keys of their own: an amendment replaces them.
    """

    contract_id: str
    project_id: str
    customer_id: str
    legal_entity: str
    currency: str
    billing_model: str
    start_date: date
    end_date: date
    payment_terms_days: int
    contract_value: Money
    not_to_exceed: Money | None = None
    rate_card: tuple[RateDraft, ...] = ()
    milestones: tuple[MilestoneDraft, ...] = ()
    retainer_monthly_amount: Money | None = None
    retainer_included_hours: Quantity | None = None
    billing_schedule: BillingSchedule
    revenue_schedule: RevenueSchedule


class AmendmentDraft(WriteModel):
    """An amendment of the ERP contract, applied once by its ``amendment_id``."""

    amendment_id: str
    effective_date: date
    reason: str = ""
    end_date: date | None = None
    not_to_exceed: Money | None = None
    contract_value: Money | None = None
    rate_card: tuple[RateDraft, ...] = ()
    add_milestones: tuple[MilestoneDraft, ...] = ()
    change_milestones: tuple[MilestoneChangeDraft, ...] = ()
    remove_milestones: tuple[str, ...] = ()


# --- delivery (PSA) and the CRM timeline ------------------------------------------------


class PsaProjectDraft(WriteModel):
    """The PSA project of a contract, linked to its ERP project, with its rates and
    milestones."""

    contract_id: str
    name: str
    customer_name: str
    erp_project_id: str
    currency: str
    start_date: date
    end_date: date
    project_template: str
    rate_card: tuple[RateDraft, ...] = ()
    milestones: tuple[MilestoneDraft, ...] = ()


class PsaProjectChanges(WriteModel):
    """A change to a PSA project's dates: the fields given change."""

    end_date: date | None = None
    #: Close time entry after this day (time dated later is refused).
    time_entry_end_date: date | None = None


class CrmActivityDraft(WriteModel):
    """An entry of a CRM account's timeline; an ``activity_id`` makes it once under any key."""

    activity_id: str | None = None
    type: str
    subject: str
    body: str | None = None
    #: The records it is about: ``invoice_id``, ``contract_id``.
    related_to: dict[str, str] | None = None
    occurred_at: datetime | None = None
    #: The day it happened, for activities without a time (a reminder sent that day).
    occurred_on: date | None = None


# --- invoices, credit notes and tax -------------------------------------------------------


def invoice_business_key(
    reference: str | None, milestone_id: str | None, period: str | None
) -> str | None:
    """What an invoice is unique by in its contract: its reference, else its milestone
    (``milestone:<id>``), else its period; ``None`` when it has none of them."""
    if reference:
        return reference
    if milestone_id:
        return f"milestone:{milestone_id}"
    return period


class InvoiceLineDraft(WriteModel):
    line_id: str
    kind: str
    description: str = ""
    quantity: Quantity = Decimal(1)
    unit_price: Money | None = None
    amount: Money
    role: str | None = None
    #: The line's tax, set by ``domain.tax.apply_tax``.
    tax_amount: Money = ZERO
    #: On a consolidated invoice: the section (contract) the line belongs to.
    section_id: str | None = None


class InvoiceSectionDraft(WriteModel):
    """One contract's part of a consolidated invoice; its lines name its ``section_id``."""

    section_id: str
    contract_id: str
    erp_contract_id: str
    subtotal: Money
    tax: Money
    total: Money


class BillToContact(WriteModel):
    """Who the invoice is addressed to at the customer (its accounts payable contact)."""

    name: str
    email: str | None = None
    address: str | None = None


class InvoiceDraft(WriteModel):
    """A draft invoice of a contract, unique by ``reference`` (or, without one, by its
    milestone or period)."""

    contract_id: str
    reference: str | None = None
    erp_contract_id: str | None = None
    customer_id: str
    project_id: str | None = None
    legal_entity: str
    currency: str
    period: str | None = None
    milestone_id: str | None = None
    invoice_date: date
    due_on: date
    lines: tuple[InvoiceLineDraft, ...]
    #: The sums, set by ``domain.tax.apply_tax``.
    subtotal: Money = ZERO
    tax: Money = ZERO
    total: Money = ZERO
    notes: tuple[str, ...] = ()
    #: The figures in the legal entity's own currency, at the ERP's rate of the invoice date.
    functional_currency: str | None = None
    exchange_rate: Decimal | None = None
    functional_subtotal: Money | None = None
    functional_tax: Money | None = None
    functional_total: Money | None = None
    #: The customer's purchase order number and bill-to contact, printed on the invoice.
    po_number: str | None = None
    bill_to: BillToContact | None = None
    #: A consolidated invoice's sections (``contract_id`` then names the customer's billing
    #: workflow); ``None`` for a contract's own invoice.
    sections: tuple[InvoiceSectionDraft, ...] | None = None

    @property
    def business_key(self) -> str:
        """What the invoice is unique by in its contract (``invoice_business_key``)."""
        return invoice_business_key(self.reference, self.milestone_id, self.period) or ""


class CreditNoteLineDraft(WriteModel):
    line_id: str
    description: str = ""
    amount: Money
    tax_amount: Money = ZERO
    #: On a consolidated invoice's credit note: the section (contract) the line credits.
    section_id: str | None = None


class CreditNoteDraft(WriteModel):
    """A credit note on an issued invoice, made once by its ``credit_note_id``."""

    credit_note_id: str
    reason: str
    #: The invoice's currency.
    currency: str
    lines: tuple[CreditNoteLineDraft, ...] = Field(min_length=1)
    #: The sums, set by ``domain.tax.apply_tax``.
    subtotal: Money = ZERO
    tax: Money = ZERO
    total: Money = ZERO


class TaxLineRequest(WriteModel):
    number: str
    #: Negative on a return (a credit note).
    amount: Money
    tax_code: str
    description: str | None = None
    #: A tax c2c sets itself (a credit note's tax bounded by the invoice's): the engine
    #: records it instead of computing one.
    tax_amount: Money | None = None


class TaxRequest(WriteModel):
    """A document for the tax engine to tax, keyed by its ``code``: sending the same code
    again adjusts the document instead of adding another."""

    code: str
    type: Literal["SalesInvoice", "ReturnInvoice"]
    company: str
    on: date
    #: The date whose rates apply (a return's is its invoice's); ``on`` when not given.
    tax_date: date | None = None
    customer_code: str
    customer_tax_id: str | None = None
    ship_from_country: str | None = None
    ship_to_country: str
    ship_to_region: str | None = None
    currency: str
    lines: tuple[TaxLineRequest, ...]
    #: The code of the invoice a return credits.
    reference_code: str | None = None
    commit: bool = False


class TaxLineResult(WriteModel):
    number: str
    amount: Money
    tax: Money
    rate: Decimal = ZERO


class TaxResult(WriteModel):
    """The engine's tax of a document: each line's tax (rounded by the engine on its own)."""

    code: str = ""
    lines: tuple[TaxLineResult, ...]
    messages: tuple[str, ...] = ()

    def line_taxes(self) -> dict[str, Decimal]:
        return {line.number: line.tax for line in self.lines}


# --- cash, revenue ------------------------------------------------------------------------


class PaymentDraft(WriteModel):
    """Cash received: against ``invoice_id``, or without one as unapplied cash of the
    contract. Recorded once by its ``payment_id``."""

    payment_id: str
    contract_id: str
    invoice_id: str | None = None
    amount: Money
    currency: str
    received_on: date


class CashApplicationDraft(WriteModel):
    """Unapplied cash or credit applied to an invoice, once by its ``application_id``."""

    application_id: str
    invoice_id: str
    amount: Money


class RevenueEntryDraft(WriteModel):
    """Revenue recognised in a period, posted once by its ``entry_id`` (negative to reverse)."""

    entry_id: str
    period: str
    amount: Money
    method: str
    description: str = ""
    recognised_on: date


class InvoiceCollection(WriteModel):
    """An issued invoice for the payment gateway to collect (what the customer pays it with)."""

    invoice_id: str
    contract_id: str
    number: str | None = None
    amount: Money
    currency: str
    customer_id: str | None = None


class PaymentRequest(WriteModel):
    """A payment of an invoice taken at the gateway, as a customer's checkout would open it."""

    invoice_id: str
    amount: Money
    currency: str


class RefundRequest(WriteModel):
    """Money the gateway returns of a payment it collected: ``amount`` of it, or what is left
    when ``None``."""

    payment_id: str
    amount: Money | None = None
    currency: str
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] = "requested_by_customer"


# --- write-offs ------------------------------------------------------------------------------


class WriteOffDraft(WriteModel):
    """Work above a not-to-exceed cap that an operator wrote off instead of billing: told to
    the ERP once, by its ``write_off_id`` (derived from the contract and the decision)."""

    write_off_id: str
    contract_id: str
    erp_contract_id: str | None = None
    erp_project_id: str | None = None
    legal_entity: str
    period: str
    amount: Money
    currency: str
    reason: str
    operator: str
    written_off_on: date


class DocumentFile(WriteModel):
    """An archived document of an invoice or credit note, as an ERP links or attaches it:
    its kind (``pdf`` or ``einvoice``), its file name, where c2c's API serves it, its SHA-256,
    and its bytes (for an ERP that keeps a copy of its own)."""

    kind: Literal["pdf", "einvoice"]
    file_name: str
    url: str
    sha256: str
    content_type: str
    data: bytes = Field(repr=False)
