"""What one run of ``ContractToCash`` hands to the next when it continues as new.

A five-year contract with monthly billing, payments and amendments would outgrow Temporal's
history limits in one run. At a quiet moment the workflow continues as new with its approved
contract and this state: everything it decided so far (billing position, invoices, cash book,
amendments, open exceptions, milestones, revenue) and every message it received but has not
handled yet. Sets are carried as sorted lists and money as decimal strings, so the payload is
the same JSON on every worker.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Self

from pydantic import BaseModel, Field, model_validator

from domain.amendments import Terms
from domain.collections import CashBook
from domain.models import (
    AmendmentResult,
    ClosePeriod,
    ContractApproved,
    CreditInvoice,
    CreditNoteSummary,
    HistoryEntry,
    InvoiceSummary,
    MilestoneCompleted,
    OpenException,
    PaymentReceived,
    ResolveException,
    RevenueStatus,
    TerminateContract,
)
from domain.money import Money
from domain.names import Stage
from domain.steps import AuditEntry, Validated

#: A message that waits in the contract's inbox until the main loop handles it.
Message = ClosePeriod | PaymentReceived | MilestoneCompleted | CreditInvoice


class PendingMessage(BaseModel):
    """One waiting message, tagged by kind: the four kinds share field names (``amount``,
    ``invoice_id``), so an untagged union could be read back as the wrong one."""

    close_period: ClosePeriod | None = None
    payment_received: PaymentReceived | None = None
    milestone_completed: MilestoneCompleted | None = None
    credit_invoice: CreditInvoice | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(m is not None for m in self._all()) != 1:
            raise ValueError("a pending message carries exactly one message")
        return self

    def _all(self) -> tuple[Message | None, ...]:
        return (
            self.close_period,
            self.payment_received,
            self.milestone_completed,
            self.credit_invoice,
        )

    @classmethod
    def of(cls, message: Message) -> PendingMessage:
        if isinstance(message, ClosePeriod):
            return cls(close_period=message)
        if isinstance(message, PaymentReceived):
            return cls(payment_received=message)
        if isinstance(message, MilestoneCompleted):
            return cls(milestone_completed=message)
        return cls(credit_invoice=message)

    @property
    def message(self) -> Message:
        return next(m for m in self._all() if m is not None)


class BillingState(BaseModel):
    """``workflows.billing.Billing``'s position: what is billed and recognised so far."""

    closed_periods: list[str] = Field(default_factory=list)
    billed_to_date: Money = Decimal(0)
    held_back: Money = Decimal(0)
    written_off: Money = Decimal(0)
    revenue: RevenueStatus | None = None
    recognised_fixed_fee: Money = Decimal(0)
    completed: dict[str, date] = Field(default_factory=dict)
    milestone_invoice: dict[str, str] = Field(default_factory=dict)
    #: Retainer fees billed, by month: (amount, invoice id).
    fees: dict[str, tuple[Money, str]] = Field(default_factory=dict)
    ratable_months: list[str] = Field(default_factory=list)
    releases: int = 0
    swept: bool = False


class CollectionsState(BaseModel):
    """``workflows.collections.Collections``' receivables, cash and dunning."""

    book: CashBook = Field(default_factory=CashBook)
    invoices: list[InvoiceSummary] = Field(default_factory=list)
    #: Every payment id seen: a payment signalled again in a later run is still applied once.
    payments_seen: list[str] = Field(default_factory=list)
    credit_notes: list[CreditNoteSummary] = Field(default_factory=list)
    credited_subtotal: dict[str, Money] = Field(default_factory=dict)
    credit_receipts: dict[str, str] = Field(default_factory=dict)
    overdue: list[str] = Field(default_factory=list)
    dunned: dict[str, int] = Field(default_factory=dict)
    dunning_stopped: list[str] = Field(default_factory=list)
    escalations: dict[str, str] = Field(default_factory=dict)


class CarriedState(BaseModel):
    """What a run of ``ContractToCash`` ends with when it continues as new, and the next
    run of the same workflow id starts from."""

    #: Which run of the contract this is: 2 for the first continuation.
    run: int = Field(ge=2)
    stage: Stage
    resume_stage: Stage
    refs: dict[str, str]
    terms: Terms
    validated: Validated | None
    inbox: list[PendingMessage] = Field(default_factory=list)
    terminate: TerminateContract | None = None
    open_exceptions: list[OpenException] = Field(default_factory=list)
    decisions: list[ResolveException] = Field(default_factory=list)
    #: Amendment answers by id: a repeated amendment id gets its first answer in every run.
    amendments: list[AmendmentResult] = Field(default_factory=list)
    abort_reason: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    pending_audit: list[AuditEntry] = Field(default_factory=list)
    audit_seq: int = 0
    billing: BillingState = Field(default_factory=BillingState)
    collections: CollectionsState = Field(default_factory=CollectionsState)


class ContractRun(ContractApproved):
    """The input of ``ContractToCash``: the approved contract, and, from the second run on,
    the state carried over from the previous run.

    A ``ContractApproved`` payload is a valid ``ContractRun`` without ``carried``, so the CLM,
    the API and histories recorded before continue-as-new existed all start it unchanged.
    """

    carried: CarriedState | None = None

    def approved(self) -> ContractApproved:
        """The approved contract alone, as the business steps receive it."""
        return ContractApproved.model_validate(self.model_dump(exclude={"carried"}))
