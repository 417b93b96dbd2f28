"""Counters behind ``GET /_admin/stats``: requests served and writes made, per system and route."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.http import RequestInfo, request_info


class Stats:
    """Thread-safe request, write and fault counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._writes: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._faults_fired = 0

    def count_request(self, info: RequestInfo) -> None:
        with self._lock:
            self._requests[info.system][info.route] += 1

    def count_write(self, info: RequestInfo) -> None:
        with self._lock:
            self._writes[info.system][info.route] += 1

    def count_faults(self, fired: int) -> None:
        with self._lock:
            self._faults_fired += fired

    def snapshot(self) -> dict[str, Any]:
        """The ``/_admin/stats`` answer."""
        with self._lock:
            return {
                "requests": {s: dict(c) for s, c in self._requests.items()},
                "writes": {s: dict(c) for s, c in self._writes.items()},
                "faults_fired": self._faults_fired,
            }

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._writes.clear()
            self._faults_fired = 0


class StatsMiddleware:
    """Counts every system request on arrival, and it as a write if it changed data.

    A replayed idempotent request or a natural-key repeat changes nothing, so it is no write;
    a write whose answer a fault then replaces (``phase: after``) is one.
    """

    def __init__(self, app: ASGIApp, *, stats: Stats) -> None:
        self.app = app
        self._stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = request_info(scope)
        if info is None:
            await self.app(scope, receive, send)
            return
        self._stats.count_request(info)
        try:
            await self.app(scope, receive, send)
        finally:
            if info.wrote:
                self._stats.count_write(info)


async def get_stats(request: Request) -> Stats:
    """FastAPI dependency: the app's counters."""
    stats: Stats = request.app.state.stats
    return stats
