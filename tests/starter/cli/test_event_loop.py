"""``C2C_EVENT_LOOP``: the worker, the API and the sandbox run on uvloop where it is installed,
on asyncio's loop when asked, and a choice that cannot be honoured is refused by name."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from c2c import loops
from c2c.loops import EventLoop, EventLoopUnavailable, resolve, running_loop
from c2c.settings import Settings
from starter.cli.main import run_until_signalled

uvloop = pytest.importorskip("uvloop", reason="uvloop has no build for this platform")


@pytest.mark.parametrize(
    ("choice", "expected"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")]
)
def test_the_main_coroutine_runs_on_the_loop_chosen(choice: EventLoop, expected: str) -> None:
    seen: list[str] = []

    async def main() -> None:
        seen.append(running_loop())

    run_until_signalled(main(), loop=choice)

    assert seen == [expected]
    assert resolve(choice) == expected


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loops, "uvloop_installed", lambda: False)
    assert resolve("auto") == "asyncio"
    assert resolve("asyncio") == "asyncio"
    with pytest.raises(EventLoopUnavailable, match=r"C2C_EVENT_LOOP=uvloop.*not installed"):
        resolve("uvloop")

    async def main() -> None:
        raise AssertionError("must not run")

    with pytest.raises(EventLoopUnavailable):
        run_until_signalled(main(), loop="uvloop")


def test_an_unknown_loop_is_a_clear_settings_error() -> None:
    with pytest.raises(ValidationError, match="C2C_EVENT_LOOP") as caught:
        Settings.model_validate({"C2C_EVENT_LOOP": "tokio"})
    assert "'auto', 'uvloop' or 'asyncio'" in str(caught.value)


def test_the_sandbox_command_refuses_an_unknown_loop_before_serving() -> None:
    env = {**os.environ, "C2C_EVENT_LOOP": "tokio", "C2C_SANDBOX_DB_URL": "sqlite://"}
    result = subprocess.run(
        [sys.executable, "-m", "starter.cli", "sandbox", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "C2C_EVENT_LOOP" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@activity.defn
async def _double(n: int) -> int:
    await asyncio.sleep(0.01)
    return 2 * n


@workflow.defn(sandboxed=False)
class _OnUvloop:
    @workflow.run
    async def run(self, n: int) -> int:
        doubled = await workflow.execute_activity(
            _double, n, start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.sleep(0.05)
        return await workflow.execute_local_activity(
            _double, doubled, start_to_close_timeout=timedelta(seconds=30)
        )


def test_a_temporal_worker_runs_activities_timers_and_local_activities_on_uvloop(
    temporal_client: Client,
) -> None:
    """What the worker process runs on uvloop, against the real dev server: polls, an
    activity, a durable timer and a local activity, from a client made on that loop."""
    target = temporal_client.service_client.config.target_host
    namespace = temporal_client.namespace
    results: list[int] = []

    async def main() -> None:
        assert running_loop() == "uvloop"
        client = await Client.connect(target, namespace=namespace)
        queue = f"uvloop-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=queue, workflows=[_OnUvloop], activities=[_double]):
            results.append(
                await client.execute_workflow(_OnUvloop.run, 5, id=f"{queue}-wf", task_queue=queue)
            )

    run_until_signalled(main(), loop="auto")
    assert results == [20]
