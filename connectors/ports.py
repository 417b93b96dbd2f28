"""The typed interface of each system, as c2c's activities use it.

A connector for another vendor's system implements one of these protocols; nothing else in
c2c changes. Every write takes an ``idempotency_key`` built by the caller from the workflow id
and the business step, so a retried or re-executed step never creates a record twice. A system
without idempotency keys is made safe by the connector, by finding the record by its canonical
id before creating it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from connectors.records import (
    BillingBatch,
    CashApplication,
    CrmAccount,
    CrmActivity,
    ErpContract,
    ErpContractBalances,
    ErpCreditNote,
    ErpCustomer,
    ErpInvoice,
    ErpPayment,
    ErpProject,
    ErpWriteOff,
    Expense,
    GatewayCollection,
    GatewayPayment,
    GatewayRefund,
    LegalEntity,
    PsaProject,
    RevenueEntry,
    TaxDocument,
    TimeEntry,
)
from domain.write_models import (
    AmendmentDraft,
    BillingSchedule,
    CashApplicationDraft,
    ContractDraft,
    CreditNoteDraft,
    CrmActivityDraft,
    CustomerChanges,
    CustomerDraft,
    DocumentFile,
    InvoiceCollection,
    InvoiceDraft,
    MilestoneChangeDraft,
    MilestoneDraft,
    PaymentDraft,
    PaymentRequest,
    ProjectDraft,
    PsaProjectChanges,
    PsaProjectDraft,
    RateDraft,
    RefundRequest,
    RevenueEntryDraft,
    RevenueSchedule,
    TaxRequest,
    WriteOffDraft,
)


class Closeable(Protocol):
    async def aclose(self) -> None: ...


class CrmPort(Closeable, Protocol):
    async def get_account(self, crm_account_id: str) -> CrmAccount: ...

    async def get_ancestors(self, crm_account_id: str) -> list[CrmAccount]: ...

    async def add_activity(
        self, crm_account_id: str, activity: CrmActivityDraft, *, idempotency_key: str
    ) -> CrmActivity: ...

    async def list_activities(
        self,
        crm_account_id: str,
        *,
        activity_type: str | None = None,
        invoice_id: str | None = None,
    ) -> list[CrmActivity]: ...


class ErpPort(Closeable, Protocol):
    async def get_legal_entity(self, code: str) -> LegalEntity | None: ...

    async def ensure_customer(
        self, customer: CustomerDraft, *, idempotency_key: str
    ) -> ErpCustomer: ...

    async def ensure_project(
        self, project: ProjectDraft, *, idempotency_key: str
    ) -> ErpProject: ...

    async def close_project(self, project_id: str, *, idempotency_key: str) -> ErpProject: ...

    async def ensure_contract(
        self, contract: ContractDraft, *, idempotency_key: str
    ) -> ErpContract: ...

    async def put_billing_schedule(
        self, erp_contract_id: str, schedule: BillingSchedule, *, idempotency_key: str
    ) -> None: ...

    async def put_revenue_schedule(
        self, erp_contract_id: str, schedule: RevenueSchedule, *, idempotency_key: str
    ) -> None: ...

    async def amend_contract(
        self, erp_contract_id: str, amendment: AmendmentDraft, *, idempotency_key: str
    ) -> ErpContract: ...

    async def link_contract_document(
        self, erp_contract_id: str, document_url: str, sha256: str
    ) -> ErpContract: ...

    async def get_exchange_rate(
        self, from_currency: str, to_currency: str, on: date
    ) -> Decimal: ...

    async def find_invoice(
        self,
        contract_id: str,
        *,
        period: str | None = None,
        milestone_id: str | None = None,
        reference: str | None = None,
    ) -> ErpInvoice | None: ...

    async def create_invoice(
        self, invoice: InvoiceDraft, *, idempotency_key: str
    ) -> ErpInvoice: ...

    async def issue_invoice(self, invoice_id: str, *, idempotency_key: str) -> ErpInvoice: ...

    async def get_invoice(self, invoice_id: str) -> ErpInvoice | None: ...

    async def list_invoices(self, contract_id: str) -> list[ErpInvoice]: ...

    async def create_credit_note(
        self, invoice_id: str, note: CreditNoteDraft, *, idempotency_key: str
    ) -> ErpCreditNote: ...

    async def list_credit_notes(
        self, contract_id: str, *, invoice_id: str | None = None
    ) -> list[ErpCreditNote]: ...

    async def record_payment(
        self, payment: PaymentDraft, *, idempotency_key: str
    ) -> ErpPayment: ...

    async def list_payments(
        self, *, contract_id: str | None = None, invoice_id: str | None = None
    ) -> list[ErpPayment]: ...

    async def apply_payment(
        self, payment_id: str, application: CashApplicationDraft, *, idempotency_key: str
    ) -> CashApplication: ...

    async def apply_credit(
        self, credit_note_id: str, application: CashApplicationDraft, *, idempotency_key: str
    ) -> CashApplication: ...

    async def post_revenue(
        self, erp_contract_id: str, entry: RevenueEntryDraft, *, idempotency_key: str
    ) -> RevenueEntry: ...

    async def list_revenue(self, erp_contract_id: str) -> list[RevenueEntry]: ...

    async def get_balances(self, erp_contract_id: str) -> ErpContractBalances: ...

    async def record_write_off(
        self, write_off: WriteOffDraft, *, idempotency_key: str
    ) -> ErpWriteOff:
        """Tell the ERP about work above a cap written off; the ``write_off_id`` makes it
        once."""
        ...


@runtime_checkable
class DocumentAttachments(Protocol):
    """An ERP whose invoices and credit notes link to (or keep a copy of) their documents in
    c2c's archive.

    Apart from ``ErpPort``: an ERP without a place for them keeps its documents unlinked, and
    the documents are still served by c2c's API. Attaching the same documents again changes
    nothing.
    """

    async def attach_documents(
        self,
        document_type: Literal["invoice", "credit_note"],
        document_id: str,
        documents: Sequence[DocumentFile],
    ) -> None: ...


@runtime_checkable
class CustomerMasterPort(Protocol):
    """An ERP that takes changes to its customers' master data (the account sync).

    Apart from ``ErpPort`` so that an ERP connector without it still serves contracts; the
    account sync refuses, as an exception, a change for an ERP that cannot take it.
    """

    async def find_customer(self, crm_account_id: str) -> ErpCustomer | None: ...

    async def update_customer(
        self, customer_id: str, changes: CustomerChanges, *, idempotency_key: str
    ) -> ErpCustomer: ...


class PsaPort(Closeable, Protocol):
    async def ensure_project(
        self, project: PsaProjectDraft, *, idempotency_key: str
    ) -> PsaProject: ...

    async def get_project(self, project_id: str) -> PsaProject | None: ...

    async def update_project(
        self, project_id: str, changes: PsaProjectChanges, *, idempotency_key: str
    ) -> PsaProject: ...

    async def put_rate_card(
        self, project_id: str, rates: Sequence[RateDraft], *, idempotency_key: str
    ) -> PsaProject: ...

    async def add_milestones(
        self, project_id: str, milestones: Sequence[MilestoneDraft], *, idempotency_key: str
    ) -> PsaProject: ...

    async def update_milestone(
        self, project_id: str, change: MilestoneChangeDraft, *, idempotency_key: str
    ) -> PsaProject: ...

    async def remove_milestone(
        self, project_id: str, milestone_id: str, *, idempotency_key: str
    ) -> PsaProject | None: ...

    async def activate_project(self, project_id: str, *, idempotency_key: str) -> PsaProject: ...

    async def close_project(self, project_id: str, *, idempotency_key: str) -> PsaProject: ...

    async def freeze_billing_batch(
        self, project_id: str, batch_id: str, through_date: date, *, include_expenses: bool
    ) -> BillingBatch: ...

    def batch_time_entries(
        self, project_id: str, batch_id: str
    ) -> AsyncIterator[list[TimeEntry]]: ...

    def batch_expenses(self, project_id: str, batch_id: str) -> AsyncIterator[list[Expense]]: ...

    def unbilled_time_entries(self, project_id: str) -> AsyncIterator[list[TimeEntry]]: ...

    async def mark_batch_invoiced(
        self, project_id: str, batch_id: str, invoice_id: str, *, idempotency_key: str
    ) -> BillingBatch: ...


class TaxPort(Closeable, Protocol):
    async def validate_address(self, country: str, region: str | None) -> str: ...

    async def create_or_adjust(self, document: TaxRequest) -> TaxDocument: ...

    async def get_document(self, company: str, code: str) -> TaxDocument | None:
        """The document of ``code`` (with the mentions it requires), ``None`` when none."""
        ...

    async def commit_document(
        self, company: str, code: str, *, idempotency_key: str
    ) -> TaxDocument: ...


class PaymentsPort(Closeable, Protocol):
    async def create_payment(
        self, payment: PaymentRequest, *, idempotency_key: str
    ) -> GatewayPayment: ...

    async def collect_invoice(
        self, invoice: InvoiceCollection, *, idempotency_key: str
    ) -> GatewayCollection | None:
        """Open what the customer pays the issued invoice with; ``None`` for a gateway that
        takes payments without one."""
        ...

    async def refund_payment(
        self, refund: RefundRequest, *, idempotency_key: str
    ) -> GatewayRefund: ...
