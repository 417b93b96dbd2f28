"""The PSA and CRM connectors against the sandbox over real HTTP: what an amendment changes in a
project, and dunning reminders on the account timeline, each safe to repeat."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.crm import HttpCrm
from connectors.psa import HttpPsa
from domain.errors import BusinessError, TransientError
from domain.write_models import (
    CrmActivityDraft,
    MilestoneChangeDraft,
    MilestoneDraft,
    PsaProjectChanges,
    RateDraft,
)
from tests.connectors.support import psa_project_body, unique


async def psa_writes(sandbox: httpx.AsyncClient, route: str) -> int:
    """How many requests to ``route`` changed PSA data so far."""
    stats = (await sandbox.get("/_admin/stats")).json()
    return int(stats["writes"].get("psa", {}).get(route, 0))


async def new_project(psa: HttpPsa) -> str:
    contract_id = unique("CT")
    project = await psa.ensure_project(
        psa_project_body(contract_id),
        idempotency_key=f"{contract_id}:psa-project",
    )
    return project.project_id


async def test_an_amendment_reaches_the_project(psa: HttpPsa) -> None:
    project_id = await new_project(psa)
    rates = [
        RateDraft(role="consultant", hourly_rate=Decimal("165.00"), effective_from=date(2026, 7, 1))
    ]

    rated = await psa.put_rate_card(project_id, rates, idempotency_key="A-1:psa-rates")
    extended = await psa.update_project(
        project_id, PsaProjectChanges(end_date=date(2027, 6, 30)), idempotency_key="A-1:psa-dates"
    )

    assert [(r.role, r.hourly_rate, r.effective_from) for r in rated.rate_card] == [
        ("consultant", Decimal("165.00"), date(2026, 7, 1))
    ]
    assert [(r.hourly_rate, r.effective_from) for r in rated.rate_revisions] == [
        (Decimal("150.00"), None),
        (Decimal("165.00"), date(2026, 7, 1)),
    ]
    assert (extended.start_date, extended.end_date) == (date(2026, 1, 1), date(2027, 6, 30))
    with pytest.raises(BusinessError) as refused:
        await psa.update_project(
            project_id,
            PsaProjectChanges(end_date=date(2025, 12, 31)),
            idempotency_key="A-2:psa-dates",
        )
    assert refused.value.rejection.field == "end_date"


async def test_milestones_are_added_once_whatever_the_key(
    psa: HttpPsa, faults: Any, sandbox: httpx.AsyncClient
) -> None:
    project_id = await new_project(psa)
    milestones = [
        MilestoneDraft(
            milestone_id="M2", name="Build", amount=Decimal("8000.00"), due_date=date(2026, 11, 30)
        ),
        MilestoneDraft(milestone_id="M3", name="Launch", amount=Decimal("2000.00")),
    ]
    route = "POST /projects/{project_id}/milestones"
    before = await psa_writes(sandbox, route)
    await faults(
        system="psa",
        path_prefix=f"/projects/{project_id}/milestones",
        method="POST",
        status=503,
        phase="after",
        times=1,
    )

    with pytest.raises(TransientError):
        await psa.add_milestones(project_id, milestones, idempotency_key="A-1:psa-milestones")
    added = await psa.add_milestones(project_id, milestones, idempotency_key="A-1:psa-milestones")
    again = await psa.add_milestones(project_id, milestones, idempotency_key="after-a-reset")
    one_more = await psa.add_milestones(
        project_id,
        [*milestones, MilestoneDraft(milestone_id="M4", name="Hypercare", amount=Decimal(1000))],
        idempotency_key="A-2:psa-milestones",
    )

    assert [m.milestone_id for m in added.milestones] == ["M1", "M2", "M3"]
    assert again == added
    assert [m.milestone_id for m in one_more.milestones] == ["M1", "M2", "M3", "M4"]
    assert one_more.milestones[1].due_date == date(2026, 11, 30)
    # Two writes: M2 and M3 once (the retries found them), then M4.
    assert await psa_writes(sandbox, route) == before + 2


async def test_a_milestone_is_changed_and_removed_once(
    psa: HttpPsa, sandbox: httpx.AsyncClient
) -> None:
    project_id = await new_project(psa)
    changed = await psa.update_milestone(
        project_id,
        MilestoneChangeDraft(milestone_id="M1", amount=Decimal("4500.00")),
        idempotency_key="A-1:psa-m:M1",
    )
    route = "DELETE /projects/{project_id}/milestones/{milestone_id}"
    before = await psa_writes(sandbox, route)
    removed = await psa.remove_milestone(project_id, "M1", idempotency_key="A-2:psa-rm:M1")
    again = await psa.remove_milestone(project_id, "M1", idempotency_key="after-a-reset")

    assert changed.milestones[0].amount == Decimal("4500.00")
    assert removed is not None and removed.milestones == []
    assert again == removed
    # The repeat under another key found the milestone gone and removed nothing.
    assert await psa_writes(sandbox, route) == before + 1


async def test_a_dunning_reminder_is_recorded_once(
    crm: HttpCrm, faults: Any, sandbox: httpx.AsyncClient
) -> None:
    invoice_id = unique("INV")
    reminder = CrmActivityDraft(
        activity_id=f"C-1001:dunning:{invoice_id}:1",
        type="dunning_reminder",
        subject="Payment reminder 1",
        body="1608.75 USD is outstanding.",
        related_to={"invoice_id": invoice_id, "contract_id": "C-1001"},
        occurred_on=date(2026, 12, 7),
    )
    await faults(
        system="crm",
        path_prefix="/accounts/GLOBEX-UK/activities",
        method="POST",
        status=503,
        phase="after",
        times=1,
    )

    with pytest.raises(TransientError):
        await crm.add_activity("GLOBEX-UK", reminder, idempotency_key=f"dunning:{invoice_id}:1")
    recorded = await crm.add_activity(
        "GLOBEX-UK", reminder, idempotency_key=f"dunning:{invoice_id}:1"
    )
    again = await crm.add_activity("GLOBEX-UK", reminder, idempotency_key="after-a-reset")
    meeting = await crm.add_activity(
        "GLOBEX-UK", CrmActivityDraft(type="meeting", subject="QBR"), idempotency_key=unique("k")
    )

    assert recorded == again
    assert recorded.related_to == {"invoice_id": invoice_id, "contract_id": "C-1001"}
    assert recorded.occurred_at.date() == date(2026, 12, 7)
    assert meeting.activity_id.startswith("ACT-")
    about_invoice = await crm.list_activities("GLOBEX-UK", invoice_id=invoice_id)
    assert [a.activity_id for a in about_invoice] == [reminder.activity_id]
    reminders = await crm.list_activities("GLOBEX-UK", activity_type="dunning_reminder")
    assert reminder.activity_id in [a.activity_id for a in reminders]
    assert meeting.activity_id not in [a.activity_id for a in reminders]
