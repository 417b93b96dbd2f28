"""Every connector's requests hold slots of their vendor's call limits: the sandbox, counting
what it is sent, never sees more in flight, or in one second, than the limits allow; the wait
for a slot is timed per vendor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from pydantic import ValidationError

from c2c.call_limits import CallGovernor, install_governor
from c2c.settings import Settings
from c2c.telemetry import CALL_SLOT_WAIT
from c2c.vendor_limits import VENDOR_LIMITS, CallLimit
from connectors.http import GovernedClient
from connectors.psa import HttpPsa
from ledger import Ledger
from tests.netsuite_support import netsuite


@pytest_asyncio.fixture
async def slots(tmp_path: Path) -> AsyncIterator[Ledger]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_all()
    limits = {"netsuite": CallLimit(in_flight=2), "psa": CallLimit(per_second=5)}
    previous = install_governor(CallGovernor(ledger, limits))
    try:
        yield ledger
    finally:
        install_governor(previous)
        ledger.dispose()


async def vendor_load(sandbox: httpx.AsyncClient, vendor: str) -> dict[str, int]:
    load: dict[str, int] = (await sandbox.get("/_admin/stats")).json()["vendors"][vendor]
    return load


def waits(vendor: str) -> float:
    return REGISTRY.get_sample_value(f"{CALL_SLOT_WAIT}_count", {"system": vendor}) or 0.0


async def test_netsuite_never_sees_more_in_flight_than_its_limit(
    slots: Ledger, sandbox: httpx.AsyncClient, sandbox_url: str
) -> None:
    await sandbox.delete("/_admin/stats/vendors")
    await sandbox.put(
        "/_admin/netsuite", json={"latency_ms": 100, "concurrency_limit": 2, "reset_counters": True}
    )
    # Two connectors, as two workers would have, each allowing ten at once on its own.
    erps = [netsuite(sandbox_url, concurrency=10) for _ in range(2)]
    waited = waits("netsuite")
    try:
        await asyncio.gather(
            *(erps[n % 2].get_legal_entity("US01") for n in range(12)),
        )
    finally:
        await sandbox.put("/_admin/netsuite", json={"latency_ms": 0, "concurrency_limit": 5})
        for erp in erps:
            await erp.aclose()
    load = await vendor_load(sandbox, "netsuite")
    assert load["requests"] >= 12
    assert load["max_in_flight"] == 2
    governance = (await sandbox.get("/_admin/netsuite")).json()
    assert governance["rejected"] == 0
    assert waits("netsuite") - waited >= 12
    assert slots.leases("netsuite", time.time()) == {}


async def test_a_per_second_limit_holds_at_the_vendor(
    slots: Ledger, sandbox: httpx.AsyncClient, sandbox_url: str
) -> None:
    await sandbox.delete("/_admin/stats/vendors")
    clients = [GovernedClient("psa", base_url=f"{sandbox_url}/psa/v1") for _ in range(2)]
    started = time.monotonic()
    try:
        answers = await asyncio.gather(*(clients[n % 2].get("/projects") for n in range(15)))
    finally:
        for client in clients:
            await client.aclose()
    assert all(answer.status_code == 200 for answer in answers)
    # 15 calls at 5 a second: the last ones wait two windows.
    assert time.monotonic() - started >= 2.0
    load = await vendor_load(sandbox, "psa")
    assert load["requests"] == 15
    assert load["max_per_second"] <= 5


async def test_a_429_under_a_limit_still_waits_its_retry_after_without_holding_a_slot(
    slots: Ledger, sandbox: httpx.AsyncClient, sandbox_url: str, faults: Any
) -> None:
    await sandbox.delete("/_admin/stats/vendors")
    await faults(system="psa", path_prefix="/projects", status=429, retry_after_s=1, times=1)
    psa = HttpPsa(f"{sandbox_url}/psa/v1", quick_retries=1)
    limited = CallGovernor(slots, {"psa": CallLimit(in_flight=1, per_second=5)})
    previous = install_governor(limited)
    started = time.monotonic()
    try:
        page = await psa.request("GET", "/projects")
    finally:
        install_governor(previous)
        await psa.aclose()
    assert "items" in page
    # Retried once, after the second that Retry-After asked for.
    assert time.monotonic() - started >= 1.0
    assert (await vendor_load(sandbox, "psa"))["requests"] == 2
    assert slots.leases("psa", time.time()) == {}


async def test_a_call_cancelled_while_it_waits_for_a_slot_takes_none(slots: Ledger) -> None:
    governor = CallGovernor(slots, {"netsuite": CallLimit(in_flight=1)})
    held = await governor.acquire("netsuite")
    assert held is not None
    waiting = asyncio.create_task(governor.acquire("netsuite"))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await governor.release(held)
    await asyncio.sleep(0.2)  # a try that was under way when cancelled gives its slot back
    assert slots.leases("netsuite", time.time()) == {}
    assert await governor.acquire("netsuite") is not None


def test_c2c_call_limits_replace_the_vendors_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "C2C_CALL_LIMITS",
        '{"netsuite": {"in_flight": 3, "lease_s": 20}, "stripe": {}, "psa": {"per_second": 9}}',
    )
    limits = Settings(_env_file=None).vendor_call_limits()  # type: ignore[call-arg]
    assert limits["netsuite"] == CallLimit(in_flight=3, lease_s=20)
    assert "stripe" not in limits  # an empty entry turns the default off
    assert limits["psa"] == CallLimit(per_second=9)
    assert limits["business-central"] == VENDOR_LIMITS["business-central"]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ('{"netsuit": {"in_flight": 3}}', "netsuit"),
        ('{"netsuite": {"in_flite": 3}}', "in_flite"),
        ('{"netsuite": {"in_flight": 0}}', "in_flight"),
    ],
)
def test_a_wrong_call_limit_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str, named: str
) -> None:
    monkeypatch.setenv("C2C_CALL_LIMITS", value)
    with pytest.raises(ValidationError, match=named):
        Settings(_env_file=None)  # type: ignore[call-arg]
