"""A consolidating contract's deciders without a server: a period close makes a section sent
to the customer's billing (no invoice), the answer makes it an invoice the contract holds
once, a part of a payment is recorded without the ERP, and a contract at ``none`` (or a run
recorded before the release) asks nothing new."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from domain.consolidation import InvoiceSection
from domain.models import PaymentReceived, SectionInvoiced
from domain.periods import Period
from domain.steps import (
    APPLY_PAYMENT,
    BILL_PERIOD,
    RECORD_SECTION_INVOICED,
    RECORD_SECTION_PAYMENT,
    SEND_TO_CUSTOMER_BILLING,
    BillPeriodInput,
    BillPeriodResult,
    CustomerBillingMessage,
    PaymentApplied,
)
from tests.workflows.deciders.support import Systems, contract, lines, steps
from workflows import billing, collections, consolidation
from workflows.commands import Command, Patched, RunStep, play


def sectioning(systems: Systems) -> Any:
    """Answers as ``systems`` does, but a section step makes a section of 1000 + 100 tax."""

    def answer(command: Command) -> Any:
        if isinstance(command, RunStep) and command.name == BILL_PERIOD:
            arg = command.arg
            assert isinstance(arg, BillPeriodInput)
            if arg.section_id is not None:
                return BillPeriodResult(
                    section=InvoiceSection(
                        section_id=arg.section_id,
                        contract_id=arg.contract_id,
                        period=arg.period,
                        subtotal=Decimal("1000.00"),
                        tax=Decimal("100.00"),
                        total=Decimal("1100.00"),
                        invoice_date=arg.invoice_date,
                        tax_code="TAX-1",
                    )
                )
        if isinstance(command, RunStep) and command.name == RECORD_SECTION_PAYMENT:
            payment = command.arg.payment  # type: ignore[attr-defined]
            return PaymentApplied(
                applied=payment.amount,
                unapplied=Decimal(0),
                amount_paid=payment.amount,
                invoice_status="applied",
            )
        return systems.answer(command)

    return answer


def test_a_close_sends_a_section_and_its_answer_becomes_an_invoice_once() -> None:
    s, systems = contract(consolidated_invoicing="customer"), Systems()
    s.refs["erp_customer_id"] = "CUST-1"
    commands, _ = play(
        billing.bill_period(s, systems, Period.parse("2026-10")), sectioning(systems)
    )
    sent = [c for c in steps(commands) if c.name == SEND_TO_CUSTOMER_BILLING]
    assert [c.name for c in steps(commands)] == [BILL_PERIOD, SEND_TO_CUSTOMER_BILLING]
    message = sent[0].arg
    assert isinstance(message, CustomerBillingMessage) and message.section is not None
    assert message.workflow_id == "customer-billing-US01-ACME-US-USD"
    sid = message.section.section_id
    assert list(s.billing.sections) == [sid] and not s.collections.invoices
    assert s.billing.billed_to_date == Decimal("1000.00")

    answer = SectionInvoiced(
        section_id=sid,
        period="2026-10",
        consolidated_invoice_id="INV-9",
        number="US01-2026-000009",
        subtotal=Decimal("1000.00"),
        tax=Decimal("100.00"),
        total=Decimal("1100.00"),
        invoice_date=date(2026, 11, 2),
        due_on=date(2026, 11, 2) + timedelta(days=30),
        customer_billing_id=message.workflow_id,
    )
    recorded = systems.run(consolidation.section_invoiced(s, systems, answer))
    assert [c.name for c in steps(recorded)] == [RECORD_SECTION_INVOICED]
    [held] = s.collections.invoices
    assert (held.invoice_id, held.number, held.consolidated_invoice_id) == (
        sid,
        "US01-2026-000009",
        "INV-9",
    )
    assert not s.billing.sections and s.collections.book.balance_due == Decimal("1100.00")
    # The same answer again: nothing, and not a line of history.
    assert systems.run(consolidation.section_invoiced(s, systems, answer)) == []

    part = PaymentReceived(
        payment_id="PAY-1:abc",
        invoice_id=sid,
        amount=Decimal("1100.00"),
        currency="USD",
        received_on=date(2026, 11, 20),
        consolidated_invoice_id="INV-9",
    )
    paid, _ = play(collections.receive(s, systems, part), sectioning(systems))
    assert [c.name for c in steps(paid)] == [RECORD_SECTION_PAYMENT]
    assert APPLY_PAYMENT not in [c.name for c in steps(paid)]
    assert s.collections.book.balance_due == 0


def test_a_contract_at_none_or_before_the_release_bills_on_its_own() -> None:
    for s, unpatched in (
        (contract(), set()),
        (contract(consolidated_invoicing="customer"), {consolidation.CONSOLIDATED_INVOICING}),
    ):
        systems = Systems(hours={"2026-10": Decimal(5)}, unpatched=unpatched)
        commands = systems.run(billing.bill_period(s, systems, Period.parse("2026-10")))
        asked = [c.patch_id for c in commands if isinstance(c, Patched)]
        assert asked == ([] if not unpatched else [consolidation.CONSOLIDATED_INVOICING])
        assert [c.name for c in steps(commands)] == [BILL_PERIOD]
        assert len(s.collections.invoices) == 1 and not s.billing.sections
        assert not any("section" in line for line in lines(commands))
