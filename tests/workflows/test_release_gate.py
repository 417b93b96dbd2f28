"""A new contract run asks one patch, the release's, and takes every behaviour it folds.

Runs recorded before the release gate replay with their own patch markers (the committed
histories in ``tests/histories`` keep them: ``test_replay_histories``); this checks what a
run started now records.
"""

from __future__ import annotations

import json

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ClosePeriod
from starter.api.contracts import close_period_for, contract_handle, contract_result, start_contract
from tests.workflows.billing_helpers import pay, wait_invoices
from tests.workflows.helpers import add_time, approval, wait_stage
from workflows.contract_to_cash import (
    PATCH_CONTINUE_AS_NEW,
    PATCH_INVOICE_DOCUMENTS,
    PATCH_LATE_MESSAGES,
    PATCH_LOCAL_LEDGER,
    PATCH_MID_RUN_DECISIONS,
    PATCH_ORDERED_INBOX,
    PATCH_RELEASE,
    PATCH_SENDER_ORDER,
    PATCH_SIGNED_DOCUMENT,
)
from workflows.releases import FOLDED, NEW_IN_RELEASE

PATCH_MARKER = "core_patch"
LOCAL_ACTIVITY_MARKER = "core_local_activity"


def test_the_release_folds_every_patch_a_run_asked_at_its_start_or_its_steps() -> None:
    assert {
        PATCH_ORDERED_INBOX,
        PATCH_MID_RUN_DECISIONS,
        PATCH_INVOICE_DOCUMENTS,
        PATCH_SENDER_ORDER,
        PATCH_LATE_MESSAGES,
        PATCH_SIGNED_DOCUMENT,
        PATCH_LOCAL_LEDGER,
        PATCH_CONTINUE_AS_NEW,
    } == FOLDED
    assert not FOLDED & NEW_IN_RELEASE
    assert PATCH_RELEASE not in FOLDED


@pytest.mark.usefixtures("worker")
async def test_a_new_contract_records_one_patch_marker_from_approval_to_close(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    event = approval()
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    active = await wait_stage(temporal_client, cid, "active")
    await add_time(sandbox, active.refs["psa_project_id"], "Senior Consultant", "2026-10-06", "5")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    [invoice] = (await wait_invoices(temporal_client, cid, 1)).invoices
    await pay(temporal_client, cid, "pay-release-1", invoice.total)
    result = await contract_result(temporal_client, cid)
    assert result.status.stage == "closed"
    # The behaviours the release folds were taken: the invoice has its documents and the
    # ledger writes ran as local activities.
    assert result.status.invoices[0].documents

    history = await contract_handle(temporal_client, cid).fetch_history()
    markers = [
        e.marker_recorded_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    patches = [
        json.loads(m.details["patch-data"].payloads[0].data)["id"]
        for m in markers
        if m.marker_name == PATCH_MARKER
    ]
    assert patches == [PATCH_RELEASE]
    assert any(m.marker_name == LOCAL_ACTIVITY_MARKER for m in markers)
    upserts = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    # The first task's upsert carries the release's change version and nothing else of patches.
    change_versions = [
        u.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields.get(
            "TemporalChangeVersion"
        )
        for u in upserts
    ]
    recorded = [json.loads(v.data) for v in change_versions if v is not None]
    assert recorded == [[PATCH_RELEASE]], recorded
