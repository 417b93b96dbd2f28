"""c2c's API as processes of their own, killable, and the signed webhooks sent to them; a
PostgreSQL database of a run's own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from c2c.ports import free_port
from ledger import normalise_url
from starter.stack.components import component_argv
from tests.starter.helpers import signed
from tests.support import WEBHOOK_SECRET

#: The PostgreSQL server a test may create databases on (``postgresql://user@host:port/db``).
PG_URL_ENV = "C2C_TEST_DATABASE_URL"
START_TIMEOUT_S = 60.0


class ApiProcess:
    """``c2c api`` as its own process on a free loopback port, with the event queue on.

    Args:
        env: Its environment (the stack it talks to, its ledger); ``C2C_WEBHOOK_SECRET`` and
            ``C2C_WEBHOOK_QUEUE`` are set here.
        log: Where its output goes (appended, across restarts).
    """

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = {
            **env,
            "C2C_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "C2C_WEBHOOK_QUEUE": "true",
            "PYTHONUNBUFFERED": "1",
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                component_argv("api", "--host", "127.0.0.1", "--port", str(self.port)),
                env=self.env,
                stdout=out,
                stderr=out,
            )

    async def ready(self) -> None:
        """Wait until it answers ``/healthz``."""
        assert self.process is not None
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(int(START_TIMEOUT_S / 0.1)):
                assert self.process.poll() is None, f"the API exited; see {self.log}"
                try:
                    if (await http.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"the API did not answer; see {self.log}")

    def kill(self) -> None:
        """SIGKILL it: no shutdown, no grace for what it is doing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)


@asynccontextmanager
async def api_receiving(
    env: Mapping[str, str],
    log: Path,
    sandbox: httpx.AsyncClient,
    hooks: Mapping[str, tuple[str, dict[str, Any], dict[str, Any] | None]],
) -> AsyncIterator[ApiProcess]:
    """``c2c api`` started and ready, with each of the sandbox's senders pointed at it.

    ``hooks`` maps a sandbox admin path (``/_admin/stripe/webhook``) to the API path it sends
    to, the rest of the admin body (its signing keys), and the body that switches it off again
    when the API stops (``None``: left as it is).
    """
    api = ApiProcess({**env, "C2C_LOG_LEVEL": "WARNING"}, log)
    api.start()
    try:
        await api.ready()
        for admin, (path, body, _) in hooks.items():
            answer = await sandbox.put(admin, json={"url": f"{api.url}{path}", **body})
            assert answer.status_code == 200, answer.text
        yield api
    finally:
        for admin, (_, _, off) in hooks.items():
            if off is not None:
                await sandbox.put(admin, json=off)
        api.stop()


def envelope(kind: str, data: dict[str, Any], event_id: str | None = None) -> tuple[str, bytes]:
    """A webhook's event id and body."""
    event_id = event_id or f"evt_{uuid.uuid4().hex[:12]}"
    return event_id, json.dumps({"id": event_id, "type": kind, "data": data}).encode()


async def deliver(http: httpx.AsyncClient, url: str, body: bytes) -> int | None:
    """POST a webhook body, signed now; its status, or ``None`` when no answer came."""
    try:
        response = await http.post(url, content=body, headers=signed(body, WEBHOOK_SECRET))
    except httpx.HTTPError:
        return None
    return response.status_code


async def deliver_until_accepted(
    http: httpx.AsyncClient, url: str, body: bytes, attempts: int = 100
) -> int:
    """Deliver until the API answers 2xx (as a sender retries); that status."""
    for _ in range(attempts):
        status = await deliver(http, url, body)
        if status is not None and 200 <= status < 300:
            return status
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never accepted {body[:80]!r}")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new database on the server ``C2C_TEST_DATABASE_URL`` names, dropped afterwards: runs
    side by side never share one. Skips the test when the variable is not set."""
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"{PG_URL_ENV} is not set")
    name = f"c2c_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(normalise_url(base)).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
