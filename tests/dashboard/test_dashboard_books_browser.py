"""The dashboard's books views as a controller and an operator use them, in headless Chromium
(screenshots under ``test-output/dashboard/``): a hand-voided invoice found by a
reconciliation started from the reconciliation page, its difference listed there, and the AR
aging on the dashboard; then the page's refusals over plain HTTP.

Everything behind the pages is real: the API in a uvicorn thread, the Temporal dev server, the
worker, the sandbox's ERP and the ledger.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ClosePeriod
from starter.api.contracts import close_period_for, start_contract
from tests.dashboard.helpers import OPERATOR_TOKEN, log_in, page_token
from tests.dashboard.test_dashboard_browser import CHROMIUM, browser, expect, shot
from tests.support import serve
from tests.workflows.helpers import add_time, approval, wait_for, wait_stage

__all__ = ["browser"]  # the fixture, shared with the dashboard's other browser test

pytestmark = pytest.mark.usefixtures("worker")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
)


async def voided_contract(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> tuple[str, str, str]:
    """A contract of a legal entity of its own, October invoiced, the invoice then voided by
    hand in the ERP; returns the entity, the contract and the invoice."""
    entity = f"R{uuid.uuid4().hex[:6].upper()}"
    created = await sandbox.post(
        "/erp/v1/legal-entities",
        json={"code": entity, "name": "Recon Ltd", "country": "US", "functional_currency": "USD"},
    )
    assert created.status_code == 201, created.text
    event = approval(legal_entity=entity, end_date="2026-12-31")
    cid = event.contract_id
    await start_contract(client, event, task_queue=settings.task_queue)
    active = await wait_stage(client, cid, "active")
    await add_time(sandbox, active.refs["psa_project_id"], "Senior Consultant", "2026-10-05", "8")
    await close_period_for(client, cid, ClosePeriod(period="2026-10"))
    billed = await wait_for(client, cid, lambda s: bool(s.invoices), what="the invoice")
    [invoice] = billed.invoices
    voided = await sandbox.post(f"/_admin/erp/invoices/{invoice.invoice_id}/void")
    assert voided.status_code == 200, voided.text
    return entity, cid, invoice.invoice_id


@needs_chromium
async def test_an_operator_reconciles_from_the_page_and_reads_the_aging(
    browser: Any,
    dashboard_url: str,
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
) -> None:
    entity, cid, invoice_id = await voided_contract(temporal_client, settings, sandbox)
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})

    await page.goto(dashboard_url + "/")
    await page.click("header nav a[href='/reconciliation']")
    await expect(page.locator("#reconciliation-h")).to_contain_text("Reconciliation")
    await page.fill("#reconcile-now input[name=legal_entity]", entity)
    await page.click("#reconcile-now button[type=submit]")
    await expect(page.locator("#flash")).to_contain_text(f"reconcile-{entity}-")
    run = page.locator(f'#runs tr[data-run^="reconcile-{entity}-"]')
    for _ in range(60):  # the worker runs it; the page shows the report once it is done
        if "completed" in (await run.inner_text() if await run.count() else ""):
            break
        await page.wait_for_timeout(1000)
        await page.reload()
    await expect(run).to_contain_text("completed")
    cells = await run.locator("td").all_inner_texts()
    assert cells[4:7] == ["1", "1", "1"], cells  # one contract, one difference, one exception
    difference = page.locator("#differences tr", has_text=invoice_id)
    await expect(difference).to_contain_text("invoice_voided_in_erp")
    await expect(difference.locator("a")).to_have_text(cid)
    await shot(page, "10-reconciliation.png")

    # The AR aging on the dashboard: the entity's dollars, bucketed.
    await page.goto(dashboard_url + f"/?legal_entity={entity}")
    aging = page.locator("#aging")
    await expect(aging).to_contain_text(entity)
    await expect(aging.locator("tr", has_text=entity)).to_contain_text("USD")
    await aging.scroll_into_view_if_needed()
    await shot(page, "11-aging.png")


async def test_the_reconcile_button_is_an_operators_for_their_own_entities(
    settings: Settings,
) -> None:
    tokens = f"{OPERATOR_TOKEN}:operator:UK01@olga,viewer-books-token-3c1e:viewer@vera"
    with serve(settings.model_copy(update={"api_tokens": SecretStr(tokens)})) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as viewer:
            assert (await log_in(viewer, "viewer-books-token-3c1e")).status_code == 303
            shown = await viewer.get("/reconciliation")
            assert shown.status_code == 200 and 'id="reconcile-now"' not in shown.text
            csrf = await page_token(viewer, "/")
            refused = await viewer.post(
                "/ui/reconcile", data={"csrf_token": csrf, "legal_entity": "UK01"}
            )
            assert refused.status_code == 403
        async with httpx.AsyncClient(base_url=url, timeout=30) as olga:
            assert (await log_in(olga, OPERATOR_TOKEN)).status_code == 303
            page = await olga.get("/reconciliation")
            assert page.status_code == 200
            assert re.search(
                r"<select name=\"legal_entity\"><option>UK01</option></select>", page.text
            )
            csrf = await page_token(olga, "/reconciliation")
            other = await olga.post(
                "/ui/reconcile", data={"csrf_token": csrf, "legal_entity": "US01"}
            )
            assert other.status_code == 403 and "UK01" in other.text
            bad = await olga.post(
                "/ui/reconcile", data={"csrf_token": csrf, "legal_entity": "uk 01"}
            )
            assert bad.status_code == 422 and "legal_entity" in bad.text
            no_csrf = await olga.post("/ui/reconcile", data={"legal_entity": "UK01"})
            assert no_csrf.status_code in (400, 403)
