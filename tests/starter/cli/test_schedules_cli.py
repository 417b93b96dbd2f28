"""``c2c billing schedule``: input checked before Temporal is contacted, then the schedules
created, listed, paused and triggered on a real Temporal dev server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import pytest
from temporalio.client import Client

SCHEDULES = json.dumps({"ZS01": {"day": 2, "at": "07:15"}})


def c2c(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starter.cli", "billing", "schedule", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli_env(temporal_client: Client) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}
    return {
        **clean,
        "TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": temporal_client.namespace,
        # No worker polls this queue: a triggered run waits, and nothing is billed.
        "C2C_TASK_QUEUE": f"c2c-schedule-cli-{uuid.uuid4().hex[:8]}",
        "C2C_BILLING_SCHEDULES": SCHEDULES,
        "C2C_LEGAL_ENTITY_TIME_ZONES": json.dumps({"ZS01": "Europe/London"}),
    }


def test_an_entity_without_a_schedule_or_a_bad_date_changes_nothing(
    cli_env: dict[str, str],
) -> None:
    unknown = c2c("pause", "XX99", env=cli_env)
    assert unknown.returncode == 2
    assert "no billing schedule for 'XX99'" in unknown.stderr
    assert "schedules ZS01" in unknown.stderr
    bad = c2c("backfill", "ZS01", "--from", "2026-13-01", "--to", "2026-12-01", env=cli_env)
    assert bad.returncode == 2
    assert "ISO date" in bad.stderr
    backwards = c2c("backfill", "ZS01", "--from", "2026-12-01", "--to", "2026-11-01", env=cli_env)
    assert backwards.returncode == 2
    assert "must not be before --from" in backwards.stderr


async def test_ensure_list_pause_and_trigger(
    cli_env: dict[str, str], temporal_client: Client
) -> None:
    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(c2c, *args, env=cli_env)

    try:
        made = await run("ensure")
        assert made.returncode == 0, made.stderr
        assert made.stdout.split() == ["billing-run-ZS01:", "created"]
        again = await run("ensure")
        assert "billing-run-ZS01: unchanged" in again.stdout

        paused = await run("pause", "ZS01", "--note", "year-end freeze")
        assert paused.returncode == 0, paused.stderr
        listed = await run("list")
        assert listed.returncode == 0, listed.stderr
        assert "day 2 of each month at 07:15 (Europe/London)" in listed.stdout
        assert "paused" in listed.stdout

        assert (await run("unpause", "ZS01")).returncode == 0
        triggered = await run("trigger", "ZS01")
        assert triggered.returncode == 0, triggered.stderr
        assert "active" in (await run("list")).stdout
        described = await temporal_client.get_schedule_handle("billing-run-ZS01").describe()
        assert described.info.num_actions == 1
    finally:
        await temporal_client.get_schedule_handle("billing-run-ZS01").delete()
