"""c2c's ledger: cross-references between systems' ids, the audit trail, the exception queue
and the timestamps behind KPIs. Never a copy of a system of record.

Activities and the API use it; workflows never import it.
"""

from __future__ import annotations

from ledger.errors import LedgerConflict, LedgerError, NotFoundInLedger
from ledger.models import (
    AuditEvent,
    AuditEventIn,
    ContractRecord,
    ContractRecordIn,
    CrossReference,
    ExceptionIn,
    ExceptionRecord,
    ExceptionStatus,
)
from ledger.store import Ledger, get_ledger
from ledger.urls import normalise_url
from ledger.xrefs import SHARED_KINDS, SINGLE_VALUED_KINDS, ref_name

__all__ = [
    "SHARED_KINDS",
    "SINGLE_VALUED_KINDS",
    "AuditEvent",
    "AuditEventIn",
    "ContractRecord",
    "ContractRecordIn",
    "CrossReference",
    "ExceptionIn",
    "ExceptionRecord",
    "ExceptionStatus",
    "Ledger",
    "LedgerConflict",
    "LedgerError",
    "NotFoundInLedger",
    "get_ledger",
    "normalise_url",
    "ref_name",
]
