"""Amendments and credit notes through the real API with a worker running: the CLM's signed
``contract.amended`` webhook, ``POST /api/contracts/{id}/amendments`` (200 applied, 409 rejected
with the reason, the same id answered the same) and ``POST /api/contracts/{id}/credit-notes``
(the same request credits once)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from c2c.signing import sign
from domain.models import ClosePeriod
from domain.names import SIGNATURE_HEADER
from starter.api.contracts import close_period_for
from tests.support import WEBHOOK_SECRET, serve
from tests.workflows.billing_helpers import start_active, wait_invoices
from tests.workflows.helpers import add_time, items, wait_for
from tests.workflows.test_fixed_fee import fixed_fee

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    with serve(settings) as url:
        yield url


async def test_amendments_and_credit_notes_through_the_api(
    temporal_client: Client, settings: Settings, api_url: str, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await start_active(temporal_client, settings, end_date="2026-12-31")
    rate = {
        "amendment_id": "A-web",
        "effective_date": "2026-10-16",
        "rate_card": [{"role": "Analyst", "hourly_rate": "130.00"}],
        "reason": "rate review",
    }
    body = json.dumps(
        {
            "id": f"evt-{uuid.uuid4().hex[:8]}",
            "type": "contract.amended",
            "data": {"contract_id": cid, "amendment": rate},
        }
    ).encode()
    headers = {SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET), "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        applied = await api.post("/webhooks/clm", content=body, headers=headers)
        assert applied.status_code == 200, applied.text
        assert applied.json()["status"] == "applied"
        # The same amendment again, now through the API: answered the same, applied once.
        again = await api.post(f"/api/contracts/{cid}/amendments", json=rate)
        assert again.status_code == 200 and again.json() == applied.json()

        psa = status.refs["psa_project_id"]
        await add_time(sandbox, psa, "Analyst", "2026-10-05", "10")  # at 120.00
        await add_time(sandbox, psa, "Analyst", "2026-10-20", "10")  # at 130.00
        await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
        status = await wait_invoices(temporal_client, cid, 1)
        invoice = status.invoices[0]
        assert invoice.subtotal == Decimal("2500.00")

        late = {**rate, "amendment_id": "A-late", "effective_date": "2026-10-20"}
        refused = await api.post(f"/api/contracts/{cid}/amendments", json=late)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "amendment_rejected"
        assert "2026-10" in refused.json()["error"]["message"]

        bad = await api.post(
            f"/api/contracts/{cid}/credit-notes",
            json={"invoice_id": invoice.invoice_id, "amount": "-5.00", "reason": "typo"},
        )
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "amount"
        credit = {"invoice_id": invoice.invoice_id, "amount": "130.00", "reason": "hours in error"}
        first = await api.post(f"/api/contracts/{cid}/credit-notes", json=credit)
        second = await api.post(f"/api/contracts/{cid}/credit-notes", json=credit)
        assert first.status_code == second.status_code == 202, first.text
        assert first.json()["credit_note_id"] == second.json()["credit_note_id"]

        bad_end = await api.post(f"/api/contracts/{cid}/terminate", json={"reason": "x"})
        assert bad_end.status_code == 422 and bad_end.json()["error"]["field"] == "effective_date"
        ended = await api.post(
            f"/api/contracts/{cid}/terminate",
            json={"effective_date": "2026-11-15", "reason": "budget cut"},
        )
        assert ended.status_code == 202, ended.text

    status = await wait_for(temporal_client, cid, lambda s: bool(s.credit_notes), what="credit")
    # 130.00 + California 7.25 % = 139.43 (half-up), credited once.
    assert [n.total for n in status.credit_notes] == [Decimal("139.43")]
    assert status.balance_due == invoice.total - Decimal("139.43")
    assert len(await items(sandbox, "/erp/v1/credit-notes", contract_id=cid)) == 1
    applied_ids = [a.amendment_id for a in status.amendments if a.status == "applied"]
    assert applied_ids == ["A-web"]
    status = await wait_for(
        temporal_client,
        cid,
        lambda s: any("termination" in h.event for h in s.history),
        what="the termination",
    )
    assert any("billing ends 2026-11-15" in h.event for h in status.history)


async def test_milestone_changes_through_the_api(
    temporal_client: Client, settings: Settings, api_url: str
) -> None:
    cid, _ = await start_active(temporal_client, settings, **fixed_fee(end_date="2026-12-31"))
    # A rename applies; a change that changes nothing, or a milestone the contract does not
    # have, is refused with the field or the milestone named.
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        path = f"/api/contracts/{cid}/amendments"
        renamed = {
            "amendment_id": "A-m2-name",
            "effective_date": "2026-11-01",
            "change_milestones": [{"milestone_id": "M2", "name": "Build and test"}],
            "reason": "clearer name",
        }
        answer = await api.post(path, json=renamed)
        assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text
        empty = {**renamed, "amendment_id": "A-x", "change_milestones": [{"milestone_id": "M2"}]}
        answer = await api.post(path, json=empty)
        assert answer.status_code == 422
        assert answer.json()["error"]["field"].startswith("change_milestones"), answer.text
        gone = {
            **renamed,
            "amendment_id": "A-y",
            "change_milestones": [],
            "remove_milestones": ["M9"],
        }
        answer = await api.post(path, json=gone)
        assert answer.status_code == 409 and "M9" in answer.json()["error"]["message"]
