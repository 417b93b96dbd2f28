"""Activating the delivery side: the PSA project with its rate card and milestones."""

from __future__ import annotations

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from domain.steps import ACTIVATE_PSA_PROJECT, ContractStep, CreatedRef


class PsaActivities(StepActivities):
    @activity.defn(name=ACTIVATE_PSA_PROJECT)
    async def activate_psa_project(self, step: ContractStep) -> CreatedRef:
        """Create the PSA project linked to the ERP project, then open it for time entry."""
        await self.write_audit(step.contract_id, step.audit)
        c = step.contract
        psa = self.connectors.psa
        async with error_classes(ACTIVATE_PSA_PROJECT):
            project = await psa.ensure_project(
                {
                    "contract_id": c.contract_id,
                    "name": c.title,
                    "customer_name": c.customer.name,
                    "erp_project_id": step.refs["erp_project_id"],
                    "currency": c.currency,
                    "start_date": c.start_date.isoformat(),
                    "end_date": c.end_date.isoformat(),
                    "project_template": c.project_template,
                    "rate_card": [r.model_dump(mode="json") for r in c.rate_card],
                    "milestones": [m.model_dump(mode="json") for m in c.milestones],
                },
                idempotency_key=idempotency_key("psa", "project"),
            )
            await self.record_ref(step.contract_id, "psa", "project", project.project_id)
            if project.status != "active":
                project = await psa.activate_project(
                    project.project_id, idempotency_key=idempotency_key("psa", "activate")
                )
        return CreatedRef(system="psa", kind="project", external_id=project.project_id)
