"""Resetting a contract the three ways an operator can: the ``temporal`` CLI, the client's
reset (what the Temporal UI's Reset button sends), and ``c2c ops reset``."""

from __future__ import annotations

import asyncio
import random
import uuid

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

from domain.names import contract_workflow_id
from starter.ops.reset import FIRST, reset_contract
from tests.support import venv_binary


async def reset_with_cli(client: Client, contract_id: str) -> None:
    """``temporal workflow reset --type FirstWorkflowTask``, as an operator types it."""
    process = await asyncio.create_subprocess_exec(
        venv_binary("temporal"),
        "workflow",
        "reset",
        "--address",
        client.service_client.config.target_host,
        "--namespace",
        client.namespace,
        "--workflow-id",
        contract_workflow_id(contract_id),
        "--type",
        "FirstWorkflowTask",
        "--reason",
        "operator test",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()


async def completed_tasks(client: Client, contract_id: str) -> list[int]:
    handle = client.get_workflow_handle(contract_workflow_id(contract_id))
    history = await handle.fetch_history()
    done = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    return [e.event_id for e in history.events if e.event_type == done]


async def reset_with_client(client: Client, contract_id: str, event_id: int) -> None:
    """The client's own reset to a completed workflow task, reapplying every signal and
    update after it: the request the Temporal UI's Reset button sends."""
    handle = client.get_workflow_handle(contract_workflow_id(contract_id))
    run_id = (await handle.describe()).run_id
    await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=handle.id, run_id=run_id),
            reason="operator test",
            workflow_task_finish_event_id=event_id,
            request_id=str(uuid.uuid4()),
        )
    )


async def reset_somehow(client: Client, contract_id: str, how: str, rng: random.Random) -> None:
    """Reset by ``how``: ``cli`` (first task), ``client-first``, ``client-random`` (a random
    completed workflow task) or ``ops`` (``c2c ops reset --to first``)."""
    if how == "cli":
        await reset_with_cli(client, contract_id)
    elif how == "ops":
        await reset_contract(client, contract_id, FIRST, reason="operator test")
    else:
        tasks = await completed_tasks(client, contract_id)
        point = tasks[0] if how == "client-first" else rng.choice(tasks)
        await reset_with_client(client, contract_id, point)
