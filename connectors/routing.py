"""Several ERPs behind one ``ErpPort``, chosen by the contract's legal entity.

``C2C_ERP_ROUTES`` names each legal entity's ERP. A contract is pinned to the ERP its entity
routed to when its first ERP call ran, and every later call for it (a retry, a reset, a
period close years later) goes to the pinned ERP, so changing the routes moves new contracts
only. The contract of a call is the running activity's workflow (``contract-<id>``); the pin
is kept by a ``PinStore`` (the ledger's cross-references, bound by the worker). A call made
outside a contract's activity goes to its legal entity's route, or the ``"*"`` route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Literal, Protocol

from temporalio import activity

from connectors.ports import DocumentAttachments, ErpPort
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
from domain.names import contract_id_from_workflow_id
from domain.write_models import (
    AmendmentDraft,
    BillingSchedule,
    CashApplicationDraft,
    ContractDraft,
    CreditNoteDraft,
    CustomerDraft,
    DocumentFile,
    InvoiceDraft,
    PaymentDraft,
    ProjectDraft,
    RevenueEntryDraft,
    RevenueSchedule,
    WriteOffDraft,
)


class PinStore(Protocol):
    """Where each contract's ERP is remembered (blocking calls; run in a thread)."""

    def pinned_erp(self, contract_id: str) -> str | None: ...

    def legal_entity_of(self, contract_id: str) -> str | None: ...

    def pin_erp(self, contract_id: str, erp: str) -> None: ...


def current_contract() -> str | None:
    """The contract whose activity is running, or ``None`` outside a contract's activity."""
    if not activity.in_activity():
        return None
    workflow_id = activity.info().workflow_id or ""
    return (
        contract_id_from_workflow_id(workflow_id) if workflow_id.startswith("contract-") else None
    )


class RoutedErp:
    """``ErpPort`` that sends each call to the contract's ERP."""

    def __init__(self, backends: Mapping[str, ErpPort], routes: Mapping[str, str]) -> None:
        self.backends = dict(backends)
        self.routes = dict(routes)
        self.pins: PinStore | None = None

    def bind(self, pins: PinStore) -> None:
        self.pins = pins

    def route(self, legal_entity: str | None) -> str:
        name = (legal_entity and self.routes.get(legal_entity)) or self.routes.get("*")
        return name or "reference"

    async def erp_name(self, legal_entity: str | None = None) -> str:
        """The ERP of the running contract (pinned now if it has none yet)."""
        contract_id = current_contract()
        pins = self.pins
        if contract_id is None or pins is None:
            return self.route(legal_entity)
        pinned = await asyncio.to_thread(pins.pinned_erp, contract_id)
        if pinned is not None:
            return pinned
        if legal_entity is None:
            legal_entity = await asyncio.to_thread(pins.legal_entity_of, contract_id)
        name = self.route(legal_entity)
        await asyncio.to_thread(pins.pin_erp, contract_id, name)
        return name

    async def _erp(self, legal_entity: str | None = None) -> ErpPort:
        name = await self.erp_name(legal_entity)
        backend = self.backends.get(name)
        if backend is None:
            raise RuntimeError(f"ERP {name!r} is routed to but not configured")
        return backend

    async def aclose(self) -> None:
        for backend in self.backends.values():
            await backend.aclose()

    async def get_legal_entity(self, code: str) -> LegalEntity | None:
        return await (await self._erp(code)).get_legal_entity(code)

    async def ensure_customer(
        self, customer: CustomerDraft, *, idempotency_key: str
    ) -> ErpCustomer:
        erp = await self._erp(customer.legal_entity)
        return await erp.ensure_customer(customer, idempotency_key=idempotency_key)

    async def ensure_project(self, project: ProjectDraft, *, idempotency_key: str) -> ErpProject:
        erp = await self._erp(project.legal_entity)
        return await erp.ensure_project(project, idempotency_key=idempotency_key)

    async def close_project(self, project_id: str, *, idempotency_key: str) -> ErpProject:
        return await (await self._erp()).close_project(project_id, idempotency_key=idempotency_key)

    async def ensure_contract(
        self, contract: ContractDraft, *, idempotency_key: str
    ) -> ErpContract:
        erp = await self._erp(contract.legal_entity)
        return await erp.ensure_contract(contract, idempotency_key=idempotency_key)

    async def put_billing_schedule(
        self, erp_contract_id: str, schedule: BillingSchedule, *, idempotency_key: str
    ) -> None:
        await (await self._erp()).put_billing_schedule(
            erp_contract_id, schedule, idempotency_key=idempotency_key
        )

    async def put_revenue_schedule(
        self, erp_contract_id: str, schedule: RevenueSchedule, *, idempotency_key: str
    ) -> None:
        await (await self._erp()).put_revenue_schedule(
            erp_contract_id, schedule, idempotency_key=idempotency_key
        )

    async def amend_contract(
        self, erp_contract_id: str, amendment: AmendmentDraft, *, idempotency_key: str
    ) -> ErpContract:
        return await (await self._erp()).amend_contract(
            erp_contract_id, amendment, idempotency_key=idempotency_key
        )

    async def get_exchange_rate(self, from_currency: str, to_currency: str, on: date) -> Decimal:
        return await (await self._erp()).get_exchange_rate(from_currency, to_currency, on)

    async def find_invoice(
        self,
        contract_id: str,
        *,
        period: str | None = None,
        milestone_id: str | None = None,
        reference: str | None = None,
    ) -> ErpInvoice | None:
        return await (await self._erp()).find_invoice(
            contract_id, period=period, milestone_id=milestone_id, reference=reference
        )

    async def create_invoice(self, invoice: InvoiceDraft, *, idempotency_key: str) -> ErpInvoice:
        erp = await self._erp(invoice.legal_entity)
        return await erp.create_invoice(invoice, idempotency_key=idempotency_key)

    async def issue_invoice(self, invoice_id: str, *, idempotency_key: str) -> ErpInvoice:
        return await (await self._erp()).issue_invoice(invoice_id, idempotency_key=idempotency_key)

    async def get_invoice(self, invoice_id: str) -> ErpInvoice | None:
        return await (await self._erp()).get_invoice(invoice_id)

    async def list_invoices(self, contract_id: str) -> list[ErpInvoice]:
        return await (await self._erp()).list_invoices(contract_id)

    async def create_credit_note(
        self, invoice_id: str, note: CreditNoteDraft, *, idempotency_key: str
    ) -> ErpCreditNote:
        return await (await self._erp()).create_credit_note(
            invoice_id, note, idempotency_key=idempotency_key
        )

    async def list_credit_notes(
        self, contract_id: str, *, invoice_id: str | None = None
    ) -> list[ErpCreditNote]:
        return await (await self._erp()).list_credit_notes(contract_id, invoice_id=invoice_id)

    async def record_payment(self, payment: PaymentDraft, *, idempotency_key: str) -> ErpPayment:
        return await (await self._erp()).record_payment(payment, idempotency_key=idempotency_key)

    async def list_payments(
        self, *, contract_id: str | None = None, invoice_id: str | None = None
    ) -> list[ErpPayment]:
        return await (await self._erp()).list_payments(
            contract_id=contract_id, invoice_id=invoice_id
        )

    async def apply_payment(
        self, payment_id: str, application: CashApplicationDraft, *, idempotency_key: str
    ) -> CashApplication:
        return await (await self._erp()).apply_payment(
            payment_id, application, idempotency_key=idempotency_key
        )

    async def apply_credit(
        self, credit_note_id: str, application: CashApplicationDraft, *, idempotency_key: str
    ) -> CashApplication:
        return await (await self._erp()).apply_credit(
            credit_note_id, application, idempotency_key=idempotency_key
        )

    async def post_revenue(
        self, erp_contract_id: str, entry: RevenueEntryDraft, *, idempotency_key: str
    ) -> RevenueEntry:
        return await (await self._erp()).post_revenue(
            erp_contract_id, entry, idempotency_key=idempotency_key
        )

    async def list_revenue(self, erp_contract_id: str) -> list[RevenueEntry]:
        return await (await self._erp()).list_revenue(erp_contract_id)

    async def get_balances(self, erp_contract_id: str) -> ErpContractBalances:
        return await (await self._erp()).get_balances(erp_contract_id)

    async def record_write_off(
        self, write_off: WriteOffDraft, *, idempotency_key: str
    ) -> ErpWriteOff:
        erp = await self._erp(write_off.legal_entity)
        return await erp.record_write_off(write_off, idempotency_key=idempotency_key)

    async def attach_documents(
        self,
        document_type: Literal["invoice", "credit_note"],
        document_id: str,
        documents: Sequence[DocumentFile],
    ) -> None:
        """Attach the documents in the contract's ERP, where that ERP can (none elsewhere)."""
        backend = await self._erp()
        if isinstance(backend, DocumentAttachments):
            await backend.attach_documents(document_type, document_id, documents)
