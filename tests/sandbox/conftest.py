"""Fixtures: one sandbox server per test session, reset before each test, and a webhook receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.testing import run_sandbox_in_thread
from tests.sandbox.support import WEBHOOK_SECRET, Received, WebhookReceiver


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers), body))
                planned = receiver.planned.get(self.path)
                status = planned.pop(0) if planned else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def sandbox_server(
    tmp_path_factory: pytest.TempPathFactory, webhook_receiver: WebhookReceiver
) -> Iterator[str]:
    """The base URL of a sandbox shared by the session's tests."""
    db_path: Path = tmp_path_factory.mktemp("sandbox") / "sandbox.db"
    with run_sandbox_in_thread(
        f"sqlite:///{db_path}", webhook_receiver.url, [WEBHOOK_SECRET, "whsec-older"]
    ) as base_url:
        yield base_url


@pytest.fixture
def fresh_sandbox(sandbox_server: str, webhook_receiver: WebhookReceiver) -> str:
    """The shared sandbox, reset to its demo data."""
    httpx.post(f"{sandbox_server}/_admin/reset").raise_for_status()
    webhook_receiver.clear()
    return sandbox_server


@pytest.fixture
def client(fresh_sandbox: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fresh_sandbox, timeout=10.0) as http:
        yield http
