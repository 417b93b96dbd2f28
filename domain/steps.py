"""The business steps of a contract: activity names and their inputs and outputs.

Workflows call activities by these names, so workflow code never imports the activity modules
(and with them httpx and sqlmodel). Inputs carry ids and totals, never lists that grow with the
work: time entries and invoice lines stay in the systems and are paged inside activities.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from domain.models import ContractApproved, InvoiceSummary, OpenException, PaymentReceived
from domain.money import Money, Quantity
from domain.names import Stage
from domain.pricing import RateRevision

VALIDATE_CONTRACT = "validate_contract"
ENSURE_ERP_CUSTOMER = "ensure_erp_customer"
CREATE_ERP_PROJECT = "create_erp_project"
CREATE_ERP_CONTRACT = "create_erp_contract"
ACTIVATE_PSA_PROJECT = "activate_psa_project"
BILL_PERIOD = "bill_period"
APPLY_PAYMENT = "apply_payment"
CLOSE_CONTRACT = "close_contract"
RECORD_AUDIT = "record_audit"
OPEN_EXCEPTION = "open_exception"
RESOLVE_EXCEPTION_RECORD = "resolve_exception_record"


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


class ContractStep(StepInput):
    """A step that needs the approved contract (provisioning)."""

    contract: ContractApproved
    refs: dict[str, str] = Field(default_factory=dict)


class Validated(BaseModel):
    jurisdiction_code: str
    functional_currency: str
    ancestors: list[str] = Field(default_factory=list)


class CreatedRef(BaseModel):
    """The id a system gave the record a step created or found."""

    system: str
    kind: str
    external_id: str

    @property
    def ref_name(self) -> str:
        return f"{self.system}_{self.kind}_id"


class BillPeriodInput(StepInput):
    period: str
    through_date: date
    invoice_date: date
    currency: str
    legal_entity: str
    country: str
    region: str | None = None
    payment_terms_days: int
    expenses_billable: bool
    rates: list[RateRevision]
    refs: dict[str, str]


class BillPeriodResult(BaseModel):
    invoice: InvoiceSummary | None = None
    hours: Quantity = Decimal(0)
    time_entries: int = 0
    expenses: int = 0


class ApplyPaymentInput(StepInput):
    payment: PaymentReceived
    invoice_id: str


class PaymentApplied(BaseModel):
    invoice_id: str
    applied: Money
    unapplied: Money
    amount_paid: Money
    invoice_status: str


class CloseContractInput(StepInput):
    refs: dict[str, str]


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


class ExceptionOpened(BaseModel):
    exception: OpenException
