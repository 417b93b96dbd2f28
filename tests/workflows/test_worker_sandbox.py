"""The worker's workflow sandbox shares c2c's workflow modules between runs.

By default the SDK's sandbox imports a workflow's module afresh for every run it starts or
replays; the worker passes ``workflows`` through instead (worker.py explains the cost). These
tests hold that configuration, and that the default sandbox, which the replay tests use,
still imports its own copy and so still checks every call the workflow code makes.
"""

from __future__ import annotations

from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _fake_info
from temporalio.workflow import _Definition

from worker import PASSED_THROUGH, workflow_runner
from workflows.contract_to_cash import ContractToCash


def sandboxed_class(runner: SandboxedWorkflowRunner) -> object:
    """The ``ContractToCash`` class a new run in ``runner``'s sandbox is built from."""
    instance: WorkflowInstance = runner.create_instance(
        WorkflowInstanceDetails(
            payload_converter_factory=DataConverter.default._new_payload_converter,
            failure_converter_class=DataConverter.default.failure_converter_class,
            interceptor_classes=[],
            defn=_Definition.must_from_class(ContractToCash),
            info=_fake_info,
            randomness_seed=-1,
            extern_functions={},
            disable_eager_activity_execution=False,
            worker_level_failure_exception_types=[],
            patch_activation_callback=None,
            last_completion_result=Payloads(),
            last_failure=Failure(),
        )
    )
    return instance.globals_and_locals["__temporal_workflow_class"]  # type: ignore[attr-defined]


def test_the_workflow_modules_are_passed_through() -> None:
    runner = workflow_runner()
    assert "workflows" in PASSED_THROUGH
    assert set(PASSED_THROUGH) <= runner.restrictions.passthrough_modules


async def test_runs_share_the_workflow_class_instead_of_reimporting_it() -> None:
    # The same class object as the worker's own import: no module executed per run.
    assert sandboxed_class(workflow_runner()) is ContractToCash


async def test_the_default_sandbox_still_imports_its_own_copy() -> None:
    # What the replay tests run: a fresh, fully checked import of the workflow module.
    assert sandboxed_class(SandboxedWorkflowRunner()) is not ContractToCash
