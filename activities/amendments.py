"""Amendments: new rates, milestones (added, changed, removed), dates and caps propagated to
ERP, PSA and the ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from activities.erp import billing_schedule, milestone_draft, revenue_schedule
from domain.steps import PROPAGATE_AMENDMENT, AmendmentInput, AmendmentPropagated
from domain.write_models import (
    AmendmentDraft,
    MilestoneChangeDraft,
    PsaProjectChanges,
    RateDraft,
)


class AmendmentActivities(StepActivities):
    @activity.defn(name=PROPAGATE_AMENDMENT)
    async def propagate_amendment(self, step: AmendmentInput) -> AmendmentPropagated:
        """Apply the amendment in each system, every write keyed by the amendment id."""
        await self.write_audit(step.contract_id, step.audit)
        a, c = step.amendment, step.contract
        # The first attempt's schedule time: an operator's retry after a hold still counts
        # from when the amendment was taken up.
        await asyncio.to_thread(
            self.ledger.record_amendment_started,
            step.contract_id,
            a.amendment_id,
            activity.info().scheduled_time,
        )
        erp, psa = self.connectors.erp, self.connectors.psa
        erp_contract_id = step.refs["erp_contract_id"]
        psa_project_id = step.refs["psa_project_id"]
        draft = AmendmentDraft(
            amendment_id=a.amendment_id,
            effective_date=a.effective_date,
            end_date=a.end_date,
            not_to_exceed=a.not_to_exceed or None,
            contract_value=c.contract_value,
            rate_card=tuple(
                RateDraft(role=r.role, hourly_rate=r.hourly_rate, effective_from=a.effective_date)
                for r in a.rate_card
            ),
            add_milestones=tuple(milestone_draft(m) for m in a.add_milestones),
            change_milestones=tuple(
                MilestoneChangeDraft.model_validate(m.model_dump()) for m in a.change_milestones
            ),
            remove_milestones=tuple(a.remove_milestones),
            reason=a.reason,
        )
        async with error_classes(PROPAGATE_AMENDMENT):
            await erp.amend_contract(
                erp_contract_id,
                draft,
                idempotency_key=idempotency_key("amendment", a.amendment_id, "erp"),
            )
            await erp.put_billing_schedule(
                erp_contract_id,
                billing_schedule(c),
                idempotency_key=idempotency_key("amendment", a.amendment_id, "billing-schedule"),
            )
            await erp.put_revenue_schedule(
                erp_contract_id,
                revenue_schedule(c),
                idempotency_key=idempotency_key("amendment", a.amendment_id, "revenue-schedule"),
            )
            if draft.rate_card:
                await psa.put_rate_card(
                    psa_project_id,
                    draft.rate_card,
                    idempotency_key=idempotency_key("amendment", a.amendment_id, "psa-rates"),
                )
            if draft.add_milestones:
                await psa.add_milestones(
                    psa_project_id,
                    draft.add_milestones,
                    idempotency_key=idempotency_key("amendment", a.amendment_id, "psa-milestones"),
                )
            for change in draft.change_milestones:
                mid = change.milestone_id
                await psa.update_milestone(
                    psa_project_id,
                    change,
                    idempotency_key=idempotency_key("amendment", a.amendment_id, "psa-m", mid),
                )
            for mid in a.remove_milestones:
                await psa.remove_milestone(
                    psa_project_id,
                    mid,
                    idempotency_key=idempotency_key("amendment", a.amendment_id, "psa-rm", mid),
                )
            if a.end_date is not None:
                await psa.update_project(
                    psa_project_id,
                    PsaProjectChanges(end_date=a.end_date),
                    idempotency_key=idempotency_key("amendment", a.amendment_id, "psa-dates"),
                )
        await asyncio.to_thread(
            self.ledger.record_amendment_propagated,
            step.contract_id,
            a.amendment_id,
            datetime.now(UTC),
        )
        return AmendmentPropagated(propagated_to=["erp", "psa", "ledger"])
