"""A contract's side of consolidated invoicing: its sections of its customer's invoices.

A contract whose customer is invoiced once per period across its contracts (``C2C_CONSOLIDATED
_INVOICING``, or the approval's ``consolidated_invoicing``) joins its customer's billing
workflow (``workflows.customer_billing``) when it becomes active and leaves it as it closes. At
a period close it decides its bill exactly as it decides an invoice (``workflows.billing``),
but the billing step makes a *section* (priced, capped, taxed, revenue posted; no ERP
invoice), which it sends to the customer's workflow, and the section waits in
``state.billing.sections``. The customer's workflow answers with ``section_invoiced`` (a
message of the contract's ordered inbox): the section is then an invoice the contract holds,
under the section's id, marked as part of the consolidated invoice, with the consolidated
invoice's number. Payments of it come back as ``payment_received`` messages, one per section,
under derived payment ids (``domain.consolidation.allocate``).

Every message carries an id derived from the contract and the period (``section_id``), so a
resend, a retried step or a reset that decides the close again changes nothing: the customer's
workflow keeps the first section under an id and answers it again; the contract records an
answer once.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.consolidation import (
        BillingMember,
        CustomerBillingKey,
        CustomerBillingStart,
        customer_billing_workflow_id,
    )
    from domain.contract_state import ContractState
    from domain.models import ConsolidatedInvoicing, DraftInvoice, InvoiceSummary, SectionInvoiced
    from domain.periods import Period
    from domain.steps import (
        RECORD_SECTION_INVOICED,
        SEND_TO_CUSTOMER_BILLING,
        BillPeriodResult,
        CustomerBillingMessage,
        SectionInvoicedInput,
    )
    from workflows.collections import holds, issued
    from workflows.commands import Clock, Decision, Patched, Record, RunStep

#: The release gate's id of consolidated invoicing (``workflows.releases``): contracts
#: recorded before it invoice every period on their own.
CONSOLIDATED_INVOICING = "consolidated-invoicing"


def consolidates(s: ContractState) -> Decision[bool]:
    """Whether this contract's period closes go on its customer's consolidated invoice. A
    contract whose setting is ``none`` asks nothing of the release gate."""
    if not s.ordered or s.consolidation == "none":
        return False
    taken: bool = yield Patched(CONSOLIDATED_INVOICING)
    return taken


def billing_key(s: ContractState) -> CustomerBillingKey:
    c = s.contract
    po = s.terms.po_number if s.consolidation == "customer_po" else None
    return CustomerBillingKey(
        legal_entity=c.legal_entity,
        crm_account_id=c.customer.crm_account_id,
        currency=c.currency,
        po_number=str(po) if po else None,
    )


def _message(s: ContractState, **what: object) -> CustomerBillingMessage:
    key = billing_key(s)
    mode: ConsolidatedInvoicing = "customer_po" if key.po_number else "customer"
    return CustomerBillingMessage.model_validate(
        {
            "contract_id": s.contract.contract_id,
            "workflow_id": customer_billing_workflow_id(key),
            "start": CustomerBillingStart(
                key=key, mode=mode, erp_customer_id=s.refs.get("erp_customer_id", "")
            ),
            **what,
        }
    )


def _member(s: ContractState) -> BillingMember:
    return BillingMember(
        contract_id=s.contract.contract_id,
        first_period=str(Period.of(s.contract.start_date)),
        last_period=str(s.final_period),
    )


def join(s: ContractState, now: Clock) -> Decision[None]:
    """At activation: join the customer's billing, which then waits for this contract's
    section of each period it bills."""
    if s.billing.joined_billing or not (yield from consolidates(s)):
        return
    message = _message(s, join=_member(s))
    yield RunStep(SEND_TO_CUSTOMER_BILLING, message, None, summary="join customer billing")
    s.billing.joined_billing = True
    yield Record(f"joined the consolidated invoicing of {message.workflow_id}")


def leave(s: ContractState, now: Clock) -> Decision[None]:
    """As the contract closes: the customer's billing waits for it no more."""
    if not s.billing.joined_billing:
        return
    message = _message(s, leave=_member(s))
    yield RunStep(SEND_TO_CUSTOMER_BILLING, message, None, summary="leave customer billing")
    s.billing.joined_billing = False
    yield Record(f"left the consolidated invoicing of {message.workflow_id}")


def section_made(
    s: ContractState, now: Clock, reference: str, result: BillPeriodResult
) -> Decision[None]:
    """Send a period's section (an empty one too: the customer's workflow then waits for it
    no more) to the customer's billing; a section with lines waits for its invoice."""
    if result.section is None:
        return
    # What the consolidated invoice's documents print of this contract's section.
    section = result.section.model_copy(
        update={
            "title": s.contract.title,
            "customer": s.contract.customer,
            "customer_tax_id": s.validated.customer_tax_id if s.validated else None,
        }
    )
    ccy = s.contract.currency
    if not section.empty:
        s.billing.sections[section.section_id] = DraftInvoice(
            invoice_id=section.section_id,
            reference=reference,
            period=section.period,
            subtotal=section.subtotal,
            tax=section.tax,
            total=section.total,
            drafted_at=now(),
        )
        # What the not-to-exceed cap is measured against counts the section at once.
        s.billing.billed_to_date += section.subtotal
    message = _message(s, section=section)
    yield RunStep(SEND_TO_CUSTOMER_BILLING, message, None, summary=f"section {section.section_id}")
    if section.empty:
        yield Record(f"period {section.period}: nothing to invoice (told the customer's billing)")
        return
    yield Record(
        f"section {section.section_id} for {reference}: {section.subtotal} + tax "
        f"{section.tax} = {section.total} {ccy}, sent to the customer's consolidated invoice"
    )


def section_invoiced(s: ContractState, now: Clock, message: SectionInvoiced) -> Decision[None]:
    """The customer's workflow numbered a section: the contract now holds it as an invoice
    (once: a repeated answer finds the section no longer waiting)."""
    sid = message.section_id
    waiting = s.billing.sections.get(sid)
    if waiting is None:
        if not holds(s, sid) and message.period not in s.billing.closed_periods:
            yield Record(f"section {sid} on invoice {message.number}: not this contract's, ignored")
        # Else an answer again (the customer's billing answers every resend of a section, and
        # a reset resends it): recorded once, and again in silence, so that a reset's history
        # reads the same.
        return
    yield RunStep(
        RECORD_SECTION_INVOICED,
        SectionInvoicedInput(
            contract_id=s.contract.contract_id,
            invoiced=message,
            legal_entity=s.contract.legal_entity,
            currency=s.contract.currency,
            refs=s.refs,
        ),
        None,
        summary=f"section {sid} on {message.number}",
    )
    del s.billing.sections[sid]
    invoice = InvoiceSummary(
        invoice_id=sid,
        number=message.number,
        period=message.period,
        reference=waiting.reference,
        subtotal=message.subtotal,
        tax=message.tax,
        total=message.total,
        due_on=message.due_on,
        invoice_date=message.invoice_date,
        consolidated_invoice_id=message.consolidated_invoice_id,
        documents=message.documents,
    )
    ccy = s.contract.currency
    yield Record(
        f"section {sid} is on consolidated invoice {message.number}: {message.subtotal} + tax "
        f"{message.tax} = {message.total} {ccy}, due {message.due_on}"
    )
    yield from issued(s, now, invoice)
