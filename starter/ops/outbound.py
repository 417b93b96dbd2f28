"""Delivering outbound events to subscribers (``docs/events.md``).

Each API process runs one ``OutboundDispatcher``. It claims due deliveries from the ledger (a
lease, so a crashed process does not keep them, and several API replicas share the work
without sending the same delivery at once), POSTs each event to its subscriber, signed with
the subscription's secret as c2c's inbound webhooks are (``c2c.signing``), and settles it:

- a ``2xx`` answer delivers it;
- a timeout, a connection error, ``408``, ``429`` or a ``5xx`` leaves it pending, tried again
  after a pause that doubles per attempt, with jitter (a ``Retry-After`` is honoured), until
  the configured attempts or age run out: then it is ``failed``;
- any other answer (a ``3xx`` included: redirects are not followed) fails it at once.

Delivery is at least once: a subscriber that answered but whose answer was lost gets the event
again, with the same ``X-C2C-Event-Id``, and deduplicates by it.

The subscription's secret is kept sealed (``c2c.secret_box``) and opened only to sign; one a
0.10 ledger holds in clear is sealed on this first read. Each settled attempt is counted in
``c2c_outbound_deliveries_total`` and timed in ``c2c_outbound_delivery_duration_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from starlette.concurrency import run_in_threadpool

from c2c.logs import get_logger
from c2c.secret_box import SecretUnreadable, is_sealed, secret_box
from c2c.settings import Settings
from c2c.signing import sign
from domain.names import SIGNATURE_HEADER
from ledger import DeliveryStatus, Ledger
from ledger.outbound import DEFAULT_DELIVERY_CLAIM, ClaimedDelivery
from starter.api.context import ApiContext
from starter.api.metrics import observe_delivery_latency, record_delivery
from starter.ops.claim_loop import ClaimLoop

log = get_logger("c2c.api.outbound")

#: The headers that name the event delivered.
EVENT_ID_HEADER = "X-C2C-Event-Id"
EVENT_TYPE_HEADER = "X-C2C-Event-Type"
#: Deliveries sent at once by one API process.
DEFAULT_CONCURRENCY = 8
#: How often the dispatcher looks for due deliveries when nothing woke it.
DEFAULT_POLL = timedelta(seconds=1)
#: The longest pause between two attempts.
MAX_BACKOFF_S = 3600.0
#: Answers worth another attempt (besides every 5xx).
RETRIED_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended."""

    status: DeliveryStatus
    status_code: int | None
    error: str | None
    #: When to try again (a pending outcome only).
    retry_at: datetime | None = None
    #: Failed because the attempts or the age ran out on a transient failure.
    gave_up: bool = False


def event_body(claimed: ClaimedDelivery) -> bytes:
    """The JSON sent for an event: ``{id, type, created_at, data}``."""
    event = claimed.event
    envelope = {
        "id": event.event_id,
        "type": event.type,
        "created_at": event.created_at.astimezone(UTC).isoformat(),
        "data": event.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def backoff_s(attempts: int, base_s: float) -> float:
    """The pause after ``attempts`` attempts: ``base_s`` doubled per attempt, at most an hour,
    with "equal jitter" (between half of it and all of it), so subscribers recovering from an
    outage are not hit by every retry at once."""
    full = min(MAX_BACKOFF_S, base_s * 2 ** max(0, attempts - 1))
    return full / 2 + random.uniform(0, full / 2)


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header's pause in seconds (delta-seconds or an HTTP date), or
    ``None`` when there is none or it cannot be read."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def outcome_of(
    claimed: ClaimedDelivery,
    settings: Settings,
    now: datetime,
    *,
    status_code: int | None,
    error: str | None,
    retry_after: float | None = None,
) -> Outcome:
    """Settle one attempt: delivered (2xx), failed (a refusal, or retries run out), or
    pending until the next attempt."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome(DeliveryStatus.DELIVERED, status_code, None)
    transient = status_code is None or status_code >= 500 or status_code in RETRIED_STATUSES
    reason = error or f"HTTP {status_code}"
    if not transient:
        return Outcome(DeliveryStatus.FAILED, status_code, reason)
    attempts = claimed.delivery.attempts + 1
    pause = backoff_s(attempts, settings.outbound_backoff_s)
    if retry_after is not None:
        pause = max(pause, retry_after)
    retry_at = now + timedelta(seconds=pause)
    age_limit = claimed.delivery.started_at + timedelta(seconds=settings.outbound_max_age_s)
    if attempts >= settings.outbound_max_attempts or retry_at > age_limit:
        return Outcome(
            DeliveryStatus.FAILED,
            status_code,
            f"{reason} (gave up after {attempts} attempts)",
            gave_up=True,
        )
    return Outcome(DeliveryStatus.PENDING, status_code, reason, retry_at)


def delivery_outcome(outcome: Outcome) -> str:
    """The ``c2c_outbound_deliveries_total`` outcome of one settled attempt: ``delivered``,
    ``retried`` (pending again), ``failed`` (refused at once) or ``given_up`` (retries ran
    out on a transient failure)."""
    if outcome.status is DeliveryStatus.DELIVERED:
        return "delivered"
    if outcome.status is DeliveryStatus.PENDING:
        return "retried"
    return "given_up" if outcome.gave_up else "failed"


class OutboundDispatcher(ClaimLoop[ClaimedDelivery]):
    """Sends due deliveries of outbound events, in the background.

    Args:
        context: The API's shared resources.
        concurrency: Deliveries sent at once.
        poll: The pause between two looks at the ledger when nothing wakes the dispatcher.
        claim: How long a delivery is held by this process while it is sent.
    """

    def __init__(
        self,
        context: ApiContext,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        poll: timedelta = DEFAULT_POLL,
        claim: timedelta = DEFAULT_DELIVERY_CLAIM,
    ) -> None:
        super().__init__("outbound event dispatcher", concurrency=concurrency, poll=poll)
        self.context = context
        self.settings = context.settings
        self.lease = claim
        self.box = secret_box(context.settings)
        self._http: httpx.AsyncClient | None = None

    def on_start(self) -> None:
        self._http = httpx.AsyncClient(
            timeout=self.settings.outbound_timeout_s,
            follow_redirects=False,
            headers={"User-Agent": "c2c-events/1"},
        )

    async def on_stop(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def claim(self, limit: int) -> list[ClaimedDelivery]:
        ledger = await self.context.ledger()
        return await run_in_threadpool(ledger.claim_due_deliveries, limit, self.lease)

    async def handle(self, item: ClaimedDelivery) -> None:
        await self._deliver(await self.context.ledger(), item)

    async def _secret(self, ledger: Ledger, claimed: ClaimedDelivery) -> str:
        """The subscription's signing secret; one still in clear (from 0.10) is sealed now.

        Raises:
            SecretUnreadable: It is sealed with a key that is not configured here.
        """
        stored = claimed.subscription.secret
        secret = self.box.open(stored)
        if not is_sealed(stored):
            try:
                await run_in_threadpool(
                    ledger.reseal_secrets, self.box, [claimed.subscription.subscription_id]
                )
            except Exception as exc:  # sealing is tried again at its next delivery
                log.warning("subscription secret not sealed", error=str(exc))
        return secret

    async def _deliver(self, ledger: Ledger, claimed: ClaimedDelivery) -> None:
        assert self._http is not None
        body = event_body(claimed)
        status_code: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            secret = await self._secret(ledger, claimed)
        except SecretUnreadable as exc:
            # A key missing on this replica (a rotation half rolled out): tried again later.
            log.error(
                "outbound delivery not signed",
                subscription_id=claimed.subscription.subscription_id,
                error=str(exc),
            )
            secret, error = None, f"the signing secret cannot be opened: {exc}"
        if secret is not None:
            headers = {
                "Content-Type": "application/json",
                EVENT_ID_HEADER: claimed.event.event_id,
                EVENT_TYPE_HEADER: claimed.event.type,
                SIGNATURE_HEADER: sign(body, secret),
            }
            sent = time.monotonic()
            try:
                answer = await self._http.post(
                    claimed.subscription.url, content=body, headers=headers
                )
                status_code = answer.status_code
                retry_after = retry_after_s(answer.headers.get("Retry-After"), datetime.now(UTC))
            except httpx.TimeoutException:
                error = "timed out"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
            observe_delivery_latency(claimed.event.type, time.monotonic() - sent)
        now = datetime.now(UTC)
        outcome = outcome_of(
            claimed,
            self.settings,
            now,
            status_code=status_code,
            error=error,
            retry_after=retry_after,
        )
        log.info(
            "outbound event delivery",
            event_id=claimed.event.event_id,
            event_type=claimed.event.type,
            subscription_id=claimed.subscription.subscription_id,
            status_code=status_code,
            outcome=outcome.status.value,
        )
        try:
            await run_in_threadpool(
                ledger.settle_delivery,
                claimed.delivery.delivery_id,
                status=outcome.status,
                status_code=outcome.status_code,
                error=outcome.error,
                next_attempt_at=outcome.retry_at,
                at=now,
            )
        except Exception as exc:
            # Its claim runs out and it is sent again: at least once.
            log.warning(
                "outbound delivery not settled",
                event_id=claimed.event.event_id,
                error=str(exc),
            )
            return
        record_delivery(claimed.event.type, delivery_outcome(outcome))

    async def drained(self, timeout_s: float = 30.0) -> None:
        """Wait until nothing is being sent (tests)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._in_flight:
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"deliveries still being sent after {timeout_s} s")
            await asyncio.sleep(0.05)
