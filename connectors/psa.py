"""PSA connector: projects, rate cards and milestones, and the billing batches of approved work.

Billable work is frozen into a billing batch named by the caller before it is priced, so a
retried billing step prices exactly the same entries, and an entry approved meanwhile waits for
the next period instead of slipping into an invoice whose body was already sent.

What an amendment changes is safe to repeat: rates are a ``PUT`` of effective-dated revisions,
the end date and a milestone's changes a ``PATCH``, milestones the project has already are
left out of the request, and a milestone the project no longer has is not removed again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date

from connectors.http import HttpConnector
from connectors.records import BillingBatch, Expense, PsaProject, TimeEntry
from domain.write_models import (
    MilestoneChangeDraft,
    MilestoneDraft,
    PsaProjectChanges,
    PsaProjectDraft,
    RateDraft,
)


class HttpPsa(HttpConnector):
    system = "psa"

    async def ensure_project(self, project: PsaProjectDraft, *, idempotency_key: str) -> PsaProject:
        return await self.find_or_create(
            PsaProject,
            "/projects",
            {"contract_id": project.contract_id},
            project.model_dump(mode="json", exclude_none=True),
            idempotency_key=idempotency_key,
            look_first=False,
        )

    async def get_project(self, project_id: str) -> PsaProject | None:
        body = await self.get_or_none(f"/projects/{project_id}")
        return PsaProject.model_validate(body) if body else None

    async def update_project(
        self, project_id: str, changes: PsaProjectChanges, *, idempotency_key: str
    ) -> PsaProject:
        """Change the project's dates (the ones given)."""
        return await self.send(
            PsaProject,
            "PATCH",
            f"/projects/{project_id}",
            json=changes.model_dump(mode="json", exclude_none=True),
            idempotency_key=idempotency_key,
        )

    async def put_rate_card(
        self, project_id: str, rates: Sequence[RateDraft], *, idempotency_key: str
    ) -> PsaProject:
        """Set rates: dated ones (``effective_from``) are added as revisions beside the
        card's others; a card without dates replaces the whole card."""
        return await self.send(
            PsaProject,
            "PUT",
            f"/projects/{project_id}/rate-card",
            json={"rate_card": [r.model_dump(mode="json", exclude_none=True) for r in rates]},
            idempotency_key=idempotency_key,
        )

    async def add_milestones(
        self, project_id: str, milestones: Sequence[MilestoneDraft], *, idempotency_key: str
    ) -> PsaProject:
        """Add the milestones the project does not have yet.

        Milestones it has already are left out: a repeat after a lost answer, or under another
        key, then adds nothing instead of being refused for an existing id.
        """
        project = await self.get_project(project_id)
        have = {m.milestone_id for m in project.milestones} if project else set()
        new = [m for m in milestones if m.milestone_id not in have]
        if project is not None and not new:
            return project
        return await self.send(
            PsaProject,
            "POST",
            f"/projects/{project_id}/milestones",
            json={"milestones": [m.model_dump(mode="json", exclude_none=True) for m in new]},
            idempotency_key=idempotency_key,
        )

    async def update_milestone(
        self, project_id: str, change: MilestoneChangeDraft, *, idempotency_key: str
    ) -> PsaProject:
        """Change a milestone's ``name``, ``amount`` or ``due_date`` (the fields given)."""
        return await self.send(
            PsaProject,
            "PATCH",
            f"/projects/{project_id}/milestones/{change.milestone_id}",
            json=change.model_dump(mode="json", exclude_none=True, exclude={"milestone_id"}),
            idempotency_key=idempotency_key,
        )

    async def remove_milestone(
        self, project_id: str, milestone_id: str, *, idempotency_key: str
    ) -> PsaProject | None:
        """Remove a milestone; one the project no longer has is left as it is (a repeat after
        a lost answer removes nothing)."""
        project = await self.get_project(project_id)
        if project is not None and milestone_id not in {m.milestone_id for m in project.milestones}:
            return project
        return await self.send(
            PsaProject,
            "DELETE",
            f"/projects/{project_id}/milestones/{milestone_id}",
            idempotency_key=idempotency_key,
        )

    async def activate_project(self, project_id: str, *, idempotency_key: str) -> PsaProject:
        return await self.send(
            PsaProject, "POST", f"/projects/{project_id}/activate", idempotency_key=idempotency_key
        )

    async def close_project(self, project_id: str, *, idempotency_key: str) -> PsaProject:
        return await self.send(
            PsaProject, "POST", f"/projects/{project_id}/close", idempotency_key=idempotency_key
        )

    async def freeze_billing_batch(
        self, project_id: str, batch_id: str, through_date: date, *, include_expenses: bool
    ) -> BillingBatch:
        # The batch id is its own idempotency: the PSA answers an existing batch unchanged.
        return await self.send(
            BillingBatch,
            "POST",
            f"/projects/{project_id}/billing-batches",
            json={
                "batch_id": batch_id,
                "through_date": through_date.isoformat(),
                "include_expenses": include_expenses,
            },
        )

    async def batch_time_entries(
        self, project_id: str, batch_id: str
    ) -> AsyncIterator[list[TimeEntry]]:
        async for page in self.pages(
            f"/projects/{project_id}/time-entries", {"batch_id": batch_id}
        ):
            yield [TimeEntry.model_validate(item) for item in page]

    async def unbilled_time_entries(self, project_id: str) -> AsyncIterator[list[TimeEntry]]:
        """Approved, billable time not yet invoiced (frozen in a batch or not), page by page."""
        params = {"approved": "true", "billable": "true", "billed": "false"}
        async for page in self.pages(f"/projects/{project_id}/time-entries", params):
            yield [TimeEntry.model_validate(item) for item in page]

    async def batch_expenses(self, project_id: str, batch_id: str) -> AsyncIterator[list[Expense]]:
        async for page in self.pages(f"/projects/{project_id}/expenses", {"batch_id": batch_id}):
            yield [Expense.model_validate(item) for item in page]

    async def mark_batch_invoiced(
        self, project_id: str, batch_id: str, invoice_id: str, *, idempotency_key: str
    ) -> BillingBatch:
        return await self.send(
            BillingBatch,
            "POST",
            f"/projects/{project_id}/billing-batches/{batch_id}/invoiced",
            json={"invoice_id": invoice_id},
            idempotency_key=idempotency_key,
        )
