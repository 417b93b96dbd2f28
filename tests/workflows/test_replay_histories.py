"""Replay the committed histories of representative contracts on today's workflow code.

A change to ``ContractToCash`` that would make a running contract's history diverge (a new
activity before an old one, a timer removed, a step reordered) fails here, in CI, instead of
on a worker in production. No Temporal server is needed: the Replayer runs the workflow code
against each recorded history. How to ship such a change: tests/histories/README.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.models import ContractApproved
from domain.names import BillingModel, contract_workflow_id
from workflows.contract_to_cash import ContractToCash

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
HISTORY_FILES = sorted(HISTORIES.glob("*.json"))
SHIPPING = "tests/histories/README.md, section 'Shipping a workflow change'"


def contract_of(text: str) -> ContractApproved:
    """The contract a history was started with: the input of its first event."""
    history = WorkflowHistory.from_json("unknown", text)
    started = history.events[0].workflow_execution_started_event_attributes
    payload = started.input.payloads[0]
    contract = pydantic_data_converter.payload_converter.from_payload(payload, ContractApproved)
    assert isinstance(contract, ContractApproved)
    return contract


@pytest.mark.parametrize("path", HISTORY_FILES, ids=[p.stem for p in HISTORY_FILES])
async def test_committed_history_replays_on_todays_code(path: Path) -> None:
    text = path.read_text()
    history = WorkflowHistory.from_json(contract_workflow_id(contract_of(text).contract_id), text)
    result = await Replayer(
        workflows=[ContractToCash], data_converter=pydantic_data_converter
    ).replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is not None:
        pytest.fail(
            f"{path.name} no longer replays: contracts running on the old code would break "
            f"when a worker with this change picks them up ({result.replay_failure!r}). "
            f"Guard the change with workflow.patched (see {SHIPPING}).",
            pytrace=False,
        )


def test_every_billing_model_has_a_committed_history() -> None:
    models = {contract_of(path.read_text()).billing_model for path in HISTORY_FILES}
    missing = set(BillingModel) - models
    assert not missing, (
        f"no history under tests/histories/ for {sorted(missing)}: add one to "
        "tests/histories/record.py and record it (see tests/histories/README.md)"
    )
