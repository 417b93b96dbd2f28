"""``c2c kpis``: the report as text and JSON from a real ledger, and bad filters refused."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.names import ExceptionQueue, Stage
from ledger import ContractRecordIn, ExceptionIn, get_ledger
from starter.cli.kpis import _hours
from starter.cli.main import app
from tests.starter.cli.test_cli import c2c

runner = CliRunner()

APPROVED = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def cli_env(tmp_path: Path, sandbox_url: str) -> dict[str, str]:
    """A ledger with two US01 contracts (setup 2 h and 4 h) and one open integration
    exception, and the session's sandbox as every system."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = get_ledger(url)
    for contract_id, hours in (("CLI-1", 2), ("CLI-2", 4)):
        ledger.upsert_contract(
            ContractRecordIn(
                contract_id=contract_id,
                stage=Stage.ACTIVE,
                updated_at=APPROVED + timedelta(hours=hours),
                legal_entity="US01",
                billing_model="time_and_materials",
                currency="USD",
                approved_at=APPROVED,
                active_at=APPROVED + timedelta(hours=hours),
            )
        )
    ledger.open_exception(
        ExceptionIn(
            exception_id="EXC-CLI-1",
            contract_id="CLI-2",
            workflow_id="contract-CLI-2",
            stage=Stage.ACTIVE,
            system="erp",
            code="timeout",
            message="ERP did not answer",
            queue=ExceptionQueue.INTEGRATION,
            opened_at=APPROVED + timedelta(days=1),
        )
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}
    return {
        **clean,
        "C2C_DATABASE_URL": url,
        "C2C_SANDBOX_URL": sandbox_url,
        "C2C_STATE_DIR": str(tmp_path),
    }


def test_the_report_as_json(cli_env: dict[str, str]) -> None:
    result = c2c("kpis", "--legal-entity", "US01", "--period", "2026-10", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["legal_entity"], report["period"]) == ("US01", "2026-10")
    assert report["project_setup"] == {"count": 2, "median_hours": 3.0, "p90_hours": 3.8}
    assert report["touchless_provisioning"]["share"] == 1.0
    integration = report["open_exceptions"][0]
    assert (integration["queue"], integration["count"]) == ("integration", 1)
    # Opened on 2 October, open ever since: escalated or not, past its 4 h SLA.
    assert report["sla_breaches"]["by_queue"]["integration"] == 1
    # No billing activity has recorded unbilled time in this ledger.
    assert report["unbilled_time"] == {
        "hours": "0",
        "by_contract": [],
        "by_legal_entity": [],
        "unavailable": None,
    }


def test_the_report_as_text(cli_env: dict[str, str]) -> None:
    result = c2c("kpis", env=cli_env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "KPIs (legal entity all, period all)" in out
    assert "project setup (CLM approval -> PSA active): 2 done, median 3.0 h" in out
    assert "touchless provisioning: 2 of 2 (100.0%)" in out
    assert "integration" in out and "SLA breaches: 1" in out
    assert "2026-10" in out


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--period", "2026-13"], "--period"),
        (["--legal-entity", "us01"], "--legal-entity"),
    ],
)
def test_bad_filters_exit_2_naming_the_option(args: list[str], hint: str) -> None:
    result = runner.invoke(app, ["kpis", *args])
    assert result.exit_code == 2
    assert hint in result.output


@pytest.mark.parametrize(
    ("hours", "shown"),
    [
        (None, "-"),
        (0.2, "12 min"),
        (0.004, "14 s"),
        (3.04, "3.0 h"),
        (47.9, "47.9 h"),
        (60, "2.5 d"),
    ],
)
def test_durations_read_as_minutes_hours_or_days(hours: float | None, shown: str) -> None:
    assert _hours(hours) == shown
