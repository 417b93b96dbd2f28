"""The CLI reads every file in ``examples/``: ``c2c contracts start`` each contract and
``c2c contracts amend`` each amendment get past the file check to the Temporal call.

No Temporal server is needed: the call itself is replaced by a stand-in that records what the
command would have sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.models import Amendment, AmendmentResult, ContractApproved
from starter.api.contracts import StartResult
from starter.cli import ops as cli_ops
from starter.cli.main import app

runner = CliRunner()

ROOT = Path(__file__).resolve().parents[3] / "examples"
CONTRACTS = sorted(ROOT.glob("*.json"))
AMENDMENTS = sorted((ROOT / "amendments").glob("*.json"))


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What the commands send: the Temporal connection and calls are stand-ins."""
    calls: list[Any] = []

    def with_temporal(operation: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
        return asyncio.run(operation(object()))

    async def start_contract(client: Any, event: ContractApproved, **_: Any) -> StartResult:
        calls.append(event)
        return StartResult(
            workflow_id=f"contract-{event.contract_id}", run_id="run-1", duplicate=False
        )

    async def amend(client: Any, contract_id: str, amendment: Amendment) -> AmendmentResult:
        calls.append((contract_id, amendment))
        return AmendmentResult(
            amendment_id=amendment.amendment_id,
            status="applied",
            propagated_to=["erp", "psa", "ledger"],
        )

    monkeypatch.setattr(cli_ops, "with_temporal", with_temporal)
    monkeypatch.setattr(cli_ops.contracts, "start_contract", start_contract)
    monkeypatch.setattr(cli_ops.updates, "amend", amend)
    return calls


@pytest.mark.parametrize("path", CONTRACTS, ids=[p.name for p in CONTRACTS])
def test_the_loader_reads_each_example_contract(path: Path) -> None:
    loaded = cli_ops.load_model(ContractApproved, path, envelope_type="contract.approved")
    assert loaded == ContractApproved.model_validate(json.loads(path.read_text()))


@pytest.mark.parametrize("path", AMENDMENTS, ids=[p.name for p in AMENDMENTS])
def test_the_loader_reads_each_example_amendment(path: Path) -> None:
    loaded = cli_ops.load_model(Amendment, path)
    assert loaded == Amendment.model_validate(json.loads(path.read_text()))


@pytest.mark.parametrize("path", CONTRACTS, ids=[p.name for p in CONTRACTS])
def test_contracts_start_accepts_each_example(path: Path, sent: list[Any]) -> None:
    result = runner.invoke(app, ["contracts", "start", str(path)])

    assert result.exit_code == 0, result.output
    expected = ContractApproved.model_validate(json.loads(path.read_text()))
    assert sent == [expected]
    assert f"Started workflow contract-{expected.contract_id}" in result.output


@pytest.mark.parametrize("path", AMENDMENTS, ids=[p.name for p in AMENDMENTS])
def test_contracts_amend_accepts_each_example(path: Path, sent: list[Any]) -> None:
    result = runner.invoke(app, ["contracts", "amend", "SOW-2026-0001", str(path)])

    assert result.exit_code == 0, result.output
    expected = Amendment.model_validate(json.loads(path.read_text()))
    assert sent == [("SOW-2026-0001", expected)]
    assert f"Amendment {expected.amendment_id} applied" in result.output
