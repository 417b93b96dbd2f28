"""Reconciliation of c2c's ledger with the ERP: its workflow's names, input, differences and
report (the workflow is ``workflows/reconcile.py``, its activities ``activities/reconcile.py``).
"""

from __future__ import annotations

import hashlib
from datetime import date

from pydantic import BaseModel, Field

from domain.models import StrictDate

#: The workflow type; one run per legal entity (or all) and day.
RECONCILE_WORKFLOW_TYPE = "Reconcile"
#: The nightly Temporal Schedule that ``c2c up`` creates.
RECONCILE_SCHEDULE_ID = "reconcile-nightly"
#: Every legal entity, where a run is not limited to one.
ALL_ENTITIES = "all"

#: Activity names.
CONTRACTS_TO_RECONCILE = "contracts_to_reconcile"
COMPARE_WITH_ERP = "compare_ledger_with_erp"
OPEN_RECONCILE_EXCEPTIONS = "open_reconcile_exceptions"

#: The step that an exception opened by reconciliation names.
RECONCILE_STEP = "reconcile"
#: Contracts compared by one activity call: each call reads a few ERP lists per contract.
RECONCILE_BATCH = 25


def reconcile_workflow_id(legal_entity: str | None, on: date) -> str:
    """``reconcile-<entity>-<date>``: one run per entity (``all`` for every one) and day."""
    return f"reconcile-{legal_entity or ALL_ENTITIES}-{on.isoformat()}"


class ReconcileRequest(BaseModel):
    """What to reconcile: one legal entity's contracts or all, optionally only contracts with
    activity in c2c on or after ``since``."""

    legal_entity: str | None = Field(default=None, pattern=r"^[A-Z0-9]{2,10}$")
    since: StrictDate | None = None


class ReconcileBatch(BaseModel):
    """Contracts one activity compares."""

    contract_ids: list[str]


class Difference(BaseModel):
    """One way the ledger and the ERP disagree about a contract's record."""

    contract_id: str
    #: ``invoice``, ``credit_note``, ``payment``, ``revenue``, ``balance``, or of a
    #: consolidated invoice: ``consolidated_invoice``, ``section``, ``consolidated_payment``.
    kind: str
    #: The record's id (the ERP's or c2c's), or the balance's name.
    record_id: str
    #: Machine-readable, e.g. ``invoice_voided_in_erp``, ``payment_unknown_to_c2c``.
    code: str
    message: str

    @property
    def exception_id(self) -> str:
        """The same difference found again opens no second exception: its id is its content."""
        digest = hashlib.sha256(
            f"{self.contract_id}\n{self.kind}\n{self.record_id}\n{self.code}".encode()
        ).hexdigest()
        return f"REC-{digest[:24].upper()}"


class ContractsToCompare(BaseModel):
    """The contracts a run compares, in batches the workflow hands to activities."""

    contract_ids: list[str] = Field(default_factory=list)


class ReconcileReport(BaseModel):
    """What a run found: every difference, and how many exceptions it opened now (a difference
    found by an earlier run keeps its exception)."""

    legal_entity: str | None = None
    since: date | None = None
    contracts: int = 0
    differences: list[Difference] = Field(default_factory=list)
    exceptions_opened: int = 0
