"""The exception queue's table: opened once by id, resolved once, conflicting decisions refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from domain.names import ExceptionAction
from ledger import ExceptionIn, ExceptionStatus, Ledger, LedgerConflict, NotFoundInLedger

At = Callable[[float], datetime]


def exception(exception_id: str, opened_at: datetime, **extra: Any) -> ExceptionIn:
    return ExceptionIn.model_validate(
        {
            "exception_id": exception_id,
            "contract_id": "K-1",
            "workflow_id": "contract-K-1",
            "stage": "provisioning_erp",
            "system": "erp",
            "code": "unknown_legal_entity",
            "message": "legal entity XX01 is not set up",
            "queue": "legal",
            "step": "create_erp_customer",
            "opened_at": opened_at,
            **extra,
        }
    )


def test_open_exception_is_idempotent_by_id(ledger: Ledger, at: At) -> None:
    first = ledger.open_exception(exception("X-1", at(0)))
    again = ledger.open_exception(exception("X-1", at(5), message="another message"))
    assert first.status == again.status == "open"
    assert again.message == "legal entity XX01 is not set up"
    assert again.opened_at == at(0)
    assert again.step == "create_erp_customer"
    assert again.escalated_at is None
    assert len(ledger.list_exceptions()) == 1


def test_resolve_exception_records_the_decision_once(ledger: Ledger, at: At) -> None:
    ledger.open_exception(exception("X-1", at(0)))
    resolved = ledger.resolve_exception("X-1", "skipped", "ops@example.com", "fixed in ERP", at(3))
    assert (resolved.status, resolved.resolved_by, resolved.resolution_note) == (
        "skipped",
        "ops@example.com",
        "fixed in ERP",
    )
    assert resolved.resolved_at == at(3)
    # A repeated decision (a retried activity, a double click) changes nothing.
    again = ledger.resolve_exception("X-1", ExceptionStatus.SKIPPED, "someone else", "", at(9))
    assert (again.resolved_by, again.resolved_at) == ("ops@example.com", at(3))


def test_a_different_decision_on_a_resolved_exception_is_a_conflict(ledger: Ledger, at: At) -> None:
    ledger.open_exception(exception("X-1", at(0)))
    ledger.resolve_exception("X-1", "retried", "ops", "", at(1))
    with pytest.raises(LedgerConflict, match="retried"):
        ledger.resolve_exception("X-1", "aborted", "ops", "", at(2))
    stored = ledger.get_exception("X-1")
    assert stored is not None
    assert stored.status == "retried"


def test_resolving_a_missing_exception_is_not_found(ledger: Ledger, at: At) -> None:
    with pytest.raises(NotFoundInLedger):
        ledger.resolve_exception("X-404", "skipped", "ops", "", at(1))
    with pytest.raises(KeyError):
        ledger.escalate_exception("X-404", at(1))
    assert ledger.get_exception("X-404") is None


def test_bad_resolutions_are_refused(ledger: Ledger, at: At) -> None:
    ledger.open_exception(exception("X-1", at(0)))
    with pytest.raises(ValueError):
        ledger.resolve_exception("X-1", "open", "ops", "", at(1))
    with pytest.raises(ValueError):
        ledger.resolve_exception("X-1", "ignored", "ops", "", at(1))
    with pytest.raises(ValueError, match="naive"):
        ledger.resolve_exception("X-1", "skipped", "ops", "", datetime(2025, 3, 1))
    stored = ledger.get_exception("X-1")
    assert stored is not None
    assert stored.status == "open"


def test_escalation_keeps_its_first_time(ledger: Ledger, at: At) -> None:
    ledger.open_exception(exception("X-1", at(0)))
    assert ledger.escalate_exception("X-1", at(60)).escalated_at == at(60)
    assert ledger.escalate_exception("X-1", at(120)).escalated_at == at(60)


def test_list_exceptions_filters(ledger: Ledger, at: At) -> None:
    ledger.open_exception(exception("X-3", at(3), queue="finance", system="tax", code="address"))
    ledger.open_exception(exception("X-1", at(1)))
    ledger.open_exception(exception("X-2", at(2), contract_id="K-2", workflow_id="contract-K-2"))
    ledger.resolve_exception("X-1", "aborted", "ops", "", at(4))

    def ids(**filters: str) -> list[str]:
        return [e.exception_id for e in ledger.list_exceptions(**filters)]

    assert ids() == ["X-1", "X-2", "X-3"]
    assert ids(status="open") == ["X-2", "X-3"]
    assert ids(status="aborted") == ["X-1"]
    assert ids(queue="legal") == ["X-1", "X-2"]
    assert ids(status="open", queue="legal") == ["X-2"]
    assert ids(contract_id="K-1") == ["X-1", "X-3"]
    assert ids(contract_id="K-1", queue="delivery") == []


def test_status_after_an_operator_action() -> None:
    assert ExceptionStatus.after(ExceptionAction.RETRY) is ExceptionStatus.RETRIED
    assert ExceptionStatus.after("skip") is ExceptionStatus.SKIPPED
    assert ExceptionStatus.after("abort") is ExceptionStatus.ABORTED
