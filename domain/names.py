"""Every name that SPEC.md makes part of c2c's interface, defined once."""

from __future__ import annotations

from enum import StrEnum

from temporalio.common import SearchAttributeKey

WORKFLOW_TYPE = "ContractToCash"
DEFAULT_TASK_QUEUE = "c2c"


def system_task_queue(task_queue: str, system: str) -> str:
    """The task queue of the activities that call ``system``, beside the workflows' queue:
    ``c2c-erp`` for ``c2c``. Each has its own rate limit, so one system's limit never slows
    calls to the others."""
    return f"{task_queue}-{system}"


def contract_workflow_id(contract_id: str) -> str:
    """The workflow id of a contract: one workflow per contract, ever."""
    return f"contract-{contract_id}"


def contract_id_from_workflow_id(workflow_id: str) -> str:
    return workflow_id.removeprefix("contract-")


class Stage(StrEnum):
    RECEIVED = "received"
    VALIDATING = "validating"
    PROVISIONING_ERP = "provisioning_erp"
    ACTIVATING_PSA = "activating_psa"
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"
    ON_HOLD = "on_hold"
    CANCELLED = "cancelled"


class BillingModel(StrEnum):
    TIME_AND_MATERIALS = "time_and_materials"
    FIXED_FEE = "fixed_fee"
    RETAINER = "retainer"


class System(StrEnum):
    CRM = "crm"
    CLM = "clm"
    ERP = "erp"
    PSA = "psa"
    TAX = "tax"
    PAYMENTS = "payments"
    LEDGER = "ledger"


class ExceptionQueue(StrEnum):
    FINANCE = "finance"
    LEGAL = "legal"
    DELIVERY = "delivery"
    INTEGRATION = "integration"


class ExceptionAction(StrEnum):
    RETRY = "retry"
    SKIP = "skip"
    ABORT = "abort"


# Workflow messages (SPEC.md section 2).
SIGNAL_AMEND = "amend"
UPDATE_APPLY_AMENDMENT = "apply_amendment"
SIGNAL_MILESTONE_COMPLETED = "milestone_completed"
SIGNAL_CLOSE_PERIOD = "close_period"
SIGNAL_PAYMENT_RECEIVED = "payment_received"
UPDATE_RESOLVE_EXCEPTION = "resolve_exception"
SIGNAL_TERMINATE_CONTRACT = "terminate_contract"
QUERY_STATUS = "status"
# Beyond SPEC.md: an operator's correction of an issued invoice, by credit note.
SIGNAL_CREDIT_INVOICE = "credit_invoice"
# Beyond SPEC.md: an operator's review of a draft invoice (approve or reject).
UPDATE_REVIEW_INVOICE = "review_invoice"
# Beyond SPEC.md: consolidated invoicing. A contract's section of its customer's consolidated
# invoice, numbered (the customer's billing workflow answers the contract with it).
SIGNAL_SECTION_INVOICED = "section_invoiced"
#: The workflow that makes one invoice per customer (legal entity, currency[, PO]) and period
#: out of its contracts' sections, and allocates the payments of it back to them.
CUSTOMER_BILLING_WORKFLOW_TYPE = "CustomerBilling"
#: What contracts send to it: joining at activation, a period's section, leaving at close.
SIGNAL_JOIN_BILLING = "join_billing"
SIGNAL_SUBMIT_SECTION = "submit_section"
#: To a customer's billing workflow: a credit note credited part of a contract's section.
SIGNAL_SECTION_CREDITED = "section_credited"
SIGNAL_LEAVE_BILLING = "leave_billing"
#: The key, in a business message's payload metadata, of the instant (nanoseconds since the
#: epoch, monotonic per sending process) its sender sent it: a reset delivers the payload again
#: with it, so the contract decides messages that arrive together in the order they were sent.
SENT_METADATA = "c2c-sent-ns"

# Search attributes (SPEC.md section 2).
SA_CONTRACT_ID = SearchAttributeKey.for_keyword("ContractId")
SA_CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
SA_LEGAL_ENTITY = SearchAttributeKey.for_keyword("LegalEntity")
SA_STAGE = SearchAttributeKey.for_keyword("C2CStage")
SA_BILLING_MODEL = SearchAttributeKey.for_keyword("BillingModel")
SA_OPEN_EXCEPTIONS = SearchAttributeKey.for_int("OpenExceptions")
SA_CONTRACT_VALUE = SearchAttributeKey.for_float("ContractValue")

SEARCH_ATTRIBUTES = (
    SA_CONTRACT_ID,
    SA_CUSTOMER_ID,
    SA_LEGAL_ENTITY,
    SA_STAGE,
    SA_BILLING_MODEL,
    SA_OPEN_EXCEPTIONS,
    SA_CONTRACT_VALUE,
)

# Webhook signature header (SPEC.md section 5).
SIGNATURE_HEADER = "X-C2C-Signature"
SIGNATURE_TOLERANCE_S = 300
