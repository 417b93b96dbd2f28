"""Provisioning the ERP: customer, project, and contract with billing and revenue schedules."""

from __future__ import annotations

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from domain.models import ContractApproved
from domain.names import BillingModel
from domain.pricing import initial_rates
from domain.revenue import revenue_method
from domain.steps import (
    CREATE_ERP_CONTRACT,
    CREATE_ERP_PROJECT,
    ENSURE_ERP_CUSTOMER,
    ContractStep,
    CreatedRef,
)


def revenue_schedule(contract: ContractApproved) -> dict[str, object]:
    """The revenue treatment of the contract (ASC 606 / IFRS 15 as services firms apply it)."""
    return {
        "method": revenue_method(contract.billing_model),
        "contract_value": format(contract.contract_value, "f"),
    }


def billing_schedule(contract: ContractApproved) -> dict[str, object]:
    lines: list[dict[str, object]] = []
    if contract.billing_model is BillingModel.TIME_AND_MATERIALS:
        lines.append(
            {
                "kind": "time_and_materials",
                "expenses_billable": contract.expenses_billable,
                "expense_markup_percent": format(contract.expense_markup_percent, "f"),
            }
        )
    elif contract.billing_model is BillingModel.FIXED_FEE:
        lines.extend(
            {"kind": "milestone", "milestone_id": m.milestone_id, "amount": format(m.amount, "f")}
            for m in contract.milestones
        )
    else:
        lines.append(
            {
                "kind": "retainer",
                "monthly_amount": format(contract.retainer_monthly_amount or 0, "f"),
                "included_hours": format(contract.retainer_included_hours or 0, "f"),
            }
        )
    return {
        "frequency": "monthly",
        "bill_on": "period_close",
        "milestone_invoicing": contract.milestone_invoicing,
        "lines": lines,
    }


class ErpActivities(StepActivities):
    @activity.defn(name=ENSURE_ERP_CUSTOMER)
    async def ensure_erp_customer(self, step: ContractStep) -> CreatedRef:
        """Find the ERP customer of the CRM account, or create it."""
        await self.write_audit(step.contract_id, step.audit)
        c = step.contract
        async with error_classes(ENSURE_ERP_CUSTOMER):
            customer = await self.connectors.erp.ensure_customer(
                {
                    "crm_account_id": c.customer.crm_account_id,
                    "name": c.customer.name,
                    "country": c.customer.country,
                    "region": c.customer.region,
                    "tax_id": c.customer.tax_id,
                    "billing_email": c.customer.billing_email,
                    "legal_entity": c.legal_entity,
                    "currency": c.currency,
                },
                idempotency_key=idempotency_key("erp", "customer"),
            )
        await self.record_ref(step.contract_id, "erp", "customer", customer.customer_id)
        return CreatedRef(system="erp", kind="customer", external_id=customer.customer_id)

    @activity.defn(name=CREATE_ERP_PROJECT)
    async def create_erp_project(self, step: ContractStep) -> CreatedRef:
        """Create the contract's ERP project (or find the one a previous attempt created)."""
        await self.write_audit(step.contract_id, step.audit)
        c = step.contract
        async with error_classes(CREATE_ERP_PROJECT):
            project = await self.connectors.erp.ensure_project(
                {
                    "contract_id": c.contract_id,
                    "customer_id": step.refs["erp_customer_id"],
                    "legal_entity": c.legal_entity,
                    "name": c.title,
                    "currency": c.currency,
                    "start_date": c.start_date.isoformat(),
                    "end_date": c.end_date.isoformat(),
                    "project_template": c.project_template,
                },
                idempotency_key=idempotency_key("erp", "project"),
            )
        await self.record_ref(step.contract_id, "erp", "project", project.project_id)
        return CreatedRef(system="erp", kind="project", external_id=project.project_id)

    @activity.defn(name=CREATE_ERP_CONTRACT)
    async def create_erp_contract(self, step: ContractStep) -> CreatedRef:
        """Create the ERP contract with its rate card, billing schedule and revenue treatment.

        Invoices are refused by the ERP until all three are in place, which is what lets the
        workflow promise that no invoice precedes them.
        """
        await self.write_audit(step.contract_id, step.audit)
        c = step.contract
        erp = self.connectors.erp
        async with error_classes(CREATE_ERP_CONTRACT):
            contract = await erp.ensure_contract(
                {
                    "contract_id": c.contract_id,
                    "project_id": step.refs["erp_project_id"],
                    "customer_id": step.refs["erp_customer_id"],
                    "legal_entity": c.legal_entity,
                    "currency": c.currency,
                    "billing_model": c.billing_model.value,
                    "start_date": c.start_date.isoformat(),
                    "end_date": c.end_date.isoformat(),
                    "payment_terms_days": c.payment_terms_days,
                    "not_to_exceed": format(c.not_to_exceed, "f") if c.not_to_exceed else None,
                    "contract_value": format(c.contract_value, "f"),
                    "rate_card": [
                        r.model_dump(mode="json") for r in initial_rates(c.rate_card, c.start_date)
                    ],
                    "milestones": [m.model_dump(mode="json") for m in c.milestones],
                    "retainer_monthly_amount": _text(c.retainer_monthly_amount),
                    "retainer_included_hours": _text(c.retainer_included_hours),
                },
                idempotency_key=idempotency_key("erp", "contract"),
            )
            # PUT replaces the schedule: repeating it is harmless, so the key only saves work.
            await erp.put_billing_schedule(
                contract.erp_contract_id,
                billing_schedule(c),
                idempotency_key=idempotency_key("erp", "billing-schedule", str(c.version)),
            )
            await erp.put_revenue_schedule(
                contract.erp_contract_id,
                revenue_schedule(c),
                idempotency_key=idempotency_key("erp", "revenue-schedule", str(c.version)),
            )
        await self.record_ref(step.contract_id, "erp", "contract", contract.erp_contract_id)
        return CreatedRef(system="erp", kind="contract", external_id=contract.erp_contract_id)


def _text(value: object) -> str | None:
    return None if value is None else format(value, "f")
