"""ERP connector: customers, projects, contracts with their schedules and amendments, invoices,
credit notes, payments and their application, revenue and contract balances.

The ``ensure_*`` methods find a record by its canonical key before creating it, and treat a
``409 duplicate`` as "someone created it first": together with the idempotency key this makes
creation safe to repeat from a retry, a replayed webhook or an operator's reset. Records whose
id c2c chooses (a payment, a credit note, an application, a revenue entry, an amendment) are
answered as they are when the same request comes again under any key; only a request that
differs from the recorded one is a ``409``, and that is a real conflict, raised as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from connectors.http import Duplicate, HttpConnector
from connectors.records import (
    CashApplication,
    ErpContract,
    ErpContractBalances,
    ErpCreditNote,
    ErpCustomer,
    ErpInvoice,
    ErpPayment,
    ErpProject,
    ErpWriteOff,
    LegalEntity,
    RevenueEntry,
)
from domain.write_models import (
    AmendmentDraft,
    BillingSchedule,
    CashApplicationDraft,
    ContractDraft,
    CreditNoteDraft,
    CustomerChanges,
    CustomerDraft,
    DocumentFile,
    InvoiceDraft,
    PaymentDraft,
    ProjectDraft,
    RevenueEntryDraft,
    RevenueSchedule,
    WriteModel,
    WriteOffDraft,
)


def body(model: WriteModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    """A write model as the reference ERP takes it: c2c's own field names, amounts as decimal
    strings, dates as ISO text, and what is not set left out."""
    return model.model_dump(mode="json", exclude_none=True, exclude=exclude)


class HttpErp(HttpConnector):
    system = "erp"

    async def get_legal_entity(self, code: str) -> LegalEntity | None:
        body = await self.get_or_none(f"/legal-entities/{code}")
        return LegalEntity.model_validate(body) if body else None

    async def ensure_customer(
        self, customer: CustomerDraft, *, idempotency_key: str
    ) -> ErpCustomer:
        return await self.find_or_create(
            ErpCustomer,
            "/customers",
            {"crm_account_id": customer.crm_account_id},
            body(customer),
            idempotency_key=idempotency_key,
        )

    async def find_customer(self, crm_account_id: str) -> ErpCustomer | None:
        """The customer of a CRM account, or ``None``."""
        body = await self.first("/customers", {"crm_account_id": crm_account_id})
        return ErpCustomer.model_validate(body) if body else None

    async def update_customer(
        self, customer_id: str, changes: CustomerChanges, *, idempotency_key: str
    ) -> ErpCustomer:
        """Change a customer's master data: only the fields set in ``changes`` (``None``
        clears)."""
        return await self.send(
            ErpCustomer,
            "PATCH",
            f"/customers/{customer_id}",
            json=changes.changed(),
            idempotency_key=idempotency_key,
        )

    async def ensure_project(self, project: ProjectDraft, *, idempotency_key: str) -> ErpProject:
        return await self.find_or_create(
            ErpProject,
            "/projects",
            {"contract_id": project.contract_id},
            body(project),
            idempotency_key=idempotency_key,
            look_first=False,
        )

    async def close_project(self, project_id: str, *, idempotency_key: str) -> ErpProject:
        return await self.send(
            ErpProject, "POST", f"/projects/{project_id}/close", idempotency_key=idempotency_key
        )

    async def ensure_contract(
        self, contract: ContractDraft, *, idempotency_key: str
    ) -> ErpContract:
        return await self.find_or_create(
            ErpContract,
            "/contracts",
            {"contract_id": contract.contract_id},
            body(contract, exclude={"billing_schedule", "revenue_schedule"}),
            idempotency_key=idempotency_key,
            look_first=False,
        )

    async def put_billing_schedule(
        self, erp_contract_id: str, schedule: BillingSchedule, *, idempotency_key: str
    ) -> None:
        await self.request(
            "PUT",
            f"/contracts/{erp_contract_id}/billing-schedule",
            json=body(schedule),
            idempotency_key=idempotency_key,
        )

    async def put_revenue_schedule(
        self, erp_contract_id: str, schedule: RevenueSchedule, *, idempotency_key: str
    ) -> None:
        await self.request(
            "PUT",
            f"/contracts/{erp_contract_id}/revenue-schedule",
            json=body(schedule),
            idempotency_key=idempotency_key,
        )

    async def amend_contract(
        self, erp_contract_id: str, amendment: AmendmentDraft, *, idempotency_key: str
    ) -> ErpContract:
        """Apply an amendment (new rate revisions, milestones, end date, caps) once."""
        # Milestone edits are sent only when there are some, so an amendment without them
        # reads as it always did.
        empty = {f for f in ("change_milestones", "remove_milestones") if not getattr(amendment, f)}
        return await self.send(
            ErpContract,
            "POST",
            f"/contracts/{erp_contract_id}/amendments",
            json=body(amendment, exclude=empty),
            idempotency_key=idempotency_key,
        )

    async def link_contract_document(
        self, erp_contract_id: str, document_url: str, sha256: str
    ) -> ErpContract:
        """Link the contract to its signed document (a PUT: repeating it changes nothing)."""
        return await self.send(
            ErpContract,
            "PUT",
            f"/contracts/{erp_contract_id}/document",
            json={"document_url": document_url, "sha256": sha256},
        )

    async def attach_documents(
        self,
        document_type: Literal["invoice", "credit_note"],
        document_id: str,
        documents: Sequence[DocumentFile],
    ) -> None:
        """Link the invoice or credit note to its PDF (and e-invoice) in c2c's archive (a PUT:
        repeating it changes nothing)."""
        by_kind = {d.kind: d for d in documents}
        pdf, einvoice = by_kind.get("pdf"), by_kind.get("einvoice")
        if pdf is None:
            return
        root = "invoices" if document_type == "invoice" else "credit-notes"
        await self.request(
            "PUT",
            f"/{root}/{document_id}/document",
            json={
                "document_url": pdf.url,
                "sha256": pdf.sha256,
                "einvoice_url": einvoice.url if einvoice else None,
                "einvoice_sha256": einvoice.sha256 if einvoice else None,
            },
        )

    async def get_exchange_rate(self, from_currency: str, to_currency: str, on: date) -> Decimal:
        """Units of ``to_currency`` per ``from_currency`` in force on ``on`` (the ERP's latest
        rate on or before it); ``NotFound`` when the ERP has none."""
        body = await self.request(
            "GET",
            "/exchange-rates",
            params={"from": from_currency, "to": to_currency, "date": on},
        )
        return Decimal(body["rate"])

    async def find_invoice(
        self,
        contract_id: str,
        *,
        period: str | None = None,
        milestone_id: str | None = None,
        reference: str | None = None,
    ) -> ErpInvoice | None:
        """The contract's invoice that is not void for a business key, or ``None``.

        ``reference`` is the key invoices are unique by. Without it, a ``milestone_id`` finds
        that milestone's invoice, and a ``period`` alone the period's invoice: the ERP keys an
        invoice created without a reference by ``milestone:{id}`` or by its period, so the
        lookup finds exactly the invoice that creating it again would collide with.
        """
        if reference is None and milestone_id is None:
            reference = period
        if reference is None and milestone_id is None:
            return None
        query = {"contract_id": contract_id, "reference": reference}
        if reference is None:
            query |= {"milestone_id": milestone_id, "period": period}
        async for page in self.pages("/invoices", query, page_size=50):
            for item in page:
                invoice = ErpInvoice.model_validate(item)
                if invoice.status != "void":
                    return invoice
        return None

    async def create_invoice(self, invoice: InvoiceDraft, *, idempotency_key: str) -> ErpInvoice:
        """Create a draft invoice; if its reference is taken (a repeat of this step under
        another key), the invoice that holds it is the answer."""
        try:
            answer = await self.request(
                "POST", "/invoices", json=body(invoice), idempotency_key=idempotency_key
            )
        except Duplicate as exc:
            answer = (
                await self.get_or_none(f"/invoices/{exc.existing_id}") if exc.existing_id else None
            )
            if answer is None:
                raise
        return ErpInvoice.model_validate(answer)

    async def issue_invoice(self, invoice_id: str, *, idempotency_key: str) -> ErpInvoice:
        return await self.send(
            ErpInvoice, "POST", f"/invoices/{invoice_id}/issue", idempotency_key=idempotency_key
        )

    async def get_invoice(self, invoice_id: str) -> ErpInvoice | None:
        body = await self.get_or_none(f"/invoices/{invoice_id}")
        return ErpInvoice.model_validate(body) if body else None

    async def list_invoices(self, contract_id: str) -> list[ErpInvoice]:
        return await self.collect(ErpInvoice, "/invoices", {"contract_id": contract_id})

    async def create_credit_note(
        self, invoice_id: str, note: CreditNoteDraft, *, idempotency_key: str
    ) -> ErpCreditNote:
        """Credit an issued invoice; the ``credit_note_id`` in ``note`` makes it once."""
        return await self.send(
            ErpCreditNote,
            "POST",
            f"/invoices/{invoice_id}/credit-notes",
            json=body(note, exclude={"currency"}),
            idempotency_key=idempotency_key,
        )

    async def list_credit_notes(
        self, contract_id: str, *, invoice_id: str | None = None
    ) -> list[ErpCreditNote]:
        query = {"contract_id": contract_id, "invoice_id": invoice_id}
        return await self.collect(ErpCreditNote, "/credit-notes", query)

    async def record_payment(self, payment: PaymentDraft, *, idempotency_key: str) -> ErpPayment:
        """Record cash received: against ``invoice_id``, or with ``invoice_id`` ``None`` as
        unapplied cash of ``contract_id``. The ``payment_id`` makes it once."""
        return await self.send(
            ErpPayment, "POST", "/payments", json=body(payment), idempotency_key=idempotency_key
        )

    async def list_payments(
        self, *, contract_id: str | None = None, invoice_id: str | None = None
    ) -> list[ErpPayment]:
        """Payments of a contract, or applied to an invoice (on receipt or later)."""
        query = {"contract_id": contract_id, "invoice_id": invoice_id}
        return await self.collect(ErpPayment, "/payments", query)

    async def apply_payment(
        self, payment_id: str, application: CashApplicationDraft, *, idempotency_key: str
    ) -> CashApplication:
        """Apply unapplied cash of a payment to an invoice; the ``application_id`` makes it
        once."""
        return await self.send(
            CashApplication,
            "POST",
            f"/payments/{payment_id}/applications",
            json=body(application),
            idempotency_key=idempotency_key,
        )

    async def apply_credit(
        self, credit_note_id: str, application: CashApplicationDraft, *, idempotency_key: str
    ) -> CashApplication:
        """Apply customer credit of a credit note to an invoice, as ``apply_payment``."""
        return await self.send(
            CashApplication,
            "POST",
            f"/credit-notes/{credit_note_id}/applications",
            json=body(application),
            idempotency_key=idempotency_key,
        )

    async def post_revenue(
        self, erp_contract_id: str, entry: RevenueEntryDraft, *, idempotency_key: str
    ) -> RevenueEntry:
        """Post a revenue entry; the ``entry_id`` makes it once."""
        return await self.send(
            RevenueEntry,
            "POST",
            f"/contracts/{erp_contract_id}/revenue",
            json=body(entry),
            idempotency_key=idempotency_key,
        )

    async def list_revenue(self, erp_contract_id: str) -> list[RevenueEntry]:
        return await self.collect(RevenueEntry, f"/contracts/{erp_contract_id}/revenue")

    async def get_balances(self, erp_contract_id: str) -> ErpContractBalances:
        return await self.send(ErpContractBalances, "GET", f"/contracts/{erp_contract_id}/balances")

    async def record_write_off(
        self, write_off: WriteOffDraft, *, idempotency_key: str
    ) -> ErpWriteOff:
        """Record work written off above a cap; the ``write_off_id`` makes it once."""
        answer = await self.request(
            "POST", "/write-offs", json=body(write_off), idempotency_key=idempotency_key
        )
        return ErpWriteOff.model_validate({**answer, "erp_ref": answer["write_off_id"]})
