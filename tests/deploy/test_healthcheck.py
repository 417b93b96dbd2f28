"""deploy/healthcheck.py, the containers' health check, against a real sandbox over HTTP and a
real worker polling a real Temporal dev server."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.worker import Worker

from c2c.ports import free_port
from c2c.settings import Settings
from tests.deploy.files import HEALTHCHECK


async def _probe(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run the health check as the container does: a separate process; its code and line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HEALTHCHECK),
        *args,
        # Not the repository root: a developer's .env there must not decide the verdict.
        cwd=HEALTHCHECK.parent,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


def _settings_env(settings: Settings, *, task_queue: str | None = None) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "C2C_TASK_QUEUE": task_queue or settings.task_queue,
    }


async def test_sandbox_answers_its_health_route(sandbox: httpx.AsyncClient):
    response = await sandbox.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_a_url_that_answers_2xx_is_healthy(sandbox_url: str):
    code, line = await _probe(f"{sandbox_url}/healthz")
    assert code == 0, line
    assert line.startswith("healthy: ")


async def test_a_url_that_answers_an_error_is_unhealthy(sandbox_url: str):
    code, line = await _probe(f"{sandbox_url}/no-such-route")
    assert code == 1
    assert line.startswith("unhealthy: ") and ": 404" in line


async def test_a_url_nobody_listens_on_is_unhealthy():
    code, line = await _probe(f"http://127.0.0.1:{free_port()}/healthz")
    assert code == 1
    assert line.startswith("unhealthy: ")


async def test_a_polling_worker_on_this_host_is_healthy(
    worker: Worker, temporal_client: Client, settings: Settings
):
    await _until_polled(temporal_client, settings.task_queue)
    code, line = await _probe("--worker", env=_settings_env(settings))
    assert code == 0, line
    assert settings.task_queue in line


async def test_no_worker_on_the_task_queue_is_unhealthy(worker: Worker, settings: Settings):
    code, line = await _probe("--worker", env=_settings_env(settings, task_queue="nobody-polls"))
    assert code == 1
    assert "no worker" in line and "nobody-polls" in line


async def test_an_unreachable_temporal_is_unhealthy(settings: Settings):
    env = {**_settings_env(settings), "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    code, line = await _probe("--worker", env=env)
    assert code == 1
    assert line.startswith("unhealthy: temporal 127.0.0.1:")


async def _until_polled(client: Client, task_queue: str) -> None:
    """Wait (bounded) until Temporal has seen the session worker poll ``task_queue``."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    for _ in range(100):
        if (await client.workflow_service.describe_task_queue(request)).pollers:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no poller on {task_queue}")
