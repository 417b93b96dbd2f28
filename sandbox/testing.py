"""Run the sandbox inside a test process: a real server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
import uvicorn

from sandbox.app import create_app


@contextmanager
def run_sandbox_in_thread(
    database_url: str,
    webhook_target: str,
    webhook_secrets: Sequence[str],
    *,
    load_demo: bool = True,
    startup_timeout_s: float = 15.0,
) -> Iterator[str]:
    """Serve a sandbox from a background thread for the duration of the block.

    Args:
        database_url: Its database, e.g. ``f"sqlite:///{tmp_path / 'sandbox.db'}"``.
        webhook_target: Base URL that its webhooks are posted to.
        webhook_secrets: Webhook secrets; the first signs.
        load_demo: Load the demo data (into a new database and on reset).
        startup_timeout_s: How long to wait for the server to answer.

    Yields:
        Its base URL, ``http://127.0.0.1:<port>``.
    """
    app = create_app(
        database_url,
        webhook_target=webhook_target,
        webhook_secrets=list(webhook_secrets),
        load_demo=load_demo,
    )
    # Binding here, not in uvicorn, means the port is known and cannot be taken meanwhile.
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every keep-alive request waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sandbox-server", daemon=True
    )
    thread.start()
    try:
        _wait_until_ready(base_url, thread, startup_timeout_s)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _wait_until_ready(base_url: str, thread: threading.Thread, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the sandbox server stopped during start-up")
        try:
            if httpx.get(f"{base_url}/_admin/stats", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"the sandbox did not answer at {base_url} within {timeout_s} s")
