"""What the API's handlers share: settings, the Temporal client, the ledger.

Each is made on first use, so the API starts (and answers ``/healthz``) while Temporal or the
database is still coming up; ``/readyz`` tells when Temporal is reachable.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from c2c.logs import get_logger
from c2c.settings import Settings
from c2c.temporal import connect
from starter.api.errors import ApiError

if TYPE_CHECKING:
    from ledger import Ledger
    from starter.ops.dead_letters import WaitingRecorder
    from starter.ops.event_queue import EventQueue

log = get_logger("c2c.api")

#: How long ``/readyz`` waits for Temporal's health check.
HEALTH_TIMEOUT = timedelta(seconds=3)


class ApiContext:
    """The API's shared resources.

    Args:
        settings: The configuration.
        client: A connected Temporal client; without one, the API connects on first use.
    """

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self._client = client
        self._lock = asyncio.Lock()
        self._ledger: Ledger | None = None
        #: The event queue, when ``C2C_WEBHOOK_QUEUE`` is on (set by the app factory).
        self.event_queue: EventQueue | None = None
        #: Records the events queued by this process (``starter.ops.dead_letters.WaitingRecorder``).
        self.waiting_recorder: WaitingRecorder | None = None

    async def temporal(self) -> Client:
        """The Temporal client, connecting if needed.

        Raises:
            ApiError: ``503`` if Temporal cannot be reached.
        """
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await connect(self.settings)
                except Exception as exc:
                    log.warning(
                        "temporal unreachable",
                        address=self.settings.temporal_address,
                        error=str(exc),
                    )
                    raise ApiError(
                        503,
                        "temporal_unavailable",
                        f"Temporal at {self.settings.temporal_address} is not reachable",
                    ) from None
        return self._client

    async def temporal_ready(self) -> bool:
        """Whether Temporal answers its health check now."""
        try:
            client = await self.temporal()
            return await client.service_client.check_health(timeout=HEALTH_TIMEOUT)
        except Exception:
            return False

    async def ledger(self) -> Ledger:
        """The ledger (its tables created on first use, off the event loop); kept once made,
        so a request does not pay a thread hop to look it up again."""
        if self._ledger is None:
            from ledger import get_ledger

            self._ledger = await run_in_threadpool(get_ledger, self.settings.ledger_url)
        return self._ledger


def context_of(request: Request) -> ApiContext:
    """The app's context (set by the app factory)."""
    context: ApiContext = request.app.state.context
    return context


async def api_context(request: Request) -> ApiContext:
    """Dependency: the app's context. A coroutine, so that FastAPI calls it on the event loop
    rather than in a worker thread, as it does a plain function."""
    return context_of(request)
