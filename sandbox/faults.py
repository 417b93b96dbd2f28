"""Fault injection: rules that make matching requests slow, fail, or lose their answer.

A rule names one of the sandbox's systems (``erp``, ``tax``…) or one of its vendor-shaped fakes
(``netsuite``, ``business-central``, ``avatax``, ``stripe``, ``salesforce``, ``docusign``,
``ironclad``). A vendor's failure is answered in that vendor's own error shape, with
``Retry-After`` on a ``429`` only where the vendor sends one (Business Central). A rule with
``drop`` closes the connection instead of answering; with ``phase: after`` the work is done
first, so the write happens and its answer is lost.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, Self

from fastapi import Request
from pydantic import Field, field_validator, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.errors import error_payload, status_code_name
from sandbox.http import (
    SYSTEM_ROOTS,
    VENDOR_ROOTS,
    Captured,
    RequestInfo,
    bytes_response,
    capture,
    json_response,
    request_info,
    vendor_request,
)
from sandbox.schemas import Body
from sandbox.stats import Stats

SystemName = Literal[
    "crm",
    "erp",
    "psa",
    "tax",
    "payments",
    "netsuite",
    "business-central",
    "avatax",
    "stripe",
    "salesforce",
    "docusign",
    "ironclad",
]


class FaultRule(Body):
    """One rule of ``/_admin/faults``; ``id`` is assigned when absent, ``fired`` is read-only."""

    id: str | None = None
    system: SystemName
    path_prefix: str | None = None
    method: str | None = None
    probability: float = Field(default=1.0, ge=0, le=1)
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after_s: int | None = Field(default=None, ge=0)
    latency_ms: int | None = Field(default=None, ge=0, le=120_000)
    times: int | None = Field(default=None, ge=1)
    phase: Literal["before", "after"] = "before"
    drop: bool = False
    fired: int = 0

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return None if value is None else value.upper()

    @model_validator(mode="after")
    def _effective(self) -> Self:
        if self.status is None and not self.latency_ms and not self.drop:
            raise ValueError("a rule needs a status, a drop, a latency_ms, or both")
        root = SYSTEM_ROOTS.get(self.system) or VENDOR_ROOTS[self.system]
        # A prefix given from the server root is accepted and made relative to the system.
        if self.path_prefix and self.path_prefix.startswith(root + "/"):
            self.path_prefix = self.path_prefix[len(root) :]
        return self

    def matches(self, info: RequestInfo) -> bool:
        return (
            self.system == info.system
            and (self.method is None or self.method == info.method)
            and (not self.path_prefix or info.path.startswith(self.path_prefix))
            and (self.times is None or self.fired < self.times)
        )


@dataclass(frozen=True)
class Fault:
    """What the rules decided for one request."""

    fired: int
    latency_ms: int
    failing: FaultRule | None


class FaultRules:
    """The current rules, shared by the admin routes and the middleware."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def snapshot(self) -> list[FaultRule]:
        with self._lock:
            return [r.model_copy() for r in self._rules]

    def add(self, rule: FaultRule) -> FaultRule:
        """Add ``rule``; answer it with its id."""
        with self._lock:
            rule_id = rule.id or f"rule-{next(self._ids)}"
            stored = rule.model_copy(update={"id": rule_id, "fired": 0})
            self._rules.append(stored)
            return stored.model_copy()

    def replace(self, rules: list[FaultRule]) -> list[FaultRule]:
        self.clear()
        return [self.add(r) for r in rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def draw(self, info: RequestInfo) -> Fault | None:
        """Roll every matching rule; the first one with a status that fires fails the request."""
        fired = latency = 0
        with self._lock:
            for rule in self._rules:
                if not rule.matches(info) or random.random() >= rule.probability:
                    continue
                rule.fired += 1
                fired += 1
                latency += rule.latency_ms or 0
                if rule.status is not None or rule.drop:
                    return Fault(fired, latency, rule.model_copy())
        return Fault(fired, latency, None) if fired else None


class DroppedConnection(Exception):
    """Raised after a response has started, so that the server closes the connection."""


#: A vendor's error code for an injected status, by vendor and status (else by vendor).
_VENDOR_CODES: dict[str, dict[int | None, str]] = {
    # SuiteTalk REST: o:errorCode in an RFC 9457 problem (sandbox/netsuite.py).
    "netsuite": {429: "CONCURRENCY_LIMIT_EXCEEDED", None: "UNEXPECTED_ERROR"},
    # Business Central API v2.0: the OData error (sandbox/business_central.py).
    "business-central": {429: "Application_TooManyRequests", None: "Internal_ServerError"},
    # AvaTax REST v2 (sandbox/avatax.py).
    "avatax": {429: "RateLimit", None: "ServerError"},
    # Stripe: error.type (sandbox/stripe.py); since API version 2015-09-08 a rate-limited
    # request is a 429 without the rate_limit code.
    "stripe": {None: "api_error"},
    # Salesforce REST: a list of errors (sandbox/salesforce.py).
    "salesforce": {429: "REQUEST_LIMIT_EXCEEDED", None: "SERVER_UNAVAILABLE"},
    # DocuSign eSignature REST (sandbox/docusign.py).
    "docusign": {429: "HOURLY_APIINVOCATION_LIMIT_EXCEEDED", None: "SERVICE_UNAVAILABLE"},
    # Ironclad public API (sandbox/ironclad.py).
    "ironclad": {429: "TOO_MANY_REQUESTS", None: "SERVICE_UNAVAILABLE"},
}
#: The vendors whose throttling answer carries ``Retry-After``.
_SENDS_RETRY_AFTER = frozenset({"business-central"})


def vendor_error(vendor: str, status: int, message: str) -> dict[str, Any] | list[Any]:
    """The body of a failure of ``vendor``'s fake, in that vendor's error shape."""
    codes = _VENDOR_CODES[vendor]
    code = codes.get(status, codes[None])
    if vendor == "netsuite":
        return {
            "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#status.{status}",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "o:errorDetails": [{"detail": message, "o:errorCode": code}],
        }
    if vendor == "business-central":
        return {"error": {"code": code, "message": message}}
    if vendor == "avatax":
        detail = {"code": code, "number": status, "message": message, "severity": "Exception"}
        return {"error": {"code": code, "message": message, "details": [detail]}}
    if vendor == "stripe":
        kind = "invalid_request_error" if status == 429 else code
        return {"error": {"type": kind, "message": message}}
    if vendor == "salesforce":
        return [{"message": message, "errorCode": code, "fields": []}]
    if vendor == "docusign":
        return {"errorCode": code, "message": message}
    return {"code": code, "message": message}


def fault_response(rule: FaultRule) -> Captured:
    """The answer to a request that ``rule`` fails."""
    assert rule.status is not None
    message = f"injected by fault rule {rule.id}"
    headers: dict[str, str] = {}
    if rule.system in VENDOR_ROOTS:
        if rule.status == 429 and rule.system in _SENDS_RETRY_AFTER:
            headers["Retry-After"] = str(1 if rule.retry_after_s is None else rule.retry_after_s)
        if rule.system == "avatax":
            # Every AvaTax answer has one, and Avalara's client reads it from each answer.
            headers["X-Correlation-Id"] = str(uuid.uuid4())
        body = json.dumps(vendor_error(rule.system, rule.status, message)).encode()
        return bytes_response(rule.status, body, headers)
    if rule.status == 429 or (rule.status == 503 and rule.retry_after_s is not None):
        headers["Retry-After"] = str(1 if rule.retry_after_s is None else rule.retry_after_s)
    payload = error_payload(status_code_name(rule.status), message, None)
    return json_response(rule.status, payload, headers)


class FaultMiddleware:
    """Applies the fault rules to system and vendor requests (below the stats, above
    idempotency)."""

    def __init__(self, app: ASGIApp, *, rules: FaultRules, stats: Stats) -> None:
        self.app = app
        self._rules = rules
        self._stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = request_info(scope)
        if info is None and scope["type"] == "http":
            info = vendor_request(scope["method"], scope["path"])
        fault = self._rules.draw(info) if info is not None else None
        if fault is None:
            await self.app(scope, receive, send)
            return
        self._stats.count_faults(fault.fired)
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        rule = fault.failing
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.phase == "after":
            # The work is done and its answer lost on the way back, as with a dropped response.
            await capture(self.app, scope, receive)
        if rule.drop:
            # A response promised and never sent: the server closes the connection mid-answer.
            start = {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1024")],
            }
            await send(start)
            raise DroppedConnection(f"connection dropped by fault rule {rule.id}")
        await fault_response(rule).send(send)


async def get_fault_rules(request: Request) -> FaultRules:
    """FastAPI dependency: the app's fault rules."""
    rules: FaultRules = request.app.state.faults
    return rules
