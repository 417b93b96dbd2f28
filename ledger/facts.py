"""The facts behind KPIs and the books that no other table holds: invoices, payments, credit
notes, revenue postings, amendment propagations and unbilled time, each written by the
activity that made the effect or read it.

Every write is keyed by a business id and safe to repeat: a retried, replayed or reset
activity keeps the first start time and writes each completion once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import bindparam, delete, update
from sqlmodel import col, select

from ledger.base import LedgerBase
from ledger.columns import require_aware
from ledger.models import (
    AmendmentFact,
    BillingFact,
    BillingStartIn,
    CashApplicationFact,
    CashApplicationFactIn,
    ContractRecord,
    CreditNoteFact,
    CreditNoteFactIn,
    InvoiceIssuedIn,
    LedgerTable,
    PaymentFact,
    PaymentFactIn,
    RevenueFact,
    RevenueFactIn,
    UnbilledMonthIn,
    UnbilledTimeRecord,
    table_of,
)

T = TypeVar("T")

_FACTS = table_of(BillingFact)
#: What an issued invoice adds to its billing fact.
_ISSUED = [
    name for name in InvoiceIssuedIn.model_fields if name not in {"contract_id", "reference"}
]
#: Built once, its values bound at execution (composing it cost more than the write).
_ISSUE = (
    update(_FACTS)
    .where(_FACTS.c.fact_key == bindparam("v_key"), _FACTS.c.issued_at.is_(None))
    .values({name: bindparam(f"v_{name}", type_=_FACTS.c[name].type) for name in _ISSUED})
)


def billing_fact_key(contract_id: str, reference: str) -> str:
    """The key of the invoice a contract's billing step asks for under ``reference``."""
    return f"{contract_id}:{reference}"


class FactLedger(LedgerBase):
    """The KPI-facts part of the ledger."""

    def record_billing_started(self, start: BillingStartIn) -> None:
        """Record that a billing step began; a later attempt keeps the first start."""
        self._insert_once(
            BillingFact,
            "fact_key",
            {
                **start.model_dump(),
                "fact_key": billing_fact_key(start.contract_id, start.reference),
            },
        )

    def record_invoice_issued(self, issued: InvoiceIssuedIn) -> None:
        """Record the invoice a billing step issued; the first report of it is kept.

        Raises:
            ValueError: No billing step with that reference was recorded as started.
        """
        key = billing_fact_key(issued.contract_id, issued.reference)
        values = {f"v_{name}": getattr(issued, name) for name in _ISSUED}
        with self._transaction() as session:
            written = session.connection().execute(_ISSUE, {"v_key": key, **values}).rowcount
            # Nothing written: issued before (kept as first reported), or never started.
            if not written and session.get(BillingFact, key) is None:
                raise ValueError(f"no billing step {key!r} was recorded as started")

    def record_payment_fact(self, payment: PaymentFactIn) -> None:
        """Record a payment once by its id."""
        self._insert_once(PaymentFact, "payment_id", payment.model_dump())

    def record_cash_application_fact(self, application: CashApplicationFactIn) -> None:
        """Record held cash applied to an invoice once by its id."""
        self._insert_once(CashApplicationFact, "application_id", application.model_dump())

    def record_credit_note_fact(self, note: CreditNoteFactIn) -> None:
        """Record a credit note once by its id."""
        self._insert_once(CreditNoteFact, "credit_note_id", note.model_dump())

    def record_revenue_fact(self, entry: RevenueFactIn) -> None:
        """Record a revenue entry posted in the ERP once by its entry id."""
        self._insert_once(RevenueFact, "entry_id", entry.model_dump())

    def record_amendment_started(
        self, contract_id: str, amendment_id: str, started_at: datetime
    ) -> None:
        """Record that an amendment's propagation began; a later attempt keeps the first."""
        self._insert_once(
            AmendmentFact,
            "fact_key",
            {
                "fact_key": f"{contract_id}:{amendment_id}",
                "contract_id": contract_id,
                "amendment_id": amendment_id,
                "started_at": require_aware(started_at),
            },
        )

    def record_amendment_propagated(
        self, contract_id: str, amendment_id: str, propagated_at: datetime
    ) -> None:
        """Record when every system had the amendment; the first completion is kept."""
        stmt = (
            update(AmendmentFact)
            .where(
                col(AmendmentFact.fact_key) == f"{contract_id}:{amendment_id}",
                col(AmendmentFact.propagated_at).is_(None),
            )
            .values(propagated_at=require_aware(propagated_at))
        )
        with self._transaction() as session:
            session.connection().execute(stmt)

    def issued_invoices(self, contract_id: str) -> list[BillingFact]:
        """The invoices a contract's billing steps issued, in the order they were issued."""
        query = (
            select(BillingFact)
            .where(BillingFact.contract_id == contract_id, col(BillingFact.invoice_id).is_not(None))
            .order_by(col(BillingFact.issued_at), col(BillingFact.fact_key))
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def record_unbilled_time(
        self, contract_id: str, months: Sequence[UnbilledMonthIn], read_at: datetime
    ) -> None:
        """Replace the contract's unbilled time with ``months``, as read at ``read_at``; no
        months leaves the contract nothing unbilled. Repeating the write changes nothing."""
        rows = [
            UnbilledTimeRecord(
                row_key=f"{contract_id}:{month.work_month}",
                contract_id=contract_id,
                read_at=require_aware(read_at),
                **month.model_dump(),
            )
            for month in months
        ]
        with self._transaction() as session:
            session.exec(
                delete(UnbilledTimeRecord).where(col(UnbilledTimeRecord.contract_id) == contract_id)
            )
            session.add_all(rows)

    def rows_of_entity(
        self, table: type[T], legal_entity: str | Collection[str] | None = None
    ) -> list[T]:
        """Every row of a table keyed by ``contract_id``, or only those of the contracts of
        one legal entity, or of any of several (facts carry the contract; the contract carries
        the entity)."""
        query = select(table)
        if legal_entity is not None:
            entity = col(ContractRecord.legal_entity)
            in_entity = select(ContractRecord.contract_id).where(
                entity == legal_entity
                if isinstance(legal_entity, str)
                else entity.in_(sorted(legal_entity))
            )
            contract_id = cast(Any, table).contract_id
            query = query.where(col(contract_id).in_(in_entity))
        with self._session() as session:
            return list(session.exec(query).all())

    def rows_of_contracts(self, table: type[T], contract_ids: Sequence[str]) -> list[T]:
        """Every row of a table keyed by ``contract_id`` that belongs to one of the contracts."""
        contract_id = cast(Any, table).contract_id
        query = select(table).where(col(contract_id).in_(list(contract_ids)))
        with self._session() as session:
            return list(session.exec(query).all())

    def _insert_once(self, table: type[LedgerTable], key: str, row: dict[str, object]) -> None:
        # The database decides whether the row exists, so racing attempts write it once.
        with self._transaction() as session:
            session.connection().execute(self._insert_new(table, [key]), row)
