"""Replay the committed histories of representative contracts on today's workflow code.

A change to ``ContractToCash`` that would make a running contract's history diverge (a new
activity before an old one, a timer removed, a step reordered) fails here, in CI, instead of
on a worker in production. No Temporal server is needed: the Replayer runs the workflow code
against each recorded history. How to ship such a change: tests/histories/README.md.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.carried import ContractRun
from domain.consolidation import CustomerBillingStart
from domain.names import BillingModel, contract_workflow_id
from workflows.contract_to_cash import ContractToCash
from workflows.customer_billing import CustomerBilling
from workflows.releases import PATCH_RELEASE

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
HISTORY_FILES = sorted(HISTORIES.glob("*.json"))
SHIPPING = "tests/histories/README.md, section 'Shipping a workflow change'"


def run_of(text: str) -> ContractRun:
    """What a history was started with: the input of its first event, an approved contract
    and, for a run that continued another, the state carried over."""
    history = WorkflowHistory.from_json("unknown", text)
    started = history.events[0].workflow_execution_started_event_attributes
    payload = started.input.payloads[0]
    run = pydantic_data_converter.payload_converter.from_payload(payload, ContractRun)
    assert isinstance(run, ContractRun)
    return run


@pytest.mark.parametrize("path", HISTORY_FILES, ids=[p.stem for p in HISTORY_FILES])
async def test_committed_history_replays_on_todays_code(path: Path) -> None:
    text = path.read_text()
    history = WorkflowHistory.from_json(contract_workflow_id(run_of(text).contract_id), text)
    await replays_or_fails(
        history,
        ContractToCash,
        f"{path.name} no longer replays: contracts running on the old code would break when a "
        "worker with this change picks them up",
    )


async def replays_or_fails(history: WorkflowHistory, workflow: type, broken: str) -> None:
    """Replay ``history`` on today's ``workflow``; fail saying ``broken`` if it diverges."""
    result = await Replayer(
        workflows=[workflow], data_converter=pydantic_data_converter
    ).replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is not None:
        pytest.fail(
            f"{broken} ({result.replay_failure!r}). Guard the change with workflow.patched "
            f"(see {SHIPPING}).",
            pytrace=False,
        )


CUSTOMER_BILLING_FILES = sorted((HISTORIES / "customer_billing").glob("*.json"))


@pytest.mark.parametrize(
    "path", CUSTOMER_BILLING_FILES, ids=[p.stem for p in CUSTOMER_BILLING_FILES]
)
async def test_committed_customer_billing_history_replays_on_todays_code(path: Path) -> None:
    """A customer's billing workflow runs as long as the customer: its recorded history must
    replay on today's ``CustomerBilling`` as a contract's does on ``ContractToCash``."""
    assert CUSTOMER_BILLING_FILES, "no customer billing history under tests/histories/"
    history = WorkflowHistory.from_json("customer-billing", path.read_text())
    await replays_or_fails(
        history,
        CustomerBilling,
        f"customer_billing/{path.name} no longer replays: customers' billing workflows running "
        "on the old code would break",
    )


def test_a_committed_customer_billing_history_starts_from_folded_carried_state() -> None:
    """A customer's billing that continued as new: one run ends in the hand-over, and a later
    one starts from carried state with paid invoices folded."""
    texts = [path.read_text() for path in CUSTOMER_BILLING_FILES]
    assert any("CONTINUED_AS_NEW" in text for text in texts), "no run ends in continue-as-new"
    converter = pydantic_data_converter.payload_converter
    starts = [
        converter.from_payload(
            WorkflowHistory.from_json("customer-billing", text)
            .events[0]
            .workflow_execution_started_event_attributes.input.payloads[0],
            CustomerBillingStart,
        )
        for text in texts
    ]
    assert any(s.carried and s.carried.folded for s in starts), "no carried run folded invoices"


def test_a_committed_history_starts_from_carried_state() -> None:
    """Among the histories, runs that continued as new: one ending in the hand-over, and ones
    started from carried state with settled invoices folded and history lines left behind."""
    texts = [path.read_text() for path in HISTORY_FILES]
    assert any("CONTINUED_AS_NEW" in text for text in texts), "no run ends in continue-as-new"
    carried = [run.carried for run in map(run_of, texts) if run.carried is not None]
    assert any(c.collections.settled.count for c in carried), "no carried run folded invoices"
    assert any(c.history_omitted for c in carried), "no carried run left history behind"


def test_every_billing_model_has_a_committed_history() -> None:
    models = {run_of(path.read_text()).billing_model for path in HISTORY_FILES}
    missing = set(BillingModel) - models
    assert not missing, (
        f"no history under tests/histories/ for {sorted(missing)}: add one to "
        "tests/histories/record.py and record it (see tests/histories/README.md)"
    )


def markers(text: str) -> str:
    """The decoded payloads of a history's markers: patch ids, local activities' types."""
    found = []
    for event in json.loads(text)["events"]:
        details = event.get("markerRecordedEventAttributes", {}).get("details", {})
        for payloads in details.values():
            for payload in payloads.get("payloads", []):
                found.append(base64.b64decode(payload.get("data", "")).decode("utf-8", "replace"))
    return "\n".join(found)


def test_a_committed_history_is_a_run_a_reset_started() -> None:
    """A reset's run: signals and updates delivered again in its first task, among them an
    update the replay meets after the signals beside it (their live order is in history);
    and an ordered-inbox run that continued as new."""
    texts = [path.read_text() for path in HISTORY_FILES]
    reset = [t for t in texts if "WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW" in t]
    assert any("UPDATE_ADMITTED" in t and "record_arrival_order" in markers(t) for t in reset), (
        "no committed history of a reset run with a redelivered update"
    )
    ordered = ("ordered-inbox", PATCH_RELEASE)
    assert any(
        any(patch in markers(t) for patch in ordered) and "CONTINUED_AS_NEW" in t for t in texts
    ), "no committed history of an ordered-inbox run that continued as new"
    assert any(PATCH_RELEASE in markers(t) and "CONTINUED_AS_NEW" in t for t in texts), (
        "no committed history of a run with the release marker that continued as new"
    )
