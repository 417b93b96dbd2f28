"""The baselines' worker: trivial workflows and activities on the benchmark's own server.

Each benchmark divides c2c's figure by the same figure of a baseline measured in the same run,
on the same Temporal server, so that the ratio holds on a shared, noisy machine:

- ``BenchOnboardingBaseline`` runs a given number of activities that do nothing, one after the
  other, as c2c's onboarding runs its steps, as many of them local as c2c's are;
- ``BenchParkedBaseline`` waits for ``close_period`` as a parked contract does; given a PSA
  project, it then reads that project's approved time through c2c's PSA connector (the month-end
  baseline: reading without pricing or invoicing), else it just ends (the parked baseline).

Run it as ``python -m bench.baseline_worker`` (the stack does), configured like ``c2c worker``
by ``TEMPORAL_ADDRESS`` and ``C2C_SANDBOX_URL``; it polls ``bench-baseline``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from c2c.logs import configure_logging
    from c2c.settings import Settings, get_settings
    from c2c.temporal import connect
    from connectors.psa import HttpPsa
    from connectors.records import TimeEntry
    from domain.names import SIGNAL_CLOSE_PERIOD

BASELINE_TASK_QUEUE = "bench-baseline"
ONBOARDING_BASELINE = "BenchOnboardingBaseline"
PARKED_BASELINE = "BenchParkedBaseline"
NOOP = "bench_noop"
READ_ENTRIES = "bench_read_entries"

#: The same attempt timeout as a c2c step's default (C2C_STEP_TIMEOUT_S).
ACTIVITY_TIMEOUT = timedelta(seconds=60)


@activity.defn(name=NOOP)
async def noop() -> None:
    """Does nothing: what remains is Temporal's and the SDK's cost of one activity."""


class EntryReader:
    """Reads a project's approved, billable time as c2c's billing step pages it."""

    def __init__(self, psa: HttpPsa) -> None:
        self.psa = psa

    @activity.defn(name=READ_ENTRIES)
    async def read_entries(self, project_id: str) -> int:
        """Every approved, billable time entry of ``project_id``, parsed; returns the count."""
        count = 0
        async for page in self.psa.pages(
            f"/projects/{project_id}/time-entries", {"approved": True, "billable": True}
        ):
            count += len([TimeEntry.model_validate(item) for item in page])
            activity.heartbeat(count)
        return count


@workflow.defn(name=ONBOARDING_BASELINE)
class OnboardingBaseline:
    """``activities`` do-nothing activities in a row, the last ``local`` of them local ones
    (as c2c's ledger writes are)."""

    @workflow.run
    async def run(self, activities: int, local: int = 0) -> int:
        for n in range(activities):
            if n >= activities - local:
                await workflow.execute_local_activity(NOOP, start_to_close_timeout=ACTIVITY_TIMEOUT)
            else:
                await workflow.execute_activity(NOOP, start_to_close_timeout=ACTIVITY_TIMEOUT)
        return activities


@workflow.defn(name=PARKED_BASELINE)
class ParkedBaseline:
    """Waits for ``close_period``; then reads the project's time, if it was given one."""

    def __init__(self) -> None:
        self._period: str | None = None

    @workflow.signal(name=SIGNAL_CLOSE_PERIOD)
    def close_period(self, request: dict[str, str]) -> None:
        self._period = request["period"]

    @workflow.run
    async def run(self, project_id: str | None) -> int:
        await workflow.wait_condition(lambda: self._period is not None)
        if project_id is None:
            return 0
        entries: int = await workflow.execute_activity(
            READ_ENTRIES,
            project_id,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            heartbeat_timeout=ACTIVITY_TIMEOUT,
        )
        return entries


async def run_baseline_worker(settings: Settings) -> None:
    """Poll ``bench-baseline`` until cancelled."""
    client = await connect(settings)
    psa = HttpPsa(settings.system_url("psa"), timeout_s=settings.connector_timeout_s)
    try:
        async with Worker(
            client,
            task_queue=BASELINE_TASK_QUEUE,
            workflows=[OnboardingBaseline, ParkedBaseline],
            activities=[noop, EntryReader(psa).read_entries],
        ):
            await asyncio.Event().wait()
    finally:
        await psa.aclose()


def main() -> None:
    """``python -m bench.baseline_worker``: run until SIGINT or SIGTERM."""
    from starter.cli.main import run_until_signalled

    # Logged as c2c's worker is (level and format from C2C_LOG_*), so neither pays for more.
    configure_logging("bench-baseline")
    # On the event loop c2c's worker runs on (C2C_EVENT_LOOP), so neither gets a faster one.
    settings = get_settings()
    run_until_signalled(run_baseline_worker(settings), loop=settings.event_loop)
    sys.stdout.flush()
    # Skip the interpreter's teardown, where the SDK's runtime can crash (sdk-python#300).
    os._exit(0)


if __name__ == "__main__":
    main()
