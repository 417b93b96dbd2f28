"""Archiving the signed contract document (fetched from the CLM, DocuSign or Ironclad) and each
issued invoice's and credit note's documents (rendered from the ERP's record): kept
content-addressed, recorded in the ledger and linked from the ERP contract or invoice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from temporalio import activity

from activities.base import StepActivities, error_classes
from activities.consolidation import tax_mentions
from c2c.invoice_documents import (
    EINVOICE_TYPE,
    DocumentLine,
    DocumentSection,
    Format,
    InvoiceDocument,
    Party,
    PaymentInstructions,
    render_einvoice,
    render_pdf,
)
from c2c.logs import get_logger
from connectors.docusign import DocuSignClient
from connectors.ironclad import IroncladClient
from connectors.ports import DocumentAttachments
from connectors.records import ErpInvoiceLine
from domain.consolidation import InvoiceDocumentLink, is_customer_billing
from domain.errors import BusinessError, Rejection
from domain.models import IroncladDocumentRef, SignedDocumentRef
from domain.steps import (
    ARCHIVE_SIGNED_DOCUMENT,
    RENDER_CONSOLIDATED_INVOICE_DOCUMENTS,
    RENDER_INVOICE_DOCUMENTS,
    ConsolidatedDocumentsInput,
    ConsolidatedDocumentsRendered,
    ContractStep,
    CreatedRef,
    InvoiceDocumentsInput,
    InvoiceDocumentsRendered,
)
from domain.write_models import DocumentFile
from ledger.archive import ArchiveStore, archive_from_settings
from ledger.documents import SignedDocumentIn
from ledger.invoice_documents import InvoiceDocumentIn
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


def invoice_document_url(api_url: str, invoice_id: str, kind: Format = "pdf") -> str:
    """Where c2c's API serves an invoice's (or credit note's) PDF or e-invoice."""
    path = "document" if kind == "pdf" else "einvoice"
    return f"{api_url.rstrip('/')}/api/invoices/{invoice_id}/{path}"


class InvoiceDocumentActivities(DocumentActivities):
    """The rendering of invoice documents; the archive is the signed documents' one."""

    @activity.defn(name=RENDER_INVOICE_DOCUMENTS)
    async def render_invoice_documents(
        self, step: InvoiceDocumentsInput
    ) -> InvoiceDocumentsRendered:
        """Render an issued invoice's or credit note's PDF (and e-invoice, for a legal entity
        in the EU) from the ERP's record of it, keep each by its SHA-256, record it, and link
        (or attach) the documents in the ERP's invoice or credit note. The same invoice
        renders to the same bytes: a retry or a reset writes nothing twice."""
        await self.write_audit(step.contract_id, step.audit)
        async with error_classes(RENDER_INVOICE_DOCUMENTS):
            doc = await self._document(step)
            kept = await self._archive_and_link(doc, step.contract_id)
        log.info("invoice documents archived", document_id=step.document_id, **kept)
        return InvoiceDocumentsRendered(documents=kept)

    @activity.defn(name=RENDER_CONSOLIDATED_INVOICE_DOCUMENTS)
    async def render_consolidated_invoice_documents(
        self, step: ConsolidatedDocumentsInput
    ) -> ConsolidatedDocumentsRendered:
        """Render a consolidated invoice's PDF (and e-invoice, for a legal entity in the EU)
        from the ERP's record of it, one titled section per contract, keep each by its
        SHA-256, record it under the invoice's id, and link the documents in the ERP's
        invoice, as an ordinary invoice's. A retry or a reset writes nothing twice."""
        await self.write_audit(step.contract_id, step.audit)
        async with error_classes(RENDER_CONSOLIDATED_INVOICE_DOCUMENTS):
            doc = await self._consolidated_document(step)
            kept = await self._archive_and_link(doc, step.contract_id)
        log.info("consolidated invoice documents archived", invoice_id=step.invoice_id, **kept)
        api = self.settings.api_url
        formats: tuple[Format, ...] = ("pdf", "einvoice")
        return ConsolidatedDocumentsRendered(
            documents=[
                InvoiceDocumentLink(
                    kind=kind,
                    sha256=kept[kind],
                    url=invoice_document_url(api, step.invoice_id, kind),
                )
                for kind in formats
                if kind in kept
            ]
        )

    async def _archive_and_link(self, doc: InvoiceDocument, contract_id: str) -> dict[str, str]:
        """Render ``doc``'s documents, keep each in the archive by its SHA-256, record it in
        the ledger under the document's id (the first record of each kind stays), and link
        (or attach) them in the ERP's invoice or credit note. The SHA-256 by kind."""
        rendered: dict[Format, tuple[bytes, str]] = {"pdf": (render_pdf(doc), PDF)}
        if doc.einvoice_due:
            rendered["einvoice"] = (render_einvoice(doc), EINVOICE_TYPE)
        now = utc_now()
        retain_until = now + timedelta(days=self.settings.archive_retention_days)
        kept: dict[str, str] = {}
        for kind, (data, content_type) in rendered.items():
            stored = await asyncio.to_thread(
                self.archive.put, data, content_type=content_type, retain_until=retain_until
            )
            record = await asyncio.to_thread(
                self.ledger.record_invoice_document,
                InvoiceDocumentIn(
                    invoice_id=doc.document_id,
                    kind=kind,
                    document_type=doc.document_type,
                    contract_id=contract_id,
                    number=doc.number,
                    sha256=stored.sha256,
                    size=stored.size,
                    content_type=content_type,
                    location=stored.location,
                    archived_at=now,
                    retain_until=retain_until,
                ),
            )
            kept[kind] = record.sha256
        erp = self.connectors.erp
        if isinstance(erp, DocumentAttachments):
            api = self.settings.api_url
            await erp.attach_documents(
                doc.document_type,
                doc.document_id,
                [
                    DocumentFile(
                        kind=kind,
                        file_name=f"{doc.number}{'.pdf' if kind == 'pdf' else '.xml'}",
                        url=invoice_document_url(api, doc.document_id, kind),
                        sha256=kept[kind],
                        content_type=content_type,
                        data=data,
                    )
                    for kind, (data, content_type) in rendered.items()
                ],
            )
        return kept

    async def _seller(self, legal_entity: str) -> tuple[Party, PaymentInstructions]:
        """The legal entity as the ERP and the configuration know it, and how it is paid."""
        entity = await self.reference.legal_entity(legal_entity)
        details = self.settings.details_for(legal_entity)
        seller = Party(
            name=entity.name if entity else legal_entity,
            country=entity.country if entity else "",
            address_lines=details.address_lines,
            postcode=details.postcode,
            city=details.city,
            tax_id=details.tax_id,
            email=details.email,
        )
        payment = PaymentInstructions(
            text=details.payment_instructions,
            iban=details.iban,
            bic=details.bic,
            account_name=seller.name if details.iban else None,
        )
        return seller, payment

    async def _consolidated_document(self, step: ConsolidatedDocumentsInput) -> InvoiceDocument:
        """A consolidated invoice's data: the ERP's invoice, its lines grouped by section
        (as the ERP names them, else by the ``<n>.`` their ids start with), each section's
        figures and contract as the contract priced it, the customer as its contracts know
        it, and the tax engine's mentions (a reverse charge) of the sections' tax documents
        (the invoice's own, for an invoice made since it carries them)."""
        key = step.key
        erp, tax = self.connectors.erp, self.connectors.tax
        seller, payment = await self._seller(key.legal_entity)
        invoice = await erp.get_invoice(step.invoice_id)
        if invoice is None:
            raise ValueError(f"the ERP has no invoice {step.invoice_id}")
        known = next((s for s in step.sections if s.customer is not None), None)
        if known is not None and known.customer is not None:
            customer = known.customer
            buyer = Party(
                name=customer.name,
                country=customer.country,
                tax_id=known.customer_tax_id or customer.tax_id,
                email=customer.billing_email,
            )
        else:
            account = await self.connectors.crm.get_account(key.crm_account_id)
            buyer = Party(name=account.name, country=account.country, tax_id=account.tax_id)
        # An invoice made before it carried them has its sections' mentions read again.
        mentions = await tax_mentions(tax, key.legal_entity, step.sections)
        notes = [*invoice.notes, *(m for m in mentions if m not in invoice.notes)]
        by_position = {f"{n}.": s.section_id for n, s in enumerate(step.sections, start=1)}
        lines = []
        for line in invoice.lines:
            section_id = line.section_id or next(
                (sid for prefix, sid in by_position.items() if line.line_id.startswith(prefix)),
                None,
            )
            lines.append(_line(line).model_copy(update={"section_id": section_id}))
        return InvoiceDocument(
            document_type="invoice",
            document_id=invoice.invoice_id,
            number=invoice.number or invoice.invoice_id,
            issue_date=invoice.invoice_date,
            due_on=invoice.due_on,
            currency=invoice.currency,
            contract_id=step.contract_id,
            seller=seller,
            buyer=buyer,
            po_number=key.po_number,
            lines=lines,
            subtotal=invoice.subtotal,
            tax=invoice.tax,
            total=invoice.total,
            notes=notes,
            payment=payment,
            sections=[
                DocumentSection(
                    section_id=s.section_id,
                    contract_id=s.contract_id,
                    contract_title=s.title,
                    subtotal=s.subtotal,
                    tax=s.tax,
                    total=s.total,
                )
                for s in step.sections
            ],
        )

    async def _document(self, step: InvoiceDocumentsInput) -> InvoiceDocument:
        """The document's data: the ERP's invoice (or credit note and its invoice), the legal
        entity as the ERP and the configuration know it, and the customer."""
        erp = self.connectors.erp
        seller, payment = await self._seller(step.legal_entity)
        customer = step.customer
        buyer = Party(
            name=customer.name,
            country=customer.country,
            tax_id=step.customer_tax_id or customer.tax_id,
            email=customer.billing_email,
        )
        invoice_id = step.document_id if step.document_type == "invoice" else step.invoice_id
        invoice = await erp.get_invoice(invoice_id or "")
        if invoice is None:
            raise ValueError(f"the ERP has no invoice {invoice_id}")
        common = {
            "document_id": step.document_id,
            "currency": invoice.currency,
            "contract_id": step.contract_id,
            "contract_title": step.title,
            "seller": seller,
            "buyer": buyer,
            "po_number": step.po_number,
            "bill_to": step.bill_to,
            "notes": invoice.notes,
            "payment": payment,
        }
        if step.document_type == "invoice":
            return InvoiceDocument(
                document_type="invoice",
                number=invoice.number or invoice.invoice_id,
                issue_date=invoice.invoice_date,
                due_on=invoice.due_on,
                lines=[_line(line) for line in invoice.lines],
                subtotal=invoice.subtotal,
                tax=invoice.tax,
                total=invoice.total,
                **common,
            )
        # A credit note on a section credits the consolidated invoice, the customer's.
        owner = invoice.contract_id if is_customer_billing(invoice.contract_id) else None
        notes = await erp.list_credit_notes(
            owner or step.contract_id, invoice_id=invoice.invoice_id
        )
        note = next((n for n in notes if n.credit_note_id == step.document_id), None)
        if note is None:
            raise ValueError(f"the ERP has no credit note {step.document_id}")
        rate = None
        if invoice.subtotal and invoice.tax:
            # The invoice's rate: a small note's rounded tax would read as another rate.
            rate = (invoice.tax * 100 / invoice.subtotal).quantize(Decimal("0.1"))
        return InvoiceDocument(
            document_type="credit_note",
            number=note.number,
            issue_date=note.created_at.date(),
            lines=[
                DocumentLine(
                    line_id="1",
                    description=f"Credit on invoice {invoice.number}: {note.reason}",
                    unit_price=note.subtotal,
                    amount=note.subtotal,
                    tax_amount=note.tax,
                    tax_rate=rate,
                )
            ],
            subtotal=note.subtotal,
            tax=note.tax,
            total=note.total,
            invoice_number=invoice.number,
            invoice_date=invoice.invoice_date,
            reason=note.reason,
            **common,
        )


def _line(line: ErpInvoiceLine) -> DocumentLine:
    return DocumentLine(
        line_id=line.line_id,
        description=line.description or line.kind,
        quantity=line.quantity,
        unit_price=line.unit_price if line.unit_price is not None else line.amount,
        amount=line.amount,
        tax_amount=line.tax_amount or Decimal(0),
        unit="HUR" if line.kind == "time" else "C62",
    )
