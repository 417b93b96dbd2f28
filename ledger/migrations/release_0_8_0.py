"""The ledger's tables as c2c 0.8.0 made them, pinned: the first revision creates them, and a
ledger made before revisions existed is checked against them before it is stamped.

Plain SQLAlchemy types, not the models' column types: this schema never changes, whatever
becomes of the models. ``UTCDateTime`` is stored as ``DateTime(timezone=True)`` and
``DecimalString`` as ``String(64)``; a ``str`` field without a length is a ``String``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()


def _instant(name: str, *, nullable: bool) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _money(name: str, *, nullable: bool) -> Column[object]:
    return Column(name, String(64), nullable=nullable)


Table(
    "ledger_cross_reference",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("claim", String(600), nullable=False, unique=True),
    Column("contract_id", String, nullable=False, index=True),
    Column("system", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("external_id", String, nullable=False),
    _instant("created_at", nullable=False),
    Index("ix_ledger_cross_reference_owner", "system", "kind", "external_id"),
)

Table(
    "ledger_audit_event",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_key", String, nullable=False, unique=True),
    Column("contract_id", String, nullable=False, index=True),
    Column("workflow_id", String, nullable=False),
    Column("run_id", String, nullable=True),
    Column("stage", String, nullable=False),
    Column("event", String, nullable=False),
    Column("detail", JSON, nullable=True),
    _instant("at", nullable=False),
    _instant("recorded_at", nullable=False),
)

Table(
    "ledger_exception",
    metadata,
    Column("exception_id", String, primary_key=True),
    Column("contract_id", String, nullable=False, index=True),
    Column("workflow_id", String, nullable=False),
    Column("stage", String, nullable=False),
    Column("system", String, nullable=False),
    Column("code", String, nullable=False),
    Column("message", String, nullable=False),
    Column("queue", String, nullable=False, index=True),
    Column("step", String, nullable=False),
    Column("retryable", Boolean, nullable=False),
    Column("status", String, nullable=False, index=True),
    _instant("opened_at", nullable=False),
    _instant("resolved_at", nullable=True),
    Column("resolved_by", String, nullable=True),
    Column("resolution_note", String, nullable=True),
    _instant("escalated_at", nullable=True),
)

Table(
    "ledger_contract",
    metadata,
    Column("contract_id", String, primary_key=True),
    Column("workflow_id", String, nullable=True),
    Column("customer_id", String, nullable=True, index=True),
    Column("legal_entity", String, nullable=True, index=True),
    Column("billing_model", String, nullable=True),
    Column("currency", String, nullable=True),
    _money("contract_value", nullable=True),
    Column("stage", String, nullable=False, index=True),
    _instant("approved_at", nullable=True),
    _instant("active_at", nullable=True),
    _instant("closed_at", nullable=True),
    _instant("updated_at", nullable=False),
)

Table(
    "ledger_inbound_event",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String, nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("type", String(100), nullable=False),
    Column("contract_id", String, nullable=True, index=True),
    Column("status", String, nullable=False, index=True),
    Column("reason", Text, nullable=True),
    Column("body", Text, nullable=False),
    Column("body_digest", String(64), nullable=True),
    _instant("received_at", nullable=False),
    _instant("processed_at", nullable=True),
    Column("attempts", Integer, nullable=False),
    _instant("claimed_until", nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("response_body", JSON, nullable=True),
    UniqueConstraint("source", "event_id", name="uq_ledger_inbound_event_source_event"),
)

Table(
    "ledger_billing_fact",
    metadata,
    Column("fact_key", String(300), primary_key=True),
    Column("contract_id", String, nullable=False, index=True),
    Column("reference", String, nullable=False),
    Column("period", String, nullable=False),
    Column("period_close", Boolean, nullable=False),
    Column("legal_entity", String, nullable=False, index=True),
    Column("currency", String, nullable=False),
    _instant("requested_at", nullable=False),
    Column("invoice_id", String, nullable=True, index=True),
    Column("invoice_date", Date, nullable=True),
    Column("due_on", Date, nullable=True),
    _money("total", nullable=True),
    Column("functional_currency", String, nullable=True),
    _money("exchange_rate", nullable=True),
    Column("issued_at", DateTime(timezone=True), nullable=True, index=True),
)

Table(
    "ledger_payment_fact",
    metadata,
    Column("payment_id", String, primary_key=True),
    Column("contract_id", String, nullable=False, index=True),
    Column("invoice_id", String, nullable=True),
    Column("currency", String, nullable=False),
    _money("amount", nullable=False),
    Column("received_on", Date, nullable=False),
    _instant("recorded_at", nullable=False),
)

Table(
    "ledger_credit_note_fact",
    metadata,
    Column("credit_note_id", String, primary_key=True),
    Column("contract_id", String, nullable=False, index=True),
    Column("invoice_id", String, nullable=False),
    Column("currency", String, nullable=False),
    _money("total", nullable=False),
    Column("issued_on", Date, nullable=False),
    _instant("issued_at", nullable=False),
)

Table(
    "ledger_amendment_fact",
    metadata,
    Column("fact_key", String(300), primary_key=True),
    Column("contract_id", String, nullable=False, index=True),
    Column("amendment_id", String, nullable=False),
    _instant("started_at", nullable=False),
    _instant("propagated_at", nullable=True),
)
