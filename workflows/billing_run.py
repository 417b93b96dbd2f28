"""``BillingRun``: one legal entity's period close on its billing day, started by a Temporal
Schedule (see ``domain/billing_runs.py`` for what it decides, and ``c2c billing schedule``).

The workflow decides the period from the time the Schedule meant it to run, so a backfilled
run closes the month it would have closed then. One activity sends ``close_period`` to each
running contract of the entity; a contract that has closed the period already does nothing,
so running again bills nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

from domain.billing_runs import (
    BILLING_RUN_WORKFLOW_TYPE,
    CLOSE_PERIOD_FOR_ENTITY,
    SCHEDULED_START_TIME,
    BillingRunRequest,
    BillingRunResult,
    CloseForEntity,
    period_to_close,
)
from domain.contract_state import local_time
from domain.errors import BUSINESS_REJECTION

SCHEDULED_AT = SearchAttributeKey.for_datetime(SCHEDULED_START_TIME)
#: Listing and signalling an entity's contracts; the activity heartbeats as it goes.
CLOSE_TIMEOUT = timedelta(minutes=30)
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[BUSINESS_REJECTION],
)


@workflow.defn(name=BILLING_RUN_WORKFLOW_TYPE)
class BillingRun:
    @workflow.run
    async def run(self, request: BillingRunRequest) -> BillingRunResult:
        info = workflow.info()
        due: datetime = info.typed_search_attributes.get(SCHEDULED_AT) or workflow.now()
        local = local_time(due, request.time_zone)
        day = local.date()
        if request.period is not None:
            period = request.period
        else:
            found = period_to_close(local, request.billing_day)
            if found is None:
                return BillingRunResult(
                    legal_entity=request.legal_entity,
                    local_date=day,
                    skipped=f"{day} is not the billing day ({request.billing_day.describe()}, "
                    f"{request.time_zone}): nothing closed",
                )
            period = str(found)
        signalled = await workflow.execute_activity(
            CLOSE_PERIOD_FOR_ENTITY,
            CloseForEntity(
                legal_entity=request.legal_entity,
                excluded=request.excluded,
                period=period,
                requested_by=f"schedule:{info.workflow_id}",
                task_queue=info.task_queue,
            ),
            result_type=int,
            start_to_close_timeout=CLOSE_TIMEOUT,
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        return BillingRunResult(
            legal_entity=request.legal_entity,
            local_date=day,
            period=period,
            contracts_signalled=signalled,
        )
