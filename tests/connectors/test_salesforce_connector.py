"""Salesforce as the CRM, over real HTTP: ``simple-salesforce`` against the sandbox's
Salesforce-shaped endpoints (OAuth client credentials, sObject rows, SOQL, limits, Task)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from c2c.settings import Settings
from connectors.salesforce import SalesforceCrm, subject_key
from domain.errors import NotFound, TransientError
from domain.write_models import CrmActivityDraft

SF = "/vendors/salesforce"
V = "/services/data/v62.0"


@pytest_asyncio.fixture
async def sf_api(sandbox: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the sandbox's Salesforce REST API, with a token."""
    answer = await sandbox.post(
        f"{SF}/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "c2c", "client_secret": "sandbox"},
    )
    assert answer.status_code == 200, answer.text
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    async with httpx.AsyncClient(
        base_url=f"{answer.json()['instance_url']}{V}", headers=headers, timeout=10
    ) as client:
        yield client
    await sandbox.put(f"{SF}/_admin/limits", json={"max": 100_000, "used": 0})


@pytest_asyncio.fixture
async def salesforce(sandbox_url: str) -> AsyncIterator[SalesforceCrm]:
    settings = Settings(_env_file=None, sandbox_url=sandbox_url, salesforce_api_reserve=50)  # type: ignore[call-arg]
    crm = SalesforceCrm(settings.salesforce_login_url(), settings)
    yield crm
    await crm.aclose()


async def new_account(sf_api: httpx.AsyncClient, **fields: Any) -> str:
    body = {"Name": f"Acct {uuid.uuid4().hex[:6]}", "BillingCountryCode": "US", **fields}
    answer = await sf_api.post("/sobjects/Account/", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_account_parent_and_status_come_from_salesforce(
    salesforce: SalesforceCrm, sf_api: httpx.AsyncClient
) -> None:
    parent = await new_account(sf_api, Name="Holding")
    child = await new_account(
        sf_api, ParentId=parent, BillingStateCode="CA", Tax_Number__c="US-77", Active__c="Yes"
    )
    account = await salesforce.get_account(child)
    assert (account.parent_crm_account_id, account.country, account.region) == (parent, "US", "CA")
    assert (account.tax_id, account.status) == ("US-77", "active")
    assert [a.crm_account_id for a in await salesforce.get_ancestors(child)] == [parent]

    dormant = await new_account(sf_api, Active__c="No")
    assert (await salesforce.get_account(dormant)).status == "inactive"
    with pytest.raises(NotFound):
        await salesforce.get_account("001000000009999AAA")


async def test_an_activity_becomes_one_task_on_the_account(
    salesforce: SalesforceCrm, sf_api: httpx.AsyncClient
) -> None:
    account = await new_account(sf_api)
    activity = CrmActivityDraft(
        activity_id=f"C-{uuid.uuid4().hex[:6]}:dunning:INV-1:1",
        type="dunning_reminder",
        subject="Payment reminder 1 for invoice INV-1",
        body="Invoice INV-1 is overdue.",
        related_to={"invoice_id": "INV-1"},
        occurred_on=date(2026, 11, 30),
    )
    first = await salesforce.add_activity(account, activity, idempotency_key="k1")
    again = await salesforce.add_activity(account, activity, idempotency_key="k2")
    assert again == first
    tasks = (
        await sf_api.get("/query/", params={"q": f"SELECT Id FROM Task WHERE WhatId = '{account}'"})
    ).json()
    assert tasks["totalSize"] == 1
    task = (await sf_api.get(f"/sobjects/Task/{tasks['records'][0]['Id']}")).json()
    assert task["Subject"].endswith(subject_key(str(activity.activity_id)))
    assert (task["WhatId"], task["ActivityDate"], task["Status"]) == (
        account,
        "2026-11-30",
        "Completed",
    )
    listed = await salesforce.list_activities(account, invoice_id="INV-1")
    assert [(a.type, a.subject) for a in listed] == [("dunning_reminder", activity.subject)]


async def test_the_api_budget_is_a_metric_and_its_reserve_is_kept(
    salesforce: SalesforceCrm, sf_api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    account = await new_account(sf_api)
    await sandbox.put(f"{SF}/_admin/limits", json={"max": 1000, "used": 500})
    await salesforce.get_account(account)
    remaining = REGISTRY.get_sample_value("c2c_vendor_api_remaining", {"vendor": "salesforce"})
    assert remaining is not None and 400 < remaining < 500
    assert REGISTRY.get_sample_value("c2c_vendor_api_max", {"vendor": "salesforce"}) == 1000

    # Other integrations spend the day's budget: the next answer's Sforce-Limit-Info says so,
    # and c2c leaves the reserve (50) to them: its call waits, as a transient error.
    await sandbox.put(f"{SF}/_admin/limits", json={"used": 960})
    await salesforce.get_account(account)
    assert REGISTRY.get_sample_value("c2c_vendor_api_remaining", {"vendor": "salesforce"}) == 39
    with pytest.raises(TransientError) as refused:
        await salesforce.get_account(account)
    assert refused.value.retry_after_s and refused.value.retry_after_s > 0
    remaining = REGISTRY.get_sample_value("c2c_vendor_api_remaining", {"vendor": "salesforce"})
    assert remaining is not None and remaining <= 50
