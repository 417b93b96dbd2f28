"""Vendor call slots in the ledger: in-flight leases given back or expired, and the per-second
window, as every worker's tries see them (on SQLite and, where configured, PostgreSQL)."""

from __future__ import annotations

import threading

import pytest

from c2c.vendor_limits import PER_SECOND_WINDOW_S, CallLimit
from ledger import Ledger

T = 1_800_000_000.0


def test_in_flight_slots_are_given_back_or_expire(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.create_all()
    limit = CallLimit(in_flight=2, lease_s=5)
    first = ledger.try_acquire("netsuite", limit, "host:1", T)
    second = ledger.try_acquire("netsuite", limit, "host:2", T)
    assert first.granted and second.granted and first.lease_id and second.lease_id
    assert not ledger.try_acquire("netsuite", limit, "host:3", T + 1).granted
    assert ledger.leases("netsuite", T + 1) == {"host:1": 1, "host:2": 1}

    ledger.release(first.lease_id, T + 1)
    third = ledger.try_acquire("netsuite", limit, "host:3", T + 1)
    assert third.granted
    # host:2 died holding its slot: it counts until its lease ends, then no more.
    assert not ledger.try_acquire("netsuite", limit, "host:4", T + 4.9).granted
    assert ledger.try_acquire("netsuite", limit, "host:4", T + 5.01).granted
    assert ledger.leases("netsuite", T + 5.01) == {"host:3": 1, "host:4": 1}
    # Another vendor's slots are its own.
    assert ledger.try_acquire("business-central", limit, "host:1", T + 5.01).granted


def test_the_per_second_limit_counts_a_call_until_a_second_after_its_answer(
    ledger_url: str,
) -> None:
    ledger = Ledger(ledger_url)
    ledger.create_all()
    limit = CallLimit(per_second=3)
    leases = []
    for n in range(3):
        attempt = ledger.try_acquire("stripe", limit, "host:1", T + n * 0.1)
        assert attempt.granted and attempt.lease_id
        leases.append(attempt.lease_id)
    # In flight: nothing is free, and nothing says when it will be.
    refused = ledger.try_acquire("stripe", limit, "host:2", T + 0.3)
    assert not refused.granted and refused.retry_in_s == 0
    for lease in leases:
        ledger.release(lease, T + 0.4)
    # Answered at T + 0.4: each reached the vendor at some moment up to then, so each counts
    # until T + 1.4.
    refused = ledger.try_acquire("stripe", limit, "host:2", T + 0.5)
    assert not refused.granted
    assert refused.retry_in_s == pytest.approx(0.4 + PER_SECOND_WINDOW_S - 0.5)
    assert ledger.call_slots("stripe", T + 1.3)["last_second"] == 3
    assert not ledger.try_acquire("stripe", limit, "host:2", T + 1.39).granted
    assert ledger.try_acquire(
        "stripe", limit, "host:2", T + 0.4 + PER_SECOND_WINDOW_S + 0.01
    ).granted


def test_concurrent_tries_never_grant_more_than_the_limit(ledger_url: str) -> None:
    """Eight threads, each with a ledger of its own as a worker process would have, try at
    once: exactly the limit's slots are granted."""
    Ledger(ledger_url).create_all()
    limit = CallLimit(in_flight=3, per_second=100)
    granted: list[bool] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        ledger = Ledger(ledger_url)
        barrier.wait()
        granted.append(ledger.try_acquire("netsuite", limit, f"host:{n}", T).granted)
        ledger.dispose()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(granted) == [False] * 5 + [True] * 3
