"""A subscriber's endpoint on loopback for the outbound-event tests: ``/ok...`` answers 200,
``/down...`` 503, ``/gone...`` 410, ``/flaky...`` 503 to an event's first delivery and 200
after; every delivery is kept with its headers and body."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx

from domain.names import Stage
from ledger import BillingStartIn, ContractRecordIn, InvoiceIssuedIn, Ledger

T = TypeVar("T")

ANSWERS = {"/ok": 200, "/down": 503, "/gone": 410}


@dataclass
class Delivery:
    """One POST the subscriber received."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def envelope(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Subscriber:
    """The endpoint's base URL and what it received."""

    url: str
    received: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            before = [d for d in self.received if d.path == path and d.body == body]
            self.received.append(Delivery(path, headers, body))
        if path.startswith("/flaky"):
            return 200 if before else 503
        return next((code for prefix, code in ANSWERS.items() if path.startswith(prefix)), 404)

    def of_event(self, event_id: str) -> list[Delivery]:
        """The deliveries of one event, in arrival order."""
        with self.lock:
            return [d for d in self.received if d.envelope.get("id") == event_id]


@contextmanager
def serve_subscriber(answer: Callable[[str, dict[str, str], bytes], int]) -> Iterator[str]:
    """Serve POSTs on a loopback port until the block ends, each answered with the status
    ``answer(path, headers, body)`` gives; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = answer(self.path, dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="subscriber", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def subscriber_endpoint() -> Iterator[Subscriber]:
    """Serve a ``Subscriber`` on a loopback port until the block ends."""
    state = Subscriber(url="")
    with serve_subscriber(state.answer) as url:
        state.url = url
        yield state


async def until(check: Callable[[], Awaitable[T]], what: str, timeout_s: float = 60) -> T:
    """Poll ``check`` until it answers something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def issue_invoice(ledger: Ledger, contract_id: str, legal_entity: str = "US01") -> str:
    """Record a contract of ``legal_entity`` and its invoice's issue in the ledger, as the
    workflow's activities do; returns the ``invoice.issued`` event's id."""
    now = datetime.now(UTC)
    ledger.upsert_contract(
        ContractRecordIn(
            contract_id=contract_id,
            stage=Stage.ACTIVE,
            updated_at=now,
            legal_entity=legal_entity,
            currency="USD",
        )
    )
    ledger.record_billing_started(
        BillingStartIn(
            contract_id=contract_id,
            reference="2026-10",
            period="2026-10",
            period_close=True,
            legal_entity=legal_entity,
            currency="USD",
            requested_at=now,
        )
    )
    ledger.record_invoice_issued(
        InvoiceIssuedIn(
            contract_id=contract_id,
            reference="2026-10",
            invoice_id=f"INV-{contract_id}",
            invoice_date=date(2026, 10, 31),
            due_on=date(2026, 11, 30),
            total=Decimal("1200.00"),
            subtotal=Decimal("1200.00"),
            tax=Decimal(0),
            issued_at=now,
        )
    )
    [found] = ledger.list_outbound_events(contract_id=contract_id, event_type="invoice.issued")
    return found.event.event_id


async def subscribe(api: httpx.AsyncClient, url: str, *types: str) -> dict[str, Any]:
    """Subscribe ``url`` through the API (to ``invoice.issued`` when no type is given);
    returns the answer, with the secret shown this once."""
    wanted = list(types) or ["invoice.issued"]
    answer = await api.post("/api/subscriptions", json={"url": url, "event_types": wanted})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    assert created["secret"] and created["event_types"] == sorted(wanted)
    return created
