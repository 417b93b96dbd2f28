"""Provisioning the ERP: customer, project, and contract with billing and revenue schedules."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from c2c.logs import get_logger
from domain.models import ContractApproved, Milestone
from domain.names import BillingModel
from domain.pricing import initial_rates
from domain.revenue import revenue_method
from domain.steps import (
    CREATE_ERP_CONTRACT,
    CREATE_ERP_PROJECT,
    ENSURE_ERP_CUSTOMER,
    PROVISION_ERP,
    ContractStep,
    CreatedRef,
    ErpProvisioned,
)
from domain.write_models import (
    BillingSchedule,
    BillingScheduleLine,
    ContractDraft,
    CustomerDraft,
    MilestoneDraft,
    ProjectDraft,
    RateDraft,
    RevenueSchedule,
)

log = get_logger("c2c.activities")


def revenue_schedule(contract: ContractApproved) -> RevenueSchedule:
    """The revenue treatment of the contract (ASC 606 / IFRS 15 as services firms apply it)."""
    return RevenueSchedule(
        method=revenue_method(contract.billing_model), contract_value=contract.contract_value
    )


def billing_schedule(contract: ContractApproved) -> BillingSchedule:
    lines: list[BillingScheduleLine] = []
    if contract.billing_model is BillingModel.TIME_AND_MATERIALS:
        lines.append(
            BillingScheduleLine(
                kind="time_and_materials",
                expenses_billable=contract.expenses_billable,
                expense_markup_percent=contract.expense_markup_percent,
            )
        )
    elif contract.billing_model is BillingModel.FIXED_FEE:
        lines.extend(
            BillingScheduleLine(kind="milestone", milestone_id=m.milestone_id, amount=m.amount)
            for m in contract.milestones
        )
    else:
        lines.append(
            BillingScheduleLine(
                kind="retainer",
                monthly_amount=contract.retainer_monthly_amount or Decimal(0),
                included_hours=contract.retainer_included_hours or Decimal(0),
            )
        )
    return BillingSchedule(milestone_invoicing=contract.milestone_invoicing, lines=tuple(lines))


def milestone_draft(milestone: Milestone) -> MilestoneDraft:
    return MilestoneDraft.model_validate(milestone.model_dump())


def customer_draft(contract: ContractApproved) -> CustomerDraft:
    c = contract.customer
    return CustomerDraft(
        crm_account_id=c.crm_account_id,
        name=c.name,
        country=c.country,
        region=c.region,
        tax_id=c.tax_id,
        billing_email=c.billing_email,
        legal_entity=contract.legal_entity,
        currency=contract.currency,
    )


def project_draft(contract: ContractApproved, customer_id: str) -> ProjectDraft:
    return ProjectDraft(
        contract_id=contract.contract_id,
        customer_id=customer_id,
        legal_entity=contract.legal_entity,
        name=contract.title,
        currency=contract.currency,
        start_date=contract.start_date,
        end_date=contract.end_date,
        project_template=contract.project_template,
    )


def contract_draft(c: ContractApproved, *, project_id: str, customer_id: str) -> ContractDraft:
    """The ERP contract of an approved contract: its first rates, milestones and schedules."""
    return ContractDraft(
        contract_id=c.contract_id,
        project_id=project_id,
        customer_id=customer_id,
        legal_entity=c.legal_entity,
        currency=c.currency,
        billing_model=c.billing_model.value,
        start_date=c.start_date,
        end_date=c.end_date,
        payment_terms_days=c.payment_terms_days,
        not_to_exceed=c.not_to_exceed or None,
        contract_value=c.contract_value,
        rate_card=tuple(
            RateDraft.model_validate(r.model_dump())
            for r in initial_rates(c.rate_card, c.start_date)
        ),
        milestones=tuple(milestone_draft(m) for m in c.milestones),
        retainer_monthly_amount=c.retainer_monthly_amount,
        retainer_included_hours=c.retainer_included_hours,
        billing_schedule=billing_schedule(c),
        revenue_schedule=revenue_schedule(c),
    )


class ErpActivities(StepActivities):
    @activity.defn(name=ENSURE_ERP_CUSTOMER)
    async def ensure_erp_customer(self, step: ContractStep) -> CreatedRef:
        """Find the ERP customer of the CRM account, or create it."""
        await self.audit_if_retried(step.contract_id, step.audit)
        async with error_classes(ENSURE_ERP_CUSTOMER):
            ref = await self._customer(step.contract)
        await self.record_results(step.contract_id, step.audit, self._xref(step, ref))
        return ref

    @activity.defn(name=CREATE_ERP_PROJECT)
    async def create_erp_project(self, step: ContractStep) -> CreatedRef:
        """Create the contract's ERP project (or find the one a previous attempt created)."""
        await self.audit_if_retried(step.contract_id, step.audit)
        async with error_classes(CREATE_ERP_PROJECT):
            ref = await self._project(step.contract, step.refs["erp_customer_id"])
        await self.record_results(step.contract_id, step.audit, self._xref(step, ref))
        return ref

    @activity.defn(name=CREATE_ERP_CONTRACT)
    async def create_erp_contract(self, step: ContractStep) -> CreatedRef:
        """Create the ERP contract with its rate card, billing schedule and revenue treatment.

        Invoices are refused by the ERP until all three are in place, which is what lets the
        workflow promise that no invoice precedes them.
        """
        await self.audit_if_retried(step.contract_id, step.audit)
        async with error_classes(CREATE_ERP_CONTRACT):
            ref = await self._contract(
                step.contract,
                customer_id=step.refs["erp_customer_id"],
                project_id=step.refs["erp_project_id"],
            )
        await self.record_results(step.contract_id, step.audit, self._xref(step, ref))
        return ref

    @activity.defn(name=PROVISION_ERP)
    async def provision_erp(self, step: ContractStep) -> ErpProvisioned:
        """The customer, the project and the contract, one after the other in one step.

        Each call carries the idempotency key of the step that used to make it alone, so a
        retry, or a run reset to before an earlier run made them one by one, finds them. What
        the ERP made before a failure is recorded in the ledger at once: a contract aborted
        while this step is held still closes the ERP project it has (``close_contract``).
        """
        await self.audit_if_retried(step.contract_id, step.audit)
        c = step.contract
        made: list[CreatedRef] = []
        try:
            async with error_classes(PROVISION_ERP):
                made.append(await self._customer(c))
                made.append(await self._project(c, made[0].external_id))
                made.append(
                    await self._contract(
                        c, customer_id=made[0].external_id, project_id=made[1].external_id
                    )
                )
        except Exception:
            try:
                await self.write_together(*(self._xref(step, ref) for ref in made))
            except Exception as unrecorded:
                # The ERP's failure is the one the step reports; the next attempt records them.
                log.warning("records made before the failure not recorded", error=str(unrecorded))
            raise
        await self.record_results(
            step.contract_id, step.audit, *(self._xref(step, ref) for ref in made)
        )
        return ErpProvisioned(created=made)

    def _xref(self, step: ContractStep, ref: CreatedRef) -> Callable[[], None]:
        return self.xref_write(step.contract_id, ref.system, ref.kind, ref.external_id)

    async def _customer(self, c: ContractApproved) -> CreatedRef:
        customer = await self.connectors.erp.ensure_customer(
            customer_draft(c),
            idempotency_key=idempotency_key("erp", "customer"),
        )
        return CreatedRef(system="erp", kind="customer", external_id=customer.customer_id)

    async def _project(self, c: ContractApproved, customer_id: str) -> CreatedRef:
        project = await self.connectors.erp.ensure_project(
            project_draft(c, customer_id),
            idempotency_key=idempotency_key("erp", "project"),
        )
        return CreatedRef(system="erp", kind="project", external_id=project.project_id)

    async def _contract(
        self, c: ContractApproved, *, customer_id: str, project_id: str
    ) -> CreatedRef:
        erp = self.connectors.erp
        draft = contract_draft(c, project_id=project_id, customer_id=customer_id)
        contract = await erp.ensure_contract(
            draft,
            idempotency_key=idempotency_key("erp", "contract"),
        )
        # PUT replaces the schedule: repeating it is harmless, so the key only saves work.
        await erp.put_billing_schedule(
            contract.erp_contract_id,
            draft.billing_schedule,
            idempotency_key=idempotency_key("erp", "billing-schedule", str(c.version)),
        )
        await erp.put_revenue_schedule(
            contract.erp_contract_id,
            draft.revenue_schedule,
            idempotency_key=idempotency_key("erp", "revenue-schedule", str(c.version)),
        )
        return CreatedRef(system="erp", kind="contract", external_id=contract.erp_contract_id)
