"""The ``c2c`` command line: input checked before anything is contacted, then the same
operations as the API against a real Temporal dev server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from typer.testing import CliRunner

from starter.cli.main import app
from tests.starter.helpers import approval

runner = CliRunner()

COMMANDS = ("up", "worker", "api", "sandbox", "demo", "contracts", "billing", "ops")


def c2c(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``c2c`` as a user would, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "starter.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def cli_env(temporal_client: Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    state = tmp_path_factory.mktemp("cli-state")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}
    return {
        **clean,
        "TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": temporal_client.namespace,
        # No worker polls this queue: the contracts stay as the CLI left them.
        "C2C_TASK_QUEUE": f"c2c-cli-test-{uuid.uuid4().hex[:8]}",
        "C2C_STATE_DIR": str(state),
    }


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def _broken_fields(data: dict[str, Any]) -> dict[str, Any]:
    del data["customer"]["country"]
    data["rate_card"][0]["hourly_rate"] = 200.5
    return data


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            _broken_fields,
            [
                "customer.country: Field required",
                "rate_card.0.hourly_rate: must be a decimal string",
            ],
        ),
        (lambda d: {**d, "end_date": "2025-01-01"}, ["end_date: must not be before start_date"]),
    ],
    ids=["fields", "dates"],
)
def test_an_invalid_contract_file_prints_each_field_and_exits_2(
    tmp_path: Path, change: Any, expected: list[str]
) -> None:
    file = tmp_path / "contract.json"
    file.write_text(json.dumps(change(approval())))

    result = runner.invoke(app, ["contracts", "start", str(file)])

    assert result.exit_code == 2
    for line in expected:
        assert line in result.output
    assert f"{len(expected)} invalid field(s); nothing was changed" in result.output


def test_a_file_that_is_not_json_exits_2(tmp_path: Path) -> None:
    file = tmp_path / "contract.json"
    file.write_text("{nope")
    result = runner.invoke(app, ["contracts", "start", str(file)])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "last-month"])
def test_an_invalid_period_exits_2(period: str) -> None:
    result = runner.invoke(app, ["billing", "close-period", period])
    assert result.exit_code == 2
    assert "YYYY-MM" in result.output


def test_start_status_and_list_against_temporal(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = approval()
    contract_id = data["contract_id"]
    file = tmp_path / "contract.json"
    file.write_text(json.dumps(data))

    first = c2c("contracts", "start", str(file), env=cli_env)
    assert first.returncode == 0, first.stderr
    assert f"Started workflow contract-{contract_id}" in first.stdout

    again = c2c("contracts", "start", str(file), env=cli_env)
    assert again.returncode == 0, again.stderr
    assert "duplicate" in again.stdout

    listed = c2c("contracts", "list", "--stage", "received", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    assert contract_id in listed.stdout


def test_status_of_an_unknown_contract_exits_1(cli_env: dict[str, str]) -> None:
    result = c2c("contracts", "status", f"NOPE-{uuid.uuid4().hex[:8]}", env=cli_env)
    assert result.returncode == 1
    assert "no such contract" in result.stderr


def test_the_exception_queue_is_listed_from_the_ledger(cli_env: dict[str, str]) -> None:
    listed = c2c("ops", "exceptions", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    assert "No exceptions." in listed.stdout
    # Decisions go through the API; with none answering, the CLI says where it looked.
    unreachable = c2c(
        "ops",
        "retry",
        "EXC-404",
        "--note",
        "fixed",
        env={**cli_env, "C2C_API_URL": "http://127.0.0.1:9"},
    )
    assert unreachable.returncode == 1
    assert "cannot reach c2c's API at http://127.0.0.1:9" in unreachable.stderr
