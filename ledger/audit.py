"""The audit trail: what happened to a contract and when, each event written once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from ledger.base import LedgerBase, count_returned
from ledger.models import AuditEvent, AuditEventIn, utc_now


class AuditLedger(LedgerBase):
    """The audit-trail part of the ledger."""

    def record_audit(self, events: Sequence[AuditEventIn]) -> int:
        """Record the events whose ``event_key`` is new, all in one transaction.

        Returns:
            How many were inserted; the others were recorded before.
        """
        recorded_at = utc_now()
        # The first of repeated keys wins, as it would have in separate calls.
        unique: dict[str, dict[str, Any]] = {}
        for event in events:
            unique.setdefault(event.event_key, _row(event, recorded_at))
        rows = list(unique.values())
        if not rows:
            return 0
        # Many rows are sent in batches that keep under the database's limit on parameters.
        stmt = self._insert_new(AuditEvent, ["event_key"], returning=["id"])
        with self._transaction() as session:
            return count_returned(session, stmt, rows)

    def audit_trail(self, contract_id: str) -> list[AuditEvent]:
        """The contract's events in the order they happened (then in the order recorded)."""
        query = (
            select(AuditEvent)
            .where(AuditEvent.contract_id == contract_id)
            .order_by(col(AuditEvent.at), col(AuditEvent.id))
        )
        with self._session() as session:
            return list(session.exec(query).all())


def _row(event: AuditEventIn, recorded_at: datetime) -> dict[str, Any]:
    row = event.model_dump(exclude={"detail"})
    # The detail in JSON mode, so Decimal amounts and dates become strings json can write.
    row["detail"] = event.model_dump(mode="json", include={"detail"})["detail"]
    row["recorded_at"] = recorded_at
    return row
