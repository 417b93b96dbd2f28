"""ASGI middleware of the API: a body size limit, and one log line per request under a
request id that the answer names in ``X-Request-ID``.

Both are plain ASGI (not ``BaseHTTPMiddleware``) so that handlers run in the same task and
the structlog context they bind reaches the request's log line.
"""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from c2c.logs import get_logger
from domain.names import contract_workflow_id
from starter.api.errors import REQUEST_ID_HEADER, ApiError
from starter.api.metrics import record_request

log = get_logger("c2c.api")

#: Bodies larger than this are refused with ``413``; contracts are kilobytes.
MAX_BODY_BYTES = 1024 * 1024

#: Keys a handler binds for the request's log lines.
REQUEST_KEYS = ("request_id", "contract_id", "workflow_id")


class BodyTooLarge(ApiError):
    """The request body exceeds the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"the body exceeds {limit} bytes")


class BodySizeLimit:
    """Refuse bodies over ``max_bytes``: by their ``Content-Length``, or while reading."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                error = ApiError(400, "bad_request", "invalid Content-Length")
                await error.response()(scope, receive, send)
                return
            if too_large:
                await BodyTooLarge(self.max_bytes).response()(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            # A chunked body has no Content-Length: count while the handler reads it.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


class RequestLog:
    """Log and count each request once with its status and duration, under a request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A keep-alive connection serves requests in one task: forget the previous one's keys.
        structlog.contextvars.unbind_contextvars(*REQUEST_KEYS)
        request_id = uuid.uuid4().hex[:12]
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Every answer names its request, so a caller can quote it to an operator.
                headers = MutableHeaders(scope=message)
                headers.setdefault(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            seconds = time.perf_counter() - started
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(seconds * 1000, 1),
            )
            record_request(scope, status, seconds)


def bind_contract(contract_id: str, workflow_id: str | None = None) -> None:
    """Name the contract (and its workflow) in every log line of this request."""
    structlog.contextvars.bind_contextvars(
        contract_id=contract_id, workflow_id=workflow_id or contract_workflow_id(contract_id)
    )
