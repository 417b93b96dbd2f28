"""ERP connector: customers, projects, contracts with their schedules, invoices and payments.

The ``ensure_*`` methods find a record by its canonical key before creating it, and treat a
``409 duplicate`` as "someone created it first": together with the idempotency key this makes
creation safe to repeat from a retry, a replayed webhook or an operator's reset.
"""

from __future__ import annotations

from typing import Any

from connectors.http import HttpConnector
from connectors.records import (
    ErpContract,
    ErpCustomer,
    ErpInvoice,
    ErpPayment,
    ErpProject,
    LegalEntity,
)


class HttpErp(HttpConnector):
    system = "erp"

    async def get_legal_entity(self, code: str) -> LegalEntity | None:
        body = await self.get_or_none(f"/legal-entities/{code}")
        return LegalEntity.model_validate(body) if body else None

    async def ensure_customer(
        self, customer: dict[str, Any], *, idempotency_key: str
    ) -> ErpCustomer:
        return await self.find_or_create(
            ErpCustomer,
            "/customers",
            {"crm_account_id": customer["crm_account_id"]},
            customer,
            idempotency_key=idempotency_key,
        )

    async def ensure_project(self, project: dict[str, Any], *, idempotency_key: str) -> ErpProject:
        return await self.find_or_create(
            ErpProject,
            "/projects",
            {"contract_id": project["contract_id"]},
            project,
            idempotency_key=idempotency_key,
        )

    async def close_project(self, project_id: str, *, idempotency_key: str) -> ErpProject:
        body = await self.request(
            "POST", f"/projects/{project_id}/close", idempotency_key=idempotency_key
        )
        return ErpProject.model_validate(body)

    async def ensure_contract(
        self, contract: dict[str, Any], *, idempotency_key: str
    ) -> ErpContract:
        return await self.find_or_create(
            ErpContract,
            "/contracts",
            {"contract_id": contract["contract_id"]},
            contract,
            idempotency_key=idempotency_key,
        )

    async def put_billing_schedule(
        self, erp_contract_id: str, schedule: dict[str, Any], *, idempotency_key: str
    ) -> None:
        await self.request(
            "PUT",
            f"/contracts/{erp_contract_id}/billing-schedule",
            json=schedule,
            idempotency_key=idempotency_key,
        )

    async def put_revenue_schedule(
        self, erp_contract_id: str, schedule: dict[str, Any], *, idempotency_key: str
    ) -> None:
        await self.request(
            "PUT",
            f"/contracts/{erp_contract_id}/revenue-schedule",
            json=schedule,
            idempotency_key=idempotency_key,
        )

    async def find_invoice(
        self, contract_id: str, *, period: str | None = None, milestone_id: str | None = None
    ) -> ErpInvoice | None:
        async for page in self.pages(
            "/invoices", {"contract_id": contract_id, "period": period}, page_size=50
        ):
            for item in page:
                invoice = ErpInvoice.model_validate(item)
                if invoice.status == "void":
                    continue
                if milestone_id is not None and invoice.milestone_id != milestone_id:
                    continue
                return invoice
        return None

    async def create_invoice(self, invoice: dict[str, Any], *, idempotency_key: str) -> ErpInvoice:
        body = await self.request(
            "POST", "/invoices", json=invoice, idempotency_key=idempotency_key
        )
        return ErpInvoice.model_validate(body)

    async def issue_invoice(self, invoice_id: str, *, idempotency_key: str) -> ErpInvoice:
        body = await self.request(
            "POST", f"/invoices/{invoice_id}/issue", idempotency_key=idempotency_key
        )
        return ErpInvoice.model_validate(body)

    async def get_invoice(self, invoice_id: str) -> ErpInvoice | None:
        body = await self.get_or_none(f"/invoices/{invoice_id}")
        return ErpInvoice.model_validate(body) if body else None

    async def list_invoices(self, contract_id: str) -> list[ErpInvoice]:
        invoices: list[ErpInvoice] = []
        async for page in self.pages("/invoices", {"contract_id": contract_id}):
            invoices.extend(ErpInvoice.model_validate(item) for item in page)
        return invoices

    async def record_payment(self, payment: dict[str, Any], *, idempotency_key: str) -> ErpPayment:
        body = await self.request(
            "POST", "/payments", json=payment, idempotency_key=idempotency_key
        )
        return ErpPayment.model_validate(body)
