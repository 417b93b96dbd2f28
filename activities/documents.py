"""Archiving the signed contract document: fetched from the CLM (DocuSign or Ironclad), kept
content-addressed, recorded in the ledger and linked from the ERP contract."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity

from activities.base import StepActivities, error_classes
from c2c.logs import get_logger
from connectors.docusign import DocuSignClient
from connectors.ironclad import IroncladClient
from domain.errors import BusinessError, Rejection
from domain.models import IroncladDocumentRef, SignedDocumentRef
from domain.steps import ARCHIVE_SIGNED_DOCUMENT, ContractStep, CreatedRef
from ledger.archive import ArchiveStore, archive_from_settings
from ledger.documents import SignedDocumentIn
from ledger.models import utc_now

log = get_logger("c2c.activities")

PDF = "application/pdf"


def document_url(api_url: str, contract_id: str) -> str:
    """Where c2c's API serves a contract's signed document."""
    return f"{api_url.rstrip('/')}/api/contracts/{contract_id}/document"


class DocumentActivities(StepActivities):
    """The archive step; its CLM clients and archive store come from the settings."""

    _docusign: DocuSignClient | None = None
    _ironclad: IroncladClient | None = None
    _archive: ArchiveStore | None = None

    @property
    def docusign(self) -> DocuSignClient:
        if self._docusign is None:
            self._docusign = DocuSignClient.from_settings(self.settings)
        return self._docusign

    @property
    def ironclad(self) -> IroncladClient:
        if self._ironclad is None:
            self._ironclad = IroncladClient.from_settings(self.settings)
        return self._ironclad

    async def signed_copy(self, ref: SignedDocumentRef | IroncladDocumentRef) -> bytes:
        """The signed document's bytes, from the CLM that holds it."""
        if isinstance(ref, IroncladDocumentRef):
            return await self.ironclad.workflow_document(ref.workflow_id, ref.document_key)
        return await self.docusign.combined_document(ref.account_id, ref.envelope_id)

    @property
    def archive(self) -> ArchiveStore:
        if self._archive is None:
            self._archive = archive_from_settings(self.settings)
        return self._archive

    @activity.defn(name=ARCHIVE_SIGNED_DOCUMENT)
    async def archive_signed_document(self, step: ContractStep) -> CreatedRef:
        """Fetch the envelope's combined PDF, keep it by its SHA-256, record it, and link it
        from the ERP contract. Every part is keyed by content or contract: a retry or a reset
        writes nothing twice."""
        await self.write_audit(step.contract_id, step.audit)
        ref = step.contract.signed_document
        erp_contract_id = step.refs.get("erp_contract_id")
        if ref is None or erp_contract_id is None:
            raise ValueError("the contract names no signed document, or has no ERP contract yet")
        async with error_classes(ARCHIVE_SIGNED_DOCUMENT):
            data = await self.signed_copy(ref)
            if not data.startswith(b"%PDF-"):
                raise BusinessError(
                    Rejection(
                        system=ref.source,
                        code="not_a_pdf",
                        message=f"{ref.source_ref}: the signed document is not a PDF",
                    )
                )
            now = utc_now()
            retain_until = now + timedelta(days=self.settings.archive_retention_days)
            stored = await asyncio.to_thread(
                self.archive.put, data, content_type=PDF, retain_until=retain_until
            )
            record = await asyncio.to_thread(
                self.ledger.record_signed_document,
                SignedDocumentIn(
                    contract_id=step.contract_id,
                    sha256=stored.sha256,
                    size=stored.size,
                    content_type=PDF,
                    source=ref.source,
                    source_ref=ref.source_ref,
                    location=stored.location,
                    archived_at=now,
                    retain_until=retain_until,
                ),
            )
            await self.connectors.erp.link_contract_document(
                erp_contract_id,
                document_url(self.settings.api_url, step.contract_id),
                record.sha256,
            )
        log.info("signed document archived", sha256=record.sha256, size=record.size)
        return CreatedRef(system="archive", kind="document", external_id=record.sha256)
