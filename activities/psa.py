"""The delivery side: the PSA project with its rate card and milestones, activated; and time
entry closed after a termination's last day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from activities.erp import milestone_draft
from domain.billing import work_after
from domain.steps import (
    ACTIVATE_PSA_PROJECT,
    CLOSE_TIME_ENTRY,
    CloseTimeEntryInput,
    ContractStep,
    CreatedRef,
    TimeEntryClosed,
)
from domain.write_models import PsaProjectChanges, PsaProjectDraft, RateDraft


class PsaActivities(StepActivities):
    @activity.defn(name=ACTIVATE_PSA_PROJECT)
    async def activate_psa_project(self, step: ContractStep) -> CreatedRef:
        """Create the PSA project linked to the ERP project, then open it for time entry."""
        await self.audit_if_retried(step.contract_id, step.audit)
        c = step.contract
        psa = self.connectors.psa
        async with error_classes(ACTIVATE_PSA_PROJECT):
            project = await psa.ensure_project(
                PsaProjectDraft(
                    contract_id=c.contract_id,
                    name=c.title,
                    customer_name=c.customer.name,
                    erp_project_id=step.refs["erp_project_id"],
                    currency=c.currency,
                    start_date=c.start_date,
                    end_date=c.end_date,
                    project_template=c.project_template,
                    rate_card=tuple(
                        RateDraft(role=r.role, hourly_rate=r.hourly_rate) for r in c.rate_card
                    ),
                    milestones=tuple(milestone_draft(m) for m in c.milestones),
                ),
                idempotency_key=idempotency_key("psa", "project"),
            )
            # Before activating it: a project that the activation then fails for is known.
            await self.record_results(
                step.contract_id,
                step.audit,
                self.xref_write(step.contract_id, "psa", "project", project.project_id),
            )
            if project.status != "active":
                project = await psa.activate_project(
                    project.project_id, idempotency_key=idempotency_key("psa", "activate")
                )
        return CreatedRef(system="psa", kind="project", external_id=project.project_id)

    @activity.defn(name=CLOSE_TIME_ENTRY)
    async def close_time_entry(self, step: CloseTimeEntryInput) -> TimeEntryClosed:
        """Close time entry on the project after ``last_day``, then find the approved, billable
        time not yet invoiced that it already holds for later days."""
        await self.write_audit(step.contract_id, step.audit)
        psa = self.connectors.psa
        project_id = step.refs["psa_project_id"]
        async with error_classes(CLOSE_TIME_ENTRY):
            await psa.update_project(
                project_id,
                PsaProjectChanges(time_entry_end_date=step.last_day),
                idempotency_key=idempotency_key("psa", "time-entry-end", str(step.last_day)),
            )
            found: list[tuple[date, Decimal]] = []
            async for page in psa.unbilled_time_entries(project_id):
                found.extend((entry.work_date, entry.hours) for entry in page)
        count, hours, first = work_after(found, step.last_day)
        return TimeEntryClosed(entries_after=count, hours_after=hours, first_day_after=first)
