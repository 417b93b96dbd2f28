"""The dashboard's drafts waiting for review, over real HTTP with the session's worker: a
viewer sees them and cannot act; an operator rejects one (a reason is needed) and approves the
next, and the contract issues the invoice."""

from __future__ import annotations

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ClosePeriod, ResolveException
from starter.api.contracts import close_period_for, resolve_exception
from tests.dashboard.helpers import OPERATOR_TOKEN, VIEWER_TOKEN, csrf_of, log_in
from tests.workflows.billing_helpers import start_active, wait_invoices
from tests.workflows.helpers import add_time, wait_for

pytestmark = pytest.mark.usefixtures("worker")


async def test_drafts_are_reviewed_on_the_dashboard(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    secured_dashboard_url: str,
) -> None:
    cid, status = await start_active(
        temporal_client, settings, invoice_review="required", po_number="PO-DASH"
    )
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-05", "3")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    drafted = await wait_for(temporal_client, cid, lambda s: len(s.drafts) == 1, what="a draft")
    draft_id = drafted.drafts[0].invoice_id

    async with httpx.AsyncClient(base_url=secured_dashboard_url, timeout=30) as vera:
        await log_in(vera, VIEWER_TOKEN)
        page = await vera.get("/")
        assert page.status_code == 200
        assert "Drafts waiting for review" in page.text and draft_id in page.text
        assert "PO-DASH" in page.text and "operators review" in page.text
        assert f"/ui/invoices/{draft_id}" not in page.text
        refused = await vera.post(
            f"/ui/invoices/{draft_id}/approve", data={"csrf_token": csrf_of(page.text)}
        )
        assert refused.status_code == 403

    async with httpx.AsyncClient(base_url=secured_dashboard_url, timeout=30) as olga:
        await log_in(olga, OPERATOR_TOKEN)
        page = await olga.get("/")
        assert f"/ui/invoices/{draft_id}/approve" in page.text
        csrf = csrf_of(page.text)
        no_reason = await olga.post(
            f"/ui/invoices/{draft_id}/reject", data={"csrf_token": csrf, "next": "/"}
        )
        assert no_reason.status_code == 422 and "reason" in no_reason.text
        rejected = await olga.post(
            f"/ui/invoices/{draft_id}/reject",
            data={"csrf_token": csrf, "next": "/", "reason": "hours not agreed"},
        )
        assert rejected.status_code == 303, rejected.text
        held = await wait_for(
            temporal_client,
            cid,
            lambda s: any(e.code == "invoice_rejected" for e in s.open_exceptions),
            what="the rejection",
        )
        exception = next(e for e in held.open_exceptions if e.code == "invoice_rejected")
        assert "by olga: hours not agreed" in exception.message
        await resolve_exception(
            temporal_client,
            cid,
            ResolveException(exception_id=exception.exception_id, action="retry", operator="o"),
        )
        again = await wait_for(
            temporal_client,
            cid,
            lambda s: len(s.drafts) == 1 and s.drafts[0].invoice_id != draft_id,
            what="the second draft",
        )
        second = again.drafts[0].invoice_id
        page = await olga.get("/")
        assert second in page.text
        approved = await olga.post(
            f"/ui/invoices/{second}/approve", data={"csrf_token": csrf_of(page.text), "next": "/"}
        )
        assert approved.status_code == 303, approved.text
        issued = await wait_invoices(temporal_client, cid, 1)
        assert issued.invoices[0].number and not issued.drafts
        page = await olga.get("/")
        assert f'data-draft="{second}"' not in page.text and "Invoice review" in page.text
