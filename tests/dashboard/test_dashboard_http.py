"""The dashboard's routes over plain HTTP: filters, escaping, sessions, CSRF and refusals.

Each refusal is checked to change nothing: the exception it aimed at stays open.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from ledger import Ledger
from starter.api.contracts import start_contract
from tests.dashboard.helpers import (
    OPERATOR_TOKEN,
    VIEWER_TOKEN,
    csrf_of,
    install_kpi_report,
    log_in,
    open_exception,
    page_token,
)
from tests.workflows.helpers import approval, wait_stage

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def assert_still_open(ledger: Ledger, exception_id: str) -> None:
    record = ledger.get_exception(exception_id)
    assert record is not None and record.status == "open"


def assert_refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    for word in words:
        assert word in response.text, f"{word!r} not in the {status} page"


async def test_the_page_shows_pipeline_queue_and_kpi_sections(
    browser_like: httpx.AsyncClient,
) -> None:
    response = await browser_like.get("/")
    assert response.status_code == 200
    html = response.text
    for section in ('id="pipeline"', 'id="exceptions"', 'id="kpis"'):
        assert section in html
    for stage in ("received", "provisioning erp", "on hold", "cancelled"):
        assert stage in html
    # The stage counts link to the filtered list.
    assert 'href="/?stage=on_hold"' in html
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    cookie = response.headers["set-cookie"]
    assert "c2c_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert 'data-refresh-s="10"' in html


async def test_filters_are_kept_in_links_and_bad_ones_are_named(
    browser_like: httpx.AsyncClient,
) -> None:
    response = await browser_like.get("/", params={"legal_entity": "us01", "period": "2026-10"})
    assert response.status_code == 200
    # The entity code is upper-cased; each stage link keeps the other filters.
    assert 'href="/?stage=active&amp;legal_entity=US01&amp;period=2026-10"' in response.text

    for params, field in [
        ({"stage": "nowhere"}, "stage"),
        ({"legal_entity": "x;DROP"}, "legal_entity"),
        ({"period": "2026-13"}, "period"),
        ({"queue": "kitchen"}, "queue"),
    ]:
        refused = await browser_like.get("/", params=params)
        assert_refused(refused, 422, f"<code>{field}</code>")


async def test_data_is_escaped(browser_like: httpx.AsyncClient, ledger: Ledger) -> None:
    exception_id = open_exception(ledger, message=XSS)
    html = (await browser_like.get("/")).text
    assert exception_id in html
    assert "<script>alert" not in html and "<img src=x" not in html
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert escaped in html
    # A hostile path segment comes back escaped on the error page too.
    refused = await browser_like.get("/contracts/%3Cscript%3E")
    assert_refused(refused, 422, "contract_id")
    assert "<script>" not in refused.text


async def test_an_unknown_contract_is_404(browser_like: httpx.AsyncClient) -> None:
    response = await browser_like.get("/contracts/NO-SUCH-CONTRACT-1")
    assert_refused(response, 404, "no contract NO-SUCH-CONTRACT-1")


async def test_a_form_without_its_csrf_token_is_refused(
    browser_like: httpx.AsyncClient, ledger: Ledger
) -> None:
    exception_id = open_exception(ledger, message="needs a legal entity")
    token = await page_token(browser_like)
    path = f"/ui/exceptions/{exception_id}/skip"
    for form in ({}, {"csrf_token": "forged"}, {"csrf_token": token + "x"}):
        refused = await browser_like.post(path, data=form)
        assert_refused(refused, 403, "CSRF")
    # A token from another browser (another nonce cookie) is refused as well.
    async with httpx.AsyncClient(base_url=str(browser_like.base_url)) as other:
        refused = await other.post(path, data={"csrf_token": token})
        assert_refused(refused, 403, "CSRF")
    assert_still_open(ledger, exception_id)


async def test_bad_decisions_are_named_and_change_nothing(
    browser_like: httpx.AsyncClient, ledger: Ledger
) -> None:
    exception_id = open_exception(ledger, message="needs a legal entity")
    token = await page_token(browser_like)
    refused = await browser_like.post(
        f"/ui/exceptions/{exception_id}/explode", data={"csrf_token": token}
    )
    assert_refused(refused, 422, "<code>action</code>")
    refused = await browser_like.post(
        f"/ui/exceptions/{exception_id}/retry", data={"csrf_token": token, "note": "n" * 2001}
    )
    assert_refused(refused, 422, "<code>note</code>", "2000")
    refused = await browser_like.post(
        "/ui/exceptions/EXC-NOT-THERE/retry", data={"csrf_token": token}
    )
    assert_refused(refused, 404, "no exception EXC-NOT-THERE")
    refused = await browser_like.post(
        f"/ui/exceptions/{exception_id}/retry", json={"csrf_token": token}
    )
    assert_refused(refused, 415, "x-www-form-urlencoded")
    assert_still_open(ledger, exception_id)


async def test_pages_need_a_login_when_tokens_are_configured(
    secured: httpx.AsyncClient,
) -> None:
    response = await secured.get("/", params={"stage": "active"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/%3Fstage%3Dactive"
    assert (await secured.get("/contracts/ANY-1")).status_code == 303

    refused = await log_in(secured, "not-a-token")
    assert_refused(refused, 401, "token", "is not a configured token")
    assert "c2c_session" not in refused.headers.get("set-cookie", "")
    csrf = await page_token(secured, "/login")
    refused = await secured.post("/login", data={"csrf_token": csrf, "token": ""})
    assert_refused(refused, 422, "token", "is required")
    # The login form itself needs its CSRF token.
    refused = await secured.post("/login", data={"token": VIEWER_TOKEN})
    assert_refused(refused, 403, "CSRF")

    # A tampered session cookie is no session.
    secured.cookies.set("c2c_session", "eyJyb2xlIjoib3BlcmF0b3IifQ.forged")
    assert (await secured.get("/")).status_code == 303


async def test_a_viewer_sees_no_buttons_and_may_not_act(
    secured: httpx.AsyncClient, ledger: Ledger
) -> None:
    exception_id = open_exception(ledger, message="needs a legal entity")
    # A name typed at login is not who decides: the token's configured name is.
    answer = await log_in(secured, VIEWER_TOKEN, name="Vera Viewer")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    session_cookie = next(c for c in answer.headers.get_list("set-cookie") if "c2c_session" in c)
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
    assert VIEWER_TOKEN not in session_cookie

    page = await secured.get("/")
    assert page.status_code == 200
    assert "vera · viewer" in page.text and "Vera Viewer" not in page.text
    assert exception_id in page.text
    assert "/ui/exceptions/" not in page.text and "operators decide" in page.text

    refused = await secured.post(
        f"/ui/exceptions/{exception_id}/abort", data={"csrf_token": csrf_of(page.text)}
    )
    assert_refused(refused, 403, "operator role")
    assert_still_open(ledger, exception_id)


async def test_an_operator_logs_in_acts_and_logs_out(
    secured: httpx.AsyncClient, ledger: Ledger
) -> None:
    exception_id = open_exception(ledger, message="needs a legal entity")
    # A redirect after login never leaves the dashboard.
    csrf = await page_token(secured, "/login")
    answer = await secured.post(
        "/login",
        data={"csrf_token": csrf, "token": OPERATOR_TOKEN, "next": "//evil.example/x"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"

    page = await secured.get("/")
    assert f"/ui/exceptions/{exception_id}/retry" in page.text
    # The CSRF token from before the login is no longer good.
    refused = await secured.post(f"/ui/exceptions/{exception_id}/skip", data={"csrf_token": csrf})
    assert_refused(refused, 403, "CSRF")

    # No workflow runs for this contract: the decision reaches Temporal, which finds none,
    # and the operator is told so on the page they came from.
    answer = await secured.post(
        f"/ui/exceptions/{exception_id}/skip",
        data={"csrf_token": csrf_of(page.text), "next": "/?queue=legal", "note": "n/a"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/?queue=legal"
    landed = await secured.get("/?queue=legal")
    assert 'class="flash flash-error"' in landed.text

    out = await secured.post("/logout", data={"csrf_token": csrf_of(landed.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert (await secured.get("/")).status_code == 303


async def test_the_contract_page_shows_a_running_contract(
    browser_like: httpx.AsyncClient, temporal_client: Client, settings: Settings, worker: Any
) -> None:
    event = approval()
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    status = await wait_stage(temporal_client, event.contract_id, "active")
    response = await browser_like.get(f"/contracts/{event.contract_id}")
    assert response.status_code == 200
    html = response.text
    assert f'<span id="contract-id">{event.contract_id}</span>' in html
    assert "ACME-US" in html and "US01" in html
    for ref in status.refs.values():
        assert ref in html
    for entry in status.history:
        assert entry.event in html or entry.event.replace('"', "&#34;") in html


async def test_kpis_render_as_cards_and_charts(
    browser_like: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    install_kpi_report(monkeypatch, calls)
    response = await browser_like.get("/", params={"legal_entity": "US01", "period": "2026-10"})
    assert response.status_code == 200
    assert calls == [{"legal_entity": "US01", "period": "2026-10", "entities": None}]
    html = response.text
    kpis = html[html.index('id="kpis"') :]
    for shown in (
        "26.5 h",  # setup median
        "2.9 d",  # setup p90 (70 h)
        "75.0 %",  # touchless share
        "30 min",  # billing cycle median
        "31.3 d",  # DSO
        "2,500.00 USD",  # unbilled value
        "10.0 %",  # correction rate
        "18,250.40 USD",  # latest invoiced value
        "legal&lt;b&gt;",  # escaped queue name
    ):
        assert shown in kpis, shown
    assert kpis.count("<polyline") == 2  # setup and DSO sparklines
    assert kpis.count('class="chart bars"') == 4  # active, issued, USD, EUR
    assert kpis.count('<rect class="age-') == 3


async def test_kpis_unavailable_without_the_report(
    browser_like: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the ledger is unreachable")

    monkeypatch.setattr("starter.dashboard.views.build_report", failing)
    response = await browser_like.get("/")
    assert response.status_code == 200
    assert "KPIs unavailable" in response.text


async def test_kpis_come_from_the_ledger_report(browser_like: httpx.AsyncClient) -> None:
    # No stand-in: the page draws the same report as GET /api/kpis.
    response = await browser_like.get("/", params={"legal_entity": "US01"})
    assert response.status_code == 200
    kpis = response.text[response.text.index('id="kpis"') :]
    assert "KPIs unavailable" not in kpis
    assert "Project setup" in kpis
