"""Collections: a dunning reminder for an overdue invoice, recorded on the CRM account.

A contract's section of a consolidated invoice is dunned by its contract, but the customer
received one invoice: the reminder is about that invoice, with what the ERP says is still
outstanding on it, and is made once per consolidated invoice and level whichever of its
contracts gets there first (its ``activity_id`` names the consolidated invoice, and a CRM makes
an activity once per id).
"""

from __future__ import annotations

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from domain.errors import BusinessError
from domain.steps import SEND_DUNNING_REMINDER, DunningInput
from domain.write_models import CrmActivityDraft

REMINDER = "dunning_reminder"


def _subject(number: str, level: int, final: bool) -> str:
    if final:
        return f"Final payment reminder for invoice {number}"
    return f"Payment reminder {level} for invoice {number}"


class DunningActivities(StepActivities):
    @activity.defn(name=SEND_DUNNING_REMINDER)
    async def send_dunning_reminder(self, step: DunningInput) -> None:
        """Record reminder ``step.level`` on the account's timeline, once per invoice and level."""
        await self.write_audit(step.contract_id, step.audit)
        if step.consolidated_invoice_id is not None:
            await self._remind_consolidated(step, step.consolidated_invoice_id)
            return
        number = step.invoice_number or step.invoice_id
        days = (step.on - step.due_on).days
        async with error_classes(SEND_DUNNING_REMINDER):
            await self.connectors.crm.add_activity(
                step.crm_account_id,
                CrmActivityDraft(
                    activity_id=f"{step.contract_id}:dunning:{step.invoice_id}:{step.level}",
                    type=REMINDER,
                    subject=_subject(number, step.level, step.final),
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

    async def _remind_consolidated(self, step: DunningInput, invoice_id: str) -> None:
        """One reminder per consolidated invoice and level, with the invoice's outstanding
        balance in the ERP; the other contracts on it find it made and add none."""
        crm = self.connectors.crm
        activity_id = f"{invoice_id}:dunning:{step.level}"
        async with error_classes(SEND_DUNNING_REMINDER):
            if await self._reminded(step.crm_account_id, invoice_id, activity_id):
                return
            invoice = await self.connectors.erp.get_invoice(invoice_id)
            if invoice is None or invoice.balance <= 0:
                activity.logger.info(
                    "consolidated invoice %s owes nothing: no reminder", invoice_id
                )
                return
            number = invoice.number or invoice_id
            draft = CrmActivityDraft(
                activity_id=activity_id,
                type=REMINDER,
                subject=_subject(number, step.level, step.final),
                body=(
                    f"Invoice {number} was due on {invoice.due_on.isoformat()} "
                    f"({(step.on - invoice.due_on).days} days ago); {invoice.balance} "
                    f"{invoice.currency} is outstanding."
                ),
                related_to={"invoice_id": invoice_id},
                occurred_on=step.on,
            )
            try:
                await crm.add_activity(
                    step.crm_account_id,
                    draft,
                    idempotency_key=idempotency_key("dunning", step.invoice_id, str(step.level)),
                )
            except BusinessError:
                # Another contract on the invoice made it between the look and the write
                # (a payment in between changed the balance it printed): it is made once.
                if not await self._reminded(step.crm_account_id, invoice_id, activity_id):
                    raise

    async def _reminded(self, crm_account_id: str, invoice_id: str, activity_id: str) -> bool:
        made = await self.connectors.crm.list_activities(
            crm_account_id, activity_type=REMINDER, invoice_id=invoice_id
        )
        return any(a.activity_id == activity_id for a in made)
