"""Draft invoices through the real API and the ``c2c`` command, with a worker running: the
drafts list (``GET /api/invoices?status=draft``, ``/api/invoices/drafts``,
``c2c billing drafts``), approval and rejection (operator role, identity from the token), the
rejection's exception retried into a new draft, and the draft-to-approval KPI."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ClosePeriod
from starter.api.contracts import close_period_for
from tests.starter.helpers import OPERATOR_TOKEN, VIEWER_TOKEN, cli_environment, run_c2c
from tests.support import serve
from tests.workflows.billing_helpers import start_active, wait_invoices
from tests.workflows.helpers import add_time, wait_for

pytestmark = pytest.mark.usefixtures("worker")

VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    tokens = f"{VIEWER_TOKEN}:viewer,{OPERATOR_TOKEN}:operator@olga"
    with serve(settings.model_copy(update={"api_tokens": SecretStr(tokens)})) as url:
        yield url


async def c2c(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``c2c`` in its own process, against the session's Temporal, queue and ledger."""
    env = cli_environment(
        TEMPORAL_ADDRESS=settings.temporal_address,
        TEMPORAL_NAMESPACE=settings.temporal_namespace,
        C2C_TASK_QUEUE=settings.task_queue,
        C2C_DATABASE_URL=settings.ledger_url,
        C2C_STATE_DIR=str(settings.state_dir),
    )
    return await run_c2c(*args, env=env)


async def test_drafts_are_listed_rejected_redrafted_and_approved(
    temporal_client: Client, settings: Settings, api_url: str, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await start_active(
        temporal_client, settings, invoice_review="required", po_number="PO-1"
    )
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-05", "2")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    await wait_for(temporal_client, cid, lambda s: len(s.drafts) == 1, what="the draft")
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        listed = await api.get(
            "/api/invoices", params={"status": "draft", "contract_id": cid}, headers=VIEWER
        )
        assert listed.status_code == 200, listed.text
        [draft] = listed.json()["items"]
        assert (Decimal(draft["subtotal"]), draft["po_number"]) == (Decimal("240.00"), "PO-1")
        assert draft["lines"][0]["role"] == "Analyst" and draft["status"] == "draft"
        same = await api.get("/api/invoices/drafts", params={"contract_id": cid}, headers=VIEWER)
        assert same.json()["items"] == [draft]
        draft_id = draft["invoice_id"]

        # A viewer may not review; a rejection needs a reason; an unknown draft is 404.
        assert (
            await api.post(f"/api/invoices/{draft_id}/approve", headers=VIEWER)
        ).status_code == 403
        no_reason = await api.post(f"/api/invoices/{draft_id}/reject", json={}, headers=OPERATOR)
        assert no_reason.status_code == 422 and no_reason.json()["error"]["field"] == "reason"
        unknown = await api.post("/api/invoices/DRAFT-NOPE/approve", headers=OPERATOR)
        assert unknown.status_code == 404
        bad_status = await api.get("/api/invoices", params={"status": "paid"}, headers=VIEWER)
        assert bad_status.status_code == 422

        listing = await c2c(settings, "billing", "drafts", "--contract", cid)
        assert listing.returncode == 0, listing.stderr
        assert draft_id in listing.stdout and "PO-1" in listing.stdout
        shown = await c2c(settings, "contracts", "status", cid)
        assert shown.returncode == 0, shown.stderr
        assert (
            "Drafts waiting for review" in shown.stdout and "purchase order:  PO-1" in shown.stdout
        )
        rejected = await c2c(
            settings, "billing", "reject", draft_id, "--reason", "wrong hours", "--operator", "fin"
        )
        assert rejected.returncode == 0, rejected.stderr
        assert "rejected by fin" in rejected.stdout
        held = await wait_for(
            temporal_client,
            cid,
            lambda s: any(e.code == "invoice_rejected" for e in s.open_exceptions),
            what="the rejection's exception",
        )
        exception = next(e for e in held.open_exceptions if e.code == "invoice_rejected")
        queue = await api.get(
            "/api/exceptions", params={"queue": "finance", "contract_id": cid}, headers=VIEWER
        )
        assert exception.exception_id in {e["exception_id"] for e in queue.json()["items"]}
        retried = await api.post(
            f"/api/exceptions/{exception.exception_id}/retry", headers=OPERATOR
        )
        assert retried.status_code == 200, retried.text
        again = await wait_for(
            temporal_client,
            cid,
            lambda s: len(s.drafts) == 1 and s.drafts[0].invoice_id != draft_id,
            what="the second draft",
        )
        second = again.drafts[0].invoice_id
        approved = await api.post(f"/api/invoices/{second}/approve", headers=OPERATOR)
        assert approved.status_code == 200, approved.text
        issued = await wait_invoices(temporal_client, cid, 1)
        assert issued.invoices[0].number and not issued.drafts
        twice = await api.post(f"/api/invoices/{second}/approve", headers=OPERATOR)
        assert twice.status_code == 409

        reviewed = await api.get(
            "/api/invoices", params={"status": "approved", "contract_id": cid}, headers=VIEWER
        )
        [done] = reviewed.json()["items"]
        assert done["reviewed_by"] == "olga"
        assert done["issued_invoice_id"] == issued.invoices[0].invoice_id
        rejections = await api.get(
            "/api/invoices", params={"status": "rejected", "contract_id": cid}, headers=VIEWER
        )
        assert [r["reason"] for r in rejections.json()["items"]] == ["wrong hours"]
        kpis = (await api.get("/api/kpis", headers=VIEWER)).json()
        assert kpis["draft_approval"]["count"] >= 1
    report = await c2c(settings, "kpis")
    assert report.returncode == 0, report.stderr
    assert "invoice review (draft -> approved)" in report.stdout
