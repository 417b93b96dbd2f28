"""The payloads of SPEC.md section 4, as pydantic models.

Money is ``Decimal`` at the currency's minor units (see ``domain.money``); dates are ISO 8601.
Validation errors name the field and the problem, so that the API can answer ``422`` with them
and the CLI can print them.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from domain.money import MINOR_UNITS, Amount, InputQuantity, Money
from domain.names import BillingModel, ExceptionAction, ExceptionQueue, Stage
from domain.periods import Period
from domain.validation import FieldErrors

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_date(value: Any) -> Any:
    # pydantic alone would take 0 or "1700000000" for a date (a Unix timestamp): a number
    # where a date belongs is a sender's mistake, and 1970-01-01 a wrong answer to it. Strict
    # mode cannot say this: in Python mode it refuses the ISO strings that JSON carries.
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        return value.strip()
    raise ValueError("must be an ISO 8601 date string such as 2026-10-31")


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATETIME.match(value.strip()):
        return value.strip()
    raise ValueError("must be an ISO 8601 date and time string such as 2026-10-31T09:30:00Z")


#: A date in input: ``YYYY-MM-DD`` (or a ``date``); never a number.
StrictDate = Annotated[date, BeforeValidator(_iso_date)]
#: A date and time in input: ISO 8601 (or a ``datetime``); never a number.
StrictDatetime = Annotated[datetime, BeforeValidator(_iso_datetime)]


#: An ISO 4217 code c2c bills in; the schema lists them, so a valid document is a valid input.
CurrencyCode = Annotated[
    str, Field(pattern=r"^[A-Z]{3}$", json_schema_extra={"enum": sorted(MINOR_UNITS)})
]


#: White space as Python's ``str.strip`` sees it, which is more than ``\s`` in a JSON schema's
#: (ECMA-262) or pydantic's (Rust) patterns: spelled out so that every engine agrees.
_SPACE = r"\s\u001c-\u001f\u0085"
#: A character that is not white space; and one that is neither that nor ``@``.
_NOT_SPACE = rf"[^{_SPACE}]"
#: The pattern of a string that must not be blank, as every engine reads it.
NOT_BLANK = _NOT_SPACE
_NOT_AT = rf"[^@{_SPACE}]"


def _not_blank_in_schema(schema: dict[str, Any]) -> None:
    """Say in the schema what stripping white space means: a string that must have a length
    must have a character that is not white space."""
    for prop in schema.get("properties", {}).values():
        for variant in [prop, *prop.get("anyOf", [])]:
            if variant.get("type") == "string" and variant.get("minLength", 0) >= 1:
                variant.setdefault("pattern", _NOT_SPACE)


class Model(BaseModel):
    """Base for every payload: unknown fields are errors, so typos never pass silently."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_not_blank_in_schema
    )


Identifier = Field(pattern=_ID, description="letters, digits and . _ : - (at most 64)")


class Customer(Model):
    crm_account_id: str = Identifier
    name: str = Field(min_length=1, max_length=200)
    parent_crm_account_id: str | None = Field(default=None, pattern=_ID)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    region: str | None = Field(default=None, max_length=10)
    tax_id: str | None = Field(default=None, max_length=40)
    billing_email: str | None = Field(
        default=None, pattern=rf"^{_NOT_AT}+@{_NOT_AT}+\.{_NOT_AT}+$", max_length=254
    )


#: Whether a legal entity's (or a contract's) invoices wait for an operator's review before
#: they are numbered and issued.
InvoiceReview = Literal["none", "required"]
#: Whether a legal entity's (or a contract's) period closes go on one invoice per customer
#: across its contracts (``customer``), per purchase order too (``customer_po``), or not.
ConsolidatedInvoicing = Literal["none", "customer", "customer_po"]

#: The customer's purchase order number, as it must appear on the invoice.
PoNumber = Annotated[
    str, Field(min_length=1, max_length=64, description="the customer's purchase order number")
]


class BillTo(Model):
    """Who the customer's invoices are addressed to (its accounts payable contact)."""

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(
        default=None, pattern=rf"^{_NOT_AT}+@{_NOT_AT}+\.{_NOT_AT}+$", max_length=254
    )
    address: str | None = Field(default=None, min_length=1, max_length=500)


class RateCardEntry(Model):
    role: str = Field(min_length=1, max_length=80)
    hourly_rate: Amount


class Milestone(Model):
    milestone_id: str = Identifier
    name: str = Field(min_length=1, max_length=200)
    amount: Amount
    due_date: StrictDate | None = None


def _check_rate_card(
    errors: FieldErrors, field: str, entries: list[RateCardEntry], ccy: str
) -> None:
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        errors.money((field, i, "hourly_rate"), entry.hourly_rate, ccy, positive=True)
        if entry.role in seen:
            errors.add((field, i, "role"), f"role {entry.role!r} appears twice", entry.role)
        seen.add(entry.role)


def _check_milestones(
    errors: FieldErrors, field: str, milestones: list[Milestone], ccy: str, used: set[str]
) -> None:
    for i, milestone in enumerate(milestones):
        errors.money((field, i, "amount"), milestone.amount, ccy, positive=True)
        if milestone.milestone_id in used:
            errors.add(
                (field, i, "milestone_id"),
                f"milestone_id {milestone.milestone_id!r} is already used",
                milestone.milestone_id,
            )
        used.add(milestone.milestone_id)


class SignedDocumentRef(Model):
    """Where the signed contract document is: a DocuSign envelope, whose combined PDF c2c
    fetches and archives once the contract is provisioned."""

    source: Literal["docusign"] = "docusign"
    account_id: str = Field(min_length=1, max_length=64)
    envelope_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")

    @property
    def source_ref(self) -> str:
        """The document's id in DocuSign: ``account/envelope``."""
        return f"{self.account_id}/{self.envelope_id}"


class IroncladDocumentRef(Model):
    """Where the signed contract document is: an Ironclad workflow's document, by its key,
    which c2c fetches and archives once the contract is provisioned."""

    source: Literal["ironclad"]
    workflow_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-_]+$")
    document_key: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9\-_.]+$")

    @property
    def source_ref(self) -> str:
        """The document's id in Ironclad: ``workflow/key``."""
        return f"{self.workflow_id}/{self.document_key}"


class ContractApproved(Model):
    """A statement of work approved in the CLM: the input of ``ContractToCash``."""

    event_id: str = Identifier
    contract_id: str = Identifier
    version: int = Field(ge=1)
    title: str = Field(min_length=1, max_length=200)
    customer: Customer
    legal_entity: str = Field(pattern=r"^[A-Z0-9]{2,10}$")
    currency: CurrencyCode
    billing_model: BillingModel
    start_date: StrictDate
    end_date: StrictDate
    payment_terms_days: int = Field(ge=0, le=365)
    rate_card: list[RateCardEntry] = Field(default_factory=list, max_length=200)
    milestones: list[Milestone] = Field(default_factory=list, max_length=500)
    retainer_monthly_amount: Amount | None = None
    retainer_included_hours: InputQuantity | None = None
    not_to_exceed: Amount | None = None
    expenses_billable: bool = False
    expense_markup_percent: Decimal = Field(
        default=Decimal(0),
        ge=0,
        le=100,
        decimal_places=2,
        description="markup on billable expenses passed through, in percent",
        json_schema_extra={
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 100, "multipleOf": 0.01},
                {"type": "string", "pattern": r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$"},
            ]
        },
    )
    milestone_invoicing: Literal["period_close", "on_completion"] = Field(
        default="period_close",
        description="invoice a completed milestone at the next period close, or at once",
    )
    project_template: str = Field(default="standard", min_length=1, max_length=80)
    approved_at: StrictDatetime
    approved_by: str = Field(min_length=1, max_length=200)
    signed_document: SignedDocumentRef | IroncladDocumentRef | None = Field(
        default=None,
        description="the signed document to archive (an approval from DocuSign names its "
        "envelope, one from Ironclad its workflow's document); none for approvals that come "
        "without one",
        # Left out when absent, so an approval without one is written exactly as before.
        exclude_if=lambda value: value is None,
    )
    po_number: PoNumber | None = Field(
        default=None,
        description="the customer's purchase order number, sent to the ERP on every invoice",
        exclude_if=lambda value: value is None,
    )
    bill_to: BillTo | None = Field(
        default=None,
        description="the contact the invoices are addressed to, sent to the ERP on every invoice",
        exclude_if=lambda value: value is None,
    )
    invoice_review: InvoiceReview | None = Field(
        default=None,
        description="none: invoices are issued at once; required: each is a draft until an "
        "operator approves it; absent: the legal entity's setting (C2C_INVOICE_REVIEW)",
        exclude_if=lambda value: value is None,
    )
    consolidated_invoicing: ConsolidatedInvoicing | None = Field(
        default=None,
        description="none: the contract's own invoice at each period close; customer: one "
        "invoice per customer, legal entity, currency and period across its contracts, with a "
        "section per contract; customer_po: the same, per purchase order number too; absent: "
        "the legal entity's setting (C2C_CONSOLIDATED_INVOICING)",
        exclude_if=lambda value: value is None,
    )

    @field_validator("currency")
    @classmethod
    def _supported_currency(cls, value: str) -> str:
        if value not in MINOR_UNITS:
            raise ValueError(f"unsupported currency; supported: {', '.join(sorted(MINOR_UNITS))}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        errors = FieldErrors("ContractApproved")
        ccy = self.currency
        if self.end_date < self.start_date:
            errors.add(("end_date",), "must not be before start_date", str(self.end_date))
        _check_rate_card(errors, "rate_card", self.rate_card, ccy)
        _check_milestones(errors, "milestones", self.milestones, ccy, set())
        errors.money(("not_to_exceed",), self.not_to_exceed, ccy, positive=True)
        errors.money(("retainer_monthly_amount",), self.retainer_monthly_amount, ccy, positive=True)
        if self.retainer_included_hours is not None and self.retainer_included_hours < 0:
            errors.add(("retainer_included_hours",), "must not be negative")
        model = self.billing_model
        if model is BillingModel.TIME_AND_MATERIALS and not self.rate_card:
            errors.add(("rate_card",), "a time_and_materials contract needs at least one role")
        if model is BillingModel.FIXED_FEE and not self.milestones:
            errors.add(("milestones",), "a fixed_fee contract needs at least one milestone")
        if model is BillingModel.RETAINER and self.retainer_monthly_amount is None:
            errors.add(("retainer_monthly_amount",), "a retainer contract needs a monthly amount")
        errors.raise_if_any()
        return self

    @property
    def contract_value(self) -> Decimal:
        """The headline value: milestones for fixed fee, otherwise the cap if there is one."""
        if self.billing_model is BillingModel.FIXED_FEE:
            return sum((m.amount for m in self.milestones), Decimal(0))
        return self.not_to_exceed or Decimal(0)


def _changes_something_in_schema(schema: dict[str, Any]) -> None:
    _not_blank_in_schema(schema)
    schema["anyOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in ("name", "amount", "due_date")
    ]


class MilestoneChange(Model):
    """A change to a milestone not yet invoiced: the fields given replace the milestone's."""

    model_config = ConfigDict(
        **{**Model.model_config, "json_schema_extra": _changes_something_in_schema}
    )

    milestone_id: str = Identifier
    name: str | None = Field(default=None, min_length=1, max_length=200)
    amount: Amount | None = None
    due_date: StrictDate | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.name is None and self.amount is None and self.due_date is None:
            errors = FieldErrors("MilestoneChange")
            errors.add(("amount",), "a milestone change needs a name, an amount or a due_date")
            errors.raise_if_any()
        return self


class Amendment(Model):
    amendment_id: str = Identifier
    effective_date: StrictDate
    rate_card: list[RateCardEntry] = Field(default_factory=list, max_length=200)
    add_milestones: list[Milestone] = Field(default_factory=list, max_length=500)
    #: Milestones not yet invoiced whose name, amount or due date change.
    change_milestones: list[MilestoneChange] = Field(default_factory=list, max_length=500)
    #: Ids of milestones not yet invoiced that the contract no longer has.
    remove_milestones: list[Annotated[str, Field(pattern=_ID)]] = Field(
        default_factory=list, max_length=500
    )
    end_date: StrictDate | None = None
    not_to_exceed: Amount | None = None
    #: A new purchase order number or bill-to contact: on every invoice from then on.
    po_number: PoNumber | None = Field(default=None, exclude_if=lambda value: value is None)
    bill_to: BillTo | None = Field(default=None, exclude_if=lambda value: value is None)
    reason: str = Field(min_length=1, max_length=1000)
    #: Who asked for it (the API's caller's identity; the API sets it, a client's value is
    #: replaced). Absent from messages sent before it existed.
    requested_by: str | None = Field(
        default=None,
        max_length=200,
        description="who asked for it: set by the API from the caller's token or login; a "
        "value sent is replaced",
    )


class AmendmentResult(Model):
    amendment_id: str
    status: Literal["applied", "rejected"]
    reason: str | None = None
    propagated_to: list[str] = Field(default_factory=list)
    at: datetime | None = None


class MilestoneCompleted(Model):
    milestone_id: str = Identifier
    completed_on: StrictDate


#: A billing period, ``YYYY-MM``, as ``domain.periods.Period.parse`` reads it; in a schema, the
#: whole string (no trailing newline) is the month.
PERIOD_PATTERN = (
    r"^([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])$"  # no year 0
)


def _force_needs_a_reason(schema: dict[str, Any]) -> None:
    _not_blank_in_schema(schema)
    schema["if"] = {"properties": {"force": {"const": True}}, "required": ["force"]}
    schema["then"] = {"required": ["reason"], "properties": {"reason": {"type": "string"}}}


class ClosePeriod(Model):
    model_config = ConfigDict(**{**Model.model_config, "json_schema_extra": _force_needs_a_reason})

    period: str = Field(
        description="the month to bill, YYYY-MM", json_schema_extra={"pattern": PERIOD_PATTERN}
    )

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        Period.parse(value)
        if not re.fullmatch(PERIOD_PATTERN, value):  # ``Period.parse`` takes a final newline
            raise ValueError(f"period must be YYYY-MM (e.g. 2026-10), got {value!r}")
        return value

    #: Close the period before its last day has passed (in the legal entity's time zone): only
    #: with a ``reason``, which the contract's audit trail records.
    force: bool = False
    reason: str | None = Field(default=None, min_length=1, max_length=1000)
    #: Who asked for it (the API's caller's identity; the API sets it, a client's value is
    #: replaced). Absent from messages sent before it existed.
    requested_by: str | None = Field(
        default=None,
        max_length=200,
        description="who asked for it: set by the API from the caller's token or login; a "
        "value sent is replaced",
    )

    @model_validator(mode="after")
    def _forced_with_a_reason(self) -> Self:
        if self.force and not self.reason:
            errors = FieldErrors("ClosePeriod")
            errors.add(("reason",), "a forced close needs a reason", None)
            errors.raise_if_any()
        return self


class PaymentReceived(Model):
    payment_id: str = Identifier
    invoice_id: str | None = Field(default=None, pattern=_ID)
    amount: Amount
    currency: CurrencyCode
    received_on: StrictDate
    consolidated_invoice_id: str | None = Field(
        default=None,
        pattern=_ID,
        description="set by the customer's billing workflow on its allocation of a payment "
        "of a consolidated invoice to one section (``invoice_id``): the payment is in the ERP "
        "already, on the consolidated invoice",
        exclude_if=lambda value: value is None,
    )

    @model_validator(mode="after")
    def _amount(self) -> Self:
        errors = FieldErrors("PaymentReceived")
        if self.currency not in MINOR_UNITS:
            errors.add(("currency",), "unsupported currency", self.currency)
        else:
            errors.money(("amount",), self.amount, self.currency, positive=True)
        errors.raise_if_any()
        return self


class ResolveException(Model):
    exception_id: str = Field(min_length=1, max_length=120)
    action: ExceptionAction
    operator: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=2000)


class ReviewInvoice(Model):
    """An operator's review of a draft invoice: approve it (it is numbered and issued) or
    reject it with the reason (an exception for the finance queue)."""

    invoice_id: str = Field(min_length=1, max_length=120, description="the draft's id")
    decision: Literal["approve", "reject"]
    operator: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _rejected_with_a_reason(self) -> Self:
        if self.decision == "reject" and not self.reason:
            errors = FieldErrors("ReviewInvoice")
            errors.add(("reason",), "a rejection needs a reason", None)
            errors.raise_if_any()
        return self


class DraftInvoice(Model):
    """A draft invoice waiting for review: a preview, with no number and nothing issued."""

    invoice_id: str
    reference: str
    period: str | None = None
    milestone_id: str | None = None
    subtotal: Money
    tax: Money
    total: Money
    drafted_at: datetime
    po_number: str | None = None


class TerminateContract(Model):
    effective_date: StrictDate
    reason: str = Field(min_length=1, max_length=1000)
    #: Who asked for it (the API's caller's identity; the API sets it, a client's value is
    #: replaced). Absent from messages sent before it existed.
    requested_by: str | None = Field(
        default=None,
        max_length=200,
        description="who asked for it: set by the API from the caller's token or login; a "
        "value sent is replaced",
    )


class MalformedMessage(Model):
    """A signal whose input could not be read: kept, with the reason, so that it is decided in
    its turn (a line in the status and an exception for the integration team) instead of being
    dropped in silence."""

    name: str = Field(max_length=200)
    reason: str = Field(max_length=2000)
    #: The start of the raw input, for the person who has to find the sender.
    excerpt: str = Field(default="", max_length=500)


InvoiceStatus = Literal["issued", "partially_paid", "paid", "overdue", "credited"]


class InvoiceSummary(Model):
    invoice_id: str
    number: str | None = None
    period: str | None = None
    milestone_id: str | None = None
    reference: str | None = None
    subtotal: Money
    tax: Money
    total: Money
    amount_paid: Money = Decimal(0)
    amount_credited: Money = Decimal(0)
    status: InvoiceStatus = "issued"
    due_on: date
    invoice_date: date | None = None
    functional_currency: str | None = None
    exchange_rate: Decimal | None = None
    functional_total: Money | None = None
    dunning_level: int = 0
    #: Its archived documents, SHA-256 by kind (``pdf``, ``einvoice``): served by
    #: ``GET /api/invoices/{invoice_id}/document`` and ``/einvoice`` (a section's are its
    #: consolidated invoice's, served under ``consolidated_invoice_id``).
    documents: dict[str, str] = Field(default_factory=dict)
    #: The ERP invoice this is a section of, when the contract's customer is invoiced once
    #: across its contracts (``invoice_id`` is then the section's id, ``number`` the
    #: consolidated invoice's).
    consolidated_invoice_id: str | None = Field(
        default=None, exclude_if=lambda value: value is None
    )


class SectionInvoiced(Model):
    """The customer's billing workflow's answer to a contract's section: the consolidated
    invoice it is part of, and the section's own figures on it."""

    section_id: str = Field(min_length=1, max_length=120)
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    consolidated_invoice_id: str = Field(min_length=1, max_length=64)
    number: str = Field(min_length=1, max_length=64)
    subtotal: Money
    tax: Money
    total: Money
    invoice_date: date
    due_on: date
    customer_billing_id: str = Field(min_length=1, max_length=200)
    #: The consolidated invoice's archived documents, SHA-256 by kind, which the section
    #: shows as its own (sent only when there are some).
    documents: dict[str, str] = Field(default_factory=dict, exclude_if=lambda value: not value)


class SectionCredited(Model):
    """A contract's credit note on its section of a consolidated invoice, told to the
    customer's billing workflow: the section owes ``total`` less from then on."""

    section_id: str = Field(min_length=1, max_length=120)
    credit_note_id: str = Field(min_length=1, max_length=120)
    total: Money


class CreditNoteSummary(Model):
    credit_note_id: str
    number: str | None = None
    invoice_id: str
    subtotal: Money
    tax: Money
    total: Money
    reason: str
    #: Its archived documents, SHA-256 by kind (``pdf``, ``einvoice``), as an invoice's.
    documents: dict[str, str] = Field(default_factory=dict)


class WriteOffSummary(Model):
    """Work above a not-to-exceed cap that an operator wrote off: how much, of which bill,
    by whom, and the ERP's reference of it once the ERP has it (``None`` for a run recorded
    before write-offs reached the ERP, or while the step has not run)."""

    write_off_id: str
    reference: str
    period: str
    amount: Money
    operator: str
    written_off_on: date
    erp_ref: str | None = None


class SettledInvoices(Model):
    """Invoices settled (paid or credited in full) and archived when the contract continued as
    new: their count and sums, so the status's figures stay whole while ``invoices`` lists only
    the invoices the current run still holds. Each one is in the ERP and the ledger's billing
    facts."""

    count: int = 0
    subtotal: Money = Decimal(0)
    tax: Money = Decimal(0)
    total: Money = Decimal(0)
    amount_paid: Money = Decimal(0)
    amount_credited: Money = Decimal(0)
    credit_notes: int = 0

    def add(self, invoice: InvoiceSummary, credit_notes: int) -> SettledInvoices:
        """These sums with one more settled ``invoice`` (as the status shows it)."""
        return SettledInvoices(
            count=self.count + 1,
            subtotal=self.subtotal + invoice.subtotal,
            tax=self.tax + invoice.tax,
            total=self.total + invoice.total,
            amount_paid=self.amount_paid + invoice.amount_paid,
            amount_credited=self.amount_credited + invoice.amount_credited,
            credit_notes=self.credit_notes + credit_notes,
        )


class MilestoneStatus(Model):
    milestone_id: str
    name: str
    amount: Money
    due_date: date | None = None
    status: Literal["open", "completed", "invoiced"] = "open"
    completed_on: date | None = None
    invoice_id: str | None = None


class RevenueStatus(Model):
    """Revenue recognised in the ERP, and the contract balances it leaves (ASC 606 / IFRS 15)."""

    method: str
    recognised_to_date: Money = Decimal(0)
    billed_to_date: Money = Decimal(0)
    contract_asset: Money = Decimal(0)
    contract_liability: Money = Decimal(0)


class CreditInvoice(Model):
    """A correction of an issued invoice: a credit note for ``amount`` (before tax)."""

    invoice_id: str = Identifier
    amount: Amount
    reason: str = Field(min_length=1, max_length=1000)
    credit_note_id: str | None = Field(
        default=None, pattern=_ID, description="the caller's key: the same id credits once"
    )
    #: Who asked for it (the API's caller's identity; the API sets it, a client's value is
    #: replaced). Absent from messages sent before it existed.
    requested_by: str | None = Field(
        default=None,
        max_length=200,
        description="who asked for it: set by the API from the caller's token or login; a "
        "value sent is replaced",
    )

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value

    def keyed(self) -> CreditInvoice:
        """This request with a credit note id: the caller's, or one derived from its content,
        so that a retried request credits once."""
        if self.credit_note_id:
            return self
        digest = hashlib.sha256(
            f"{self.invoice_id}|{self.amount}|{self.reason}".encode()
        ).hexdigest()[:12]
        return self.model_copy(update={"credit_note_id": f"CN-{digest.upper()}"})


class OpenException(Model):
    exception_id: str
    stage: Stage
    system: str
    code: str
    message: str
    queue: ExceptionQueue
    opened_at: datetime
    step: str = ""
    retryable: bool = True
    #: When the queue's SLA runs out; past it the exception is escalated.
    sla_due_at: datetime | None = None
    escalated_at: datetime | None = None


class HistoryEntry(Model):
    at: datetime
    stage: Stage
    event: str


class ContractStatus(Model):
    """What the ``status`` query answers.

    An answer, never input: fields a newer worker adds are ignored by an older API or CLI
    reading it, so readers and workers can be upgraded in either order from here on.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    contract_id: str
    stage: Stage
    billing_model: BillingModel
    currency: str
    refs: dict[str, str] = Field(default_factory=dict)
    invoices: list[InvoiceSummary] = Field(default_factory=list)
    balance_due: Money = Decimal(0)
    unapplied_cash: Money = Decimal(0)
    amendments: list[AmendmentResult] = Field(default_factory=list)
    credit_notes: list[CreditNoteSummary] = Field(default_factory=list)
    milestones: list[MilestoneStatus] = Field(default_factory=list)
    revenue: RevenueStatus | None = None
    held_back: Money = Decimal(0)
    written_off: Money = Decimal(0)
    #: Each write-off above the cap, with its ERP reference.
    write_offs: list[WriteOffSummary] = Field(default_factory=list)
    open_exceptions: list[OpenException] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    closed_periods: list[str] = Field(default_factory=list)
    waiting_for: str = ""
    #: Messages received and not yet decided: each waits for the ones before it.
    queued_messages: int = 0
    #: A step Temporal is retrying: what failed, how, and when the next attempt is. Filled in
    #: by the API and the CLI from Temporal (the workflow does not see its steps' retries).
    retrying: str | None = None
    #: Earlier history lines not in ``history``: left behind when the contract continued as
    #: new. The whole timeline is in the ledger's audit trail.
    history_omitted: int = 0
    #: Invoices settled before the current run, not listed in ``invoices``.
    settled_invoices: SettledInvoices = Field(default_factory=SettledInvoices)
    #: Draft invoices waiting for an operator's review (no number yet, nothing issued).
    drafts: list[DraftInvoice] = Field(default_factory=list)
    po_number: str | None = None
    bill_to: BillTo | None = None
    #: How the contract's period closes are invoiced (``ConsolidatedInvoicing``), and the
    #: sections sent to its customer's consolidated invoice that wait for their number.
    consolidated_invoicing: str = "none"
    sections_waiting: list[DraftInvoice] = Field(default_factory=list)


class ContractSummary(Model):
    """The workflow's result: the final status."""

    status: ContractStatus
