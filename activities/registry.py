"""Every activity the worker registers, built with its dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from activities.account_sync import AccountSyncActivities
from activities.amendments import AmendmentActivities
from activities.billing import BillingActivities
from activities.billing_runs import BillingRunActivities
from activities.closing import ClosingActivities
from activities.consolidation import ConsolidationActivities
from activities.credit_notes import CreditNoteActivities
from activities.documents import InvoiceDocumentActivities
from activities.dunning import DunningActivities
from activities.erp import ErpActivities
from activities.erp_routing import LedgerPins
from activities.ironclad_intake import IroncladIntakeActivities
from activities.ledger import LedgerActivities
from activities.payments import PaymentActivities
from activities.psa import PsaActivities
from activities.reconcile import ReconcileActivities
from activities.reference_data import ReferenceData
from activities.validation import ValidationActivities
from activities.write_offs import WriteOffActivities
from c2c.settings import Settings
from connectors.registry import Connectors
from connectors.routing import RoutedErp
from domain import account_sync, billing_runs, reconcile
from domain import steps as step
from domain.ironclad import READ_IRONCLAD_APPROVAL

if TYPE_CHECKING:
    from ledger import Ledger


def build_steps(
    connectors: Connectors,
    ledger: Ledger,
    settings: Settings,
    *,
    reference: ReferenceData | None = None,
) -> dict[str, Callable[..., Any]]:
    """Every activity by its step name, so a worker can pick those of one system's queue.

    The activities that read legal entities and tax jurisdictions share ``reference`` (by
    default one of their own): what one step read, the next reuses for a while.
    """
    if isinstance(connectors.erp, RoutedErp):
        connectors.erp.bind(LedgerPins(ledger))
    reference = reference or ReferenceData(connectors, settings)
    validation = ValidationActivities(connectors, ledger, settings, reference=reference)
    erp = ErpActivities(connectors, ledger, settings)
    psa = PsaActivities(connectors, ledger, settings)
    billing = BillingActivities(connectors, ledger, settings)
    payments = PaymentActivities(connectors, ledger, settings, reference=reference)
    closing = ClosingActivities(connectors, ledger, settings)
    credit_notes = CreditNoteActivities(connectors, ledger, settings)
    dunning = DunningActivities(connectors, ledger, settings)
    amendments = AmendmentActivities(connectors, ledger, settings)
    own = LedgerActivities(connectors, ledger, settings)
    documents = InvoiceDocumentActivities(connectors, ledger, settings, reference=reference)
    accounts = AccountSyncActivities(connectors, ledger, settings)
    ironclad = IroncladIntakeActivities(connectors, ledger, settings)
    books = ReconcileActivities(connectors, ledger, settings)
    runs = BillingRunActivities(connectors, ledger, settings)
    write_offs = WriteOffActivities(connectors, ledger, settings)
    consolidation = ConsolidationActivities(connectors, ledger, settings)
    return {
        step.VALIDATE_CONTRACT: validation.validate_contract,
        step.ENSURE_ERP_CUSTOMER: erp.ensure_erp_customer,
        step.CREATE_ERP_PROJECT: erp.create_erp_project,
        step.CREATE_ERP_CONTRACT: erp.create_erp_contract,
        step.PROVISION_ERP: erp.provision_erp,
        step.ACTIVATE_PSA_PROJECT: psa.activate_psa_project,
        step.CLOSE_TIME_ENTRY: psa.close_time_entry,
        step.BILL_PERIOD: billing.bill_period,
        step.APPLY_PAYMENT: payments.apply_payment,
        step.APPLY_CASH: payments.apply_unapplied_cash,
        step.ISSUE_CREDIT_NOTE: credit_notes.issue_credit_note,
        step.SEND_DUNNING_REMINDER: dunning.send_dunning_reminder,
        step.PROPAGATE_AMENDMENT: amendments.propagate_amendment,
        step.CLOSE_CONTRACT: closing.close_contract,
        step.RECORD_AUDIT: own.record_audit,
        step.OPEN_EXCEPTION: own.open_exception,
        step.RESOLVE_EXCEPTION_RECORD: own.resolve_exception_record,
        step.ESCALATE_EXCEPTION: own.escalate_exception,
        step.RECORD_ARRIVAL_ORDER: own.record_arrival_order,
        step.RECORD_INVOICE_REVIEW: own.record_invoice_review,
        step.LOOK_UP_PAYMENT: own.look_up_payment,
        step.ARCHIVE_SIGNED_DOCUMENT: documents.archive_signed_document,
        step.RENDER_INVOICE_DOCUMENTS: documents.render_invoice_documents,
        step.RENDER_CONSOLIDATED_INVOICE_DOCUMENTS: (
            documents.render_consolidated_invoice_documents
        ),
        step.RECORD_WRITE_OFF: write_offs.record_write_off,
        step.SEND_TO_CUSTOMER_BILLING: consolidation.send_to_customer_billing,
        step.RECORD_SECTION_INVOICED: consolidation.record_section_invoiced,
        step.RECORD_SECTION_PAYMENT: payments.record_section_payment,
        step.ISSUE_CONSOLIDATED_INVOICE: consolidation.issue_consolidated_invoice,
        step.APPLY_CONSOLIDATED_PAYMENT: consolidation.apply_consolidated_payment,
        step.LOOK_UP_CONSOLIDATED_PAYMENT: consolidation.look_up_consolidated_payment,
        step.RECORD_CONSOLIDATED_INVOICE_PAID: consolidation.record_consolidated_invoice_paid,
        account_sync.SYNC_ERP_CUSTOMERS: accounts.sync_erp_customers,
        account_sync.OPEN_ACCOUNT_EXCEPTION: accounts.open_account_exception,
        account_sync.RESOLVE_ACCOUNT_EXCEPTION: accounts.resolve_account_exception,
        READ_IRONCLAD_APPROVAL: ironclad.read_ironclad_approval,
        reconcile.CONTRACTS_TO_RECONCILE: books.contracts_to_reconcile,
        billing_runs.CLOSE_PERIOD_FOR_ENTITY: runs.close_period_for_entity,
        reconcile.COMPARE_WITH_ERP: books.compare_ledger_with_erp,
        reconcile.OPEN_RECONCILE_EXCEPTIONS: books.open_reconcile_exceptions,
    }
