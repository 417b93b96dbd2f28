"""The reference and the floor: c2c's own onboarding calls, without c2c's workflow.

Both make the calls a c2c contract makes from its approval to ``active``, with the same
inputs, by calling c2c's real activity functions (``activities/registry.py``): validate the
contract, find or create the ERP customer, create the ERP project and the ERP contract, archive
the signed document when the approval carries one, create and activate the PSA project, then
write the remaining audit trail to the ledger. Each step carries the audit lines written since
the previous one, as c2c's steps do, so the ledger receives the same writes.

- **The reference** (``ReferenceOnboarding``, run by ``bench.reference_worker`` on the single
  task queue ``bench-reference``) is a plain workflow that runs those steps one after the
  other as activities on its own queue, the last audit write as a local activity, as c2c's
  ledger writes are. No stages, no search attributes, no holds, no inbox, no routing.
- **The floor** (``onboard_directly``, run by ``bench.floor``) makes the same calls from a
  plain asyncio program, with no Temporal server: each activity function runs in an in-process
  activity context (``temporalio.testing.ActivityEnvironment``) that gives it the workflow id
  its idempotency keys are made of.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.testing import ActivityEnvironment

with workflow.unsafe.imports_passed_through():
    from domain.models import ContractApproved
    from domain.names import Stage
    from domain.steps import (
        ACTIVATE_PSA_PROJECT,
        ARCHIVE_SIGNED_DOCUMENT,
        CREATE_ERP_CONTRACT,
        CREATE_ERP_PROJECT,
        ENSURE_ERP_CUSTOMER,
        RECORD_AUDIT,
        VALIDATE_CONTRACT,
        AuditEntry,
        ContractStep,
        CreatedRef,
        StepInput,
        Validated,
    )

REFERENCE_TASK_QUEUE = "bench-reference"
REFERENCE_ONBOARDING = "BenchReferenceOnboarding"
#: The same attempt timeout as a c2c step's default (C2C_STEP_TIMEOUT_S).
STEP_TIMEOUT = timedelta(seconds=60)


def onboarding_steps(contract: ContractApproved) -> list[tuple[str, Stage]]:
    """The remote steps a contract runs until ``active``, in c2c's order, with the stage each
    runs in."""
    steps = [
        (VALIDATE_CONTRACT, Stage.VALIDATING),
        (ENSURE_ERP_CUSTOMER, Stage.PROVISIONING_ERP),
        (CREATE_ERP_PROJECT, Stage.PROVISIONING_ERP),
        (CREATE_ERP_CONTRACT, Stage.PROVISIONING_ERP),
    ]
    if contract.signed_document is not None:
        steps.append((ARCHIVE_SIGNED_DOCUMENT, Stage.PROVISIONING_ERP))
    steps.append((ACTIVATE_PSA_PROJECT, Stage.ACTIVATING_PSA))
    return steps


def audit_line(workflow_id: str, seq: int, at: datetime, stage: Stage, event: str) -> AuditEntry:
    """An audit line keyed as c2c keys its own (workflow, run, sequence)."""
    return AuditEntry(key=f"{workflow_id}:reference:{seq}", at=at, stage=stage, event=event)


class Onboarding:
    """One contract's calls, in order; ``run`` drives them with whatever runs a step."""

    def __init__(self, workflow_id: str, contract: ContractApproved) -> None:
        self.workflow_id = workflow_id
        self.contract = contract
        self.refs: dict[str, str] = {}
        self._seq = 0

    def line(self, at: datetime, stage: Stage, event: str) -> AuditEntry:
        self._seq += 1
        return audit_line(self.workflow_id, self._seq, at, stage, event)

    def step_input(self, audit: list[AuditEntry]) -> ContractStep:
        return ContractStep(
            contract_id=self.contract.contract_id,
            audit=audit,
            contract=self.contract,
            refs=dict(self.refs),
        )

    def took(self, result: Any) -> str:
        """Keep what a step created; the audit line c2c writes for it."""
        if isinstance(result, CreatedRef):
            self.refs[result.ref_name] = result.external_id
            return f"{result.system} {result.kind} {result.external_id} ready"
        if isinstance(result, Validated):
            return f"validated: tax jurisdiction {result.jurisdiction_code}"
        return "done"


@workflow.defn(name=REFERENCE_ONBOARDING)
class ReferenceOnboarding:
    """c2c's onboarding steps in a row on one task queue, then the last audit write (local)."""

    @workflow.run
    async def run(self, contract: ContractApproved) -> int:
        calls = Onboarding(workflow.info().workflow_id, contract)
        pending = [calls.line(workflow.now(), Stage.RECEIVED, "approved in CLM")]
        steps = onboarding_steps(contract)
        for name, stage in steps:
            pending.append(calls.line(workflow.now(), stage, f"entered {stage.value}"))
            result = await workflow.execute_activity(
                name,
                calls.step_input(pending),
                result_type=Validated if name == VALIDATE_CONTRACT else CreatedRef,
                start_to_close_timeout=STEP_TIMEOUT,
            )
            pending = [calls.line(workflow.now(), stage, calls.took(result))]
        pending.append(calls.line(workflow.now(), Stage.ACTIVE, "contract active"))
        await workflow.execute_local_activity(
            RECORD_AUDIT,
            StepInput(contract_id=contract.contract_id, audit=pending),
            start_to_close_timeout=STEP_TIMEOUT,
        )
        return len(steps) + 1


def _environment(workflow_id: str, step: str) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_id=workflow_id,
        workflow_run_id="floor",
        workflow_type=REFERENCE_ONBOARDING,
        activity_type=step,
        task_queue="floor",
    )
    return env


async def onboard_directly(
    steps: Mapping[str, Callable[..., Any]], workflow_id: str, contract: ContractApproved
) -> int:
    """The floor: the reference's calls for one contract, made in process, no Temporal."""
    calls = Onboarding(workflow_id, contract)
    pending = [calls.line(datetime.now(UTC), Stage.RECEIVED, "approved in CLM")]
    plan = onboarding_steps(contract)
    for name, stage in plan:
        pending.append(calls.line(datetime.now(UTC), stage, f"entered {stage.value}"))
        result = await _environment(workflow_id, name).run(steps[name], calls.step_input(pending))
        pending = [calls.line(datetime.now(UTC), stage, calls.took(result))]
    pending.append(calls.line(datetime.now(UTC), Stage.ACTIVE, "contract active"))
    await _environment(workflow_id, RECORD_AUDIT).run(
        steps[RECORD_AUDIT], StepInput(contract_id=contract.contract_id, audit=pending)
    )
    return len(plan) + 1
