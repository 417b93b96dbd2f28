"""``c2c ledger`` and start-up as a user meets them, each command in its own process: the
worker, the API and ``c2c up`` refuse a ledger made by c2c 0.8.0 (before schema revisions),
naming the command to run, and change nothing; ``c2c ledger upgrade`` upgrades it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from c2c.ports import free_port
from ledger import Ledger
from ledger.migrate import VERSION_TABLE, head_revision, schema_state
from tests.ledger.ledger_0_8_0 import make_0_8_0_ledger, snapshot

pytestmark = pytest.mark.e2e

REFUSAL = "back it up, then run `c2c ledger upgrade`"


def c2c(*args: str, state: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}
    return subprocess.run(
        [sys.executable, "-m", "starter.cli", *args],
        env={
            **clean,
            "C2C_STATE_DIR": str(state),
            # Nothing answers here: a process that got past the ledger fails on Temporal.
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def old_state(tmp_path: Path) -> Path:
    """A state directory whose ledger c2c 0.8.0 made, with contracts in flight."""
    store = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        make_0_8_0_ledger(store.engine)
    finally:
        store.dispose()
    return tmp_path


def ledger_of(state: Path) -> Ledger:
    return Ledger(f"sqlite:///{state / 'ledger.db'}")


@pytest.mark.parametrize(
    "command",
    [
        ["worker"],
        ["api", "--port", "0"],
        ["up", "--no-ui", "--temporal-port", "0", "--sandbox-port", "0", "--api-port", "0"],
    ],
    ids=["worker", "api", "up"],
)
def test_a_process_refuses_to_start_on_an_older_schema(old_state: Path, command: list[str]) -> None:
    store = ledger_of(old_state)
    before = snapshot(store.engine)

    result = c2c(*command, state=old_state)

    assert result.returncode == 1, result
    output = result.stdout + result.stderr
    assert f"c2c {command[0]}: the ledger at sqlite:///{old_state / 'ledger.db'}" in output
    assert "made before schema revisions" in output and REFUSAL in output, output
    assert "Traceback" not in output
    assert not inspect(store.engine).has_table(VERSION_TABLE)
    assert snapshot(store.engine) == before
    if command[0] == "up":
        assert not (old_state / "temporal.db").exists()  # refused before anything started
    store.dispose()


def test_ledger_upgrade_then_the_worker_starts(old_state: Path) -> None:
    store = ledger_of(old_state)
    before = snapshot(store.engine)

    version = c2c("ledger", "version", state=old_state)
    assert version.returncode == 0, version
    assert "current: none (made before schema revisions" in version.stdout
    assert f"head:    {head_revision()}" in version.stdout
    check = c2c("ledger", "upgrade", "--check", state=old_state)
    assert check.returncode == 1 and "needs an upgrade: c2c ledger upgrade" in check.stdout

    upgraded = c2c("ledger", "upgrade", state=old_state)

    assert upgraded.returncode == 0, upgraded
    assert f"revision none -> {head_revision()}" in upgraded.stdout
    assert schema_state(store.engine).at_head
    assert snapshot(store.engine) == before
    assert c2c("ledger", "upgrade", "--check", state=old_state).returncode == 0
    again = c2c("ledger", "upgrade", state=old_state)
    assert again.returncode == 0 and "already at revision" in again.stdout
    # The worker gets past the ledger, to Temporal (which is not there).
    worker = c2c("worker", state=old_state)
    assert worker.returncode == 1 and "cannot reach Temporal" in worker.stderr, worker
    store.dispose()


def test_auto_upgrade_at_start(old_state: Path) -> None:
    store = ledger_of(old_state)
    before = snapshot(store.engine)

    worker = c2c("worker", state=old_state, C2C_LEDGER_AUTO_UPGRADE="true")

    assert "cannot reach Temporal" in worker.stderr, worker
    assert schema_state(store.engine).at_head
    assert snapshot(store.engine) == before
    store.dispose()


def test_a_ledger_upgrade_that_cannot_reach_its_database_says_so(tmp_path: Path) -> None:
    unreachable = f"postgresql://c2c@127.0.0.1:{free_port()}/c2c"
    result = c2c("ledger", "upgrade", state=tmp_path, C2C_DATABASE_URL=unreachable)
    assert result.returncode == 1
    assert result.stderr.startswith("c2c ledger upgrade: the ledger's database answered")
    assert "Traceback" not in result.stderr
