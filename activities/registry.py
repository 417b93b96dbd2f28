"""Every activity the worker registers, built with its dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from activities.amendments import AmendmentActivities
from activities.billing import BillingActivities
from activities.closing import ClosingActivities
from activities.credit_notes import CreditNoteActivities
from activities.dunning import DunningActivities
from activities.erp import ErpActivities
from activities.ledger import LedgerActivities
from activities.payments import PaymentActivities
from activities.psa import PsaActivities
from activities.validation import ValidationActivities
from c2c.settings import Settings
from connectors.registry import Connectors

if TYPE_CHECKING:
    from ledger import Ledger


def build_activities(
    connectors: Connectors, ledger: Ledger, settings: Settings
) -> list[Callable[..., Any]]:
    validation = ValidationActivities(connectors, ledger, settings)
    erp = ErpActivities(connectors, ledger, settings)
    psa = PsaActivities(connectors, ledger, settings)
    billing = BillingActivities(connectors, ledger, settings)
    payments = PaymentActivities(connectors, ledger, settings)
    closing = ClosingActivities(connectors, ledger, settings)
    credit_notes = CreditNoteActivities(connectors, ledger, settings)
    dunning = DunningActivities(connectors, ledger, settings)
    amendments = AmendmentActivities(connectors, ledger, settings)
    own = LedgerActivities(connectors, ledger, settings)
    return [
        validation.validate_contract,
        erp.ensure_erp_customer,
        erp.create_erp_project,
        erp.create_erp_contract,
        psa.activate_psa_project,
        billing.bill_period,
        payments.apply_payment,
        payments.apply_unapplied_cash,
        credit_notes.issue_credit_note,
        dunning.send_dunning_reminder,
        amendments.propagate_amendment,
        closing.close_contract,
        own.record_audit,
        own.open_exception,
        own.resolve_exception_record,
        own.escalate_exception,
    ]
