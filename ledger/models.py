"""The ledger's tables and the inputs its writers give.

Only orchestration state lives here: which id each system gave to a contract's records, what
happened when (the audit trail), what waits for a person (the exception queue), which inbound
events were processed (and which could not be: dead letters), and the few facts behind
listings and KPIs. Amounts, invoices and the like stay in their systems.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Index, Table, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from domain.names import BillingModel, ExceptionAction, ExceptionQueue, Stage
from ledger.columns import DecimalString, UTCDateTime


def utc_now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


class ExceptionStatus(StrEnum):
    """Where an exception stands: open until an operator retries, skips or aborts, or until a
    reset of its contract supersedes the run that opened it."""

    OPEN = "open"
    RETRIED = "retried"
    SKIPPED = "skipped"
    ABORTED = "aborted"
    SUPERSEDED = "superseded"

    @classmethod
    def after(cls, action: ExceptionAction | str) -> ExceptionStatus:
        """The status an operator's action leaves the exception in."""
        return _STATUS_AFTER[ExceptionAction(action)]


_STATUS_AFTER = {
    ExceptionAction.RETRY: ExceptionStatus.RETRIED,
    ExceptionAction.SKIP: ExceptionStatus.SKIPPED,
    ExceptionAction.ABORT: ExceptionStatus.ABORTED,
}


class InboundSource(StrEnum):
    """The systems whose signed webhooks c2c receives."""

    CLM = "clm"
    PSA = "psa"
    PAYMENTS = "payments"
    DOCUSIGN = "docusign"
    STRIPE = "stripe"
    #: Account changes (``account.updated``, Salesforce's Change Data Capture).
    CRM = "crm"
    IRONCLAD = "ironclad"


class InboundStatus(StrEnum):
    """Where an inbound event stands.

    ``received`` until one delivery has processed it: being processed now, or its last attempt
    failed transiently (the sender's retry processes it). ``processed`` once its system
    answered; ``dead_letter`` when it cannot be processed as it is (the reason says why) until
    a redelivery or an operator's replay succeeds, which leaves it ``processed`` or
    ``replayed``.
    """

    RECEIVED = "received"
    PROCESSED = "processed"
    DEAD_LETTER = "dead_letter"
    REPLAYED = "replayed"


#: Statuses of an event that must not be processed again: later deliveries are duplicates.
SETTLED_STATUSES = frozenset({InboundStatus.PROCESSED, InboundStatus.REPLAYED})
#: Statuses of an event that a delivery (or, for a dead letter, a replay) may process.
OPEN_STATUSES = frozenset({InboundStatus.RECEIVED, InboundStatus.DEAD_LETTER})


class LedgerTable(SQLModel, registry=registry()):
    """Base of the ledger's tables.

    Its own registry gives the ledger its own ``MetaData``, so ``create_all`` never creates
    another package's tables (the sandbox's, say) in the ledger's database.
    """


def table_of(model: type[LedgerTable]) -> Table:
    """A table model's SQLAlchemy ``Table``, for statements built once without the ORM."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


class CrossReference(LedgerTable, table=True):
    """One id that a system gave to a record made for a contract."""

    __tablename__ = "ledger_cross_reference"
    # Which contract a system's id belongs to (a payment webhook names only the invoice): an
    # index lookup, not a scan of every reference ever recorded.
    __table_args__ = (Index("ix_ledger_cross_reference_owner", "system", "kind", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    #: What the database keeps unique: ``system:kind:external_id`` for a record that belongs
    #: to one contract, with ``:contract_id`` added for a record that contracts share.
    claim: str = Field(unique=True, max_length=600)
    contract_id: str = Field(index=True)
    system: str
    kind: str
    external_id: str
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class AuditEvent(LedgerTable, table=True):
    """One step of a contract's history, written once however often its writer runs."""

    __tablename__ = "ledger_audit_event"

    id: int | None = Field(default=None, primary_key=True)
    event_key: str = Field(unique=True)
    contract_id: str = Field(index=True)
    workflow_id: str
    run_id: str | None = None
    stage: str
    event: str
    detail: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class ExceptionRecord(LedgerTable, table=True):
    """A business error waiting for (or resolved by) a person in the queue that owns the fix."""

    __tablename__ = "ledger_exception"

    exception_id: str = Field(primary_key=True)
    contract_id: str = Field(index=True)
    workflow_id: str
    stage: str
    system: str
    code: str
    message: str
    queue: str = Field(index=True)
    step: str = ""
    retryable: bool = True
    status: str = Field(default=ExceptionStatus.OPEN.value, index=True)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: str | None = None
    resolution_note: str | None = None
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ContractRecord(LedgerTable, table=True):
    """A contract as listings and KPIs need it; the workflow stays the source of truth."""

    __tablename__ = "ledger_contract"

    contract_id: str = Field(primary_key=True)
    workflow_id: str | None = None
    customer_id: str | None = Field(default=None, index=True)
    legal_entity: str | None = Field(default=None, index=True)
    billing_model: str | None = None
    currency: str | None = None
    contract_value: Decimal | None = Field(default=None, sa_type=DecimalString)
    stage: str = Field(index=True)
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    active_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class InboundEvent(LedgerTable, table=True):
    """One webhook event, recorded once per source and event id however often it arrives."""

    __tablename__ = "ledger_inbound_event"
    __table_args__ = (
        UniqueConstraint("source", "event_id", name="uq_ledger_inbound_event_source_event"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    #: The envelope's ``id``, or the SHA-256 of the raw body when the sender gave none.
    event_id: str = Field(max_length=255)
    type: str = Field(max_length=100)
    contract_id: str | None = Field(default=None, index=True)
    status: str = Field(default=InboundStatus.RECEIVED.value, index=True)
    #: Why the last attempt could not process it (kept after a later success, as history).
    reason: str | None = Field(default=None, sa_type=Text)
    #: The raw JSON as verified on arrival: a replay processes exactly this.
    body: str = Field(sa_type=Text)
    #: SHA-256 of the body's content (``starter.ops.dead_letters.body_digest``): a later delivery
    #: with the same event id and another digest is a conflict, not a duplicate. ``NULL`` for
    #: events recorded before digests were kept; their body is compared instead.
    body_digest: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(sa_type=UTCDateTime)
    #: When its last processing ended: processed, replayed or dead-lettered.
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: How many times processing started (deliveries and replays).
    attempts: int = 0
    #: Until when the delivery processing it holds it; others wait, then may take over.
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: The answer given when it was processed, given again to every duplicate delivery.
    response_status: int | None = None
    response_body: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class BillingFact(LedgerTable, table=True):
    """One invoice asked of the ERP: when its billing step began and, once issued, what and when.

    Written by the billing activity, keyed by the contract and the invoice's business reference,
    so a retried or reset step writes one row: the first start is kept, the issue written once.
    """

    __tablename__ = "ledger_billing_fact"

    #: ``contract_id:reference`` (the same reference never yields two invoices).
    fact_key: str = Field(primary_key=True, max_length=300)
    contract_id: str = Field(index=True)
    reference: str
    #: The billing period (``YYYY-MM``) the invoice belongs to.
    period: str
    #: Billed because a period was closed (not an advance fee, milestone or release).
    period_close: bool
    legal_entity: str = Field(index=True)
    currency: str
    #: When the billing step was first scheduled: the period close taken up by the workflow.
    requested_at: datetime = Field(sa_type=UTCDateTime)
    invoice_id: str | None = Field(default=None, index=True)
    invoice_date: date | None = None
    due_on: date | None = None
    total: Decimal | None = Field(default=None, sa_type=DecimalString)
    #: ``total`` split: before tax and tax (``None`` for invoices issued before c2c kept them).
    subtotal: Decimal | None = Field(default=None, sa_type=DecimalString)
    tax: Decimal | None = Field(default=None, sa_type=DecimalString)
    #: The legal entity's books: its currency and the invoice's rate to it (1 when the same).
    functional_currency: str | None = None
    exchange_rate: Decimal | None = Field(default=None, sa_type=DecimalString)
    #: When c2c saw the invoice issued in the ERP.
    issued_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class PaymentFact(LedgerTable, table=True):
    """One payment recorded in the ERP for a contract, written once by its payment id."""

    __tablename__ = "ledger_payment_fact"

    payment_id: str = Field(primary_key=True)
    contract_id: str = Field(index=True)
    invoice_id: str | None = None
    currency: str
    amount: Decimal = Field(sa_type=DecimalString)
    received_on: date
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    #: The part the ERP applied to the invoice on receipt (the rest is unapplied cash).
    applied_amount: Decimal | None = Field(default=None, sa_type=DecimalString)
    #: The legal entity's currency and the payment's rate to it on the day it was received.
    functional_currency: str | None = None
    exchange_rate: Decimal | None = Field(default=None, sa_type=DecimalString)


class CashApplicationFact(LedgerTable, table=True):
    """Cash held for a contract (a payment's unapplied part, or a credit note's customer
    credit) applied later to another invoice, written once by its id (``source:invoice``)."""

    __tablename__ = "ledger_cash_application_fact"

    application_id: str = Field(primary_key=True, max_length=300)
    contract_id: str = Field(index=True)
    invoice_id: str
    #: The payment whose unapplied cash it was, or the credit note's id.
    source_id: str
    credit_note_id: str | None = None
    currency: str
    amount: Decimal = Field(sa_type=DecimalString)
    applied_on: date
    recorded_at: datetime = Field(sa_type=UTCDateTime)


class UnbilledTimeRecord(LedgerTable, table=True):
    """A contract's approved, billable time not yet invoiced, in one month of work, priced at
    the contract's rates: the read model behind the unbilled-time KPI.

    The billing activity reads the PSA after each invoice and replaces the contract's rows, so
    they say what was unbilled when the contract was last billed (``read_at``).
    """

    __tablename__ = "ledger_unbilled_time"

    #: ``contract_id:YYYY-MM``.
    row_key: str = Field(primary_key=True, max_length=300)
    contract_id: str = Field(index=True)
    #: The month the work was done in (``YYYY-MM``).
    work_month: str
    currency: str
    hours: Decimal = Field(sa_type=DecimalString)
    value: Decimal = Field(sa_type=DecimalString)
    #: Hours of roles without a rate on their work date: counted in ``hours``, not valued.
    unpriced_hours: Decimal = Field(sa_type=DecimalString)
    read_at: datetime = Field(sa_type=UTCDateTime)


class CreditNoteFact(LedgerTable, table=True):
    """One credit note issued against an invoice, written once by its id."""

    __tablename__ = "ledger_credit_note_fact"

    credit_note_id: str = Field(primary_key=True)
    contract_id: str = Field(index=True)
    invoice_id: str
    currency: str
    total: Decimal = Field(sa_type=DecimalString)
    issued_on: date
    issued_at: datetime = Field(sa_type=UTCDateTime)
    #: ``total`` split: before tax and tax (``None`` for notes issued before c2c kept them).
    subtotal: Decimal | None = Field(default=None, sa_type=DecimalString)
    tax: Decimal | None = Field(default=None, sa_type=DecimalString)


class RevenueFact(LedgerTable, table=True):
    """One revenue entry posted in the ERP (negative for a catch-up), written once by its id,
    with the rate to the legal entity's currency on the day it is recognised."""

    __tablename__ = "ledger_revenue_fact"

    entry_id: str = Field(primary_key=True, max_length=300)
    contract_id: str = Field(index=True)
    period: str
    currency: str
    amount: Decimal = Field(sa_type=DecimalString)
    recognised_on: date
    functional_currency: str | None = None
    exchange_rate: Decimal | None = Field(default=None, sa_type=DecimalString)
    recorded_at: datetime = Field(sa_type=UTCDateTime)


class AmendmentFact(LedgerTable, table=True):
    """One amendment's propagation: when it began and when every system had it."""

    __tablename__ = "ledger_amendment_fact"

    #: ``contract_id:amendment_id``.
    fact_key: str = Field(primary_key=True, max_length=300)
    contract_id: str = Field(index=True)
    amendment_id: str
    #: When the propagation step was first scheduled: the amendment taken up by the workflow.
    started_at: datetime = Field(sa_type=UTCDateTime)
    propagated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OutboundEventType(StrEnum):
    """The events c2c sends to its subscribers."""

    INVOICE_ISSUED = "invoice.issued"
    INVOICE_PAID = "invoice.paid"
    EXCEPTION_OPENED = "exception.opened"
    EXCEPTION_ESCALATED = "exception.escalated"
    CONTRACT_CLOSED = "contract.closed"
    CONSOLIDATED_INVOICE_ISSUED = "consolidated_invoice.issued"
    CONSOLIDATED_INVOICE_PAID = "consolidated_invoice.paid"


class DeliveryStatus(StrEnum):
    """Where one event's delivery to one subscriber stands: ``pending`` until the subscriber
    answers 2xx (``delivered``) or its attempts or time run out, or it refuses (``failed``)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class OutboundEvent(LedgerTable, table=True):
    """An event for subscribers, written in the transaction of the fact that caused it (the
    outbox): its id derives from that fact's key, so a repeated write records it once."""

    __tablename__ = "ledger_outbound_event"

    event_id: str = Field(primary_key=True, max_length=64)
    type: str = Field(max_length=64, index=True)
    contract_id: str | None = Field(default=None, index=True)
    #: The JSON ``data`` sent: ids, amounts as strings, currency, dates; no personal data.
    payload: dict[str, Any] = Field(sa_type=JSON)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


class Subscription(LedgerTable, table=True):
    """A URL that receives the events of some types, signed with its own secret."""

    __tablename__ = "ledger_subscription"

    subscription_id: str = Field(primary_key=True, max_length=64)
    url: str = Field(sa_type=Text)
    event_types: list[str] = Field(sa_type=JSON)
    #: The HMAC key the subscriber verifies with (shown once, when the subscription is made),
    #: sealed with ``C2C_SECRETS_KEY`` (``c2c.secret_box``; in clear if written by 0.10).
    secret: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str | None = None
    #: When it was removed: it receives nothing more; its deliveries stay in the log.
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: When an operator paused it: its deliveries wait until it is resumed.
    paused_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OutboundDelivery(LedgerTable, table=True):
    """One event's delivery to one subscription: its attempts and how the last one ended."""

    __tablename__ = "ledger_outbound_delivery"
    __table_args__ = (Index("ix_ledger_outbound_delivery_due", "status", "next_attempt_at"),)

    #: ``event_id:subscription_id``.
    delivery_id: str = Field(primary_key=True, max_length=140)
    event_id: str = Field(max_length=64, index=True)
    subscription_id: str = Field(max_length=64, index=True)
    status: str = Field(default=DeliveryStatus.PENDING.value, max_length=16)
    attempts: int = 0
    #: When this round of delivery began (its creation, or the last replay): its age limit.
    started_at: datetime = Field(sa_type=UTCDateTime)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    #: Until when the dispatcher sending it holds it; others wait, then may take over.
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class _Input(BaseModel):
    # Enum values are kept as plain strings: that is what the columns hold.
    model_config = ConfigDict(extra="forbid", use_enum_values=True, frozen=True)


class AuditEventIn(_Input):
    """An audit event to record; ``event_key`` is built by the caller from stable ids."""

    event_key: str = PydanticField(min_length=1, max_length=300)
    contract_id: str = PydanticField(min_length=1)
    workflow_id: str = PydanticField(min_length=1)
    run_id: str | None = None
    stage: Stage
    event: str = PydanticField(min_length=1, max_length=2000)
    detail: dict[str, Any] | None = None
    at: AwareDatetime


class ExceptionIn(_Input):
    """An exception to open; ``exception_id`` is built by the caller from stable ids."""

    exception_id: str = PydanticField(min_length=1, max_length=120)
    contract_id: str = PydanticField(min_length=1)
    workflow_id: str = PydanticField(min_length=1)
    stage: Stage
    system: str = PydanticField(min_length=1)
    code: str = PydanticField(min_length=1)
    message: str
    queue: ExceptionQueue
    step: str = ""
    retryable: bool = True
    opened_at: AwareDatetime


class ContractRecordIn(_Input):
    """What a caller knows of a contract now; ``None`` means "keep what is stored"."""

    contract_id: str = PydanticField(min_length=1)
    stage: Stage
    updated_at: AwareDatetime
    workflow_id: str | None = None
    customer_id: str | None = None
    legal_entity: str | None = None
    billing_model: BillingModel | None = None
    currency: str | None = None
    contract_value: Decimal | None = None
    approved_at: AwareDatetime | None = None
    active_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None


class InboundEventIn(_Input):
    """An inbound event to record, once its signature is verified."""

    source: InboundSource
    event_id: str = PydanticField(min_length=1, max_length=255)
    type: str = PydanticField(max_length=100)
    contract_id: str | None = None
    body: str
    body_digest: str | None = PydanticField(default=None, max_length=64)
    received_at: AwareDatetime


class BillingStartIn(_Input):
    """A billing step begun: which invoice it asks for and when it was first scheduled."""

    contract_id: str = PydanticField(min_length=1)
    reference: str = PydanticField(min_length=1, max_length=200)
    period: str = PydanticField(pattern=r"^\d{4}-\d{2}$")
    period_close: bool
    legal_entity: str = PydanticField(min_length=1)
    currency: str = PydanticField(pattern=r"^[A-Z]{3}$")
    requested_at: AwareDatetime


class InvoiceIssuedIn(_Input):
    """The invoice a billing step issued, as the ERP answered it."""

    contract_id: str = PydanticField(min_length=1)
    reference: str = PydanticField(min_length=1, max_length=200)
    invoice_id: str = PydanticField(min_length=1)
    invoice_date: date
    due_on: date
    total: Decimal
    subtotal: Decimal | None = None
    tax: Decimal | None = None
    functional_currency: str | None = None
    exchange_rate: Decimal | None = None
    issued_at: AwareDatetime


class PaymentFactIn(_Input):
    """A payment recorded in the ERP."""

    payment_id: str = PydanticField(min_length=1)
    contract_id: str = PydanticField(min_length=1)
    invoice_id: str | None = None
    currency: str = PydanticField(pattern=r"^[A-Z]{3}$")
    amount: Decimal
    received_on: date
    recorded_at: AwareDatetime
    applied_amount: Decimal | None = None
    functional_currency: str | None = PydanticField(default=None, pattern=r"^[A-Z]{3}$")
    exchange_rate: Decimal | None = PydanticField(default=None, gt=0)


class CashApplicationFactIn(_Input):
    """Held cash applied to an invoice in the ERP."""

    application_id: str = PydanticField(min_length=1, max_length=300)
    contract_id: str = PydanticField(min_length=1)
    invoice_id: str = PydanticField(min_length=1)
    source_id: str = PydanticField(min_length=1)
    credit_note_id: str | None = None
    currency: str = PydanticField(pattern=r"^[A-Z]{3}$")
    amount: Decimal = PydanticField(gt=0)
    applied_on: date
    recorded_at: AwareDatetime


class CreditNoteFactIn(_Input):
    """A credit note issued in the ERP."""

    credit_note_id: str = PydanticField(min_length=1)
    contract_id: str = PydanticField(min_length=1)
    invoice_id: str = PydanticField(min_length=1)
    currency: str = PydanticField(pattern=r"^[A-Z]{3}$")
    total: Decimal
    issued_on: date
    issued_at: AwareDatetime
    subtotal: Decimal | None = None
    tax: Decimal | None = None


class RevenueFactIn(_Input):
    """A revenue entry posted in the ERP, with its rate to the legal entity's currency."""

    entry_id: str = PydanticField(min_length=1, max_length=300)
    contract_id: str = PydanticField(min_length=1)
    period: str = PydanticField(pattern=r"^\d{4}-\d{2}$")
    currency: str = PydanticField(pattern=r"^[A-Z]{3}$")
    amount: Decimal
    recognised_on: date
    functional_currency: str | None = PydanticField(default=None, pattern=r"^[A-Z]{3}$")
    exchange_rate: Decimal | None = PydanticField(default=None, gt=0)
    recorded_at: AwareDatetime


class UnbilledMonthIn(_Input):
    """A contract's unbilled approved time in one month of work, as the billing activity read
    it from the PSA and priced it."""

    work_month: str = PydanticField(pattern=r"^\d{4}-\d{2}$")
    currency: str = PydanticField(pattern=r"^[A-Z]{3}$")
    hours: Decimal
    value: Decimal
    unpriced_hours: Decimal = Decimal(0)


class CallLimitLock(LedgerTable, table=True):
    """One row per vendor with call limits: taking a slot locks it, so the workers' tries for
    a vendor run one at a time on SQLite and PostgreSQL alike."""

    __tablename__ = "ledger_call_limit"

    vendor: str = Field(primary_key=True, max_length=100)
    #: Tries to take a slot so far; the update that counts one is what takes the row's lock.
    tries: int = 0


class CallSlot(LedgerTable, table=True):
    """One call to a vendor under its limits: in flight from its start until it ends (released,
    or its lease expired), and counted by the per-second limit until a second after that."""

    __tablename__ = "ledger_call_slot"
    __table_args__ = (Index("ix_ledger_call_slot_vendor", "vendor"),)

    lease_id: str = Field(primary_key=True, max_length=64)
    vendor: str = Field(max_length=100)
    #: ``host:pid`` of the worker that holds it.
    holder: str = Field(max_length=300)
    #: Epoch seconds of the worker's clock.
    started_at: float
    #: When its lease ends unless it is released first.
    expires_at: float
    #: When it was released: its answer read.
    ended_at: float | None = None
