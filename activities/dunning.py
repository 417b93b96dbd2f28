"""Collections: a dunning reminder for an overdue invoice, recorded on the CRM account."""

from __future__ import annotations

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from domain.steps import SEND_DUNNING_REMINDER, DunningInput
from domain.write_models import CrmActivityDraft


class DunningActivities(StepActivities):
    @activity.defn(name=SEND_DUNNING_REMINDER)
    async def send_dunning_reminder(self, step: DunningInput) -> None:
        """Record reminder ``step.level`` on the account's timeline, once per invoice and level."""
        await self.write_audit(step.contract_id, step.audit)
        number = step.invoice_number or step.invoice_id
        days = (step.on - step.due_on).days
        subject = f"Payment reminder {step.level} for invoice {number}"
        if step.final:
            subject = f"Final payment reminder for invoice {number}"
        async with error_classes(SEND_DUNNING_REMINDER):
            await self.connectors.crm.add_activity(
                step.crm_account_id,
                CrmActivityDraft(
                    activity_id=f"{step.contract_id}:dunning:{step.invoice_id}:{step.level}",
                    type="dunning_reminder",
                    subject=subject,
                    body=(
                        f"Invoice {number} of contract {step.contract_id} was due on "
                        f"{step.due_on.isoformat()} ({days} days ago); "
                        f"{step.balance} {step.currency} is outstanding."
                    ),
                    related_to={"invoice_id": step.invoice_id, "contract_id": step.contract_id},
                    occurred_on=step.on,
                ),
                idempotency_key=idempotency_key("dunning", step.invoice_id, str(step.level)),
            )
