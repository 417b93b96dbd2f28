"""Invoice documents: each issued invoice's and credit note's PDF and e-invoice, where the
archive keeps them and the SHA-256 their bytes must have when read back.

The archive store holds the bytes (``ledger.archive``, the store of signed contract
documents); this table is the record of which object is which document. A document is written
once: the same invoice always renders to the same bytes, so a retried or replayed rendering
finds its own record.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlmodel import Field, col, select

from ledger.base import LedgerBase
from ledger.columns import UTCDateTime
from ledger.models import LedgerTable


class InvoiceDocumentRecord(LedgerTable, table=True):
    """One document of an invoice or credit note in the archive."""

    __tablename__ = "ledger_invoice_document"

    #: The ERP's id of the invoice or credit note.
    invoice_id: str = Field(primary_key=True, max_length=200)
    #: ``pdf`` or ``einvoice`` (UBL 2.1, Peppol BIS Billing 3.0).
    kind: str = Field(primary_key=True, max_length=20)
    #: ``invoice`` or ``credit_note``.
    document_type: str = Field(max_length=20)
    #: The contract, or the customer billing workflow of a consolidated invoice.
    contract_id: str = Field(max_length=200, index=True)
    number: str = Field(max_length=200)
    #: Hex SHA-256 of the bytes: the archive's key, checked on every read.
    sha256: str = Field(max_length=64, index=True)
    size: int
    content_type: str = Field(max_length=100)
    #: Where the archive keeps it: a file path or ``s3://bucket/key``.
    location: str = Field(max_length=1000)
    archived_at: datetime = Field(sa_type=UTCDateTime)
    retain_until: datetime = Field(sa_type=UTCDateTime)


class InvoiceDocumentIn(BaseModel):
    """What the rendering step records of one document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    invoice_id: str
    kind: str
    document_type: str
    contract_id: str
    number: str
    sha256: str
    size: int
    content_type: str
    location: str
    archived_at: AwareDatetime
    retain_until: AwareDatetime


class InvoiceDocumentLedger(LedgerBase):
    """The invoice-document part of the ledger."""

    def record_invoice_document(self, document: InvoiceDocumentIn) -> InvoiceDocumentRecord:
        """Record a document; an invoice keeps the first document of each kind recorded.

        Returns:
            The record as stored (the earlier one, if there was one).
        """
        with self._transaction() as session:
            session.connection().execute(
                self._insert_new(InvoiceDocumentRecord, ["invoice_id", "kind"]),
                document.model_dump(),
            )
            stored = session.exec(
                select(InvoiceDocumentRecord).where(
                    InvoiceDocumentRecord.invoice_id == document.invoice_id,
                    InvoiceDocumentRecord.kind == document.kind,
                )
            ).one()
        return stored

    def get_invoice_document(self, invoice_id: str, kind: str) -> InvoiceDocumentRecord | None:
        """An invoice's or credit note's document of ``kind``, if one was archived."""
        with self._session() as session:
            return session.get(InvoiceDocumentRecord, (invoice_id, kind))

    def invoice_documents(self, contract_id: str) -> list[InvoiceDocumentRecord]:
        """Every document of a contract's invoices and credit notes."""
        with self._session() as session:
            return list(
                session.exec(
                    select(InvoiceDocumentRecord)
                    .where(InvoiceDocumentRecord.contract_id == contract_id)
                    .order_by(
                        col(InvoiceDocumentRecord.invoice_id), col(InvoiceDocumentRecord.kind)
                    )
                )
            )
