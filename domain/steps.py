"""The business steps of a contract: activity names and their inputs and outputs.

Workflows call activities by these names, so workflow code never imports the activity modules
(and with them httpx and sqlmodel). Inputs carry ids and totals, never lists that grow with the
work: time entries and invoice lines stay in the systems and are paged inside activities.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.consolidation import (
    BillingMember,
    ConsolidatedInvoice,
    CustomerBillingKey,
    CustomerBillingStart,
    InvoiceDocumentLink,
    InvoiceSection,
)
from domain.models import (
    Amendment,
    BillTo,
    ConsolidatedInvoicing,
    ContractApproved,
    CreditNoteSummary,
    Customer,
    DraftInvoice,
    InvoiceReview,
    InvoiceSummary,
    OpenException,
    PaymentReceived,
    RevenueStatus,
    SectionInvoiced,
)
from domain.money import Money, Quantity
from domain.names import Stage, System
from domain.pricing import InvoiceLine, RateRevision

VALIDATE_CONTRACT = "validate_contract"
ENSURE_ERP_CUSTOMER = "ensure_erp_customer"
CREATE_ERP_PROJECT = "create_erp_project"
CREATE_ERP_CONTRACT = "create_erp_contract"
#: The three steps above as one, for contract runs from 0.11 (``erp-onboarding-one-step``).
PROVISION_ERP = "provision_erp"
ACTIVATE_PSA_PROJECT = "activate_psa_project"
BILL_PERIOD = "bill_period"
APPLY_PAYMENT = "apply_payment"
APPLY_CASH = "apply_unapplied_cash"
ISSUE_CREDIT_NOTE = "issue_credit_note"
SEND_DUNNING_REMINDER = "send_dunning_reminder"
PROPAGATE_AMENDMENT = "propagate_amendment"
CLOSE_CONTRACT = "close_contract"
CLOSE_TIME_ENTRY = "close_time_entry"
RECORD_AUDIT = "record_audit"
OPEN_EXCEPTION = "open_exception"
RESOLVE_EXCEPTION_RECORD = "resolve_exception_record"
ESCALATE_EXCEPTION = "escalate_exception"
RECORD_ARRIVAL_ORDER = "record_arrival_order"
LOOK_UP_PAYMENT = "look_up_payment"
LOOK_UP_CONSOLIDATED_PAYMENT = "look_up_consolidated_payment"
ARCHIVE_SIGNED_DOCUMENT = "archive_signed_document"
RECORD_INVOICE_REVIEW = "record_invoice_review"
RENDER_INVOICE_DOCUMENTS = "render_invoice_documents"
RECORD_WRITE_OFF = "record_write_off"
#: Consolidated invoicing: a contract's messages to its customer's billing workflow (started
#: by the first), the section it answers recorded, a payment's part recorded; the customer's
#: invoice made in the ERP and a payment of it recorded there.
SEND_TO_CUSTOMER_BILLING = "send_to_customer_billing"
RECORD_SECTION_INVOICED = "record_section_invoiced"
RECORD_SECTION_PAYMENT = "record_section_payment"
ISSUE_CONSOLIDATED_INVOICE = "issue_consolidated_invoice"
APPLY_CONSOLIDATED_PAYMENT = "apply_consolidated_payment"
RENDER_CONSOLIDATED_INVOICE_DOCUMENTS = "render_consolidated_invoice_documents"
#: The customer's invoice recorded paid (its sections' balance reached zero) in the ledger.
RECORD_CONSOLIDATED_INVOICE_PAID = "record_consolidated_invoice_paid"
#: Not a step: the exceptions a contract opens, as it ends, for messages that came after its
#: last decision (a payment after the close). Its workflow has ended, so the ledger records
#: the operator's decision on them.
LATE_MESSAGE_STEP = "late_message"

#: The system whose task queue (and so whose rate limit) each step runs under. A step that
#: calls several systems runs under the one that limits it: the ERP, whose API allows one
#: pool of calls per account. Validation, billing and credit notes also call the tax engine
#: (and billing the PSA), closing and amendments the PSA: those calls come with the ERP call
#: they belong to.
#: No step calls the payment gateway (payments arrive by webhook), and none calls the tax
#: engine alone. Steps not listed (c2c's own ledger) run on the workflows' queue.
STEP_SYSTEM_QUEUE: dict[str, System] = {
    VALIDATE_CONTRACT: System.ERP,
    ENSURE_ERP_CUSTOMER: System.ERP,
    CREATE_ERP_PROJECT: System.ERP,
    CREATE_ERP_CONTRACT: System.ERP,
    PROVISION_ERP: System.ERP,
    ACTIVATE_PSA_PROJECT: System.PSA,
    BILL_PERIOD: System.ERP,
    APPLY_PAYMENT: System.ERP,
    APPLY_CASH: System.ERP,
    ISSUE_CREDIT_NOTE: System.ERP,
    SEND_DUNNING_REMINDER: System.CRM,
    PROPAGATE_AMENDMENT: System.ERP,
    CLOSE_CONTRACT: System.ERP,
    CLOSE_TIME_ENTRY: System.PSA,
    # Fetches from the CLM, then links the archived copy to the ERP contract.
    ARCHIVE_SIGNED_DOCUMENT: System.ERP,
    # Reads the invoice from the ERP, archives its documents, and links them from it.
    RENDER_INVOICE_DOCUMENTS: System.ERP,
    RECORD_WRITE_OFF: System.ERP,
    # Marks the section's work invoiced in the PSA, then writes the ledger.
    RECORD_SECTION_INVOICED: System.PSA,
    ISSUE_CONSOLIDATED_INVOICE: System.ERP,
    APPLY_CONSOLIDATED_PAYMENT: System.ERP,
    # Reads the consolidated invoice from the ERP, archives its documents, links them from it.
    RENDER_CONSOLIDATED_INVOICE_DOCUMENTS: System.ERP,
}


class AuditEntry(BaseModel):
    """One line of the audit trail; ``key`` makes its write idempotent."""

    key: str
    at: datetime
    stage: Stage
    event: str
    detail: dict[str, Any] = Field(default_factory=dict)


class StepInput(BaseModel):
    """Base of every step's input: audit entries the workflow has not yet written."""

    contract_id: str
    audit: list[AuditEntry] = Field(default_factory=list)
    #: The exceptions the workflow has open, sent with c2c's own ledger writes: any other
    #: exception the ledger still has open for the contract belongs to a run a reset replaced.
    open_exceptions: list[str] | None = None


class ContractStep(StepInput):
    """A step that needs the approved contract (provisioning)."""

    contract: ContractApproved
    refs: dict[str, str] = Field(default_factory=dict)


class Validated(BaseModel):
    jurisdiction_code: str
    functional_currency: str
    #: Days after the due date on which dunning reminders go out (configuration).
    dunning_offsets_days: list[int] = Field(default_factory=lambda: [7, 14, 30])
    #: Attempts of a step that fails transiently before it becomes an exception.
    step_max_attempts: int = 14
    #: How long one attempt of a step may take (and a billing step go without a heartbeat).
    step_timeout_s: float = 60.0
    #: History length at which a run continues as new at its next quiet moment, even if the
    #: server has not suggested it yet (configuration; the server's own limit still applies).
    continue_as_new_events: int = 10_000
    ancestors: list[str] = Field(default_factory=list)
    #: The IANA time zone in which the legal entity's billing periods end (configuration).
    time_zone: str = "UTC"
    #: The legal entity's country (the ERP's), where its sales ship from for tax.
    legal_entity_country: str | None = None
    #: The customer's tax registration (VAT) number: the CRM account's, else the contract's.
    customer_tax_id: str | None = None
    #: Whether the legal entity's invoices wait for review as drafts (configuration).
    invoice_review: InvoiceReview = "none"
    #: Whether the legal entity's period closes go on one invoice per customer (configuration).
    consolidated_invoicing: ConsolidatedInvoicing = "none"
    #: The systems whose steps run on their own task queue (``Settings.queued_systems``);
    #: ``None`` (validated before it was decided here): every system's.
    queued_systems: list[str] | None = None


class CreatedRef(BaseModel):
    """The id a system gave the record a step created or found."""

    system: str
    kind: str
    external_id: str

    @property
    def ref_name(self) -> str:
        return f"{self.system}_{self.kind}_id"


class ErpProvisioned(BaseModel):
    """The ERP customer, project and contract that ``provision_erp`` created or found."""

    created: list[CreatedRef]


TimePricing = Literal["rate_card", "overage", "none"]


class RevenuePlan(BaseModel):
    """What to post to the ERP as revenue with an invoice (or alone, at a period close).

    ``amount`` is decided by the workflow (milestones completed, the month's retainer); when
    ``add_as_invoiced`` is set the invoice's time, expense and overage lines are added to it,
    because T&M revenue follows the right to invoice.
    """

    entry_id: str
    period: str
    method: str
    amount: Money = Decimal(0)
    add_as_invoiced: bool = False
    description: str


class BillPeriodInput(StepInput):
    """One invoice: a period's work and charges, an advance fee, a milestone or a release.

    ``reference`` is the invoice's business key in the ERP: the same reference never yields
    two invoices.
    """

    reference: str
    period: str
    milestone_id: str | None = None
    through_date: date | None = None
    time_pricing: TimePricing = "rate_card"
    included_hours: Quantity = Decimal(0)
    charges: list[InvoiceLine] = Field(default_factory=list)
    not_to_exceed: Money | None = None
    billed_to_date: Money = Decimal(0)
    invoice_date: date
    currency: str
    legal_entity: str
    functional_currency: str | None = None
    country: str
    region: str | None = None
    #: Sent to the tax engine, which reverse-charges a cross-border B2B sale on them.
    customer_tax_id: str | None = None
    seller_country: str | None = None
    payment_terms_days: int
    expenses_billable: bool
    expense_markup_percent: Decimal = Decimal(0)
    rates: list[RateRevision]
    refs: dict[str, str]
    revenue: RevenuePlan | None = None
    revenue_method: str = "as_invoiced"
    #: Sent to the ERP with the invoice (absent: none).
    po_number: str | None = None
    bill_to: BillTo | None = None
    #: Make only a draft under this id: price, cap and tax the invoice, keep the preview in
    #: the ledger; no ERP invoice, no committed tax document, no payment intent.
    draft_id: str | None = None
    #: The draft this invoice issues once an operator approved it, and who approved it.
    approved_draft: str | None = None
    approved_by: str | None = None
    #: Make only a section of the customer's consolidated invoice under this id: priced,
    #: capped and taxed (the tax document saved), its lines kept in the ledger, its revenue
    #: posted; no ERP invoice (the customer's billing workflow makes one for all sections).
    section_id: str | None = None


class BillPeriodResult(BaseModel):
    invoice: InvoiceSummary | None = None
    hours: Quantity = Decimal(0)
    time_entries: int = 0
    expenses: int = 0
    #: Priced work the not-to-exceed cap kept off the invoice.
    held_back: Money = Decimal(0)
    #: The invoice's lines that T&M revenue follows (time, expenses, overage, releases).
    as_invoiced: Money = Decimal(0)
    revenue_posted: Money = Decimal(0)
    revenue: RevenueStatus | None = None
    #: The draft made instead of an invoice (``BillPeriodInput.draft_id``).
    draft: DraftInvoice | None = None
    #: The section made instead of an invoice (``BillPeriodInput.section_id``).
    section: InvoiceSection | None = None


class CustomerBillingMessage(StepInput):
    """One message of a contract to its customer's billing workflow, which the first starts
    (signal-with-start): exactly one of ``join``, ``section`` and ``leave``."""

    workflow_id: str
    start: CustomerBillingStart
    join: BillingMember | None = None
    section: InvoiceSection | None = None
    leave: BillingMember | None = None


class SectionInvoicedInput(StepInput):
    """A contract's section, numbered on the consolidated invoice: recorded as the invoice the
    contract holds (PSA batch, ledger facts)."""

    invoiced: SectionInvoiced
    legal_entity: str
    currency: str
    refs: dict[str, str]


class ConsolidatedInvoiceInput(StepInput):
    """One consolidated invoice to make in the ERP (``contract_id`` is the customer billing
    workflow's id): the sections in the order they appear on it."""

    key: CustomerBillingKey
    erp_customer_id: str
    reference: str
    period: str
    invoice_date: date
    sections: list[InvoiceSection]


class ConsolidatedDocumentsInput(StepInput):
    """An issued consolidated invoice whose documents are rendered from the ERP's record of
    it, archived and linked (``contract_id`` is the customer billing workflow's id): its
    sections in the order they appear on it."""

    invoice_id: str
    key: CustomerBillingKey
    sections: list[InvoiceSection]


class ConsolidatedDocumentsRendered(BaseModel):
    """The documents archived for a consolidated invoice."""

    documents: list[InvoiceDocumentLink] = Field(default_factory=list)


class ConsolidatedInvoicePaidInput(StepInput):
    """A consolidated invoice whose sections' balance reached zero (``contract_id`` is the
    customer billing workflow's id): what was paid and credited of each, and the day the
    payment that settled it was received."""

    key: CustomerBillingKey
    invoice: ConsolidatedInvoice
    paid_on: date


class ConsolidatedPaymentInput(StepInput):
    """A payment of a consolidated invoice, recorded on it in the ERP."""

    payment: PaymentReceived
    invoice_id: str


class InvoiceReviewInput(StepInput):
    """A rejected draft, recorded in the ledger (an approval is recorded as it is issued)."""

    draft_id: str
    operator: str
    reason: str
    at: datetime


class ApplyPaymentInput(StepInput):
    payment: PaymentReceived
    invoice_id: str | None = None
    erp_contract_id: str


class PaymentApplied(BaseModel):
    invoice_id: str | None = None
    applied: Money
    unapplied: Money
    amount_paid: Money
    invoice_status: str


class CashApplication(BaseModel):
    """Cash held for the contract applied to an invoice: a payment's, or a credit note's."""

    source_id: str
    invoice_id: str
    amount: Money
    credit_note_id: str | None = None


class ApplyCashInput(StepInput):
    """Unapplied cash (payments or credit) applied to a newly issued invoice."""

    applications: list[CashApplication]


class CreditedSection(BaseModel):
    """The invoice credited is a contract's section of a consolidated invoice: the ERP
    credits the consolidated invoice, bounded by the section's figures."""

    consolidated_invoice_id: str
    #: The contract's reference of the section (its period): names its tax document.
    reference: str
    subtotal: Money
    tax: Money


class CreditNoteInput(StepInput):
    credit_note_id: str
    invoice_id: str
    amount: Money
    reason: str
    currency: str
    legal_entity: str
    country: str
    region: str | None = None
    customer_tax_id: str | None = None
    seller_country: str | None = None
    on: date
    erp_contract_id: str | None = None
    #: Revenue to reverse with the credit (time and materials: revenue follows the invoice).
    revenue: RevenuePlan | None = None
    revenue_method: str = "as_invoiced"
    section: CreditedSection | None = None


class CreditNoteIssued(BaseModel):
    credit_note: CreditNoteSummary
    applied: Money
    unapplied: Money
    revenue: RevenueStatus | None = None


class InvoiceDocumentsInput(StepInput):
    """An issued invoice or credit note whose documents (PDF, and e-invoice for a legal entity
    in the EU) are rendered from the ERP's record of it, archived and linked."""

    document_type: Literal["invoice", "credit_note"]
    #: The ERP's id of the invoice or credit note.
    document_id: str
    #: A credit note's invoice.
    invoice_id: str | None = None
    title: str
    legal_entity: str
    customer: Customer
    customer_tax_id: str | None = None
    #: The customer's purchase order and who the invoice is for, when the contract has them.
    po_number: str | None = None
    bill_to: str | None = None
    refs: dict[str, str] = Field(default_factory=dict)


class InvoiceDocumentsRendered(BaseModel):
    """The documents archived for an invoice or credit note: SHA-256 by kind."""

    documents: dict[str, str] = Field(default_factory=dict)


class WriteOffInput(StepInput):
    """Work above the cap that an operator wrote off, to tell the ERP about (once, by
    ``write_off_id``)."""

    write_off_id: str
    legal_entity: str
    period: str
    amount: Money
    currency: str
    reason: str
    operator: str
    on: date
    refs: dict[str, str] = Field(default_factory=dict)


class WriteOffRecorded(BaseModel):
    """The write-off as the ERP holds it: the ERP's own reference of it."""

    write_off_id: str
    erp_ref: str


class DunningInput(StepInput):
    crm_account_id: str
    invoice_id: str
    invoice_number: str | None
    level: int
    final: bool
    balance: Money
    currency: str
    due_on: date
    on: date
    #: The consolidated invoice the invoice is a section of: the reminder is about that one.
    consolidated_invoice_id: str | None = None


class AmendmentInput(StepInput):
    """An amendment to propagate, with the contract as it reads once amended."""

    amendment: Amendment
    contract: ContractApproved
    rates: list[RateRevision]
    refs: dict[str, str]


class AmendmentPropagated(BaseModel):
    propagated_to: list[str]


class CloseContractInput(StepInput):
    refs: dict[str, str]


class CloseTimeEntryInput(StepInput):
    """Close time entry on the contract's PSA project after ``last_day`` (a termination)."""

    refs: dict[str, str]
    last_day: date


class TimeEntryClosed(BaseModel):
    """Time entry closed; the approved, billable, unbilled time the PSA already held for days
    after ``last_day``, which no invoice will take."""

    entries_after: int = 0
    hours_after: Quantity = Decimal(0)
    first_day_after: date | None = None


class OpenExceptionInput(StepInput):
    exception_id: str
    stage: Stage
    step: str
    system: str
    code: str
    message: str
    retryable: bool
    opened_at: datetime


class ResolveExceptionInput(StepInput):
    exception_id: str
    action: str
    operator: str
    note: str
    at: datetime


class EscalateExceptionInput(StepInput):
    exception_id: str
    at: datetime


class PaymentLookUp(StepInput):
    """A payment id to look up in the ledger's payment facts of the contract."""

    payment_id: str


class PaymentKnown(BaseModel):
    """Whether the ledger holds the payment: the contract applied it before."""

    known: bool


class ArrivalOrder(StepInput):
    """Messages that arrived together, in the order the workflow first received them."""

    arrivals: list[str]


class ExceptionOpened(BaseModel):
    exception: OpenException
