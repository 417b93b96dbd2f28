"""``c2c ops reset``: Temporal's reset of a contract's workflow, with a safe default.

A reset starts a new run from a workflow task of the old one; the steps after that point run
again. That is safe by construction, whichever way the reset is made (this command, the
``temporal`` CLI or the Temporal UI's Reset button):

- every step finds what it already created (idempotency keys are built from the workflow id and
  the business step, never the run id);
- Temporal delivers every signal and update received after the point again, in their order,
  and the contract decides them in that order from one inbox, so each gets the decision it got
  before (an amendment refused for an invoiced period stays refused);
- an exception the new run opens again has the same id, so the operator's decision delivered
  again finds it, and one it does not open again is marked ``superseded`` in the ledger.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

from domain.models import Amendment
from domain.names import UPDATE_APPLY_AMENDMENT, contract_workflow_id

FIRST = "first"
LAST_FAILURE = "last-failure"

#: History events that mark a step or a workflow task that went wrong.
FAILURES = frozenset(
    {
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    }
)
TASK_DONE = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
UPDATE_ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
UPDATE_ADMITTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED


class ResetRefused(ValueError):
    """The reset point asked for does not exist in the contract's history."""


@dataclass(frozen=True)
class ResetDone:
    contract_id: str
    event_id: int
    old_run_id: str
    new_run_id: str
    #: Amendments accepted as updates after the reset point: Temporal delivers them again.
    amendments_redelivered: list[str] = field(default_factory=list)


def reset_point(events: list[HistoryEvent], to: str) -> int:
    """The id of the workflow-task event to reset to.

    Args:
        events: the current run's history.
        to: ``first`` (the first workflow task: the whole contract runs again),
            ``last-failure`` (the last workflow task before the first failure), or an event id
            of a completed workflow task.

    Raises:
        ResetRefused: no such point, with the reason.
    """
    completed = [e.event_id for e in events if e.event_type == TASK_DONE]
    if not completed:
        raise ResetRefused("the contract has not completed a workflow task yet")
    if to == FIRST:
        return completed[0]
    if to == LAST_FAILURE:
        failure = next((e.event_id for e in events if _failed(e)), None)
        if failure is None:
            raise ResetRefused(
                "the contract's history has no failure; reset --to first or to an event id"
            )
        before = [event_id for event_id in completed if event_id < failure]
        if not before:
            raise ResetRefused("the first failure came before any completed workflow task")
        return before[-1]
    try:
        event_id = int(to)
    except ValueError:
        raise ResetRefused(f"{to!r} is not first, last-failure or an event id") from None
    if event_id not in completed:
        raise ResetRefused(
            f"event {event_id} is not a completed workflow task; choose one of "
            f"{', '.join(map(str, completed[-10:]))}"
        )
    return event_id


def _failed(event: HistoryEvent) -> bool:
    """Whether an event is a failure, not counting the mark a reset leaves in its new run."""
    if event.event_type not in FAILURES:
        return False
    failed = event.workflow_task_failed_event_attributes
    return not (
        event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        and failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
    )


async def reset_contract(
    client: Client, contract_id: str, to: str = LAST_FAILURE, *, reason: str
) -> ResetDone:
    """Reset the contract's workflow to ``to`` (see ``reset_point``); signals are reapplied."""
    handle = client.get_workflow_handle(contract_workflow_id(contract_id))
    described = await handle.describe()
    history = await handle.fetch_history()
    events = list(history.events)
    event_id = reset_point(events, to)
    amendments = await _amendments_after(client, events, event_id)
    response = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=handle.id, run_id=described.run_id),
            reason=reason,
            workflow_task_finish_event_id=event_id,
            # The same request id makes a retried call one reset, not two.
            request_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{described.run_id}:{event_id}")),
            # Nothing excluded: signals and updates after the point are applied again.
            reset_reapply_exclude_types=[],
        )
    )
    return ResetDone(
        contract_id=contract_id,
        event_id=event_id,
        old_run_id=described.run_id,
        new_run_id=response.run_id,
        amendments_redelivered=[a.amendment_id for a in amendments],
    )


async def _amendments_after(
    client: Client, events: list[HistoryEvent], event_id: int
) -> list[Amendment]:
    """The amendments the contract took as updates after ``event_id``.

    An update that a reset delivered again is recorded as admitted, with its request, and then
    accepted without one; any other update is accepted with its request.
    """
    found = []
    for event in events:
        if event.event_id <= event_id:
            continue
        if event.event_type == UPDATE_ADMITTED:
            request = event.workflow_execution_update_admitted_event_attributes.request
        elif event.event_type == UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        else:
            continue
        if request.input.name != UPDATE_APPLY_AMENDMENT or not request.input.args.payloads:
            continue
        [amendment] = await client.data_converter.decode(request.input.args.payloads, [Amendment])
        found.append(amendment)
    return found
