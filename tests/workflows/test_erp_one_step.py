"""From 0.11 a contract makes its ERP customer, project and contract in one step,
``provision_erp`` (``erp-onboarding-one-step``); runs recorded before replay their three
(``test_replay_histories``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ResolveException
from domain.steps import CREATE_ERP_CONTRACT, CREATE_ERP_PROJECT, ENSURE_ERP_CUSTOMER, PROVISION_ERP
from ledger import Ledger
from starter.api.contracts import (
    contract_handle,
    contract_result,
    resolve_exception,
    start_contract,
)
from tests.workflows.helpers import approval, items, wait_stage
from worker import contract_worker


async def activity_types(client: Client, contract_id: str) -> list[str]:
    history = await contract_handle(client, contract_id).fetch_history()
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


@pytest.mark.usefixtures("worker")
async def test_a_new_contract_provisions_the_erp_in_one_step(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    event = approval()
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    status = await wait_stage(temporal_client, cid, "active")

    steps = await activity_types(temporal_client, cid)
    assert steps.count(PROVISION_ERP) == 1
    assert not {ENSURE_ERP_CUSTOMER, CREATE_ERP_PROJECT, CREATE_ERP_CONTRACT} & set(steps)
    [project] = await items(sandbox, "/erp/v1/projects", contract_id=cid)
    [contract] = await items(sandbox, "/erp/v1/contracts", contract_id=cid)
    assert status.refs["erp_project_id"] == project["project_id"]
    assert status.refs["erp_contract_id"] == contract["erp_contract_id"]
    assert status.refs["erp_customer_id"] == contract["customer_id"]
    known = ledger.xrefs_for(cid)
    assert {k: known[k] for k in ("erp_customer_id", "erp_project_id", "erp_contract_id")} == {
        k: status.refs[k] for k in ("erp_customer_id", "erp_project_id", "erp_contract_id")
    }
    history = [entry.event for entry in status.history]
    assert f"erp project {project['project_id']} ready" in history


async def test_an_abort_while_the_step_is_held_closes_the_project_it_made(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, faults: Any
) -> None:
    # The ERP makes the customer and the project, then keeps refusing the contract.
    own = settings.model_copy(
        update={"task_queue": f"{settings.task_queue}-one-step", "step_max_attempts": 2}
    )
    async with contract_worker(temporal_client, own):
        await faults(system="erp", path_prefix="/contracts", method="POST", status=503)
        event = approval()
        cid = event.contract_id
        await start_contract(temporal_client, event, task_queue=own.task_queue)
        held = await wait_stage(temporal_client, cid, "on_hold")
        [exception] = held.open_exceptions
        assert (exception.step, exception.code) == (PROVISION_ERP, "retries_exhausted")
        assert "erp_project_id" not in held.refs
        [project] = await items(sandbox, "/erp/v1/projects", contract_id=cid)
        assert project["status"] != "closed"

        await resolve_exception(
            temporal_client,
            cid,
            ResolveException(
                exception_id=exception.exception_id, action="abort", operator="ops@c2c"
            ),
        )
        summary = await contract_result(temporal_client, cid)
    assert summary.status.stage == "cancelled"
    [project] = await items(sandbox, "/erp/v1/projects", contract_id=cid)
    assert project["status"] == "closed"
    assert await items(sandbox, "/erp/v1/contracts", contract_id=cid) == []
