"""Building approvals and waiting on contract status in workflow tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from temporalio.client import Client

from domain.models import ContractApproved, ContractStatus
from starter.api.contracts import get_status
from tests.support import approval_payload


def approval(**changes: Any) -> ContractApproved:
    """A T&M approval for the demo account ACME-US in October 2026, with a fresh id."""
    return ContractApproved.model_validate(approval_payload(**changes))


async def wait_for(
    client: Client,
    contract_id: str,
    predicate: Callable[[ContractStatus], bool],
    *,
    timeout: float = 60,
    what: str = "condition",
) -> ContractStatus:
    """Poll the ``status`` query until ``predicate`` holds; fail with the last status."""
    deadline = asyncio.get_running_loop().time() + timeout
    status: ContractStatus | None = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            status = await get_status(client, contract_id)
        except Exception:
            status = None
        if status is not None and predicate(status):
            return status
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last status: {status}")


async def wait_stage(
    client: Client, contract_id: str, stage: str, timeout: float = 60
) -> ContractStatus:
    return await wait_for(
        client, contract_id, lambda s: s.stage == stage, timeout=timeout, what=f"stage {stage}"
    )


async def items(sandbox: httpx.AsyncClient, path: str, **params: str) -> list[dict[str, Any]]:
    response = await sandbox.get(path, params={**params, "limit": "500"})
    response.raise_for_status()
    return list(response.json()["items"])


async def add_time(
    sandbox: httpx.AsyncClient,
    psa_project_id: str,
    role: str,
    work_date: str,
    hours: str,
    *,
    approved: bool = True,
    billable: bool = True,
) -> dict[str, Any]:
    response = await sandbox.post(
        f"/psa/v1/projects/{psa_project_id}/time-entries",
        json={
            "consultant_id": "u-1",
            "role": role,
            "work_date": work_date,
            "hours": hours,
            "billable": billable,
            "approved": approved,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())
