"""The fault campaign over the new sources: approvals arriving as DocuSign Connect messages and
Ironclad webhooks, accounts validated in the Salesforce fake, dunning reminders made Salesforce
Tasks.

A worker process and a ``c2c api`` process configured as a firm would
(``C2C_CLM_SOURCES=docusign,ironclad``, ``C2C_CRM=salesforce``) take the contracts from the
vendors' completion events to ``active`` while the sandbox answers ``503`` and ``429`` on
Salesforce's and Ironclad's paths and on DocuSign's document download, drops some connections
after Salesforce's writes, each sender resends every message (DocuSign the same Connect message,
Ironclad the same webhook, until it is accepted and once more), and the worker is killed with
SIGKILL. Afterwards each contract was started exactly once, each signed document is archived
once, and each contract's dunning reminder, sent again as a retry would, is one Salesforce Task.
``C2C_CAMPAIGN_SOURCE_CONTRACTS`` sets how many contracts run (4 by default).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.dunning import DunningActivities
from c2c.settings import Settings
from connectors.registry import build_connectors
from domain.steps import DunningInput
from ledger import Ledger
from tests.campaign.processes import ApiProcess, api_receiving
from tests.campaign.test_fault_campaign import Stack, _started
from tests.campaign.test_vendor_campaign import killer, until
from tests.docusign.support import contract_fields
from tests.ironclad.support import contract_attributes
from tests.support import new_contract_id

CONTRACTS = int(os.environ.get("C2C_CAMPAIGN_SOURCE_CONTRACTS", "4"))
CONNECT_KEY = "connect-key-campaign"
SF = "/vendors/salesforce"
V = f"{SF}/services/data/v62.0"
pytestmark = pytest.mark.timeout(900)

SOURCE_CHAOS: list[dict[str, Any]] = [
    {"system": "salesforce", "probability": 0.15, "status": 503},
    {"system": "salesforce", "probability": 0.05, "status": 429},
    {"system": "salesforce", "probability": 0.05, "drop": True, "phase": "after"},
    {"system": "ironclad", "probability": 0.15, "status": 503},
    {"system": "ironclad", "probability": 0.1, "status": 429},
    {"system": "docusign", "probability": 0.2, "status": 503},
    {"system": "docusign", "probability": 0.1, "status": 429},
]


@pytest.fixture
def source_stack(tmp_path: Path, sandbox_url: str) -> Iterator[Stack]:
    with _started(tmp_path, sandbox_url) as running:
        running.env |= {
            "C2C_CLM_SOURCES": "docusign,ironclad",
            "C2C_DOCUSIGN_CONNECT_KEYS": CONNECT_KEY,
            "C2C_CRM": "salesforce",
            # A failed fetch of Ironclad's key makes webhooks wait this long (answered 503 for
            # Ironclad to resend): a minute by default, a second here.
            "C2C_IRONCLAD_KEY_REFRESH_S": "1",
        }
        yield running


@pytest_asyncio.fixture
async def source_api(
    source_stack: Stack, tmp_path: Path, sandbox: httpx.AsyncClient
) -> AsyncIterator[ApiProcess]:
    """``c2c api`` receiving DocuSign's and Ironclad's messages from the sandbox."""
    hooks = {
        "/_admin/docusign/connect": (
            "/webhooks/docusign",
            {"keys": [CONNECT_KEY]},
            {"keys": []},
        ),
        "/_admin/ironclad/webhook": ("/webhooks/ironclad", {}, None),
    }
    async with api_receiving(source_stack.env, tmp_path / "api.log", sandbox, hooks) as api:
        yield api


async def salesforce(sandbox: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client of the Salesforce fake's REST API, with a token."""
    client = httpx.AsyncClient(base_url=str(sandbox.base_url), timeout=10)
    answer = await client.post(
        f"{SF}/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "c2c", "client_secret": "sandbox"},
    )
    client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return client


async def new_account(sf: httpx.AsyncClient, **fields: Any) -> str:
    body = {"Name": f"Initech {uuid.uuid4().hex[:6]}", "BillingCountryCode": "US", **fields}
    answer = await sf.post(f"{V}/sobjects/Account/", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def send_until_accepted(http: httpx.AsyncClient, url: str, sent: dict[str, Any]) -> int:
    """Resend the exact message (body and headers) until the API answers 2xx, as the vendor's
    sender retries; then once more, as a sender does that never saw the answer. The number of
    times it was sent."""
    raw = base64.b64decode(sent["message"])
    status = sent["delivery"]["status"]
    times = 1
    while status is None or not 200 <= status < 300:
        await asyncio.sleep(0.2)
        try:
            status = (await http.post(url, content=raw, headers=sent["headers"])).status_code
        except httpx.TransportError:
            status = None
        times += 1
        assert times < 200, f"{url} never accepted the message"
    again = await http.post(url, content=raw, headers=sent["headers"])
    assert again.status_code == 202 and again.json()["duplicate"] is True, again.text
    return times + 1


async def test_docusign_and_ironclad_approvals_and_salesforce_through_faults_and_kills(
    source_stack: Stack,
    source_api: ApiProcess,
    sandbox: httpx.AsyncClient,
    ledger: Ledger,
    settings: Settings,
) -> None:
    stack = source_stack
    began = time.monotonic()
    sf = await salesforce(sandbox)
    parent = await new_account(sf, Name="Initech Holding")
    account = await new_account(sf, ParentId=parent, BillingStateCode="CA")
    cids = [new_contract_id() for _ in range(CONTRACTS)]
    client = await stack.client()
    stack.start_worker()
    stop = asyncio.Event()
    kills = asyncio.create_task(killer(stack, stop, random.Random(20261207), 2))
    for rule in SOURCE_CHAOS:
        added = await sandbox.post("/_admin/faults", json=rule)
        assert added.status_code in (200, 201), added.text
    sends = 0
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            for n, cid in enumerate(cids):
                if n % 2 == 0:
                    fields = contract_fields(
                        cid,
                        crm_account_id=account,
                        **{"c2c.customer.parent_crm_account_id": parent},
                    )
                    created = await sandbox.post(
                        "/_admin/docusign/envelopes", json={"text_custom_fields": fields}
                    )
                    envelope = created.json()["envelope_id"]
                    sent = await sandbox.post(
                        f"/_admin/docusign/envelopes/{envelope}/complete", json={}
                    )
                    url = f"{source_api.url}/webhooks/docusign"
                else:
                    attributes = contract_attributes(
                        cid, crmAccountId=account, parentCrmAccountId=parent
                    )
                    created = await sandbox.post(
                        "/_admin/ironclad/workflows", json={"attributes": attributes}
                    )
                    workflow = created.json()["workflow_id"]
                    sent = await sandbox.post(
                        f"/_admin/ironclad/workflows/{workflow}/complete", json={}
                    )
                    url = f"{source_api.url}/webhooks/ironclad"
                assert sent.status_code == 200, sent.text
                sends += await send_until_accepted(http, url, sent.json())
        await until(client, cids, lambda s: s.stage == "active", "active")

        # Each contract's dunning reminder, with Salesforce still failing: the step is retried
        # until it succeeds, as Temporal retries it, then run once more (a replay, a reset).
        connectors = build_connectors(
            settings.model_copy(update={"crm": "salesforce", "connector_quick_retries": 0})
        )
        attempts = 0
        try:
            dunning = DunningActivities(connectors, ledger, settings)
            for n, cid in enumerate(cids):
                step = DunningInput(
                    contract_id=cid,
                    crm_account_id=account,
                    invoice_id=f"INV-{cid}",
                    invoice_number=f"2026-{n:04d}",
                    level=1,
                    final=False,
                    balance=Decimal("1200.00"),
                    currency="USD",
                    due_on=date(2026, 11, 30),
                    on=date(2026, 12, 7),
                )
                for _ in ("the step", "its replay"):
                    while True:
                        attempts += 1
                        try:
                            await ActivityEnvironment().run(dunning.send_dunning_reminder, step)
                            break
                        except Exception:
                            assert attempts < 500, "the reminder never went through"
                            await asyncio.sleep(0.05)
        finally:
            await connectors.aclose()
    finally:
        stop.set()
        await kills
        rules = (await sandbox.get("/_admin/faults")).json()["rules"]
        fired = sum(r["fired"] for r in rules)
        await sandbox.delete("/_admin/faults")

    # Each contract started once, from its one source, and its signed PDF archived once.
    runs = 0
    for cid in cids:
        query = f'WorkflowId = "contract-{cid}" AND WorkflowType = "ContractToCash"'
        found = [w async for w in client.list_workflows(query)]
        assert len(found) == 1, (cid, found)
        runs += len(found)
    stack_ledger = Ledger(stack.database_url)
    try:
        documents = [stack_ledger.get_signed_document(cid) for cid in cids]
    finally:
        stack_ledger.dispose()
    assert all(d is not None for d in documents)
    hashes = {d.sha256 for d in documents if d is not None}
    archived = [p for p in (stack.state / "archive").rglob("*") if p.is_file()]
    assert len(hashes) == len(cids) and len(archived) == len(cids), archived
    sources = sorted(d.source for d in documents if d is not None)
    assert sources == sorted(["docusign", "ironclad"][n % 2] for n in range(CONTRACTS))

    # One Task per reminder, on the account.
    soql = f"SELECT Id, Subject FROM Task WHERE WhatId = '{account}'"
    tasks = (await sf.get(f"{V}/query/", params={"q": soql})).json()["records"]
    await sf.aclose()
    subjects = sorted(t["Subject"] for t in tasks)
    assert len(subjects) == len(cids), subjects
    assert len(set(subjects)) == len(cids), subjects
    print(
        f"\nsources campaign checked in {time.monotonic() - began:.0f} s: {len(cids)} contracts "
        f"started once from {sends} sends, faults fired: {fired}, "
        f"{len(archived)} documents archived once, {len(tasks)} Tasks from {attempts} "
        f"reminder attempts, worker kills: {stack.kills}"
    )
