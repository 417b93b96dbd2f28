"""The dashboard as its users work it, in headless Chromium: load it, filter it, open a
contract, retry an exception and watch the contract move on; log in as a viewer (no buttons)
and as an operator (who aborts a contract); reject a draft invoice and approve the next.

Everything behind the pages is real: the API in a uvicorn thread, the Temporal dev server,
the c2c worker, the sandbox systems and the ledger. Chromium is Debian's (``/usr/bin/chromium``,
or ``C2C_CHROMIUM``), driven by Playwright without its browser download. Screenshots are saved
under ``test-output/dashboard/``.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ClosePeriod
from ledger import Ledger
from starter.api.contracts import close_period_for, contract_result, start_contract
from tests.dashboard.helpers import OPERATOR_TOKEN, VIEWER_TOKEN, install_kpi_report
from tests.support import serve
from tests.workflows.helpers import add_time, approval, wait_for, wait_stage

CHROMIUM = Path(os.environ.get("C2C_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "dashboard"

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="Playwright is not installed (pip install -e '.[dev]')"
)
pytestmark = [
    pytest.mark.usefixtures("worker"),
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason=f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y "
        "chromium) or point C2C_CHROMIUM at a Chromium binary",
    ),
]
expect = playwright_api.expect


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def live_url(settings: Settings) -> Iterator[str]:
    """A dashboard that refreshes itself every second, to watch a contract move on."""
    with serve(settings.model_copy(update={"dashboard_refresh_s": 1})) as url:
        yield url


async def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


async def held_by_unknown_entity(client: Client, settings: Settings) -> tuple[str, str, str]:
    """A contract on hold because its legal entity is not in the ERP; returns its id, the
    entity and the open exception's id."""
    entity = f"Z{uuid.uuid4().hex[:6].upper()}"
    event = approval(legal_entity=entity)
    await start_contract(client, event, task_queue=settings.task_queue)
    held = await wait_stage(client, event.contract_id, "on_hold")
    [exception] = held.open_exceptions
    return event.contract_id, entity, exception.exception_id


async def test_an_operator_filters_opens_a_contract_and_retries_an_exception(
    browser: Any,
    dashboard_url: str,
    live_url: str,
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    ledger: Ledger,
) -> None:
    # Two contracts: one runs and is billed for October, the other waits on the legal team.
    running = approval()
    await start_contract(temporal_client, running, task_queue=settings.task_queue)
    held_id, entity, exception_id = await held_by_unknown_entity(temporal_client, settings)
    active = await wait_stage(temporal_client, running.contract_id, "active")
    await add_time(sandbox, active.refs["psa_project_id"], "Senior Consultant", "2026-10-05", "8")
    await close_period_for(temporal_client, running.contract_id, ClosePeriod(period="2026-10"))
    billed = await wait_for(
        temporal_client, running.contract_id, lambda s: bool(s.invoices), what="an invoice"
    )
    [invoice] = billed.invoices

    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(dashboard_url + "/")
    await expect(page.locator("#pipeline h2")).to_contain_text("Pipeline")
    for stage in ("active", "on_hold"):
        count = await page.locator(f'[data-stage="{stage}"] .count').inner_text()
        assert int(count) >= 1, f"{stage}: {count}"
    await expect(page.locator(f'#exceptions tr[data-exception="{exception_id}"]')).to_be_visible()
    await shot(page, "01-dashboard.png")

    # The on-hold count links to the contracts on hold, and only those.
    await page.click('[data-stage="on_hold"] a')
    await expect(page).to_have_url(re.compile(r"\?stage=on_hold$"))
    await expect(page.locator(f'#contracts tr[data-contract="{held_id}"]')).to_be_visible()
    await expect(
        page.locator(f'#contracts tr[data-contract="{running.contract_id}"]')
    ).to_have_count(0)
    await shot(page, "02-filtered-on-hold.png")

    # The filter form: active contracts of US01.
    await page.select_option("#filters select[name=stage]", "active")
    await page.fill("#filters input[name=legal_entity]", "us01")
    await page.click("#filters button[type=submit]")
    await expect(page).to_have_url(re.compile(r"legal_entity=us01.*stage=active|stage=active"))
    await expect(page.locator("#filters input[name=legal_entity]")).to_have_value("US01")
    row = page.locator(f'#contracts tr[data-contract="{running.contract_id}"]')
    await expect(row).to_be_visible()
    await expect(page.locator(f'#contracts tr[data-contract="{held_id}"]')).to_have_count(0)
    # The queue shows only the exceptions of US01's contracts: the held one is another's.
    await expect(page.locator(f'#exceptions tr[data-exception="{exception_id}"]')).to_have_count(0)

    # The contract's page: stage, systems' ids, timeline and the October invoice.
    await row.locator("a").click()
    await expect(page.locator("#contract-id")).to_have_text(running.contract_id)
    await expect(page.locator("#stage")).to_have_text("active")
    for ref in ("erp_customer_id", "erp_project_id", "psa_project_id"):
        await expect(page.locator("#refs")).to_contain_text(billed.refs[ref])
    assert await page.locator("#timeline li").count() >= len(active.history)
    invoice_row = page.locator(f'#invoices tr[data-invoice="{invoice.invoice_id}"]')
    await expect(invoice_row).to_contain_text("2026-10")
    await expect(invoice_row).to_contain_text(f"{invoice.total:,} USD")
    await shot(page, "03-contract.png")

    # A second tab watches the held contract; it refreshes itself.
    watcher = await browser.new_page(viewport={"width": 1400, "height": 900})
    await watcher.goto(f"{live_url}/contracts/{held_id}")
    await expect(watcher.locator("#stage")).to_have_text("on hold")
    await expect(
        watcher.locator(f'#open-exceptions tr[data-exception="{exception_id}"]')
    ).to_be_visible()

    # Legal sets the entity up in the ERP; the operator retries from the queue.
    created = await sandbox.post(
        "/erp/v1/legal-entities",
        json={"code": entity, "name": "New entity", "country": "US", "functional_currency": "USD"},
    )
    assert created.status_code == 201, created.text
    await page.goto(dashboard_url + "/")
    queued = page.locator(f'#exceptions tr[data-exception="{exception_id}"]')
    await queued.locator("input[name=note]").fill("legal entity created in the ERP")
    await queued.locator("button.retry").click()
    await expect(page.locator("#flash")).to_contain_text(f"Retried {exception_id} on {held_id}")
    await shot(page, "04-retried.png")
    # The workflow records the decision in the ledger just after it takes it; the page,
    # refreshing itself, then drops the exception from the queue.
    await expect(page.locator(f'#exceptions tr[data-exception="{exception_id}"]')).to_have_count(
        0, timeout=30_000
    )

    # The contract moves on, and the watching tab shows it without a reload.
    await wait_stage(temporal_client, held_id, "active")
    await expect(watcher.locator("#stage")).to_have_text("active", timeout=30_000)
    await expect(watcher.locator("#decided")).to_contain_text("legal entity created in the ERP")
    await shot(watcher, "05-held-contract-active.png")
    record = ledger.get_exception(exception_id)
    assert record is not None and record.status == "retried"


async def test_a_viewer_sees_no_buttons_and_an_operator_aborts(
    browser: Any,
    secured_dashboard_url: str,
    temporal_client: Client,
    settings: Settings,
    ledger: Ledger,
) -> None:
    held_id, _, exception_id = await held_by_unknown_entity(temporal_client, settings)
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()

    await page.goto(secured_dashboard_url + "/")
    await expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    await page.fill("input[name=token]", "wrong-token")
    await page.click("form button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("not a configured token")

    await page.fill("input[name=token]", VIEWER_TOKEN)
    await page.click("form button[type=submit]")
    await expect(page.locator("#role")).to_have_text("vera · viewer")
    row = page.locator(f'#exceptions tr[data-exception="{exception_id}"]')
    await expect(row).to_contain_text("operators decide")
    await expect(page.locator("#exceptions button")).to_have_count(0)
    await shot(page, "06-viewer.png")

    await page.click("text=Log out")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.fill("input[name=token]", OPERATOR_TOKEN)
    await page.click("form button[type=submit]")
    await expect(page.locator("#role")).to_have_text("olga · operator")
    await expect(row.locator("button.retry")).to_be_visible()

    # Abort asks first; the operator confirms.
    questions: list[str] = []

    async def confirm(dialog: Any) -> None:
        questions.append(dialog.message)
        await dialog.accept()

    page.on("dialog", confirm)
    await row.locator("input[name=note]").fill("customer withdrew")
    await row.locator("button.abort").click()
    await expect(page.locator("#flash")).to_contain_text(f"Aborted {exception_id} on {held_id}")
    assert questions and "Abort" in questions[0]
    await shot(page, "07-operator-aborted.png")

    summary = await contract_result(temporal_client, held_id)
    assert summary.status.stage == "cancelled"
    record = ledger.get_exception(exception_id)
    assert record is not None
    assert (record.status, record.resolved_by, record.resolution_note) == (
        "aborted",
        "olga",
        "customer withdrew",
    )
    await context.close()


async def test_kpis_show_as_cards_and_charts(
    browser: Any, dashboard_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_kpi_report(monkeypatch)
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(dashboard_url + "/?period=2026-10")
    await expect(page.locator("#filters input[name=period]")).to_have_value("2026-10")
    kpis = page.locator("#kpis")
    await expect(kpis.locator(".card h4", has_text="DSO")).to_be_visible()
    await expect(kpis.locator("svg.spark")).to_have_count(2)
    await expect(kpis.locator("svg.bars")).to_have_count(4)
    await expect(kpis.locator("svg.ages rect")).to_have_count(3)
    await kpis.scroll_into_view_if_needed()
    await shot(page, "08-kpis.png")


async def test_an_operator_rejects_a_draft_then_approves_the_next(
    browser: Any,
    dashboard_url: str,
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
) -> None:
    from domain.models import ResolveException
    from starter.api.contracts import resolve_exception

    event = approval(invoice_review="required", po_number="PO-SHOT")
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    active = await wait_stage(temporal_client, cid, "active")
    await add_time(sandbox, active.refs["psa_project_id"], "Analyst", "2026-10-05", "6")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    first = (await wait_for(temporal_client, cid, lambda s: bool(s.drafts), what="a draft")).drafts[
        0
    ]

    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(dashboard_url + "/")
    row = page.locator(f'#drafts tr[data-draft="{first.invoice_id}"]')
    await expect(row).to_contain_text("PO-SHOT")
    await row.scroll_into_view_if_needed()
    await shot(page, "09-drafts.png")
    await row.locator("input[name=reason]").fill("hours not agreed with the customer")
    await row.locator("button", has_text="Reject").click()
    await expect(page.locator(".flash")).to_contain_text(f"Rejected {first.invoice_id}")
    held = await wait_for(
        temporal_client,
        cid,
        lambda s: any(e.code == "invoice_rejected" for e in s.open_exceptions),
        what="the rejection",
    )
    exception = next(e for e in held.open_exceptions if e.code == "invoice_rejected")
    await resolve_exception(
        temporal_client,
        cid,
        ResolveException(exception_id=exception.exception_id, action="retry", operator="ops"),
    )
    again = await wait_for(
        temporal_client,
        cid,
        lambda s: bool(s.drafts) and s.drafts[0].invoice_id != first.invoice_id,
        what="the second draft",
    )
    second = again.drafts[0].invoice_id
    await page.goto(dashboard_url + "/")
    row = page.locator(f'#drafts tr[data-draft="{second}"]')
    await row.locator("button", has_text="Approve").click()
    await expect(page.locator(".flash")).to_contain_text(f"Approved {second}")
    await wait_for(temporal_client, cid, lambda s: bool(s.invoices), what="the invoice")
    await page.goto(dashboard_url + "/")
    await expect(page.locator(f'#drafts tr[data-draft="{second}"]')).to_have_count(0)
    await shot(page, "10-draft-approved.png")
