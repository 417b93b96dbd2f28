"""Payloads and requests shared by the starter tests."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from c2c.logs import configure_logging
from c2c.signing import sign
from domain.names import SIGNATURE_HEADER
from tests.support import approval_payload

VIEWER_TOKEN = "viewer-token-123"
OPERATOR_TOKEN = "operator-token-456"


def approval(contract_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """A ``ContractApproved`` payload for a new contract, with ``changes`` applied."""
    return approval_payload(contract_id, **changes)


def event(kind: str, data: dict[str, Any]) -> bytes:
    """A webhook body."""
    return json.dumps({"id": f"evt_{uuid.uuid4().hex[:8]}", "type": kind, "data": data}).encode()


def signed(body: bytes, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a webhook signed with ``secret``."""
    return {
        SIGNATURE_HEADER: sign(body, secret, timestamp=timestamp),
        "Content-Type": "application/json",
    }


@contextmanager
def captured_logs(component: str, level: str = "INFO") -> Iterator[io.StringIO]:
    """The process's log lines as JSON, configured as ``component`` configures them; the
    default configuration is restored after."""
    out = io.StringIO()
    configure_logging(component, fmt="json", level=level, stream=out)
    try:
        yield out
    finally:
        reset_logging()


def reset_logging() -> None:
    """Undo ``configure_logging``: structlog's defaults, no root handler, no bound ids."""
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def cli_environment(**variables: str) -> dict[str, str]:
    """This process's environment without its ``C2C_*`` and ``TEMPORAL_*`` variables, with
    ``variables`` instead: what a ``c2c`` run under test reads is only what the test says."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}
    return {**clean, **variables}


async def run_c2c(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``c2c`` in its own process, as a user runs it, waited for in a thread: the session's
    worker runs on this event loop and must answer what the command asks meanwhile."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "starter.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
