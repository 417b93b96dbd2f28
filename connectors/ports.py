"""The typed interface of each system, as c2c's activities use it.

A connector for another vendor's system implements one of these protocols; nothing else in
c2c changes. Every write takes an ``idempotency_key`` built by the caller from the workflow id
and the business step, so a retried or re-executed step never creates a record twice. A system
without idempotency keys is made safe by the connector, by finding the record by its canonical
id before creating it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from connectors.records import (
    BillingBatch,
    CrmAccount,
    ErpContract,
    ErpCustomer,
    ErpInvoice,
    ErpPayment,
    ErpProject,
    Expense,
    GatewayPayment,
    LegalEntity,
    PsaProject,
    TaxQuote,
    TimeEntry,
)


class Closeable(Protocol):
    async def aclose(self) -> None: ...


class CrmPort(Closeable, Protocol):
    async def get_account(self, crm_account_id: str) -> CrmAccount: ...

    async def get_ancestors(self, crm_account_id: str) -> list[CrmAccount]: ...

    async def add_activity(
        self, crm_account_id: str, activity: dict[str, Any], *, idempotency_key: str
    ) -> None: ...


class ErpPort(Closeable, Protocol):
    async def get_legal_entity(self, code: str) -> LegalEntity | None: ...

    async def ensure_customer(
        self, customer: dict[str, Any], *, idempotency_key: str
    ) -> ErpCustomer: ...

    async def ensure_project(
        self, project: dict[str, Any], *, idempotency_key: str
    ) -> ErpProject: ...

    async def close_project(self, project_id: str, *, idempotency_key: str) -> ErpProject: ...

    async def ensure_contract(
        self, contract: dict[str, Any], *, idempotency_key: str
    ) -> ErpContract: ...

    async def put_billing_schedule(
        self, erp_contract_id: str, schedule: dict[str, Any], *, idempotency_key: str
    ) -> None: ...

    async def put_revenue_schedule(
        self, erp_contract_id: str, schedule: dict[str, Any], *, idempotency_key: str
    ) -> None: ...

    async def find_invoice(
        self, contract_id: str, *, period: str | None = None, milestone_id: str | None = None
    ) -> ErpInvoice | None: ...

    async def create_invoice(
        self, invoice: dict[str, Any], *, idempotency_key: str
    ) -> ErpInvoice: ...

    async def issue_invoice(self, invoice_id: str, *, idempotency_key: str) -> ErpInvoice: ...

    async def get_invoice(self, invoice_id: str) -> ErpInvoice | None: ...

    async def list_invoices(self, contract_id: str) -> list[ErpInvoice]: ...

    async def record_payment(
        self, payment: dict[str, Any], *, idempotency_key: str
    ) -> ErpPayment: ...


class PsaPort(Closeable, Protocol):
    async def ensure_project(
        self, project: dict[str, Any], *, idempotency_key: str
    ) -> PsaProject: ...

    async def activate_project(self, project_id: str, *, idempotency_key: str) -> PsaProject: ...

    async def close_project(self, project_id: str, *, idempotency_key: str) -> PsaProject: ...

    async def freeze_billing_batch(
        self, project_id: str, batch_id: str, through_date: date, *, include_expenses: bool
    ) -> BillingBatch: ...

    def batch_time_entries(
        self, project_id: str, batch_id: str
    ) -> AsyncIterator[list[TimeEntry]]: ...

    def batch_expenses(self, project_id: str, batch_id: str) -> AsyncIterator[list[Expense]]: ...

    async def mark_batch_invoiced(
        self, project_id: str, batch_id: str, invoice_id: str, *, idempotency_key: str
    ) -> BillingBatch: ...


class TaxPort(Closeable, Protocol):
    async def validate_address(self, country: str, region: str | None) -> str: ...

    async def calculate(
        self,
        *,
        country: str,
        region: str | None,
        legal_entity: str,
        currency: str,
        on: date,
        lines: list[tuple[str, Decimal]],
        document_id: str,
    ) -> TaxQuote: ...


class PaymentsPort(Closeable, Protocol):
    async def create_payment(
        self, invoice_id: str, amount: Decimal, currency: str, *, idempotency_key: str
    ) -> GatewayPayment: ...
