"""Timeouts and retry policies of the contract's steps, in one place."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from domain.errors import BUSINESS_REJECTION

#: A system call that keeps failing transiently is retried with backoff for about ten minutes,
#: then becomes an exception in the integration queue instead of retrying silently forever.
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=14,
    non_retryable_error_types=[BUSINESS_REJECTION],
)

#: c2c's own ledger: retried until it answers, because an audit write must not be lost.
LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)

#: The same write as a local activity first: four attempts over about seven seconds, inside the
#: workflow task (no history events), before it goes on under ``LEDGER_RETRY`` as an ordinary
#: activity. (A local activity's retries beyond that would add a workflow task every few
#: seconds to the history; an ordinary activity's add none.)
LOCAL_LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_attempts=4,
)

STEP_TIMEOUT = timedelta(seconds=60)
#: Billing pages through a period's work; it heartbeats per page, and goes without a
#: heartbeat no longer than one step may take.
BILLING_TIMEOUT = timedelta(minutes=15)
