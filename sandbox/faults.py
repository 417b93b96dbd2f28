"""Fault injection: rules that make matching system requests slow, fail, or lose their answer."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from dataclasses import dataclass
from typing import Literal, Self

from fastapi import Request
from pydantic import Field, field_validator, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.errors import error_payload, status_code_name
from sandbox.http import SYSTEM_ROOTS, RequestInfo, capture, json_response, request_info
from sandbox.schemas import Body
from sandbox.stats import Stats

SystemName = Literal["crm", "erp", "psa", "tax", "payments"]


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
    fired: int = 0

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return None if value is None else value.upper()

    @model_validator(mode="after")
    def _effective(self) -> Self:
        if self.status is None and not self.latency_ms:
            raise ValueError("a rule needs a status, a latency_ms, or both")
        root = SYSTEM_ROOTS[self.system]
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
                if rule.status is not None:
                    return Fault(fired, latency, rule.model_copy())
        return Fault(fired, latency, None) if fired else None


class FaultMiddleware:
    """Applies the fault rules to system requests (below the stats, above idempotency)."""

    def __init__(self, app: ASGIApp, *, rules: FaultRules, stats: Stats) -> None:
        self.app = app
        self._rules = rules
        self._stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = request_info(scope)
        fault = self._rules.draw(info) if info is not None else None
        if fault is None:
            await self.app(scope, receive, send)
            return
        self._stats.count_faults(fault.fired)
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        rule = fault.failing
        if rule is None or rule.status is None:
            await self.app(scope, receive, send)
            return
        if rule.phase == "after":
            # The work is done and its answer lost on the way back, as with a dropped response.
            await capture(self.app, scope, receive)
        headers: dict[str, str] = {}
        if rule.status == 429 or (rule.status == 503 and rule.retry_after_s is not None):
            headers["Retry-After"] = str(1 if rule.retry_after_s is None else rule.retry_after_s)
        payload = error_payload(
            status_code_name(rule.status), f"injected by fault rule {rule.id}", None
        )
        await json_response(rule.status, payload, headers).send(send)


async def get_fault_rules(request: Request) -> FaultRules:
    """FastAPI dependency: the app's fault rules."""
    rules: FaultRules = request.app.state.faults
    return rules
