"""Many at-least-once writers at the same instant: no duplicates and no errors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from ledger import (
    AuditEventIn,
    ContractRecordIn,
    ExceptionIn,
    InboundEventIn,
    Ledger,
    LedgerConflict,
)

At = Callable[[float], datetime]
T = TypeVar("T")

WRITERS = 8


def race(action: Callable[[int], T]) -> list[T | Exception]:
    """Run ``action(i)`` for every writer, all released together; collect results and errors."""
    start = threading.Barrier(WRITERS)

    def run(i: int) -> T | Exception:
        start.wait()
        try:
            return action(i)
        except Exception as error:
            return error

    with ThreadPoolExecutor(WRITERS) as pool:
        return list(pool.map(run, range(WRITERS)))


def test_concurrent_xrefs_are_written_once(ledger: Ledger) -> None:
    results = race(lambda _: ledger.record_xref("K-1", "erp", "invoice", "INV-1"))
    assert results == [None] * WRITERS
    assert len(ledger.list_xrefs("K-1")) == 1


def test_concurrent_claims_on_one_id_leave_one_owner(ledger: Ledger) -> None:
    results = race(lambda i: ledger.record_xref(f"K-{i}", "erp", "invoice", "INV-1"))
    assert results.count(None) == 1
    assert sum(isinstance(r, LedgerConflict) for r in results) == WRITERS - 1
    owner = ledger.find_contract_by_xref("erp", "invoice", "INV-1")
    assert owner == f"K-{results.index(None)}"


def test_concurrent_audit_batches_insert_each_event_once(ledger: Ledger, at: At) -> None:
    batch = [
        AuditEventIn(
            event_key=f"contract-K-1/step-{n}",
            contract_id="K-1",
            workflow_id="contract-K-1",
            stage="active",
            event=f"step {n}",
            at=at(n),
        )
        for n in range(20)
    ]
    # Overlapping batches: each writer sends a different slice of the same events.
    results = race(lambda i: ledger.record_audit(batch[i : i + 13]))
    assert all(isinstance(r, int) for r in results), results
    assert sum(r for r in results if isinstance(r, int)) == 20
    assert [e.event_key for e in ledger.audit_trail("K-1")] == [e.event_key for e in batch]


def test_concurrent_exception_writes_are_idempotent(ledger: Ledger, at: At) -> None:
    opened = ExceptionIn(
        exception_id="X-1",
        contract_id="K-1",
        workflow_id="contract-K-1",
        stage="validating",
        system="crm",
        code="account_not_found",
        message="no account ACME",
        queue="finance",
        opened_at=at(0),
    )
    assert race(lambda _: ledger.open_exception(opened).exception_id) == ["X-1"] * WRITERS
    results = race(lambda i: ledger.resolve_exception("X-1", "retried", f"ops-{i}", "", at(i)))
    records = [r for r in results if not isinstance(r, Exception)]
    assert len(records) == WRITERS, results
    assert {r.status for r in records} == {"retried"}
    # Every writer gets back the one decision that won, not its own.
    assert len({(r.resolved_by, r.resolved_at) for r in records}) == 1
    assert len(ledger.list_exceptions()) == 1


def test_concurrent_contract_upserts_leave_one_row(ledger: Ledger, at: At) -> None:
    def upsert(i: int) -> str:
        given = ContractRecordIn(
            contract_id="K-1",
            stage="active",
            updated_at=at(i),
            active_at=at(i),
            customer_id="ACME" if i % 2 else None,
        )
        return ledger.upsert_contract(given).contract_id

    assert race(upsert) == ["K-1"] * WRITERS
    [stored] = ledger.list_contracts()
    assert stored.customer_id == "ACME"
    assert stored.active_at is not None


def test_concurrent_deliveries_of_one_event_record_it_once_and_one_claims_it(
    ledger: Ledger, at: At
) -> None:
    event = InboundEventIn(
        source="payments",
        event_id="evt-1",
        type="payment.succeeded",
        body='{"id": "evt-1"}',
        received_at=at(0),
    )
    results = race(lambda _: ledger.record_inbound_event(event))
    assert not any(isinstance(r, Exception) for r in results), results
    recorded = [r for r in results if not isinstance(r, Exception)]
    # The unique key decides: one delivery recorded it (and holds the claim to process it).
    assert [r.known for r in recorded].count(False) == 1
    assert {r.event.id for r in recorded} == {recorded[0].event.id}
    assert len(ledger.list_inbound_events()) == 1

    ledger.mark_inbound_dead_letter("payments", "evt-1", "no contract has invoice INV-1")
    # Redeliveries of a dead letter race to process it again: exactly one may.
    claims = race(lambda _: ledger.claim_inbound_event("payments", "evt-1"))
    assert sum(c is not None for c in claims) == 1, claims

    def settle(i: int) -> tuple[str, int | None]:
        done = ledger.mark_inbound_processed(
            "payments", "evt-1", response_status=202, response_body={"writer": i}
        )
        return done.status, (done.response_body or {}).get("writer")

    settled = race(settle)
    # Every writer gets back the one answer that won.
    assert len(set(settled)) == 1, settled
    [stored] = ledger.list_inbound_events()
    assert (stored.status, stored.attempts) == ("processed", 2)
