"""Helpers of the connector tests: ERP records made through the connector, with unique ids.

The sandbox of these tests is shared by the session and never reset, so every test makes its
own contract under a fresh id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.erp import HttpErp
from connectors.records import ErpInvoice
from domain.tax import apply_tax
from domain.write_models import (
    BillingSchedule,
    BillingScheduleLine,
    ContractDraft,
    CustomerDraft,
    InvoiceDraft,
    InvoiceLineDraft,
    ProjectDraft,
    PsaProjectDraft,
    RevenueSchedule,
    TaxLineResult,
    TaxResult,
)
from tests.sandbox.support import PROJECT


@dataclass(frozen=True)
class Contract:
    contract_id: str
    customer_id: str
    project_id: str
    erp_contract_id: str
    currency: str


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def erp_contract(erp: HttpErp, *, currency: str = "USD") -> Contract:
    """A customer, project and contract with both schedules, in a US legal entity."""
    contract_id = unique("CT")
    customer = await erp.ensure_customer(
        CustomerDraft(
            **{
                "crm_account_id": unique("ACC"),
                "name": "Connector Test Inc.",
                "country": "US",
                "region": "CA",
                "legal_entity": "US01",
                "currency": currency,
            }
        ),
        idempotency_key=f"{contract_id}:customer",
    )
    dates = {"start_date": "2026-01-01", "end_date": "2026-12-31"}
    project = await erp.ensure_project(
        ProjectDraft(
            **{
                "contract_id": contract_id,
                "customer_id": customer.customer_id,
                "legal_entity": "US01",
                "name": "Connector test",
                "currency": currency,
                "project_template": "standard",
                **dates,
            }
        ),
        idempotency_key=f"{contract_id}:project",
    )
    schedule = BillingSchedule(lines=(BillingScheduleLine(kind="retainer"),))
    revenue = RevenueSchedule(method="ratable")
    contract = await erp.ensure_contract(
        ContractDraft(
            **{
                "contract_id": contract_id,
                "project_id": project.project_id,
                "customer_id": customer.customer_id,
                "legal_entity": "US01",
                "currency": currency,
                "billing_model": "time_and_materials",
                "payment_terms_days": 30,
                "contract_value": "0",
                "rate_card": [
                    {"role": "consultant", "hourly_rate": "150", "effective_from": "2026-01-01"}
                ],
                **dates,
                "billing_schedule": schedule,
                "revenue_schedule": revenue,
            }
        ),
        idempotency_key=f"{contract_id}:contract",
    )
    await erp.put_billing_schedule(
        contract.erp_contract_id, schedule, idempotency_key=f"{contract_id}:billing"
    )
    await erp.put_revenue_schedule(
        contract.erp_contract_id, revenue, idempotency_key=f"{contract_id}:revenue"
    )
    return Contract(
        contract_id, customer.customer_id, project.project_id, contract.erp_contract_id, currency
    )


def invoice_body(
    contract: Contract, key: str, amount: Decimal = Decimal("1000.00"), **extra: Any
) -> InvoiceDraft:
    """An invoice of one line of ``amount`` without tax, with ``key`` as its reference and its
    first seven characters as its period; ``extra`` overrides."""
    return InvoiceDraft.model_validate(
        {
            "contract_id": contract.contract_id,
            "erp_contract_id": contract.erp_contract_id,
            "customer_id": contract.customer_id,
            "project_id": contract.project_id,
            "legal_entity": "US01",
            "currency": contract.currency,
            "period": key[:7],
            "reference": key,
            "invoice_date": "2026-10-31",
            "due_on": "2026-11-30",
            "lines": [
                {
                    "line_id": "1",
                    "kind": "retainer",
                    "description": "Monthly retainer",
                    "quantity": Decimal(1),
                    "unit_price": amount,
                    "amount": amount,
                    "tax_amount": Decimal(0),
                }
            ],
            "subtotal": amount,
            "tax": Decimal(0),
            "total": amount,
            **extra,
        }
    )


async def issued_invoice(
    erp: HttpErp, contract: Contract, reference: str, amount: Decimal = Decimal("1000.00")
) -> ErpInvoice:
    key = f"{contract.contract_id}:invoice:{reference}"
    invoice = await erp.create_invoice(
        invoice_body(contract, reference, amount), idempotency_key=key
    )
    return await erp.issue_invoice(invoice.invoice_id, idempotency_key=f"{key}:issue")


def psa_project_body(contract_id: str) -> PsaProjectDraft:
    """The sandbox tests' PSA project (one rate, one milestone) for the contract, from 1 Jan."""
    return PsaProjectDraft.model_validate(
        {**PROJECT, "contract_id": contract_id, "start_date": "2026-01-01"}
    )


def two_roles_invoice(
    refs: dict[str, str],
    taxes: tuple[str, str],
    *,
    legal_entity: str = "US01",
    currency: str = "USD",
    period: str = "2026-10",
) -> InvoiceDraft:
    """The period's invoice of two roles' time (12 h at 200.00, 6 h at 120.10) for the
    contract in ``refs``, taxed through ``apply_tax`` with the engine's ``taxes`` per line."""
    draft = InvoiceDraft(
        contract_id=refs["contract_id"],
        reference=period,
        erp_contract_id=refs["erp_contract_id"],
        customer_id=refs["customer_id"],
        project_id=refs["project_id"],
        legal_entity=legal_entity,
        currency=currency,
        period=period,
        invoice_date=date(2026, 10, 31),
        due_on=date(2026, 11, 30),
        lines=(
            InvoiceLineDraft(
                line_id="1",
                kind="time",
                role="Senior Consultant",
                description="Senior Consultant",
                quantity=Decimal(12),
                unit_price=Decimal("200.00"),
                amount=Decimal("2400.00"),
            ),
            InvoiceLineDraft(
                line_id="2",
                kind="time",
                role="Analyst",
                description="Analyst",
                quantity=Decimal(6),
                unit_price=Decimal("120.10"),
                amount=Decimal("720.60"),
            ),
        ),
    )
    engine = TaxResult(
        lines=tuple(
            TaxLineResult(number=line.line_id, amount=line.amount, tax=Decimal(tax))
            for line, tax in zip(draft.lines, taxes, strict=True)
        )
    )
    return apply_tax(draft, engine)
