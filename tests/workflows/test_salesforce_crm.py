"""Salesforce as the CRM, end to end over real HTTP: a worker with ``C2C_CRM=salesforce``
validates a contract through ``simple-salesforce`` against the sandbox's Salesforce; a dunning
reminder becomes one Task; an account's change (c2c's ``account.updated`` and Salesforce's
Change Data Capture, sent by the sandbox) reaches the ERP customer once, a replayed event is a
duplicate, and a change the ERP refuses is a ``finance`` exception an operator decides."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.dunning import DunningActivities
from c2c.settings import Settings
from c2c.signing import sign
from connectors.registry import build_connectors
from domain.names import SIGNATURE_HEADER
from domain.steps import DunningInput
from ledger import Ledger
from sandbox.testing import run_sandbox_in_thread
from starter.api.contracts import get_status, start_contract
from tests.support import WEBHOOK_SECRET, serve
from tests.workflows.helpers import approval, items, wait_stage
from worker import contract_worker

SF = "/vendors/salesforce"
V = f"{SF}/services/data/v62.0"


@pytest.fixture(scope="module")
def queue() -> str:
    return f"c2c-sf-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def api_url(settings: Settings, queue: str) -> Iterator[str]:
    with serve(settings.model_copy(update={"task_queue": queue})) as url:
        yield url


@pytest.fixture(scope="module")
def sf_url(state_dir: Path, api_url: str) -> Iterator[str]:
    """A sandbox whose Salesforce sends its change events to the API."""
    db = f"sqlite:///{state_dir / f'sf-{uuid.uuid4().hex[:6]}.db'}"
    with run_sandbox_in_thread(db, api_url, [WEBHOOK_SECRET]) as url:
        yield url


@pytest.fixture(scope="module")
def sf_settings(settings: Settings, queue: str, sf_url: str) -> Settings:
    return settings.model_copy(
        update={"crm": "salesforce", "salesforce_url": f"{sf_url}{SF}", "task_queue": queue}
    )


@pytest_asyncio.fixture(scope="module")
async def sf_worker(temporal_client: Client, sf_settings: Settings) -> AsyncIterator[None]:
    async with contract_worker(temporal_client, sf_settings):
        yield


@pytest_asyncio.fixture
async def sf(sf_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the Salesforce sandbox's REST API, with a token."""
    async with httpx.AsyncClient(base_url=sf_url, timeout=10) as client:
        answer = await client.post(
            f"{SF}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "c2c",
                "client_secret": "sandbox",
            },
        )
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


@pytest_asyncio.fixture
async def api(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        yield client


async def new_account(sf: httpx.AsyncClient, **fields: Any) -> str:
    body = {"Name": f"Initech {uuid.uuid4().hex[:6]}", "BillingCountryCode": "US", **fields}
    answer = await sf.post(f"{V}/sobjects/Account/", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def active_contract(
    client: Client, sf: httpx.AsyncClient, settings: Settings
) -> tuple[str, str]:
    """A contract of a new Salesforce account (child of a new parent), once active."""
    parent = await new_account(sf, Name="Initech Holding")
    account = await new_account(sf, ParentId=parent, BillingStateCode="CA")
    event = approval(
        customer={
            "crm_account_id": account,
            "name": "Initech",
            "parent_crm_account_id": parent,
            "country": "US",
            "region": "CA",
        }
    )
    await start_contract(client, event, task_queue=settings.task_queue)
    await wait_stage(client, event.contract_id, "active")
    return event.contract_id, account


async def deliver(api: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    headers = {SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET), "Content-Type": "application/json"}
    return await api.post(path, content=body, headers=headers)


async def erp_customer(sandbox: httpx.AsyncClient, account: str) -> dict[str, Any]:
    [customer] = await items(sandbox, "/erp/v1/customers", crm_account_id=account)
    return customer


async def until_customer(
    sandbox: httpx.AsyncClient, account: str, field: str, value: Any
) -> dict[str, Any]:
    for _ in range(300):
        customer = await erp_customer(sandbox, account)
        if customer.get(field) == value:
            return customer
        await asyncio.sleep(0.1)
    raise AssertionError(f"the ERP customer's {field} is {customer.get(field)!r}, not {value!r}")


def account_updated(account: str, **changes: Any) -> bytes:
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "account.updated",
        "data": {"crm_account_id": account, "changes": changes},
    }
    return json.dumps(event).encode()


def synced(ledger: Ledger, contract_id: str) -> list[str]:
    return [
        str((e.detail or {}).get("event_id"))
        for e in ledger.audit_trail(contract_id)
        if e.event == "customer master updated from the CRM"
    ]


@pytest.mark.usefixtures("sf_worker")
async def test_a_contract_validated_against_salesforce_goes_active(
    temporal_client: Client,
    sf: httpx.AsyncClient,
    sf_settings: Settings,
    sandbox: httpx.AsyncClient,
) -> None:
    contract_id, account = await active_contract(temporal_client, sf, sf_settings)
    customer = await erp_customer(sandbox, account)
    assert customer["crm_account_id"] == account
    assert (await get_status(temporal_client, contract_id)).refs["erp_customer_id"] == (
        customer["customer_id"]
    )


@pytest.mark.usefixtures("sf_worker")
async def test_a_dunning_reminder_becomes_one_task(
    sf: httpx.AsyncClient, sf_settings: Settings, ledger: Ledger
) -> None:
    account = await new_account(sf)
    connectors = build_connectors(sf_settings)
    try:
        dunning = DunningActivities(connectors, ledger, sf_settings)
        step = DunningInput(
            contract_id=f"T-{uuid.uuid4().hex[:8]}",
            crm_account_id=account,
            invoice_id="INV-9",
            invoice_number="2026-0009",
            level=1,
            final=False,
            balance=Decimal("1200.00"),
            currency="USD",
            due_on=date(2026, 11, 30),
            on=date(2026, 12, 7),
        )
        env = ActivityEnvironment()
        await env.run(dunning.send_dunning_reminder, step)
        await env.run(dunning.send_dunning_reminder, step)  # a retry, a replay, a reset
    finally:
        await connectors.aclose()
    soql = f"SELECT Id, Subject, ActivityDate FROM Task WHERE WhatId = '{account}'"
    tasks = (await sf.get(f"{V}/query/", params={"q": soql})).json()["records"]
    assert len(tasks) == 1
    assert tasks[0]["Subject"].startswith("Payment reminder 1 for invoice 2026-0009")
    assert tasks[0]["ActivityDate"] == "2026-12-07"


@pytest.mark.usefixtures("sf_worker")
async def test_an_account_change_reaches_the_erp_customer_once(
    temporal_client: Client,
    sf: httpx.AsyncClient,
    sf_settings: Settings,
    sandbox: httpx.AsyncClient,
    api: httpx.AsyncClient,
    ledger: Ledger,
) -> None:
    contract_id, account = await active_contract(temporal_client, sf, sf_settings)

    # c2c's own dialect: a signed account.updated.
    body = account_updated(account, name="Initech Global", billing_email="ap@initech.example")
    first = await deliver(api, "/webhooks/crm", body)
    assert first.status_code == 202, first.text
    assert first.json()["workflow_id"] == f"account-{account}"
    customer = await until_customer(sandbox, account, "name", "Initech Global")
    assert customer["billing_email"] == "ap@initech.example"
    again = await deliver(api, "/webhooks/crm", body)
    assert (again.status_code, again.json()["duplicate"]) == (202, True)

    # Salesforce: a user changes the account; its change event reaches c2c by webhook.
    answer = await sf.post(
        f"{SF}/_admin/accounts/{account}/change",
        json={"fields": {"Name": "Initech Worldwide", "BillingCity": "Austin"}},
    )
    assert answer.status_code == 200, answer.text
    customer = await until_customer(sandbox, account, "name", "Initech Worldwide")
    assert customer["billing_address"]["city"] == "Austin"

    # The forwarder delivers the same change event again: a duplicate, applied once.
    replay = json.dumps(answer.json()).encode()
    replayed = await deliver(api, "/webhooks/salesforce", replay)
    assert replayed.status_code == 202, replayed.text
    assert [e["duplicate"] for e in replayed.json()["events"]] == [True]

    # Another object's change event is refused, naming what is wrong.
    contact = json.loads(replay)
    contact["data"]["payload"]["ChangeEventHeader"]["entityName"] = "Contact"
    other = await deliver(api, "/webhooks/salesforce", json.dumps(contact).encode())
    assert other.status_code == 422
    assert other.json()["error"]["field"] == "data.payload.ChangeEventHeader.entityName"

    replay_id = answer.json()["data"]["event"]["replayId"]
    trail = synced(ledger, contract_id)
    assert sorted(trail) == sorted(
        [json.loads(body)["id"], f"salesforce-cdc:{replay_id}:{account}"]
    )


@pytest.mark.usefixtures("sf_worker")
async def test_a_change_the_erp_refuses_is_a_finance_exception(
    temporal_client: Client,
    sf: httpx.AsyncClient,
    sf_settings: Settings,
    sandbox: httpx.AsyncClient,
    api: httpx.AsyncClient,
    ledger: Ledger,
) -> None:
    contract_id, account = await active_contract(temporal_client, sf, sf_settings)
    # Salesforce takes names of up to 255 characters; the ERP, 200.
    refused = await deliver(api, "/webhooks/crm", account_updated(account, name="N" * 240))
    assert refused.status_code == 202, refused.text
    for _ in range(300):
        open_ = ledger.list_exceptions(status="open", contract_id=contract_id)
        if open_:
            break
        await asyncio.sleep(0.1)
    [exception] = open_
    assert (exception.queue, exception.system, exception.code) == (
        "finance",
        "erp",
        "customer_update_refused",
    )
    assert exception.workflow_id == f"account-{account}"

    # The account's later change waits behind the refused one until an operator decides.
    later = await deliver(api, "/webhooks/crm", account_updated(account, tax_id="US-123"))
    assert later.status_code == 202
    decided = await api.post(
        f"/api/exceptions/{exception.exception_id}/skip", json={"note": "name fixed in the CRM"}
    )
    assert decided.status_code == 200, decided.text
    await until_customer(sandbox, account, "tax_id", "US-123")
    assert ledger.get_exception(exception.exception_id).status == "skipped"  # type: ignore[union-attr]
    assert (await erp_customer(sandbox, account))["name"] != "N" * 240


@pytest.mark.usefixtures("sf_worker")
async def test_the_event_queue_delivers_an_account_change(
    temporal_client: Client,
    sf: httpx.AsyncClient,
    sf_settings: Settings,
    sandbox: httpx.AsyncClient,
    settings: Settings,
) -> None:
    _, account = await active_contract(temporal_client, sf, sf_settings)
    queued = settings.model_copy(
        update={"task_queue": sf_settings.task_queue, "webhook_queue": True}
    )
    with serve(queued) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as api:
            body = account_updated(account, name="Initech Queued")
            answer = await deliver(api, "/webhooks/crm", body)
            assert answer.status_code == 202, answer.text
            assert (answer.json()["queued"], answer.json()["workflow_id"]) == (
                True,
                f"account-{account}",
            )
            await until_customer(sandbox, account, "name", "Initech Queued")
            bad = await deliver(api, "/webhooks/crm", account_updated(account, country="USA"))
            assert bad.status_code == 422
            assert bad.json()["error"]["field"] == "data.changes.country"
