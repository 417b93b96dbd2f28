"""A step's ledger writes after its call (audit, read model, cross-reference) are one
transaction: a failure part-way leaves none of them, and the retry writes each once."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.registry import build_steps
from c2c.settings import Settings
from connectors.registry import build_connectors
from domain.names import Stage
from domain.steps import (
    CREATE_ERP_PROJECT,
    ENSURE_ERP_CUSTOMER,
    VALIDATE_CONTRACT,
    AuditEntry,
    ContractStep,
    CreatedRef,
)
from ledger import Ledger
from tests.support import approval_payload


@dataclasses.dataclass
class Steps:
    ledger: Ledger
    steps: dict[str, Any]


@pytest_asyncio.fixture
async def worker(sandbox_url: str, tmp_path: Path) -> AsyncIterator[Steps]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        sandbox_url=sandbox_url,
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        state_dir=tmp_path,
    )
    ledger = Ledger(settings.ledger_url)
    ledger.create_all()
    connectors = build_connectors(settings)
    try:
        yield Steps(ledger, build_steps(connectors, ledger, settings))
    finally:
        await connectors.aclose()
        ledger.dispose()


def line(contract_id: str, n: int, stage: Stage, event: str) -> AuditEntry:
    at = datetime(2026, 9, 28, 10, n, tzinfo=UTC)
    return AuditEntry(key=f"{contract_id}:t:{n}", at=at, stage=stage, event=event)


async def run(worker: Steps, name: str, step: ContractStep, *, attempt: int = 1) -> Any:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_id=f"contract-{step.contract_id}",
        workflow_run_id="run-1",
        activity_type=name,
        attempt=attempt,
    )
    return await env.run(worker.steps[name], step)


async def test_a_failure_between_the_writes_leaves_nothing_and_the_retry_writes_once(
    worker: Steps, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = approval_payload()
    c = payload["contract_id"]
    step = ContractStep.model_validate({"contract_id": c, "contract": payload})
    step.audit = [line(c, 0, Stage.VALIDATING, "entered validating")]
    await run(worker, VALIDATE_CONTRACT, step)
    step.audit = [line(c, 1, Stage.PROVISIONING_ERP, "entered provisioning_erp")]
    customer: CreatedRef = await run(worker, ENSURE_ERP_CUSTOMER, step)
    step.refs = {"erp_customer_id": customer.external_id}
    assert worker.ledger.get_contract(c).stage == Stage.PROVISIONING_ERP  # type: ignore[union-attr]

    # The ERP makes the project; then the ledger fails after the audit and the read model are
    # written, in the cross-reference.
    step.audit = [line(c, 2, Stage.ACTIVATING_PSA, "erp customer ready; project next")]
    real = worker.ledger.record_xref

    def failing(*args: object) -> None:
        raise RuntimeError("the ledger went away mid-write")

    monkeypatch.setattr(worker.ledger, "record_xref", failing)
    with pytest.raises(RuntimeError, match="mid-write"):
        await run(worker, CREATE_ERP_PROJECT, step)
    assert [e.event for e in worker.ledger.audit_trail(c)] == [
        "entered validating",
        "entered provisioning_erp",
    ]
    assert worker.ledger.get_contract(c).stage == Stage.PROVISIONING_ERP  # type: ignore[union-attr]
    assert "erp_project_id" not in worker.ledger.xrefs_for(c)

    # Temporal retries the step: the ERP answers the project it made, the ledger takes all.
    monkeypatch.setattr(worker.ledger, "record_xref", real)
    project: CreatedRef = await run(worker, CREATE_ERP_PROJECT, step, attempt=2)
    # And once more, as a replayed or reset step would: nothing changes.
    await run(worker, CREATE_ERP_PROJECT, step, attempt=3)
    assert [e.event for e in worker.ledger.audit_trail(c)] == [
        "entered validating",
        "entered provisioning_erp",
        "erp customer ready; project next",
    ]
    assert worker.ledger.get_contract(c).stage == Stage.ACTIVATING_PSA  # type: ignore[union-attr]
    assert worker.ledger.xrefs_for(c)["erp_project_id"] == project.external_id
    projects = [x for x in worker.ledger.list_xrefs(c) if x.kind == "project"]
    assert len(projects) == 1
