"""The ledger's API: idempotent writes and the reads that listings, webhooks and KPIs need.

Every write is safe to repeat and safe to race: the database, not Python, decides whether a
row exists (``INSERT … ON CONFLICT``, conditional ``UPDATE``), so at-least-once activities in
several threads or processes never write a row twice nor fail because another got there first.
"""

from __future__ import annotations

import threading

from ledger.audit import AuditLedger
from ledger.call_slots import CallSlotLedger
from ledger.contracts import ContractLedger
from ledger.documents import DocumentLedger
from ledger.exception_queue import ExceptionQueueLedger
from ledger.facts import FactLedger
from ledger.inbound import InboundEventLedger
from ledger.urls import normalise_url
from ledger.xrefs import XrefLedger


class Ledger(
    XrefLedger,
    AuditLedger,
    ExceptionQueueLedger,
    ContractLedger,
    InboundEventLedger,
    FactLedger,
    DocumentLedger,
    CallSlotLedger,
):
    """c2c's orchestration state in SQLite or PostgreSQL.

    Cross-references (``record_xref``, ``find_contract_by_xref``, ``xrefs_for``,
    ``list_xrefs``), the audit trail (``record_audit``, ``audit_trail``), the exception queue
    (``open_exception``, ``resolve_exception``, ``escalate_exception``, ``get_exception``,
    ``list_exceptions``), the contracts read model (``upsert_contract``, ``get_contract``,
    ``list_contracts``) and inbound events with their dead letters (``record_inbound_event``,
    ``claim_inbound_event``, ``release_inbound_event``, ``mark_inbound_processed``,
    ``mark_inbound_dead_letter``, ``get_inbound_event``, ``list_inbound_events``) and the
    facts behind KPIs (``record_billing_started``, ``record_invoice_issued``,
    ``record_payment_fact``, ``record_credit_note_fact``, ``record_amendment_started``,
    ``record_amendment_propagated``, ``record_unbilled_time``, ``rows_of_entity``; read by
    ``ledger.kpis``) and the signed documents (``record_signed_document``,
    ``get_signed_document``) and the vendor call slots every worker shares (``try_acquire``,
    ``release``, ``call_slots``). Methods are synchronous; async callers run them in a thread.

    Args:
        url: A SQLAlchemy URL; ``postgresql://`` is given the psycopg driver.
        echo: Log every statement (debugging only).
    """


_ledgers: dict[str, Ledger] = {}
_ledgers_lock = threading.Lock()


def get_ledger(url: str) -> Ledger:
    """The process's one ``Ledger`` for a URL, its tables created on first use."""
    key = normalise_url(url)
    with _ledgers_lock:
        ledger = _ledgers.get(key)
        if ledger is None:
            ledger = Ledger(key)
            ledger.create_all()
            _ledgers[key] = ledger
        return ledger
