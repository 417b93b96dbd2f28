"""Signed documents in the ledger: one per contract, the first one recorded kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger import Ledger
from ledger.documents import SignedDocumentIn

AT = datetime(2026, 9, 28, 10, tzinfo=UTC)


def document(contract_id: str, sha256: str) -> SignedDocumentIn:
    return SignedDocumentIn(
        contract_id=contract_id,
        sha256=sha256,
        size=1234,
        source="docusign",
        source_ref="acct-1/env-1",
        location=f"s3://archive/sha256/{sha256}",
        archived_at=AT,
        retain_until=AT + timedelta(days=3650),
    )


def test_a_contract_keeps_the_first_document_recorded(ledger: Ledger) -> None:
    assert ledger.get_signed_document("K-1") is None
    first = ledger.record_signed_document(document("K-1", "a" * 64))
    again = ledger.record_signed_document(document("K-1", "b" * 64))
    assert first.sha256 == again.sha256 == "a" * 64
    stored = ledger.get_signed_document("K-1")
    assert stored is not None
    assert (stored.sha256, stored.size, stored.source, stored.content_type) == (
        "a" * 64,
        1234,
        "docusign",
        "application/pdf",
    )
    assert stored.archived_at == AT
    assert stored.retain_until - stored.archived_at == timedelta(days=3650)
    # Contracts may share a document (the same PDF), each with its own record.
    ledger.record_signed_document(document("K-2", "a" * 64))
    assert ledger.get_signed_document("K-2") is not None
