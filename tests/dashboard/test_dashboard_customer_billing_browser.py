"""The dashboard's customer billing pages as finance uses them, in headless Chromium
(screenshots under ``test-output/dashboard/``): from a consolidating contract's page to its
customer's billing (members, sections, what is paid of each), then the list from the
navigation, filtered; then the pages' refusals over plain HTTP, and a login of another
legal entity that does not see the customer.

Everything behind the pages is real: the API in a uvicorn thread, the Temporal dev server, the
worker, the sandbox's ERP and the ledger.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from c2c.settings import Settings
from tests.dashboard.helpers import log_in
from tests.dashboard.test_dashboard_browser import CHROMIUM, browser, expect, shot
from tests.support import serve
from tests.workflows.billing_helpers import Billed, billed

__all__ = ["billed", "browser"]  # fixtures shared with other tests

pytestmark = [pytest.mark.usefixtures("worker"), pytest.mark.slow]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
)
UK_TOKEN = "cb-dash-uk-viewer-token-6e0d"


@needs_chromium
async def test_finance_goes_from_a_contract_to_its_customers_billing_and_the_list(
    browser: Any, dashboard_url: str, billed: Billed
) -> None:
    member = billed.contract_ids[1]  # the contract still open, with 100.00 paid of its section
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(f"{dashboard_url}/contracts/{member}")
    link = page.locator("#customer-billing-link a")
    await expect(link).to_have_text(billed.workflow_id)
    section = page.locator(f'#invoices tr[data-invoice="SEC-{member}-2026-10"]')
    await expect(section.locator("a.consolidated-link")).to_have_text("consolidated")
    await shot(page, "20-consolidating-contract.png")

    await link.click()
    await expect(page.locator("#workflow-id")).to_have_text(billed.workflow_id)
    await expect(page.locator("#summary")).to_contain_text("ACME-US")
    await expect(page.locator("#members tr[data-contract]")).to_have_count(1)
    await expect(page.locator(f'#members tr[data-contract="{member}"]')).to_be_visible()
    invoice = page.locator("#invoices article.consolidated")
    await expect(invoice.locator("h4")).to_contain_text(billed.number)
    for cid, total, paid in zip(billed.contract_ids, billed.totals, billed.paid, strict=True):
        cells = await invoice.locator(f'tr[data-section="SEC-{cid}-2026-10"] td').all_inner_texts()
        assert cells[1:] == [cid, f"{total:,}", "0", f"{paid:,}", f"{total - paid:,} USD"], cells
    balance = sum(billed.totals, Decimal(0)) - sum(billed.paid, Decimal(0))
    await expect(page.locator("#open-balance")).to_have_text(f"{balance:,} USD")
    await expect(page.locator("#waiting")).to_contain_text("every section received is on an")
    await expect(page.locator("#payments")).to_contain_text(billed.payment_id)
    await expect(page.locator("#history")).to_contain_text(
        f"contract {billed.contract_ids[0]} left"
    )
    await shot(page, "21-customer-billing.png")

    # The list, from the navigation, filtered to the customer.
    await page.click("header nav a[href='/customer-billing']")
    await page.fill("#cb-filters input[name=legal_entity]", "US01")
    await page.fill("#cb-filters input[name=customer]", "ACME-US")
    await page.select_option("#cb-filters select[name=status]", "all")
    await page.click("#cb-filters button[type=submit]")
    row = page.locator(f'#customer-billings tr[data-workflow="{billed.workflow_id}"]')
    await expect(row).to_contain_text(billed.number)
    await expect(row).to_contain_text(f"{balance:,} USD")
    await expect(row).to_contain_text("customer po")
    await shot(page, "22-customer-billing-list.png")
    await row.locator("a").click()
    await expect(page.locator("#workflow-id")).to_have_text(billed.workflow_id)


async def test_the_pages_refuse_bad_input_and_other_entities_customers(
    browser_like: httpx.AsyncClient, settings: Settings, billed: Billed
) -> None:
    bad = await browser_like.get("/customer-billing?legal_entity=us 01")
    assert bad.status_code == 422 and "legal_entity" in bad.text
    status = await browser_like.get("/customer-billing?status=sleeping")
    assert status.status_code == 422 and "status" in status.text
    not_one = await browser_like.get("/customer-billing/contract-T-1")
    assert not_one.status_code == 422 and "workflow_id" in not_one.text
    unknown = await browser_like.get("/customer-billing/customer-billing-ZZ01-NOBODY-USD")
    assert unknown.status_code == 404

    tokens = SecretStr(f"{UK_TOKEN}:viewer:UK01@ulla")
    with serve(settings.model_copy(update={"api_tokens": tokens})) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as ulla:
            assert (await ulla.get("/customer-billing")).status_code == 303  # to the login
            assert (await log_in(ulla, UK_TOKEN)).status_code == 303
            listed = await ulla.get("/customer-billing?status=all")
            assert listed.status_code == 200 and billed.workflow_id not in listed.text
            hidden = await ulla.get(f"/customer-billing/{billed.workflow_id}")
            assert hidden.status_code == 404
            other = await ulla.get("/customer-billing?legal_entity=US01")
            assert other.status_code == 403 and "UK01" in other.text
