"""The exception queue: business errors waiting for the people who own the fix."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Executable, Update, update
from sqlmodel import col, select

from domain.account_sync import ACCOUNT_WORKFLOW_PREFIX
from domain.reconcile import RECONCILE_STEP
from ledger.base import count_returned
from ledger.columns import require_aware
from ledger.errors import LedgerConflict, NotFoundInLedger
from ledger.models import (
    ExceptionIn,
    ExceptionRecord,
    ExceptionStatus,
    OutboundEventType,
    utc_now,
)
from ledger.outbound import OutboundLedger


class ExceptionQueueLedger(OutboundLedger):
    """The exception-queue part of the ledger."""

    def open_exception(self, exception: ExceptionIn) -> ExceptionRecord:
        """Open an exception, or return the one already opened with that id, unchanged.

        One that a reset superseded is open again: the new run met the same failure.
        """
        row = {**exception.model_dump(), "status": ExceptionStatus.OPEN.value}
        reopen = _reopen(exception.exception_id, ExceptionStatus.SUPERSEDED)
        insert = self._insert_new(ExceptionRecord, ["exception_id"], returning=["exception_id"])
        with self._transaction() as session:
            opened = count_returned(session, insert, row)
            session.connection().execute(reopen)
            record = session.get(ExceptionRecord, exception.exception_id)
            assert record is not None  # inserted now or before, and never deleted
            if opened:
                self._emit(
                    session,
                    OutboundEventType.EXCEPTION_OPENED,
                    record.exception_id,
                    _exception_payload(record),
                    contract_id=record.contract_id,
                    occurred_at=record.opened_at,
                )
        return record

    def reopen_retried(self, exception_id: str) -> bool:
        """Open again an exception an operator retried, when the check that raised it finds
        the same problem again (reconciliation's differences).

        Returns:
            Whether it was reopened now.
        """
        stmt = _reopen(exception_id, ExceptionStatus.RETRIED)
        with self._transaction() as session:
            return bool(session.connection().execute(stmt).rowcount)

    def supersede_exceptions(
        self, contract_id: str, keep: Collection[str], at: datetime | None = None
    ) -> list[str]:
        """Close the contract's open exceptions that its workflow no longer has open.

        After a reset the new run decides everything again; an exception the old run opened
        and the new one does not (the outage it reported is over) can never be decided: it is
        marked ``superseded``, kept in the queue's history and no longer open.

        Returns:
            The ids of the exceptions superseded now.
        """
        stmt = (
            update(ExceptionRecord)
            .where(
                col(ExceptionRecord.contract_id) == contract_id,
                col(ExceptionRecord.status) == ExceptionStatus.OPEN.value,
                col(ExceptionRecord.exception_id).not_in(list(keep)),
                # The account sync's exceptions are its own workflow's, not the contract's;
                # reconciliation's are not the workflow's to keep or drop either.
                ~col(ExceptionRecord.workflow_id).startswith(ACCOUNT_WORKFLOW_PREFIX),
                col(ExceptionRecord.step) != RECONCILE_STEP,
            )
            .values(
                status=ExceptionStatus.SUPERSEDED.value,
                resolved_at=require_aware(at) if at else utc_now(),
                resolved_by="c2c",
                resolution_note="superseded: a reset of the contract decided without it",
            )
            .returning(col(ExceptionRecord.exception_id))
        )
        with self._transaction() as session:
            return list(session.connection().execute(stmt).scalars())

    def resolve_exception(
        self,
        exception_id: str,
        status: ExceptionStatus | str,
        operator: str,
        note: str = "",
        at: datetime | None = None,
    ) -> ExceptionRecord:
        """Close an open exception with an operator's decision.

        Repeating the same decision returns the record as it was first resolved.

        Args:
            exception_id: The exception to resolve.
            status: ``retried``, ``skipped`` or ``aborted``.
            operator: Who decided.
            note: Why, in the operator's words.
            at: When; now if not given.

        Raises:
            NotFoundInLedger: No exception has that id.
            LedgerConflict: It was already resolved with another decision.
            ValueError: ``status`` is not a resolution, or ``at`` is naive.
        """
        decision = ExceptionStatus(status)
        if decision is ExceptionStatus.OPEN:
            raise ValueError("an exception is resolved as retried, skipped or aborted")
        # Only an open exception changes, so of racing operators exactly one decides.
        stmt = (
            update(ExceptionRecord)
            .where(
                col(ExceptionRecord.exception_id) == exception_id,
                col(ExceptionRecord.status) == ExceptionStatus.OPEN.value,
            )
            .values(
                status=decision.value,
                resolved_at=require_aware(at) if at else utc_now(),
                resolved_by=operator,
                resolution_note=note,
            )
        )
        record = self._update_and_get(stmt, exception_id)
        if record.status != decision.value:
            raise LedgerConflict(f"exception {exception_id!r} is already {record.status}")
        return record

    def escalate_exception(self, exception_id: str, at: datetime | None = None) -> ExceptionRecord:
        """Mark an exception escalated; the first escalation's time is kept.

        Raises:
            NotFoundInLedger: No exception has that id.
            ValueError: ``at`` is naive.
        """
        stmt = (
            update(ExceptionRecord)
            .where(
                col(ExceptionRecord.exception_id) == exception_id,
                col(ExceptionRecord.escalated_at).is_(None),
            )
            .values(escalated_at=require_aware(at) if at else utc_now())
        )
        with self._transaction() as session:
            escalated = session.connection().execute(stmt).rowcount
            record = session.get(ExceptionRecord, exception_id)
            if record is None:
                raise NotFoundInLedger(f"no exception {exception_id!r}")
            if escalated and record.escalated_at is not None:
                self._emit(
                    session,
                    OutboundEventType.EXCEPTION_ESCALATED,
                    exception_id,
                    {**_exception_payload(record), "escalated_at": record.escalated_at.isoformat()},
                    contract_id=record.contract_id,
                    occurred_at=record.escalated_at,
                )
        return record

    def get_exception(self, exception_id: str) -> ExceptionRecord | None:
        """One exception, or ``None``."""
        with self._session() as session:
            return session.get(ExceptionRecord, exception_id)

    def list_exceptions(
        self,
        status: ExceptionStatus | str | None = None,
        queue: str | None = None,
        contract_id: str | None = None,
    ) -> list[ExceptionRecord]:
        """The exceptions that match every filter given, oldest first."""
        query = select(ExceptionRecord)
        if status is not None:
            query = query.where(ExceptionRecord.status == ExceptionStatus(status).value)
        if queue is not None:
            query = query.where(ExceptionRecord.queue == str(queue))
        if contract_id is not None:
            query = query.where(ExceptionRecord.contract_id == contract_id)
        query = query.order_by(col(ExceptionRecord.opened_at), col(ExceptionRecord.exception_id))
        with self._session() as session:
            return list(session.exec(query).all())

    def _update_and_get(self, stmt: Executable, exception_id: str) -> ExceptionRecord:
        with self._transaction() as session:
            session.connection().execute(stmt)
            record = session.get(ExceptionRecord, exception_id)
        if record is None:
            raise NotFoundInLedger(f"no exception {exception_id!r}")
        return record


def _reopen(exception_id: str, status: ExceptionStatus) -> Update:
    """Open the exception again if it is in ``status``, its resolution cleared."""
    return (
        update(ExceptionRecord)
        .where(
            col(ExceptionRecord.exception_id) == exception_id,
            col(ExceptionRecord.status) == status.value,
        )
        .values(
            status=ExceptionStatus.OPEN.value,
            resolved_at=None,
            resolved_by=None,
            resolution_note=None,
        )
    )


def _exception_payload(record: ExceptionRecord) -> dict[str, object]:
    """What subscribers are told of an exception: ids and codes, not its message (which may
    quote a system's data about people)."""
    return {
        "exception_id": record.exception_id,
        "contract_id": record.contract_id,
        "queue": record.queue,
        "stage": record.stage,
        "system": record.system,
        "code": record.code,
        "step": record.step,
        "retryable": record.retryable,
        "opened_at": record.opened_at.isoformat(),
    }
