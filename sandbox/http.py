"""ASGI plumbing shared by the sandbox middlewares: which system a request is for, and
buffering of request and response bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute, APIRouter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: Each system's root path; a system is named as in fault rules and stats.
SYSTEM_ROOTS: dict[str, str] = {
    "crm": "/crm/v1",
    "erp": "/erp/v1",
    "psa": "/psa/v1",
    "tax": "/tax/v1",
    "payments": "/payments/v1",
}
#: Each vendor-shaped fake's root path; a vendor is named as in fault rules.
VENDOR_ROOTS: dict[str, str] = {
    "netsuite": "/vendors/netsuite",
    "business-central": "/vendors/bc",
    "avatax": "/vendors/avatax",
    "stripe": "/vendors/stripe",
    "salesforce": "/vendors/salesforce",
    "docusign": "/vendors/docusign",
    "ironclad": "/vendors/ironclad",
}
_SCOPE_KEY = "c2c.sandbox.request"


@dataclass
class RequestInfo:
    """A request to one of the systems.

    Attributes:
        system: ``crm``, ``erp``, ``psa``, ``tax`` or ``payments``.
        method: The HTTP method, upper case.
        path: The path relative to the system root (``/invoices/INV-000001``).
        route: ``"METHOD /template"`` of the matched route, for the stats.
        wrote: Set when the request committed a change to the database.
    """

    system: str
    method: str
    path: str
    route: str
    wrote: bool = field(default=False)


#: The request being served; the database layer marks it when a transaction changes data.
current_request: ContextVar[RequestInfo | None] = ContextVar("sandbox_request", default=None)


def note_write() -> None:
    """Record that the current request changed data (a no-op outside a system request)."""
    info = current_request.get()
    if info is not None:
        info.wrote = True


class RouteTable:
    """Maps a request path to its system and route template before any handler runs.

    Faulted requests never reach a handler, yet the stats still name their route.
    """

    def __init__(self, routers: Mapping[str, Sequence[APIRouter]]) -> None:
        self._systems = {
            SYSTEM_ROOTS[system]: (
                system,
                [r for router in group for r in router.routes if isinstance(r, APIRoute)],
            )
            for system, group in routers.items()
        }

    def classify(self, method: str, path: str) -> RequestInfo | None:
        """The system request for ``method`` and ``path``, or ``None`` outside the systems."""
        for prefix, (system, routes) in self._systems.items():
            if path != prefix and not path.startswith(prefix + "/"):
                continue
            relative = path[len(prefix) :] or "/"
            template = next(
                (
                    r.path
                    for r in routes
                    if method in (r.methods or ()) and r.path_regex.match(relative)
                ),
                "(unmatched)",
            )
            return RequestInfo(system, method, relative, f"{method} {template}")
        return None


def vendor_request(method: str, path: str) -> RequestInfo | None:
    """The request to a vendor-shaped fake for ``method`` and ``path``, or ``None``.

    Vendor requests are not system requests: the sandbox's idempotency and stats leave them to
    each fake's own rules; only the fault rules see them.
    """
    for vendor, prefix in VENDOR_ROOTS.items():
        if path == prefix or path.startswith(prefix + "/"):
            relative = path[len(prefix) :] or "/"
            return RequestInfo(vendor, method, relative, f"{method} {relative}")
    return None


def request_info(scope: Scope) -> RequestInfo | None:
    """The ``RequestInfo`` that the outermost middleware attached to ``scope``."""
    info = scope.get(_SCOPE_KEY)
    return info if isinstance(info, RequestInfo) else None


class RequestContextMiddleware:
    """Outermost layer: classifies system requests for the layers below and the handlers."""

    def __init__(self, app: ASGIApp, *, routes: RouteTable) -> None:
        self.app = app
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = self._routes.classify(scope["method"], scope["path"])
        scope[_SCOPE_KEY] = info
        token = current_request.set(info)
        try:
            await self.app(scope, receive, send)
        finally:
            current_request.reset(token)


def header(scope: Scope, name: str) -> str | None:
    """The first value of header ``name`` (lower case) in ``scope``."""
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", []):
        if key == wanted:
            return bytes(value).decode("latin-1")
    return None


async def read_body(receive: Receive) -> bytes:
    """Read the whole request body."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields an already read ``body``, then defers to the real one."""
    sent = False

    async def _receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return _receive


@dataclass
class Captured:
    """A buffered response."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    async def send(self, send: Send, extra_headers: Mapping[str, str] | None = None) -> None:
        """Send the response, with ``extra_headers`` added."""
        headers = list(self.headers)
        for key, value in (extra_headers or {}).items():
            headers.append((key.lower().encode("latin-1"), value.encode("latin-1")))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


async def capture(app: ASGIApp, scope: Scope, receive: Receive) -> Captured:
    """Run ``app`` and buffer its response instead of sending it."""
    start: MutableMapping[str, Any] = {}
    chunks: list[bytes] = []

    async def _send(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, _send)
    headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]
    return Captured(int(start.get("status", 500)), headers, b"".join(chunks))


def json_response(
    status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Captured:
    """A JSON response built outside FastAPI (by a middleware)."""
    return bytes_response(status, json.dumps(payload, separators=(",", ":")).encode(), headers)


def bytes_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    content_type: str = "application/json",
) -> Captured:
    """A response with ``body`` as it is."""
    all_headers = {
        "content-type": content_type,
        "content-length": str(len(body)),
        **(headers or {}),
    }
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in all_headers.items()]
    return Captured(status, encoded, body)
