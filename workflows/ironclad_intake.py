"""``IroncladIntake``: a completed Ironclad workflow read into an approval.

The API verifies Ironclad's ``workflow_completed`` webhook and records it, but never calls
Ironclad (every call to a system is an activity). It starts this workflow, which reads the
Ironclad workflow's attributes in an activity and returns the approval they describe, or the
refusal naming the field at fault; the API then starts the contract, or keeps the event as a
dead letter with the reason. Its id is built from the Ironclad workflow's id
(``intake_workflow_id``), so a resent event joins the intake already running.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.ironclad import (
        INTAKE_WORKFLOW_TYPE,
        READ_IRONCLAD_APPROVAL,
        IroncladIntakeRequest,
        IroncladIntakeResult,
    )

#: Ironclad unreachable is retried with backoff for a day; the API answers 503 meanwhile, and
#: the event is delivered again by Ironclad's retries or c2c's event queue.
READ_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
)
READ_TIMEOUT = timedelta(seconds=60)
READ_DEADLINE = timedelta(days=1)


@workflow.defn(name=INTAKE_WORKFLOW_TYPE)
class IroncladIntake:
    """Reads one completed Ironclad workflow; returns the approval or why there is none."""

    @workflow.run
    async def run(self, request: IroncladIntakeRequest) -> IroncladIntakeResult:
        try:
            return await workflow.execute_activity(
                READ_IRONCLAD_APPROVAL,
                request,
                result_type=IroncladIntakeResult,
                start_to_close_timeout=READ_TIMEOUT,
                schedule_to_close_timeout=READ_DEADLINE,
                retry_policy=READ_RETRY,
            )
        except ActivityError as exc:
            # Only a day of failures ends here: a refusal an operator can replay.
            cause = exc.cause or exc
            return IroncladIntakeResult(
                field="payload.workflowID",
                reason=f"payload.workflowID: workflow {request.workflow_id} could not be read "
                f"from Ironclad: {cause}",
            )
