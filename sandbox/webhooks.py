"""Outbound webhooks: recorded with the write that causes them, delivered signed, retried.

A delivery row is added in the same transaction as the change it reports (an outbox), so a
webhook is sent exactly when its change is committed. A background task posts it to the
target with ``X-C2C-Signature`` and retries after 1, 2, 4, 8 and 16 s until a ``2xx``; after
the last retry the delivery is ``failed``. Every attempt is kept for ``GET /_admin/webhooks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
from fastapi import Request
from sqlalchemy import event
from sqlmodel import Field, Session, col, select
from starlette.concurrency import run_in_threadpool

from c2c.logs import get_logger
from c2c.signing import sign
from sandbox.db import Database, Row, UtcDateTime, find, utcnow
from sandbox.paging import Page, equal_to, paginate
from sandbox.schemas import opt_timestamp, timestamp

log = get_logger(__name__)

#: The header that carries a delivery's signature, as c2c's webhook reference names it.
SIGNATURE_HEADER = "X-C2C-Signature"

BACKOFF_S: tuple[float, ...] = (1, 2, 4, 8, 16)
#: The longest the dispatcher sleeps without being woken, as a safety net.
MAX_IDLE_S = 5.0


class WebhookDelivery(Row, table=True):
    """One event to deliver to one URL."""

    __tablename__ = "sbx_webhook_delivery"

    event_id: str = Field(unique=True)
    type: str = Field(index=True)
    url: str
    payload: str
    status: str = Field(index=True)  # pending, delivered, failed, not_sent
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)


class WebhookAttempt(Row, table=True):
    """One POST of a delivery."""

    __tablename__ = "sbx_webhook_attempt"

    event_id: str = Field(index=True)
    number: int
    at: datetime = Field(sa_type=UtcDateTime)
    status_code: int | None = None
    error: str | None = None
    duration_ms: int


@dataclass(frozen=True)
class _Due:
    event_id: str
    url: str
    payload: str


class WebhookDispatcher:
    """Records webhook events and delivers them from a task on the server's event loop."""

    def __init__(
        self,
        db: Database,
        *,
        target: str,
        secrets: Sequence[str],
        backoff_s: Sequence[float] = BACKOFF_S,
        timeout_s: float = 5.0,
    ) -> None:
        self._db = db
        self._target = target.rstrip("/")
        self._secrets = list(secrets)
        self._backoff_s = tuple(backoff_s)
        self._timeout_s = timeout_s
        self._warned = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._in_flight: dict[str, asyncio.Task[None]] = {}

    def emit(
        self,
        session: Session,
        path: str,
        event_type: str,
        data: dict[str, Any],
        *,
        body: dict[str, Any] | None = None,
    ) -> str:
        """Record event ``event_type`` for ``{target}{path}`` in ``session``'s transaction.

        ``body``, if given, is sent as it is instead of c2c's envelope around ``data``: an
        event in a vendor's own shape (Salesforce's Change Data Capture).

        Returns:
            The event id (``evt_<hex>``).
        """
        event_id = f"evt_{uuid4().hex}"
        payload = body or {
            "id": event_id,
            "type": event_type,
            "created": int(time.time()),
            "data": data,
        }
        if not self._secrets and not self._warned:
            self._warned = True
            log.warning("no webhook secret configured: webhooks are recorded but not sent")
        now = utcnow()
        session.add(
            WebhookDelivery(
                event_id=event_id,
                type=event_type,
                url=f"{self._target}{path}",
                payload=json.dumps(payload, separators=(",", ":")),
                status="pending" if self._secrets else "not_sent",
                next_attempt_at=now if self._secrets else None,
                created_at=now,
            )
        )
        event.listen(session, "after_commit", lambda _: self.wake(), once=True)
        return event_id

    def wake(self) -> None:
        """Make the dispatcher look for due deliveries now; safe from any thread."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        """Start delivering, from the running event loop (also resumes pending deliveries)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=self._timeout_s)
        self._task = asyncio.create_task(self._run(), name="sandbox-webhooks")

    async def stop(self) -> None:
        """Stop delivering; pending deliveries stay pending in the database."""
        tasks = [t for t in (self._task, *self._in_flight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        self._task = self._client = self._loop = None

    def cancel_in_flight(self) -> None:
        """Abandon the attempts under way (their deliveries were just deleted by a reset)."""
        for task in self._in_flight.values():
            task.cancel()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                due, wait_s = await run_in_threadpool(self._find_due)
            except Exception:
                # Keep the dispatcher alive: the next look may well succeed.
                log.exception("cannot read the webhook deliveries")
                due, wait_s = [], MAX_IDLE_S
            for delivery in due:
                if delivery.event_id not in self._in_flight:
                    self._in_flight[delivery.event_id] = asyncio.create_task(
                        self._attempt(delivery)
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)

    def _find_due(self) -> tuple[list[_Due], float]:
        now = utcnow()
        with self._db.read() as session:
            pending = session.exec(
                select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending")
                .order_by(col(WebhookDelivery.next_attempt_at))
            ).all()
        due: list[_Due] = []
        wait_s = MAX_IDLE_S
        for d in pending:
            if d.next_attempt_at is None or d.next_attempt_at <= now:
                due.append(_Due(d.event_id, d.url, d.payload))
            else:
                wait_s = min(wait_s, (d.next_attempt_at - now).total_seconds())
        return due, max(wait_s, 0.01)

    async def _attempt(self, due: _Due) -> None:
        assert self._client is not None and self._wake is not None
        try:
            body = due.payload.encode()
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(body, self._secrets[0]),
            }
            started = time.monotonic()
            status_code: int | None = None
            error: str | None = None
            try:
                response = await self._client.post(due.url, content=body, headers=headers)
                status_code = response.status_code
                if not response.is_success:
                    error = f"HTTP {status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            duration_ms = int((time.monotonic() - started) * 1000)
            await run_in_threadpool(self._record, due.event_id, status_code, error, duration_ms)
        except Exception:
            log.exception("cannot record a webhook attempt", event_id=due.event_id)
        finally:
            self._in_flight.pop(due.event_id, None)
        # A retry may now be due sooner than the dispatcher planned to look again.
        self._wake.set()

    def _record(
        self, event_id: str, status_code: int | None, error: str | None, duration_ms: int
    ) -> None:
        now = utcnow()
        with self._db.write() as session:
            delivery = find(session, WebhookDelivery, WebhookDelivery.event_id, event_id)
            if delivery is None or delivery.status != "pending":
                return
            delivery.attempts += 1
            session.add(
                WebhookAttempt(
                    event_id=event_id,
                    number=delivery.attempts,
                    at=now,
                    status_code=status_code,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
            delivery.next_attempt_at = None
            if error is None:
                delivery.status = "delivered"
                delivery.delivered_at = now
            elif delivery.attempts > len(self._backoff_s):
                delivery.status = "failed"
            else:
                delay = self._backoff_s[delivery.attempts - 1]
                delivery.next_attempt_at = now + timedelta(seconds=delay)
            session.add(delivery)
        log.info(
            "webhook attempt",
            event_id=event_id,
            attempt=delivery.attempts,
            status_code=status_code,
            error=error,
            outcome=delivery.status,
        )


def list_deliveries(
    session: Session, page: Page, *, event_type: str | None, status: str | None
) -> dict[str, Any]:
    """A page of deliveries with their attempts, oldest first."""
    where = equal_to((WebhookDelivery.type, event_type), (WebhookDelivery.status, status))
    result = paginate(session, WebhookDelivery, page, _delivery_out, *where)
    ids = [item["event_id"] for item in result["items"]]
    attempts: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for attempt in session.exec(
        select(WebhookAttempt)
        .where(col(WebhookAttempt.event_id).in_(ids))
        .order_by(col(WebhookAttempt.id))
    ):
        attempts[attempt.event_id].append(
            {
                "number": attempt.number,
                "at": timestamp(attempt.at),
                "status_code": attempt.status_code,
                "error": attempt.error,
                "duration_ms": attempt.duration_ms,
            }
        )
    for item in result["items"]:
        item["attempts"] = attempts[item["event_id"]]
    return result


def _delivery_out(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "event_id": delivery.event_id,
        "type": delivery.type,
        "url": delivery.url,
        "status": delivery.status,
        "attempt_count": delivery.attempts,
        "payload": json.loads(delivery.payload),
        "created_at": timestamp(delivery.created_at),
        "next_attempt_at": opt_timestamp(delivery.next_attempt_at),
        "delivered_at": opt_timestamp(delivery.delivered_at),
    }


async def get_webhooks(request: Request) -> WebhookDispatcher:
    """FastAPI dependency: the app's webhook dispatcher."""
    dispatcher: WebhookDispatcher = request.app.state.webhooks
    return dispatcher
