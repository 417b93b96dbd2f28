"""Each legal entity's billing run on a real Temporal Schedule: created from the
configuration, backfilled across a weekend month end in the entity's time zone, triggered by
hand, and brought in line with a changed configuration while an operator's pause is kept."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
from temporalio.client import Client, ScheduleBackfill, ScheduleOverlapPolicy

from c2c.settings import Settings
from domain.billing_runs import BILLING_RUN_WORKFLOW_TYPE, BillingDay, BillingRunResult
from starter.api.contracts import start_contract
from starter.stack.schedules import billing_run_requests, ensure_billing_schedules
from tests.workflows.helpers import add_time, approval, wait_for, wait_stage
from worker import contract_worker

NEW_YORK = ZoneInfo("America/New_York")
US01, OTHERS = "billing-run-US01", "billing-run-others"


async def _runs(client: Client, task_queue: str, count: int) -> list[BillingRunResult]:
    """The results of the first ``count`` billing runs on ``task_queue``, oldest first."""
    query = f"WorkflowType = '{BILLING_RUN_WORKFLOW_TYPE}' AND TaskQueue = '{task_queue}'"
    found = [wf async for wf in client.list_workflows(query)]
    assert len(found) >= count, f"{len(found)} billing runs, expected {count}"
    found.sort(key=lambda wf: wf.start_time)
    return [
        await client.get_workflow_handle(
            wf.id, run_id=wf.run_id, result_type=BillingRunResult
        ).result()
        for wf in found[:count]
    ]


async def test_billing_runs_close_the_month_before_on_the_billing_day(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    queue = f"c2c-billing-runs-{uuid.uuid4().hex[:8]}"
    mine = settings.model_copy(
        update={
            "task_queue": queue,
            "billing_schedules": {"US01": BillingDay(), "*": BillingDay(day=1, at="05:00")},
            "legal_entity_time_zones": {"US01": "America/New_York"},
        }
    )
    requests = billing_run_requests(mine)
    assert requests[OTHERS].excluded == ["US01"]
    assert requests[US01].time_zone == "America/New_York"

    async with contract_worker(temporal_client, mine):
        event = approval(end_date="2027-03-31")
        cid = event.contract_id
        await start_contract(temporal_client, event, task_queue=queue)
        active = await wait_stage(temporal_client, cid, "active")
        psa_project = active.refs["psa_project_id"]
        await add_time(sandbox, psa_project, "Senior Consultant", "2026-10-05", "8")
        await add_time(sandbox, psa_project, "Senior Consultant", "2026-11-09", "4")

        done = await ensure_billing_schedules(temporal_client, mine, task_queue=queue)
        assert done == {US01: "created", OTHERS: "created"}
        handle = temporal_client.get_schedule_handle(US01)
        try:
            described = await handle.describe()
            assert described.schedule.spec.time_zone_name == "America/New_York"
            [calendar] = described.schedule.spec.calendars
            assert [(r.start, r.end) for r in calendar.day_of_month] in (
                [(1, 1), (2, 2), (3, 3)],
                [(1, 3)],
            )

            # 1–3 November 2026 in New York: the 1st is a Sunday, so the run of the 2nd (the
            # first working day) closes October and those of the 1st and 3rd close nothing.
            await handle.backfill(
                ScheduleBackfill(
                    start_at=datetime(2026, 11, 1, tzinfo=NEW_YORK),
                    end_at=datetime(2026, 11, 4, tzinfo=NEW_YORK),
                    overlap=ScheduleOverlapPolicy.BUFFER_ALL,
                )
            )
            status = await wait_for(
                temporal_client,
                cid,
                lambda s: "2026-10" in s.closed_periods,
                timeout=120,
                what="October closed by the billing run",
            )
            runs = await _runs(temporal_client, queue, 3)
            assert [(r.local_date.isoformat(), r.period) for r in runs] == [
                ("2026-11-01", None),
                ("2026-11-02", "2026-10"),
                ("2026-11-03", None),
            ]
            assert runs[1].contracts_signalled == 1
            assert runs[0].skipped and "not the billing day" in runs[0].skipped
            assert len(status.invoices) == 1

            # Triggered by hand (from the UI or `c2c billing schedule trigger US01`): the month
            # before today in New York, billed once however often it is asked.
            await handle.trigger()
            await handle.trigger()
            status = await wait_for(
                temporal_client,
                cid,
                lambda s: "2026-11" in s.closed_periods and s.queued_messages == 0,
                timeout=120,
                what="November closed by a trigger",
            )
            assert status.closed_periods.count("2026-11") == 1
            # One invoice per month closed, each of its month's hours.
            status = await wait_for(
                temporal_client, cid, lambda s: len(s.invoices) == 2, what="two invoices"
            )
            assert sorted(str(i.period) for i in status.invoices) == ["2026-10", "2026-11"]

            # The configuration changes while an operator has paused the schedule: the
            # calendar follows, the pause stays.
            await handle.pause(note="month-end freeze")
            assert await ensure_billing_schedules(temporal_client, mine, task_queue=queue) == {
                US01: "unchanged",
                OTHERS: "unchanged",
            }
            changed = mine.model_copy(
                update={
                    "billing_schedules": {
                        "US01": BillingDay(day=2, at="07:00"),
                        "*": BillingDay(day=1, at="05:00"),
                    }
                }
            )
            assert await ensure_billing_schedules(temporal_client, changed, task_queue=queue) == {
                US01: "updated",
                OTHERS: "unchanged",
            }
            described = await handle.describe()
            assert described.schedule.state.paused
            [calendar] = described.schedule.spec.calendars
            assert [(r.start, r.end) for r in calendar.day_of_month] == [(2, 2)]
            assert [(r.start, r.end) for r in calendar.hour] == [(7, 7)]
        finally:
            await handle.delete()
            await temporal_client.get_schedule_handle(OTHERS).delete()
