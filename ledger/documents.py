"""Signed contract documents: where each contract's archived copy is, and its SHA-256.

The archive store holds the bytes (``ledger.archive``); this table is the only record of
which object is a contract's signed document and what its hash must be when it is read back.
It is the one schema change the archive brings: the table ``ledger_signed_document``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlmodel import Field, select

from ledger.base import LedgerBase
from ledger.columns import UTCDateTime
from ledger.models import LedgerTable


class SignedDocument(LedgerTable, table=True):
    """A contract's signed document in the archive, written once per contract."""

    __tablename__ = "ledger_signed_document"

    contract_id: str = Field(primary_key=True, max_length=64)
    #: Hex SHA-256 of the bytes: the archive's key, checked on every read.
    sha256: str = Field(max_length=64, index=True)
    size: int
    content_type: str = Field(default="application/pdf", max_length=100)
    #: The system it came from (``docusign``) and its id there (``account/envelope``).
    source: str = Field(max_length=40)
    source_ref: str = Field(max_length=200)
    #: Where the archive keeps it: a file path or ``s3://bucket/key``.
    location: str = Field(max_length=1000)
    archived_at: datetime = Field(sa_type=UTCDateTime)
    #: Until when it must be kept (``C2C_ARCHIVE_RETENTION_DAYS`` from its archiving).
    retain_until: datetime = Field(sa_type=UTCDateTime)


class SignedDocumentIn(BaseModel):
    """What an archiving step records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract_id: str
    sha256: str
    size: int
    content_type: str = "application/pdf"
    source: str
    source_ref: str
    location: str
    archived_at: AwareDatetime
    retain_until: AwareDatetime


class DocumentLedger(LedgerBase):
    """The signed-document part of the ledger."""

    def record_signed_document(self, document: SignedDocumentIn) -> SignedDocument:
        """Record a contract's signed document; a contract keeps the first one recorded.

        Returns:
            The record as stored (the earlier one, if there was one).
        """
        row = document.model_dump()
        with self._transaction() as session:
            session.connection().execute(self._insert_new(SignedDocument, ["contract_id"]), row)
            stored = session.exec(
                select(SignedDocument).where(SignedDocument.contract_id == document.contract_id)
            ).one()
        return stored

    def get_signed_document(self, contract_id: str) -> SignedDocument | None:
        """A contract's signed document, if one was archived."""
        with self._session() as session:
            return session.get(SignedDocument, contract_id)
