"""Consolidated invoicing's customer billing through the API and the CLI, over real HTTP: two
consolidating contracts of one customer on one consolidated invoice, paid in part, as
``GET /api/customer-billing`` lists it (filters, refusals, tokens and their entities) and
``c2c billing customers`` / ``c2c billing customer`` print it through the API.

Everything behind the API is real: the session's Temporal dev server and worker, the
sandbox's ERP and the ledger.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from c2c.settings import Settings
from domain.consolidation import CustomerBillingStatus
from tests.starter.helpers import cli_environment, run_c2c
from tests.support import serve
from tests.workflows.billing_helpers import Billed, billed

__all__ = ["billed"]  # the fixture, from the billing test helpers

pytestmark = pytest.mark.usefixtures("worker")

VIEWER = "cb-viewer-token-5d2e81"
UK_VIEWER = "cb-uk-viewer-token-0a9c"


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    with serve(settings) as url:
        yield url


@pytest.fixture(scope="module")
def secured_url(settings: Settings) -> Iterator[str]:
    tokens = SecretStr(f"{VIEWER}:viewer@vera,{UK_VIEWER}:viewer:UK01@ulla")
    with serve(settings.model_copy(update={"api_tokens": tokens})) as url:
        yield url


@pytest_asyncio.fixture
async def api(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        yield client


def _row(body: dict[str, Any], workflow_id: str) -> dict[str, Any] | None:
    return next((r for r in body["items"] if r["workflow_id"] == workflow_id), None)


async def test_the_list_shows_the_customers_billing_with_its_balance_and_last_invoice(
    api: httpx.AsyncClient, billed: Billed
) -> None:
    answer = await api.get("/api/customer-billing")
    assert answer.status_code == 200, answer.text
    row = _row(answer.json(), billed.workflow_id)
    assert row is not None, answer.text
    open_balance = sum(billed.totals, Decimal(0)) - sum(billed.paid, Decimal(0))
    assert row["status"] == "running" and row["mode"] == "customer_po"
    assert (row["legal_entity"], row["customer"], row["currency"]) == ("US01", "ACME-US", "USD")
    assert row["po_number"].startswith("PO-")
    assert (row["members"], row["sections_waiting"], row["invoices"]) == (1, 0, 1)
    assert row["open_balance"] == str(open_balance) and row["unreadable"] is None
    assert row["last_invoice_number"] == billed.number and row["last_invoice_date"]

    detail = await api.get(f"/api/customer-billing/{billed.workflow_id}")
    assert detail.status_code == 200, detail.text
    status = CustomerBillingStatus.model_validate(detail.json())
    [invoice] = status.invoices
    assert [m.contract_id for m in status.members] == billed.contract_ids[1:]
    assert [s.contract_id for s in invoice.sections] == billed.contract_ids
    assert [s.paid for s in invoice.sections] == billed.paid
    assert invoice.balance == open_balance and status.payments == [billed.payment_id]


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        ("legal_entity=US01&customer=ACME-US", True),
        ("legal_entity=UK01", False),
        ("customer=GLOBEX", False),
        ("status=all", True),
        ("status=terminated", False),
    ],
)
async def test_the_filters_narrow_the_list(
    api: httpx.AsyncClient, billed: Billed, query: str, listed: bool
) -> None:
    answer = await api.get(f"/api/customer-billing?{query}")
    assert answer.status_code == 200, answer.text
    assert (_row(answer.json(), billed.workflow_id) is not None) is listed
    assert all(r["workflow_id"].startswith("customer-billing-") for r in answer.json()["items"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("legal_entity=us%2001", "legal_entity"),
        ("customer=%20ACME", "customer"),
        ("status=sleeping", "status"),
        ("entity=US01", "entity"),
    ],
)
async def test_a_bad_filter_is_refused_naming_the_field(
    api: httpx.AsyncClient, query: str, field: str
) -> None:
    answer = await api.get(f"/api/customer-billing?{query}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field


async def test_tokens_see_only_their_entities_customers(secured_url: str, billed: Billed) -> None:
    async with httpx.AsyncClient(base_url=secured_url, timeout=60) as client:
        assert (await client.get("/api/customer-billing")).status_code == 401
        vera = {"Authorization": f"Bearer {VIEWER}"}
        listed = await client.get("/api/customer-billing", headers=vera)
        assert listed.status_code == 200 and _row(listed.json(), billed.workflow_id)
        ulla = {"Authorization": f"Bearer {UK_VIEWER}"}
        scoped = await client.get("/api/customer-billing?status=all", headers=ulla)
        assert scoped.status_code == 200, scoped.text
        assert all(r["legal_entity"] == "UK01" for r in scoped.json()["items"])
        other = await client.get("/api/customer-billing?legal_entity=US01", headers=ulla)
        assert other.status_code == 403 and other.json()["error"]["field"] == "legal_entity"
        hidden = await client.get(f"/api/customer-billing/{billed.workflow_id}", headers=ulla)
        assert hidden.status_code == 404


def _env(api_url: str, state: Path, token: str | None = None) -> dict[str, str]:
    token_variable = {"C2C_API_TOKEN": token} if token else {}
    return cli_environment(C2C_API_URL=api_url, C2C_STATE_DIR=str(state), **token_variable)


async def test_the_cli_lists_and_shows_a_customers_billing_through_the_api(
    api_url: str, billed: Billed, tmp_path: Path
) -> None:
    env = _env(api_url, tmp_path)
    listed = await run_c2c(
        "billing", "customers", "--legal-entity", "US01", "--customer", "ACME-US", env=env
    )
    assert listed.returncode == 0, listed.stderr
    [line] = [x for x in listed.stdout.splitlines() if x.startswith(billed.workflow_id)]
    open_balance = sum(billed.totals, Decimal(0)) - sum(billed.paid, Decimal(0))
    assert "customer_po" in line and f"{open_balance} USD" in line and billed.number in line
    as_json = await run_c2c("billing", "customers", "--status", "all", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    assert _row(json.loads(as_json.stdout), billed.workflow_id) is not None

    shown = await run_c2c("billing", "customer", billed.workflow_id, env=env)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith(f"Customer billing {billed.workflow_id}")
    for heading in ("Members", "Sections waiting for an invoice", "Invoices", "Payments"):
        assert f"\n{heading}\n" in text
    assert f"open balance:    {open_balance} USD" in text
    for cid, total, paid in zip(billed.contract_ids, billed.totals, billed.paid, strict=True):
        [section] = [x for x in text.splitlines() if x.strip().startswith(f"SEC-{cid}-2026-10")]
        assert section.split()[1:6] == [cid, str(total), "0", str(paid), str(total - paid)]
    assert billed.payment_id in text and "consolidated invoice" in text
    detail = await run_c2c("billing", "customer", billed.workflow_id, "--json", env=env)
    assert detail.returncode == 0, detail.stderr
    assert json.loads(detail.stdout)["payments"] == [billed.payment_id]


async def test_the_cli_names_a_refused_filter_and_a_missing_token(
    api_url: str, secured_url: str, billed: Billed, tmp_path: Path
) -> None:
    env = _env(api_url, tmp_path)
    bad = await run_c2c("billing", "customers", "--legal-entity", "us 01", env=env)
    assert bad.returncode == 2 and "--legal-entity:" in bad.stderr, bad.stderr
    nobody = "customer-billing-ZZ01-NOBODY-USD"
    unknown = await run_c2c("billing", "customer", nobody, env=env)
    assert unknown.returncode == 1 and "no customer billing" in unknown.stderr
    no_token = await run_c2c("billing", "customers", env=_env(secured_url, tmp_path))
    assert no_token.returncode == 1 and "C2C_API_TOKEN" in no_token.stderr
    scoped = await run_c2c("billing", "customers", env=_env(secured_url, tmp_path, UK_VIEWER))
    assert scoped.returncode == 0 and billed.workflow_id not in scoped.stdout
