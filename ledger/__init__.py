"""c2c's ledger: cross-references between systems' ids, the audit trail, the exception queue,
inbound events (each recorded once; dead letters) and the timestamps behind KPIs. Never a
copy of a system of record.

Activities and the API use it; workflows never import it.
"""

from __future__ import annotations

from ledger.errors import LedgerConflict, LedgerError, NotFoundInLedger
from ledger.inbound import InboundRecorded
from ledger.models import (
    SETTLED_STATUSES,
    AmendmentFact,
    AuditEvent,
    AuditEventIn,
    BillingFact,
    BillingStartIn,
    CashApplicationFact,
    CashApplicationFactIn,
    ContractRecord,
    ContractRecordIn,
    CreditNoteFact,
    CreditNoteFactIn,
    CrossReference,
    ExceptionIn,
    ExceptionRecord,
    ExceptionStatus,
    InboundEvent,
    InboundEventIn,
    InboundSource,
    InboundStatus,
    InvoiceIssuedIn,
    PaymentFact,
    PaymentFactIn,
    RevenueFact,
    RevenueFactIn,
    UnbilledMonthIn,
    UnbilledTimeRecord,
)
from ledger.store import Ledger, get_ledger
from ledger.urls import normalise_url
from ledger.xrefs import SHARED_KINDS, SINGLE_VALUED_KINDS, ref_name

__all__ = [
    "SETTLED_STATUSES",
    "SHARED_KINDS",
    "SINGLE_VALUED_KINDS",
    "AmendmentFact",
    "AuditEvent",
    "AuditEventIn",
    "BillingFact",
    "BillingStartIn",
    "CashApplicationFact",
    "CashApplicationFactIn",
    "ContractRecord",
    "ContractRecordIn",
    "CreditNoteFact",
    "CreditNoteFactIn",
    "CrossReference",
    "ExceptionIn",
    "ExceptionRecord",
    "ExceptionStatus",
    "InboundEvent",
    "InboundEventIn",
    "InboundRecorded",
    "InboundSource",
    "InboundStatus",
    "InvoiceIssuedIn",
    "Ledger",
    "LedgerConflict",
    "LedgerError",
    "NotFoundInLedger",
    "PaymentFact",
    "PaymentFactIn",
    "RevenueFact",
    "RevenueFactIn",
    "UnbilledMonthIn",
    "UnbilledTimeRecord",
    "get_ledger",
    "normalise_url",
    "ref_name",
]
