"""Draft invoices waiting for review: the preview an operator approves or rejects.

Where a legal entity (or a contract) reviews invoices, a period close makes a draft instead of
an invoice: priced, capped and taxed, with no number, nothing issued in the ERP, no committed
tax document and no payment intent. This table keeps each draft's preview (lines, tax,
totals, purchase order and bill-to) for the drafts list, and its review: approved (with the
invoice it became) or rejected (with the reason). Drafts are never receivables: no KPI but the
time from draft to approval reads them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import JSON, update
from sqlmodel import Field, col, select

from ledger.base import LedgerBase
from ledger.columns import DecimalString, UTCDateTime
from ledger.models import LedgerTable

DraftStatus = Literal["draft", "approved", "rejected"]


class InvoiceDraft(LedgerTable, table=True):
    """One draft invoice, written once by its id when it is made, then reviewed once."""

    __tablename__ = "ledger_invoice_draft"

    #: A section of a consolidated invoice is kept here too, under ``SEC-{contract}-{period}``.
    draft_id: str = Field(primary_key=True, max_length=200)
    contract_id: str = Field(index=True, max_length=200)
    #: The invoice's business reference (``2026-10``, ``milestone:M1``).
    reference: str = Field(max_length=200)
    legal_entity: str = Field(index=True, max_length=20)
    currency: str = Field(max_length=3)
    period: str | None = Field(default=None, max_length=7)
    milestone_id: str | None = Field(default=None, max_length=64)
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    subtotal: Decimal = Field(sa_type=DecimalString)
    tax: Decimal = Field(sa_type=DecimalString)
    total: Decimal = Field(sa_type=DecimalString)
    po_number: str | None = Field(default=None, max_length=64)
    bill_to: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    drafted_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="draft", index=True, max_length=20)
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reviewed_by: str | None = Field(default=None, max_length=200)
    #: Why it was rejected.
    reason: str | None = None
    #: The ERP invoice an approved draft became.
    invoice_id: str | None = Field(default=None, max_length=200)


class InvoiceDraftIn(BaseModel):
    """A draft as the billing step made it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    draft_id: str
    contract_id: str
    reference: str
    legal_entity: str
    currency: str
    period: str | None = None
    milestone_id: str | None = None
    lines: list[dict[str, Any]]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    po_number: str | None = None
    bill_to: dict[str, Any] | None = None
    drafted_at: AwareDatetime
    #: ``draft`` (waits for review) or ``section`` (a contract's section of its customer's
    #: consolidated invoice: never reviewed, listed with no draft).
    status: str = "draft"


class DraftLedger(LedgerBase):
    """The draft-invoice part of the ledger."""

    def record_draft(self, draft: InvoiceDraftIn) -> None:
        """Record a draft once by its id (a repeated billing step keeps the first)."""
        with self._transaction() as session:
            session.connection().execute(
                self._insert_new(InvoiceDraft, ["draft_id"]), draft.model_dump()
            )

    def review_draft(
        self,
        draft_id: str,
        status: Literal["approved", "rejected"],
        *,
        at: datetime,
        by: str | None,
        reason: str | None = None,
        invoice_id: str | None = None,
    ) -> None:
        """Record a draft's review once: a draft already reviewed keeps its first review."""
        with self._transaction() as session:
            session.exec(
                update(InvoiceDraft)
                .where(col(InvoiceDraft.draft_id) == draft_id, col(InvoiceDraft.status) == "draft")
                .values(
                    status=status,
                    reviewed_at=at,
                    reviewed_by=by,
                    reason=reason,
                    invoice_id=invoice_id,
                )
            )

    def get_draft(self, draft_id: str) -> InvoiceDraft | None:
        with self._session() as session:
            return session.get(InvoiceDraft, draft_id)

    def list_drafts(
        self,
        *,
        status: DraftStatus | None = "draft",
        legal_entity: str | None = None,
        contract_id: str | None = None,
    ) -> list[InvoiceDraft]:
        """Drafts, oldest first: those waiting for review by default."""
        query = select(InvoiceDraft).order_by(
            col(InvoiceDraft.drafted_at), col(InvoiceDraft.draft_id)
        )
        if status is not None:
            query = query.where(InvoiceDraft.status == status)
        if legal_entity is not None:
            query = query.where(InvoiceDraft.legal_entity == legal_entity)
        if contract_id is not None:
            query = query.where(InvoiceDraft.contract_id == contract_id)
        with self._session() as session:
            return list(session.exec(query).all())
