"""``Reconcile``: c2c's ledger compared with the ERP for one legal entity (or all), every
difference reported and opened once as an ``integration`` exception.

The workflow only decides the batches; the activities read the ledger and the ERP (every call
to a system is an activity) and open the exceptions under ids made from each difference, so a
retried activity or a second run the same night opens nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from domain.errors import BUSINESS_REJECTION
from domain.reconcile import (
    COMPARE_WITH_ERP,
    CONTRACTS_TO_RECONCILE,
    OPEN_RECONCILE_EXCEPTIONS,
    RECONCILE_BATCH,
    RECONCILE_WORKFLOW_TYPE,
    ContractsToCompare,
    Difference,
    ReconcileBatch,
    ReconcileReport,
    ReconcileRequest,
)

#: Reading the ERP for a batch of contracts: each call pages a few lists per contract.
COMPARE_TIMEOUT = timedelta(minutes=5)
LEDGER_TIMEOUT = timedelta(minutes=1)
#: Transient failures (timeouts, 5xx, 429) are retried with backoff; a business error is not.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[BUSINESS_REJECTION],
)


@workflow.defn(name=RECONCILE_WORKFLOW_TYPE)
class Reconcile:
    @workflow.run
    async def run(self, request: ReconcileRequest) -> ReconcileReport:
        contracts = await workflow.execute_activity(
            CONTRACTS_TO_RECONCILE,
            request,
            result_type=ContractsToCompare,
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=RETRY,
        )
        ids = contracts.contract_ids
        differences: list[Difference] = []
        for start in range(0, len(ids), RECONCILE_BATCH):
            found = await workflow.execute_activity(
                COMPARE_WITH_ERP,
                ReconcileBatch(contract_ids=ids[start : start + RECONCILE_BATCH]),
                result_type=list[Difference],
                start_to_close_timeout=COMPARE_TIMEOUT,
                heartbeat_timeout=timedelta(minutes=1),
                retry_policy=RETRY,
            )
            # A consolidated invoice whose contracts are in two batches is found by both.
            differences += [d for d in found if d not in differences]
        opened = 0
        if differences:
            opened = await workflow.execute_activity(
                OPEN_RECONCILE_EXCEPTIONS,
                differences,
                result_type=int,
                start_to_close_timeout=LEDGER_TIMEOUT,
                retry_policy=RETRY,
            )
        return ReconcileReport(
            legal_entity=request.legal_entity,
            since=request.since,
            contracts=len(ids),
            differences=differences,
            exceptions_opened=opened,
        )
