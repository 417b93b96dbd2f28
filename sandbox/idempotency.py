"""``Idempotency-Key`` on every system write: the first successful answer is kept and replayed.

A key is scoped to one system and kept for seven days. The same key with the same request
(method, path and body) answers the stored status and body again with
``Idempotent-Replayed: true``; with another request it is ``409 idempotency_conflict``.
Requests that share a key are served one at a time, so two of them never both execute.

Only a ``2xx`` answer is kept: a refused request changed nothing, so the same key can be used
again once the cause is fixed (a retried workflow step keeps its key).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Index, LargeBinary, UniqueConstraint, bindparam, delete, insert, select
from sqlmodel import Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.db import Database, Row, UtcDateTime, utcnow
from sandbox.errors import error_payload
from sandbox.http import (
    WRITE_METHODS,
    Captured,
    bytes_response,
    capture,
    header,
    json_response,
    read_body,
    replay_body,
    request_info,
)

KEY_HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_TTL = timedelta(days=7)
MAX_KEY_LENGTH = 255


class IdempotencyRecord(Row, table=True):
    """The first successful answer to a key."""

    __tablename__ = "sbx_idempotency_key"
    __table_args__ = (
        UniqueConstraint("system", "key"),
        # Expired keys are found by age within a system: without it, every write scanned all
        # of its system's keys (a cost that grew with every contract billed).
        Index("ix_sbx_idempotency_key_system_created", "system", "created_at"),
    )

    system: str
    key: str
    request_hash: str
    status: int
    content_type: str
    body: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(sa_type=UtcDateTime)


@dataclass(frozen=True)
class StoredAnswer:
    request_hash: str
    status: int
    content_type: str
    body: bytes


def request_hash(method: str, path: str, body: bytes) -> str:
    """A fingerprint of a request; JSON bodies are compared by content, not by formatting."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


_TABLE = IdempotencyRecord.__table__  # type: ignore[attr-defined]
# Built once: a keyed write runs these on every request, and building a statement costs as
# much as running it on SQLite.
_FIND = select(_TABLE.c.request_hash, _TABLE.c.status, _TABLE.c.content_type, _TABLE.c.body).where(
    _TABLE.c.system == bindparam("system"),
    _TABLE.c.key == bindparam("key"),
    _TABLE.c.created_at > bindparam("since", type_=UtcDateTime),
)
_DROP_KEY = delete(_TABLE).where(
    _TABLE.c.system == bindparam("system"), _TABLE.c.key == bindparam("key")
)
EXPIRED_KEYS = delete(_TABLE).where(
    _TABLE.c.system == bindparam("system"),
    _TABLE.c.created_at <= bindparam("cutoff", type_=UtcDateTime),
)
_INSERT = insert(_TABLE)
EXPIRY_INTERVAL = timedelta(minutes=1)


class IdempotencyStore:
    """The kept answers, in the sandbox database.

    Args:
        db: The sandbox database.
        expire_every: How often a system's expired keys are dropped, at its next stored key.
            An expired key that is still there answers nothing and can be used again, so this
            only bounds how long dead rows stay.
    """

    def __init__(self, db: Database, *, expire_every: timedelta = EXPIRY_INTERVAL) -> None:
        self._db = db
        self._expire_every = expire_every
        self._expired_at: dict[str, datetime] = {}

    def find(self, system: str, key: str) -> StoredAnswer | None:
        with self._db.reading() as connection:
            row = connection.execute(
                _FIND, {"system": system, "key": key, "since": utcnow() - KEY_TTL}
            ).first()
        if row is None:
            return None
        return StoredAnswer(row.request_hash, row.status, row.content_type, row.body)

    def save(self, system: str, key: str, fingerprint: str, answer: Captured) -> None:
        content_type = next(
            (v.decode("latin-1") for k, v in answer.headers if k == b"content-type"),
            "application/json",
        )
        now = utcnow()
        with self._db.writing() as connection:
            last = self._expired_at.get(system)
            if last is None or now - last >= self._expire_every:
                connection.execute(EXPIRED_KEYS, {"system": system, "cutoff": now - KEY_TTL})
                self._expired_at[system] = now
            # An expired key (or one kept before) is replaced: each statement uses an index.
            connection.execute(_DROP_KEY, {"system": system, "key": key})
            connection.execute(
                _INSERT,
                {
                    "system": system,
                    "key": key,
                    "request_hash": fingerprint,
                    "status": answer.status,
                    "content_type": content_type,
                    "body": answer.body,
                    "created_at": now,
                },
            )


class KeyedLocks:
    """One ``asyncio.Lock`` per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class IdempotencyMiddleware:
    """Replays, refuses or records keyed system writes (innermost sandbox layer)."""

    def __init__(self, app: ASGIApp, *, store: IdempotencyStore) -> None:
        self.app = app
        self._store = store
        self._locks = KeyedLocks()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = request_info(scope)
        key = header(scope, KEY_HEADER)
        if info is None or key is None or info.method not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            message = f"Idempotency-Key must have 1 to {MAX_KEY_LENGTH} characters"
            payload = error_payload("invalid_idempotency_key", message, "Idempotency-Key")
            await json_response(422, payload).send(send)
            return
        body = await read_body(receive)
        fingerprint = request_hash(info.method, scope["path"], body)
        async with self._locks.hold((info.system, key)):
            stored = await run_in_threadpool(self._store.find, info.system, key)
            if stored is not None:
                await self._answer_stored(stored, fingerprint, send)
                return
            answer = await capture(self.app, scope, replay_body(body, receive))
            if 200 <= answer.status < 300:
                await run_in_threadpool(self._store.save, info.system, key, fingerprint, answer)
        await answer.send(send)

    @staticmethod
    async def _answer_stored(stored: StoredAnswer, fingerprint: str, send: Send) -> None:
        if stored.request_hash != fingerprint:
            message = "this Idempotency-Key was used for a different request"
            payload = error_payload("idempotency_conflict", message, "Idempotency-Key")
            await json_response(409, payload).send(send)
            return
        replay = bytes_response(
            stored.status,
            stored.body,
            {REPLAYED_HEADER: "true"},
            content_type=stored.content_type,
        )
        await replay.send(send)
