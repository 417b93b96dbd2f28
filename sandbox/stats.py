"""Counters behind ``GET /_admin/stats``: requests served and writes made, per system and route,
and the load each vendor saw (``vendors``: the most requests in flight at once, and in any one
second)."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.http import SYSTEM_ROOTS, RequestInfo, request_info

#: The vendors' paths (``/vendors/<path>/…``) under the names c2c's call limits give them.
VENDOR_NAMES = {"bc": "business-central"}


def vendor_of(path: str) -> str | None:
    """The vendor a request path is for: ``/vendors/netsuite/…`` → ``netsuite``,
    ``/erp/v1/…`` → ``erp``; ``None`` for the sandbox's own paths."""
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "vendors":
        return VENDOR_NAMES.get(parts[1], parts[1])
    for system, root in SYSTEM_ROOTS.items():
        if path == root or path.startswith(root + "/"):
            return system
    return None


@dataclass
class _Load:
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    max_per_second: int = 0
    #: Arrival times (monotonic) within the last second.
    arrivals: deque[float] = field(default_factory=deque)


class VendorLoad:
    """What each vendor was asked: requests, the most in flight at once, and the most that
    arrived within any one second (a sliding window, as a strict vendor would count)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._load: defaultdict[str, _Load] = defaultdict(_Load)

    def arrived(self, vendor: str) -> None:
        now = time.monotonic()
        with self._lock:
            load = self._load[vendor]
            load.requests += 1
            load.in_flight += 1
            load.max_in_flight = max(load.max_in_flight, load.in_flight)
            load.arrivals.append(now)
            while load.arrivals and load.arrivals[0] <= now - 1.0:
                load.arrivals.popleft()
            load.max_per_second = max(load.max_per_second, len(load.arrivals))

    def answered(self, vendor: str) -> None:
        with self._lock:
            self._load[vendor].in_flight -= 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                vendor: {
                    "requests": load.requests,
                    "in_flight": load.in_flight,
                    "max_in_flight": load.max_in_flight,
                    "max_per_second": load.max_per_second,
                }
                for vendor, load in self._load.items()
            }

    def reset(self) -> None:
        """Zero the counts; requests in flight stay counted as in flight."""
        with self._lock:
            for load in self._load.values():
                load.requests = load.max_per_second = 0
                load.max_in_flight = load.in_flight
                load.arrivals.clear()


class Stats:
    """Thread-safe request, write and fault counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._writes: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._faults_fired = 0
        self.vendors = VendorLoad()

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
                "vendors": self.vendors.snapshot(),
            }

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._writes.clear()
            self._faults_fired = 0
        self.vendors.reset()


class StatsMiddleware:
    """Counts every system request on arrival, and it as a write if it changed data.

    A replayed idempotent request or a natural-key repeat changes nothing, so it is no write;
    a write whose answer a fault then replaces (``phase: after``) is one.
    """

    def __init__(self, app: ASGIApp, *, stats: Stats) -> None:
        self.app = app
        self._stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        vendor = vendor_of(scope["path"]) if scope["type"] == "http" else None
        if vendor is not None:
            await self._measured(vendor, scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _measured(self, vendor: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a vendor's request, in flight from its arrival until the last byte of its
        answer is handed to the server (before the client can have it)."""
        load = self._stats.vendors
        load.arrived(vendor)
        done = False

        async def send_and_note(message: Message) -> None:
            nonlocal done
            last = message["type"] == "http.response.body" and not message.get("more_body")
            if last and not done:
                done = True
                load.answered(vendor)
            await send(message)

        try:
            await self._counted(scope, receive, send_and_note)
        finally:
            if not done:
                load.answered(vendor)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
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
