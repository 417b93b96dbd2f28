"""structlog as every component configures it: JSON on request, ids bound, secrets redacted."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from temporalio.testing import ActivityEnvironment
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from activities.log_context import ActivityLogContext
from c2c.logs import configure_logging, get_logger
from tests.starter.helpers import captured_logs, reset_logging


@pytest.fixture
def json_logs() -> Iterator[Any]:
    with captured_logs("worker") as out:

        def lines() -> list[dict[str, Any]]:
            return [json.loads(line) for line in out.getvalue().splitlines() if line]

        yield lines


def test_json_lines_carry_the_component_and_bound_ids(json_logs: Any) -> None:
    with structlog.contextvars.bound_contextvars(contract_id="C-1", workflow_id="contract-C-1"):
        get_logger("t").info("invoice issued", invoice_id="INV-1")
    [line] = json_logs()
    assert line["event"] == "invoice issued"
    assert line["component"] == "worker"
    assert (line["contract_id"], line["workflow_id"]) == ("C-1", "contract-C-1")
    assert line["level"] == "info" and line["timestamp"].endswith("Z")


def test_secrets_and_tax_ids_are_redacted_in_every_logger(json_logs: Any) -> None:
    get_logger("t").info("customer", tax_id="DE123456789", token="s3cret", name="Initech")
    logging.getLogger("uvicorn.error").info(
        "started", extra={"authorization": "Bearer s3cret", "color_message": "\x1b[36mstarted"}
    )
    lines = json_logs()
    text = json.dumps(lines)
    assert "DE123456789" not in text and "s3cret" not in text and "\x1b" not in text
    assert lines[0]["tax_id"] == "[redacted]" and lines[0]["name"] == "Initech"
    assert lines[1]["authorization"] == "[redacted]"
    assert "color_message" not in lines[1]


async def test_activity_logs_are_bound_to_their_contract_and_run() -> None:
    seen: dict[str, Any] = {}

    class Record(ActivityInboundInterceptor):
        async def execute_activity(self, input: ExecuteActivityInput) -> Any:
            seen.update(structlog.contextvars.get_contextvars())
            return "done"

    interceptor = ActivityLogContext().intercept_activity(Record(None))  # type: ignore[arg-type]
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, workflow_id="contract-C-7", workflow_run_id="run-1", activity_type="bill_period"
    )

    async def run() -> Any:
        return await interceptor.execute_activity(None)  # type: ignore[arg-type]

    assert await env.run(run) == "done"
    assert seen["contract_id"] == "C-7"
    assert (seen["workflow_id"], seen["run_id"], seen["activity"]) == (
        "contract-C-7",
        "run-1",
        "bill_period",
    )
    assert structlog.contextvars.get_contextvars() == {}


async def test_sdk_activity_lines_keep_their_message_and_carry_the_ids_as_keys(
    json_logs: Any,
) -> None:
    from temporalio import activity

    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, workflow_id="contract-C-8", workflow_run_id="run-2", activity_type="bill_period"
    )

    def work() -> None:
        activity.logger.info("billed")

    env.run(work)
    line = next(line for line in json_logs() if line["event"].startswith("billed"))
    # The SDK would append its info dict to the message; the ids are keys instead.
    assert line["event"] == "billed"
    assert (line["contract_id"], line["workflow_id"], line["run_id"]) == (
        "C-8",
        "contract-C-8",
        "run-2",
    )


def test_lines_go_to_the_standard_error_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A component configured before its standard error was replaced (and the old one closed)
    writes to the new one, instead of failing on the closed stream."""
    configure_logging("api", fmt="json", level="INFO")
    try:
        first = io.StringIO()
        monkeypatch.setattr("sys.stderr", first)
        get_logger("t").info("one")
        first.close()
        second = io.StringIO()
        monkeypatch.setattr("sys.stderr", second)
        get_logger("t").info("two")
        assert json.loads(second.getvalue())["event"] == "two"
    finally:
        reset_logging()
