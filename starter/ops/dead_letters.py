"""Inbound events processed once, and dead letters kept for a replay.

Every verified webhook is recorded in the ledger under its source and event id (the
envelope's ``id``, or the SHA-256 of the raw body when the sender gave none). The delivery
that records an event processes it; any other delivery of it is a duplicate, answered with
the first answer and ``"duplicate": true`` without reaching a workflow (one that arrives
while the first is still being processed waits for its answer).

Processing ends in one of three ways. The system answered (an amendment the contract rejected
included): the event is ``processed``. It cannot be processed as it is (a payload invalid for
its model, an unknown contract, an invoice no contract has): it is a ``dead_letter`` with the
reason, answered as before (``422``, ``404``...), and processed again when the sender delivers
it again or an operator replays it. A transient failure (Temporal or the ERP unreachable):
nothing is recorded as done, the answer is ``503``, and the sender's retry processes it.

An event whose processing is idempotent by itself (``contract.approved``: Temporal starts a
contract's workflow once, by its id, and refuses a second start naming the run it has) is
processed first and recorded after, with its outcome, in one ledger transaction, once a read
has found it unknown. What an event recorded before gets is the same as above. Two first
deliveries at once both ask Temporal: one starts the workflow and answers ``"duplicate":
false``, the other is refused and answers ``"duplicate": true`` with the same run, whichever
records first; the first answer recorded is what later duplicates get. A crash between the
start and the record leaves nothing recorded: the sender's retry is refused by Temporal the
same way and answered as a duplicate of that run. A failure is recorded as it would be for
any event: a dead letter, or ``received`` for the sender's retry after a transient one.

The webhook routes and the replays (``c2c ops replay``, ``POST /api/dead-letters/...``) run
the same processor on the same bytes; a replay checks no signature: the body was verified
when it arrived.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from c2c import json_input
from c2c.logs import get_logger
from ledger import (
    SETTLED_STATUSES,
    InboundEvent,
    InboundEventIn,
    InboundSource,
    InboundStatus,
    Ledger,
)
from ledger.models import utc_now
from starter.api.context import ApiContext
from starter.api.errors import ApiError, _rpc_error

log = get_logger("c2c.api.inbound")

#: How long a delivery of an event that another delivery is processing waits for its answer.
IN_FLIGHT_WAIT_S = 20.0
#: Longest pause between two looks at an event being processed elsewhere.
_POLL_MAX_S = 0.5
#: Longest event id kept as the sender gave it (longer ones are hashed like missing ones).
_MAX_EVENT_ID = 255
_MAX_TYPE = 100
_MAX_CONTRACT_ID = 64


@dataclass(frozen=True)
class Answer:
    """What processing an event answered: kept, and given again to its duplicates."""

    status: int
    body: dict[str, Any]
    #: The contract the event concerns, once processing knows it.
    contract_id: str | None = None

    def response(self) -> JSONResponse:
        """The answer as an HTTP response."""
        return JSONResponse(self.body, status_code=self.status)


#: Processes one event of a source from its verified raw bytes. A failure is raised: an
#: ``ApiError`` (``4xx`` makes a dead letter, ``5xx`` is transient) or Temporal's own errors.
Processor = Callable[[ApiContext, bytes], Awaitable[Answer]]


class DeadLetterItem(BaseModel):
    """An inbound event as operators see it (the body stays in the ledger)."""

    model_config = ConfigDict(from_attributes=True)

    source: str
    event_id: str
    type: str
    contract_id: str | None = None
    status: str
    reason: str | None = None
    attempts: int
    received_at: datetime
    processed_at: datetime | None = None


@dataclass(frozen=True)
class Replayed:
    """A dead letter processed by a replay."""

    event: DeadLetterItem
    answer: Answer


class DeadLetterNotFound(LookupError):
    """No inbound event has that source and id."""


class NotReplayable(RuntimeError):
    """The event cannot be replayed now: it is processed already (``already_processed``), or
    being processed, or put off to its next attempt (``event_in_progress``).

    Attributes:
        code: The reason, as the API's error code.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ReplayFailed(RuntimeError):
    """The replay could not process the event either: it stays a dead letter.

    Attributes:
        event: The dead letter, with the new reason.
        error: What processing answered.
    """

    def __init__(self, event: DeadLetterItem, error: ApiError) -> None:
        super().__init__(event.reason or error.message)
        self.event = event
        self.error = error


@dataclass(frozen=True)
class Envelope:
    """What the ledger records of an event before it is processed."""

    event_id: str
    type: str
    contract_id: str | None


def envelope_of(body: bytes) -> Envelope:
    """The id, type and contract of a verified body, read leniently: the processor refuses a
    malformed one, and it is recorded all the same, to be kept as a dead letter."""
    try:
        payload = json_input.loads(body)
    except ValueError:  # not JSON, or too deep (UnicodeDecodeError is a ValueError too)
        payload = None
    if not isinstance(payload, dict):
        payload = {}
    data = payload.get("data")
    contract_id = data.get("contract_id") if isinstance(data, dict) else None
    contract_id = contract_id.strip() if isinstance(contract_id, str) else None
    kind = payload.get("type")
    return Envelope(
        event_id=_event_id(payload.get("id"), body),
        type=kind[:_MAX_TYPE] if isinstance(kind, str) else "",
        contract_id=contract_id if contract_id and len(contract_id) <= _MAX_CONTRACT_ID else None,
    )


def arrived(
    source: InboundSource, envelope: Envelope, body: bytes, *, contract_id: str | None = None
) -> InboundEventIn:
    """The record of an event as it arrived now (``contract_id``: the one its validated payload
    names, if known; else the envelope's)."""
    return InboundEventIn(
        source=source,
        event_id=envelope.event_id,
        type=envelope.type,
        contract_id=contract_id or envelope.contract_id,
        body=body.decode("utf-8", errors="replace"),
        body_digest=body_digest(body),
        received_at=utc_now(),
    )


def body_digest(body: bytes) -> str:
    """SHA-256 of what a body says: of its JSON written canonically (sorted keys, no spaces),
    so that a sender that writes the same event again with its keys in another order is
    still sending the same event; of the raw bytes when it is not JSON."""
    try:
        canonical = json.dumps(
            json_input.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8", "surrogatepass")
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def conflicts(stored: InboundEvent, incoming: InboundEventIn) -> bool:
    """Whether a delivery reuses a recorded event's id for another body. An event recorded
    before digests were kept is compared by its stored body.

    Such a delivery is refused (``refuse_conflict``) unless the event is a dead letter: one
    never applied, whose sender may correct it under the same id.
    """
    if stored.body_digest is not None and incoming.body_digest is not None:
        return stored.body_digest != incoming.body_digest
    return body_digest(stored.body.encode("utf-8", "surrogatepass")) != incoming.body_digest


#: How much of a conflicting event's id its dead letter keeps, before ``~`` and its digest.
_CONFLICT_ID_PREFIX = _MAX_EVENT_ID - 1 - 16


async def refuse_conflict(ledger: Ledger, incoming: InboundEventIn) -> ApiError:
    """Keep a delivery that reuses an event id for another body as a dead letter of its own
    (its id is the event id, ``~`` and the start of its digest), and the ``409`` it answers.

    The first event keeps its id and its outcome; the other body is not applied, but kept for
    an operator to read and, if it is a real event, replay.
    """
    digest = incoming.body_digest or ""
    kept_as = f"{incoming.event_id[:_CONFLICT_ID_PREFIX]}~{digest[:16]}"
    error = ApiError(
        409,
        "event_id_conflict",
        f"event id {incoming.event_id} was received before with another body; this one is "
        f"kept as dead letter {kept_as} and not applied",
        extra={"conflicting_event_id": kept_as},
    )
    reason = f"{error.code}: {error.message}"
    record = incoming.model_copy(update={"event_id": kept_as})
    await run_in_threadpool(
        ledger.record_inbound_outcome, record, InboundStatus.DEAD_LETTER, reason=reason
    )
    return _dead_letter(InboundSource(incoming.source).value, kept_as, error)


def _event_id(given: Any, body: bytes) -> str:
    if isinstance(given, (str, int)) and not isinstance(given, bool):
        text = str(given).strip()
        if 0 < len(text) <= _MAX_EVENT_ID:
            return text
    return hashlib.sha256(body).hexdigest()


async def deliver(
    context: ApiContext,
    source: InboundSource,
    body: bytes,
    processor: Processor,
    *,
    idempotent_types: Collection[str] = (),
) -> Answer:
    """Record a verified webhook and process it once.

    Args:
        context: The API's shared resources.
        source: The sending system.
        body: The verified raw body.
        processor: The source's processor.
        idempotent_types: Event types whose processing is idempotent by itself: a new one is
            processed first and recorded with its outcome in one transaction.

    Returns:
        The answer; for a duplicate, the first one with ``"duplicate": true``.

    Raises:
        ApiError: The event is a dead letter now (the processor's ``4xx``), or another
            delivery of it is still being processed after ``IN_FLIGHT_WAIT_S`` (``503``).
        Exception: A transient failure, as the processor raised it; the event is left for
            the sender's retry.
    """
    ledger = await context.ledger()
    envelope = envelope_of(body)
    incoming = arrived(source, envelope, body)
    if envelope.type in idempotent_types and not await run_in_threadpool(
        ledger.inbound_event_known, source, envelope.event_id
    ):
        return await _process_then_record(context, ledger, incoming, body, processor)
    recorded = await run_in_threadpool(ledger.record_inbound_event, incoming)
    if recorded.known:
        if conflicts(recorded.event, incoming):
            if recorded.event.status != InboundStatus.DEAD_LETTER:
                raise await refuse_conflict(ledger, incoming)
            # A dead letter was never applied: another body under its id is the sender's
            # correction, and the body kept (and replayed) from now on.
            await run_in_threadpool(ledger.replace_inbound_body, incoming)
        first = await _claim_or_first_answer(ledger, recorded.event)
        if first is not None:
            log.info("duplicate event", source=source.value, event_id=envelope.event_id)
            return first
    outcome = await _process(context, ledger, recorded.event, body, processor, replay=False)
    if isinstance(outcome, ApiError):
        raise outcome
    return outcome


async def _process_then_record(
    context: ApiContext,
    ledger: Ledger,
    incoming: InboundEventIn,
    body: bytes,
    processor: Processor,
) -> Answer:
    """Process a new event whose processing is idempotent, then record it with its outcome.

    No claim is taken: a concurrent delivery of the same event that processes it too is
    refused by the system itself (Temporal's start by workflow id) and answers as a duplicate.
    Whichever records first keeps its outcome; a delivery that finds one recorded gives the
    first answer, as any duplicate does (its own, when it is the same answer).
    """
    key = (incoming.source, incoming.event_id)
    try:
        answer = await processor(context, body)
    except Exception as exc:
        failure = _permanent_failure(exc)
        status = InboundStatus.RECEIVED if failure is None else InboundStatus.DEAD_LETTER
        reason = None if failure is None else f"{failure.code}: {failure.message}"
        earlier = await run_in_threadpool(
            ledger.record_inbound_outcome, incoming, status, reason=reason
        )
        if earlier is not None and earlier.status in SETTLED_STATUSES:
            # Another delivery of this event id was processed meanwhile: its answer stands.
            return _first_answer(earlier)
        if failure is None:
            _log_left_for_retry(incoming.source, incoming.event_id, exc)
            raise
        if earlier is not None:
            await run_in_threadpool(ledger.mark_inbound_dead_letter, *key, reason or "")
        raise _dead_letter(incoming.source, incoming.event_id, failure) from None
    earlier = await run_in_threadpool(
        ledger.record_inbound_outcome,
        incoming,
        InboundStatus.PROCESSED,
        response_status=answer.status,
        response_body=answer.body,
        contract_id=answer.contract_id,
    )
    if earlier is None:
        return answer
    if earlier.status not in SETTLED_STATUSES:
        # Recorded by a delivery that has not settled it (or left for a retry): settle it.
        earlier = await run_in_threadpool(
            ledger.mark_inbound_processed,
            *key,
            response_status=answer.status,
            response_body=answer.body,
            contract_id=answer.contract_id,
        )
    return _answer_given(earlier, answer)


async def enqueue(
    context: ApiContext, source: InboundSource, body: bytes, answer: Answer
) -> Answer | None:
    """Record a verified, valid event as waiting, to be processed by the queue, and answer now.

    Args:
        answer: What a first delivery is answered (``202`` with ``"queued": true``); the
            event's payload was validated to make it.

    Returns:
        ``answer`` for an event this call recorded; for one recorded before, its first answer
        once processed, else ``answer`` marked duplicate (it is still waiting, or being
        processed). ``None`` for a dead letter: the caller processes it now, as a delivery
        of a dead letter always is.
    """
    ledger = await context.ledger()
    envelope = envelope_of(body)
    incoming = arrived(source, envelope, body, contract_id=answer.contract_id)
    earlier = await _recorder(context, ledger).record(incoming)
    if earlier is None:
        return answer
    if earlier.status != InboundStatus.DEAD_LETTER and conflicts(earlier, incoming):
        raise await refuse_conflict(ledger, incoming)
    if earlier.status == InboundStatus.DEAD_LETTER:
        return None
    log.info("duplicate event", source=source.value, event_id=envelope.event_id)
    if earlier.status in SETTLED_STATUSES:
        return _first_answer(earlier)
    return Answer(answer.status, {**answer.body, "duplicate": True}, answer.contract_id)


class WaitingRecorder:
    """Records events for the event queue, committing concurrent deliveries together.

    The first delivery's record goes to the ledger at once; those that arrive while it is
    being written wait for the next write, which records all of them in one transaction
    (``Ledger.record_waiting_events``): under a burst, one commit and one thread hop serve many
    deliveries instead of one each, and no delivery waits longer than one write.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._pending: list[tuple[InboundEventIn, asyncio.Future[InboundEvent | None]]] = []
        #: The write in progress; deliveries arriving meanwhile wait for the next one.
        self._task: asyncio.Task[None] | None = None

    async def record(self, event: InboundEventIn) -> InboundEvent | None:
        """Record one event; ``None`` if this call recorded it, else the event as stored."""
        done: asyncio.Future[InboundEvent | None] = asyncio.get_running_loop().create_future()
        self._pending.append((event, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write())
        return await done

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                stored = await run_in_threadpool(
                    self.ledger.record_waiting_events, [event for event, _ in batch]
                )
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), result in zip(batch, stored, strict=True):
                if not done.done():
                    done.set_result(result)


def _recorder(context: ApiContext, ledger: Ledger) -> WaitingRecorder:
    recorder = context.waiting_recorder
    if recorder is None:
        recorder = context.waiting_recorder = WaitingRecorder(ledger)
    return recorder


#: The first pause after a waiting event's transient failure; it doubles with each attempt.
RETRY_FIRST = timedelta(seconds=2)
#: The longest pause between two attempts at a waiting event.
RETRY_MAX = timedelta(minutes=5)


def retry_delay(attempts: int) -> timedelta:
    """The pause before the next attempt at a waiting event that failed ``attempts`` times."""
    return min(RETRY_FIRST * 2 ** max(attempts - 1, 0), RETRY_MAX)


async def process_waiting(
    context: ApiContext, ledger: Ledger, event: InboundEvent, processor: Processor
) -> Answer | ApiError | None:
    """Process an event the queue claimed, as its webhook would have, and settle it.

    Returns:
        The answer (processed), the error that made it a dead letter, or ``None`` after a
        transient failure: it waits again, for ``retry_delay`` of its attempts.
    """
    key = (event.source, event.event_id)
    try:
        answer = await processor(context, event.body.encode())
    except Exception as exc:
        failure = _permanent_failure(exc)
        if failure is None:
            retry_at = utc_now() + retry_delay(event.attempts)
            # Only while its claim is this process's: one that ran out may be another's now.
            await run_in_threadpool(
                partial(
                    ledger.postpone_inbound_event,
                    *key,
                    retry_at,
                    claimed_until=event.claimed_until,
                )
            )
            _log_left_for_retry(event.source, event.event_id, exc)
            return None
        return await _keep_dead_letter(ledger, event, failure)
    # If another claimer settled it meanwhile (this one's claim ran out), its answer stands.
    await run_in_threadpool(
        partial(
            ledger.settle_inbound_event,
            *key,
            response_status=answer.status,
            response_body=answer.body,
            contract_id=answer.contract_id,
        )
    )
    return answer


async def replay(
    context: ApiContext,
    source: InboundSource,
    event_id: str,
    processors: Mapping[InboundSource, Processor],
) -> Replayed:
    """Process the stored body of an event not processed yet, as its webhook would have: a
    dead letter, or one still ``received`` (waiting in the event queue, or left by a delivery
    that failed and a sender that gave up). Once recorded, an event is c2c's to deliver.

    Raises:
        DeadLetterNotFound: No such event.
        NotReplayable: It is processed already, or being processed (or waiting for its next
            attempt) now.
        ReplayFailed: It could not be processed; it is a dead letter with the new reason.
        Exception: A transient failure, as the processor raised it; it stays as it was.
    """
    ledger = await context.ledger()
    claimed = await run_in_threadpool(ledger.claim_inbound_event, source, event_id)
    if claimed is None:
        found = await run_in_threadpool(ledger.get_inbound_event, source, event_id)
        if found is None:
            raise DeadLetterNotFound(f"no {source.value} event {event_id!r}")
        if found.status in SETTLED_STATUSES:
            raise NotReplayable(
                "already_processed",
                f"{source.value} event {event_id!r} is {found.status} already; it is not "
                "processed twice",
            )
        until = f" until {found.claimed_until:%Y-%m-%d %H:%M:%S} UTC" if found.claimed_until else ""
        raise NotReplayable(
            "event_in_progress",
            f"{source.value} event {event_id!r} is being processed, or waits for its next "
            f"attempt{until}; try again then",
        )
    outcome = await _process(
        context, ledger, claimed, claimed.body.encode(), processors[source], replay=True
    )
    stored = await run_in_threadpool(ledger.get_inbound_event, source, event_id)
    assert stored is not None  # claimed above, and never deleted
    item = DeadLetterItem.model_validate(stored)
    if isinstance(outcome, ApiError):
        raise ReplayFailed(item, outcome)
    log.info("event replayed", source=source.value, event_id=event_id)
    return Replayed(item, outcome)


async def list_events(
    ledger: Ledger,
    *,
    status: InboundStatus | None = InboundStatus.DEAD_LETTER,
    source: InboundSource | None = None,
    contract_id: str | None = None,
) -> list[DeadLetterItem]:
    """Inbound events (dead letters unless another status is asked for), oldest first."""
    found = await run_in_threadpool(
        ledger.list_inbound_events, status=status, source=source, contract_id=contract_id
    )
    return [DeadLetterItem.model_validate(e) for e in found]


async def _claim_or_first_answer(ledger: Ledger, event: InboundEvent) -> Answer | None:
    """For an event recorded before: its first answer once it has one (``None`` if this
    delivery claimed it, to process it again)."""
    deadline = asyncio.get_running_loop().time() + IN_FLIGHT_WAIT_S
    pause = 0.05
    while True:
        if event.status in SETTLED_STATUSES:
            return _first_answer(event)
        claimed = await run_in_threadpool(ledger.claim_inbound_event, event.source, event.event_id)
        if claimed is not None:
            return None
        if asyncio.get_running_loop().time() >= deadline:
            raise ApiError(
                503,
                "event_in_progress",
                f"event {event.event_id} is being processed; try again",
                headers={"Retry-After": "5"},
            )
        # Another delivery holds the claim: its answer will be ours.
        await asyncio.sleep(pause)
        pause = min(pause * 2, _POLL_MAX_S)
        found = await run_in_threadpool(ledger.get_inbound_event, event.source, event.event_id)
        assert found is not None  # recorded, and never deleted
        event = found


async def _process(
    context: ApiContext,
    ledger: Ledger,
    event: InboundEvent,
    body: bytes,
    processor: Processor,
    *,
    replay: bool,
) -> Answer | ApiError:
    """Run the processor on a claimed event and settle it.

    Returns:
        The answer (the event is processed or replayed), or the error that made it a dead
        letter.

    Raises:
        Exception: A transient failure; the claim is released and the event left as it was.
    """
    key = (event.source, event.event_id)
    try:
        answer = await processor(context, body)
    except Exception as exc:
        failure = _permanent_failure(exc)
        if failure is None:
            await run_in_threadpool(ledger.release_inbound_event, *key)
            _log_left_for_retry(event.source, event.event_id, exc)
            raise
        return await _keep_dead_letter(ledger, event, failure)
    stored = await run_in_threadpool(
        ledger.mark_inbound_processed,
        *key,
        response_status=answer.status,
        response_body=answer.body,
        contract_id=answer.contract_id,
        replayed=replay,
    )
    return _answer_given(stored, answer)


def _first_answer(event: InboundEvent) -> Answer:
    """The answer a duplicate of a settled event gets: the first one, marked duplicate."""
    return Answer(
        event.response_status or 200,
        {**(event.response_body or {}), "duplicate": True},
        event.contract_id,
    )


def _answer_given(stored: InboundEvent, answer: Answer) -> Answer:
    """The answer of a delivery that processed an event, once the event is settled.

    Another delivery may have processed and settled it too (a claim that expired, or two
    first deliveries of an idempotent event): then the first answer stands, for this one as
    for every later duplicate, unless it is this one's own answer but for ``duplicate``.
    """
    if stored.response_status == answer.status and _but_duplicate(
        stored.response_body
    ) == _but_duplicate(answer.body):
        return answer
    return _first_answer(stored)


def _but_duplicate(body: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (body or {}).items() if k != "duplicate"}


async def _keep_dead_letter(ledger: Ledger, event: InboundEvent, failure: ApiError) -> ApiError:
    """Keep a claimed event as a dead letter with the failure's reason; the failure as its
    answer."""
    reason = f"{failure.code}: {failure.message}"
    await run_in_threadpool(ledger.mark_inbound_dead_letter, event.source, event.event_id, reason)
    return _dead_letter(event.source, event.event_id, failure)


def _dead_letter(source: str, event_id: str, failure: ApiError) -> ApiError:
    """The processor's failure, as the answer of an event now kept as a dead letter."""
    log.warning(
        "event kept as a dead letter",
        source=source,
        event_id=event_id,
        reason=f"{failure.code}: {failure.message}",
    )
    failure.extra.update({"event_id": event_id, "dead_letter": True})
    return failure


def _log_left_for_retry(source: str, event_id: str, exc: Exception) -> None:
    log.warning(
        "event not processed; left for a retry", source=source, event_id=event_id, error=str(exc)
    )


def _permanent_failure(exc: Exception) -> ApiError | None:
    """The answer for a failure that makes a dead letter; ``None`` for a transient one."""
    error = _rpc_error(exc) if isinstance(exc, RPCError) else exc
    if isinstance(error, ApiError) and 400 <= error.status < 500:
        return error
    # 5xx answers, Temporal's timeouts and anything unexpected: the next delivery may succeed.
    return None
