"""What c2c reads back from the systems of record: the fields orchestration needs, no more.

Unknown fields are ignored so a system can add to its answers without breaking c2c.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.money import Money, Quantity
from domain.write_models import TaxLineResult, TaxResult


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CrmAccount(Record):
    crm_account_id: str
    name: str
    parent_crm_account_id: str | None = None
    country: str
    region: str | None = None
    #: The account's tax registration (VAT) number.
    tax_id: str | None = None
    status: str = "active"


class CrmActivity(Record):
    """An entry of an account's timeline (a meeting, a dunning reminder)."""

    activity_id: str
    crm_account_id: str
    type: str
    subject: str
    body: str | None = None
    #: The records it is about: ``invoice_id``, ``contract_id``.
    related_to: dict[str, str] | None = None
    occurred_at: datetime


class LegalEntity(Record):
    code: str
    name: str
    country: str
    functional_currency: str
    #: Currencies the entity may invoice in; empty when the ERP does not say.
    billing_currencies: list[str] = []


class ErpCustomer(Record):
    customer_id: str
    crm_account_id: str
    name: str


class ErpProject(Record):
    project_id: str
    contract_id: str
    status: str


class ErpAmendment(Record):
    """An amendment as the ERP applied it to a contract."""

    amendment_id: str
    effective_date: date
    reason: str
    applied_at: datetime


class ErpContract(Record):
    erp_contract_id: str
    contract_id: str
    status: str = "active"
    end_date: date | None = None
    not_to_exceed: Money | None = None
    amendments: list[ErpAmendment] = []
    #: Where the signed contract document is kept, and its SHA-256.
    document_url: str | None = None
    document_sha256: str | None = None


class ErpInvoiceLine(Record):
    line_id: str
    kind: str
    amount: Money
    #: What the invoice prints, where the ERP keeps it.
    description: str = ""
    quantity: Decimal = Decimal(1)
    unit_price: Money | None = None
    tax_amount: Money | None = None
    #: On a consolidated invoice: the section (one contract's part) the line belongs to.
    section_id: str | None = None


class ErpInvoiceSection(Record):
    """One contract's part of a consolidated invoice, as the ERP keeps it."""

    section_id: str
    contract_id: str
    erp_contract_id: str | None = None
    subtotal: Money
    tax: Money
    total: Money


class ErpInvoice(Record):
    """An invoice; ``balance`` is ``total - amount_paid - credit_applied``."""

    invoice_id: str
    contract_id: str
    customer_id: str | None = None
    number: str | None = None
    period: str | None = None
    milestone_id: str | None = None
    #: The business key, unique per contract among invoices that are not void.
    reference: str | None = None
    status: str
    currency: str
    subtotal: Money
    tax: Money
    total: Money
    amount_paid: Money = Decimal(0)
    #: Total of the credit notes against this invoice.
    credited_amount: Money = Decimal(0)
    #: Credit (its own credit notes, or customer credit applied) that lowered its balance.
    credit_applied: Money = Decimal(0)
    balance: Money = Decimal(0)
    invoice_date: date
    due_on: date
    functional_currency: str | None = None
    exchange_rate: Decimal | None = None
    functional_subtotal: Money | None = None
    functional_tax: Money | None = None
    functional_total: Money | None = None
    #: The customer's purchase order number and bill-to contact the invoice carries.
    po_number: str | None = None
    bill_to: dict[str, str] | None = None
    lines: list[ErpInvoiceLine] = []
    #: A consolidated invoice's sections, where the ERP keeps them (``None`` on any other).
    sections: list[ErpInvoiceSection] | None = None
    #: Mentions the invoice carries (a reverse charge's legal text).
    notes: list[str] = []
    #: Where c2c's archive serves its PDF, and the PDF's SHA-256, once linked.
    document_url: str | None = None
    document_sha256: str | None = None


class CashApplication(Record):
    """Unapplied cash of a payment, or customer credit of a credit note, applied to an invoice."""

    application_id: str
    source: Literal["payment", "credit_note"]
    payment_id: str | None = None
    credit_note_id: str | None = None
    invoice_id: str
    contract_id: str
    amount: Money
    currency: str


class ErpPayment(Record):
    """Cash received: applied to an invoice on receipt or later, the rest unapplied."""

    payment_id: str
    #: The invoice it was received for; ``None`` for cash held unapplied for the contract.
    invoice_id: str | None = None
    contract_id: str | None = None
    amount: Money
    applied_amount: Money
    unapplied_amount: Money
    currency: str
    applications: list[CashApplication] = []


class ErpCreditNoteLine(Record):
    line_id: str
    amount: Money
    tax_amount: Money = Decimal(0)
    #: On a consolidated invoice's credit note: the section the line credits.
    section_id: str | None = None


class ErpCreditNote(Record):
    """A credit against an issued invoice; ``unapplied_amount`` is customer credit."""

    credit_note_id: str
    number: str
    invoice_id: str
    contract_id: str
    currency: str
    subtotal: Money
    tax: Money
    total: Money
    applied_amount: Money
    unapplied_amount: Money
    reason: str
    created_at: datetime
    applications: list[CashApplication] = []
    lines: list[ErpCreditNoteLine] = []


class RevenueEntry(Record):
    """Revenue recognised on a contract in a period; negative for a cumulative catch-up."""

    entry_id: str
    erp_contract_id: str
    period: str
    amount: Money
    currency: str
    method: str
    description: str
    recognised_on: date


class ErpWriteOff(Record):
    """A write-off as the ERP holds it: ``erp_ref`` is the ERP's own id of the record (the
    reference ERP's write-off, NetSuite's journal entry, Business Central's journal line)."""

    write_off_id: str
    erp_ref: str
    contract_id: str
    period: str
    amount: Money
    currency: str


class ErpContractBalances(Record):
    """A contract's position in the ERP, in the contract currency.

    ``billed_to_date`` is issued invoice subtotals less credit note subtotals;
    ``contract_asset`` and ``contract_liability`` are the excess of revenue over billing and
    of billing over revenue; ``receivable`` is the open balance of its invoices;
    ``unapplied_cash`` is cash and customer credit not yet applied.
    """

    contract_id: str
    currency: str
    billed_to_date: Money
    recognised_to_date: Money
    contract_asset: Money
    contract_liability: Money
    receivable: Money
    unapplied_cash: Money


class PsaRate(Record):
    role: str
    hourly_rate: Money
    #: ``None``: from the project's start.
    effective_from: date | None = None


class PsaMilestone(Record):
    milestone_id: str
    name: str
    amount: Money
    due_date: date | None = None
    status: str = "open"
    completed_on: date | None = None


class PsaProject(Record):
    project_id: str
    contract_id: str
    status: str
    start_date: date | None = None
    end_date: date | None = None
    #: Each role's latest rate; ``rate_revisions`` has every effective-dated revision.
    rate_card: list[PsaRate] = []
    rate_revisions: list[PsaRate] = []
    milestones: list[PsaMilestone] = []


class BillingBatch(Record):
    batch_id: str
    project_id: str
    through_date: date
    time_entry_count: int
    expense_count: int = 0
    hours: Quantity = Decimal(0)
    status: str
    invoice_id: str | None = None


class TimeEntry(Record):
    entry_id: str
    role: str
    work_date: date
    hours: Quantity


class Expense(Record):
    expense_id: str
    category: str
    amount: Money
    currency: str


class TaxDocumentLine(Record):
    number: str
    amount: Money
    tax: Money
    #: The engine's own figure, where ``tax`` was set by an override.
    tax_calculated: Money
    rate: Decimal


class TaxDocument(Record):
    """A document of the tax engine: its status is ``Saved``, ``Committed`` or ``Cancelled``."""

    code: str
    type: str
    status: str
    on: date
    tax_date: date
    total_amount: Money
    total_tax: Money
    lines: list[TaxDocumentLine]
    #: Mentions the engine requires on the invoice (a reverse charge's legal text).
    messages: list[str] = []

    def result(self) -> TaxResult:
        """The engine's tax of each line, as ``domain.tax.apply_tax`` takes it."""
        return TaxResult(
            code=self.code,
            lines=tuple(
                TaxLineResult(number=line.number, amount=line.amount, tax=line.tax, rate=line.rate)
                for line in self.lines
            ),
            messages=tuple(self.messages),
        )


class GatewayCollection(Record):
    """What the gateway opened to collect an invoice (a Stripe PaymentIntent)."""

    collection_id: str
    invoice_id: str
    amount: Money
    currency: str
    status: str


class GatewayRefund(Record):
    """Money the gateway returned on a payment."""

    refund_id: str
    payment_id: str
    amount: Money
    currency: str
    status: str


class GatewayPayment(Record):
    payment_id: str
    invoice_id: str
    amount: Money
    currency: str
    status: str
