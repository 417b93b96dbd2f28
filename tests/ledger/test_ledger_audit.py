"""The audit trail: each key recorded once, amounts and dates kept exactly, ordered by time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from ledger import AuditEventIn, Ledger

At = Callable[[float], datetime]


def event(key: str, when: datetime, *, contract_id: str = "K-1", **extra: Any) -> AuditEventIn:
    return AuditEventIn.model_validate(
        {
            "event_key": key,
            "contract_id": contract_id,
            "workflow_id": f"contract-{contract_id}",
            "run_id": "run-1",
            "stage": "provisioning_erp",
            "event": f"event {key}",
            "at": when,
            **extra,
        }
    )


def test_record_audit_inserts_each_key_once(ledger: Ledger, at: At) -> None:
    batch = [event("a", at(1)), event("b", at(2), detail={"erp_customer_id": "C-1", "n": 2})]
    assert ledger.record_audit(batch) == 2
    assert ledger.record_audit(batch) == 0
    assert ledger.record_audit([*batch, event("c", at(3))]) == 1
    trail = ledger.audit_trail("K-1")
    assert [e.event_key for e in trail] == ["a", "b", "c"]
    assert trail[0].detail is None
    assert trail[1].detail == {"erp_customer_id": "C-1", "n": 2}
    assert trail[1].run_id == "run-1"


def test_detail_keeps_amounts_and_dates_as_json_strings(ledger: Ledger, at: At) -> None:
    detail = {"amount": Decimal("1200.50"), "due_on": date(2025, 4, 1), "lines": [1, 2]}
    ledger.record_audit([event("invoiced", at(0), detail=detail)])
    [stored] = ledger.audit_trail("K-1")
    assert stored.detail == {"amount": "1200.50", "due_on": "2025-04-01", "lines": [1, 2]}


def test_a_key_repeated_in_one_batch_is_recorded_once_as_first_given(
    ledger: Ledger, at: At
) -> None:
    assert ledger.record_audit([event("a", at(1)), event("a", at(5), event="other")]) == 1
    [only] = ledger.audit_trail("K-1")
    assert only.event == "event a"


def test_a_batch_past_one_statements_parameter_limit_counts_only_new_keys(
    ledger: Ledger, at: At
) -> None:
    # 5,000 rows of nine columns are more bound parameters than one SQLite statement takes.
    assert ledger.record_audit([event(f"e{n}", at(n)) for n in range(0, 5000, 2)]) == 2500
    assert ledger.record_audit([event(f"e{n}", at(n)) for n in range(5000)]) == 2500
    assert len(ledger.audit_trail("K-1")) == 5000


def test_an_empty_batch_records_nothing(ledger: Ledger) -> None:
    assert ledger.record_audit([]) == 0


def test_trail_is_ordered_by_time_then_insertion(ledger: Ledger, at: At) -> None:
    ledger.record_audit([event("late", at(10)), event("tie-1", at(5)), event("tie-2", at(5))])
    ledger.record_audit([event("early", at(1)), event("other", at(0), contract_id="K-2")])
    assert [e.event_key for e in ledger.audit_trail("K-1")] == ["early", "tie-1", "tie-2", "late"]
    assert [e.event_key for e in ledger.audit_trail("K-2")] == ["other"]


def test_times_come_back_as_the_same_instant_in_utc(ledger: Ledger, at: At) -> None:
    # 10:30+02:00 is 08:30 UTC: before at(0), 09:00 UTC, although its wall time is later.
    cest = datetime(2025, 3, 1, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    ledger.record_audit([event("utc", at(0)), event("cest", cest)])
    first, second = ledger.audit_trail("K-1")
    assert first.event_key == "cest"
    assert first.at == cest
    assert first.at.tzinfo == UTC
    assert second.recorded_at.tzinfo == UTC


def test_naive_times_and_unknown_stages_are_refused(at: At) -> None:
    with pytest.raises(ValidationError):
        event("a", datetime(2025, 3, 1, 9, 0))
    with pytest.raises(ValidationError):
        event("a", at(0), stage="billing")
