"""Log lines of a real contract: JSON with its ids on every activity and workflow line, and
no workflow line written twice when a history is replayed (a restarted worker, the Replayer)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from c2c.settings import Settings
from domain.models import ClosePeriod
from starter.api.contracts import close_period_for, contract_handle, start_contract
from tests.starter.helpers import captured_logs
from tests.workflows.helpers import add_time, approval, wait_for, wait_stage
from worker import contract_worker
from workflows.contract_to_cash import ContractToCash

#: The SDK's workflow logger, which ``workflow.logger`` writes through.
WORKFLOW_LOGGER = "temporalio.workflow"


@pytest.fixture
def debug_json() -> Iterator[io.StringIO]:
    """Every line of this process as the worker writes it with ``C2C_LOG_FORMAT=json``."""
    with captured_logs("worker", "DEBUG") as out:
        yield out


class Records(logging.Handler):
    """Keeps the records of one logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, contract_id: str) -> list[str]:
        """The messages logged for one contract, in order."""
        return [
            str(record.msg)
            for record in self.records
            if getattr(record, "contract_id", None) == contract_id
        ]


@pytest.fixture
def workflow_records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger(WORKFLOW_LOGGER)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.usefixtures("worker")
async def test_activity_and_workflow_lines_carry_the_contract_run_and_step(
    debug_json: io.StringIO, temporal_client: Client, settings: Settings
) -> None:
    event = approval()
    cid = event.contract_id
    started = await start_contract(temporal_client, event, task_queue=settings.task_queue)
    await wait_stage(temporal_client, cid, "active")

    lines = [json.loads(line) for line in debug_json.getvalue().splitlines() if line]
    mine = [line for line in lines if line.get("contract_id") == cid]
    ids = {"contract_id": cid, "workflow_id": f"contract-{cid}", "run_id": started.run_id}

    calls = [line for line in mine if line["event"] == "connector call"]
    # The tax engine's jurisdiction may be one the worker read for an earlier contract.
    assert (
        {"crm", "erp", "psa"} <= {line["system"] for line in calls} <= {"crm", "erp", "psa", "tax"}
    )
    for line in calls:
        assert line.items() >= ids.items(), line
        assert line["activity"] and line["attempt"] >= 1 and line["route"].startswith("/")
    assert {line["activity"] for line in calls} >= {"validate_contract", "activate_psa_project"}

    workflow_lines = [line for line in mine if "activity" not in line]
    assert workflow_lines, "the workflow logged nothing"
    for line in workflow_lines:
        assert line.items() >= ids.items(), line
        assert line["stage"] and "temporal_workflow" not in line


async def test_replaying_a_history_writes_no_workflow_line_twice(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    workflow_records: Records,
) -> None:
    own = settings.model_copy(update={"task_queue": f"c2c-replay-{uuid.uuid4().hex[:8]}"})
    event = approval()
    cid = event.contract_id
    async with contract_worker(temporal_client, own):
        await start_contract(temporal_client, event, task_queue=own.task_queue)
        status = await wait_stage(temporal_client, cid, "active")
    before_restart = workflow_records.of(cid)
    assert before_restart

    # A new worker has no cache: it replays the whole history before it handles the signal.
    async with contract_worker(temporal_client, own):
        await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-06", "6")
        await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
        status = await wait_for(
            temporal_client,
            cid,
            lambda s: bool(s.invoices) and bool(s.invoices[0].documents),
            what="the invoice and its documents",
        )
        # At rest: the steps after the invoice have logged their lines too.
        while True:
            await asyncio.sleep(0.5)
            again = await wait_for(temporal_client, cid, lambda s: True, what="status")
            if len(again.history) == len(status.history):
                break
            status = again
    logged = workflow_records.of(cid)
    # The workflow logs each entry of its history once: none again during the replay.
    assert len(logged) == len(status.history)
    for message, entry in zip(logged, status.history, strict=True):
        assert message.startswith(entry.event), (message, entry.event)
    assert logged[: len(before_restart)] == before_restart

    history = await contract_handle(temporal_client, cid).fetch_history()
    await Replayer(
        workflows=[ContractToCash], data_converter=pydantic_data_converter
    ).replay_workflow(history)
    assert workflow_records.of(cid) == logged
