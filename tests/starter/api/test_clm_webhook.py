"""The same CLM approval delivered again and again, also concurrently, through the real API
with a worker running: one workflow, and one of each record in the systems."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from c2c.signing import sign
from domain.names import SIGNATURE_HEADER
from tests.support import WEBHOOK_SECRET, approval_payload, serve
from tests.workflows.helpers import items, wait_stage

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    with serve(settings) as url:
        yield url


async def test_a_repeated_clm_webhook_starts_nothing_new_and_creates_nothing_twice(
    temporal_client: Client, api_url: str, sandbox: httpx.AsyncClient
) -> None:
    data = approval_payload()
    cid = data["contract_id"]
    body = json.dumps({"id": "evt-clm-1", "type": "contract.approved", "data": data}).encode()

    async def deliver(api: httpx.AsyncClient) -> dict[str, object]:
        headers = {SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET), "Content-Type": "application/json"}
        response = await api.post("/webhooks/clm", content=body, headers=headers)
        assert response.status_code == 202, response.text
        return dict(response.json())

    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        answers = [await deliver(api)]
        answers += await asyncio.gather(*(deliver(api) for _ in range(4)))
        await wait_stage(temporal_client, cid, "active")
        answers.append(await deliver(api))

    assert [a["duplicate"] for a in answers] == [False] + [True] * 5
    assert {a["workflow_id"] for a in answers} == {f"contract-{cid}"}
    assert len({a["run_id"] for a in answers}) == 1
    runs = [wf async for wf in temporal_client.list_workflows(f"WorkflowId = 'contract-{cid}'")]
    assert len(runs) == 1
    assert len(await items(sandbox, "/erp/v1/projects", contract_id=cid)) == 1
    assert len(await items(sandbox, "/erp/v1/contracts", contract_id=cid)) == 1
    assert len(await items(sandbox, "/psa/v1/projects", contract_id=cid)) == 1
    assert len(await items(sandbox, "/erp/v1/customers", crm_account_id="ACME-US")) == 1
