"""Every log line an activity writes names its contract, workflow, run and step."""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from domain.names import contract_id_from_workflow_id


class _BindActivityContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        workflow_id = info.workflow_id or ""
        # Each activity runs in its own task, so the bound values stay with this execution.
        with structlog.contextvars.bound_contextvars(
            contract_id=contract_id_from_workflow_id(workflow_id),
            workflow_id=workflow_id,
            run_id=info.workflow_run_id,
            activity=info.activity_type,
            attempt=info.attempt,
        ):
            return await super().execute_activity(input)


class ActivityLogContext(Interceptor):
    """Worker interceptor that binds the activity's identity to structlog's context."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindActivityContext(next)
