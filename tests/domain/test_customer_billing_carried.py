"""What a customer's billing workflow hands to its next run: folded, small, and enough.

Paid invoices of older periods fold into what a resend of one of their sections and a payment
naming them still need; what is open is carried whole; only the latest payment ids and history
lines are kept, with counts of the others.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from temporalio.contrib.pydantic import pydantic_data_converter

from domain.consolidation import (
    CARRIED_HISTORY_LINES,
    CARRIED_PAYMENT_IDS,
    CARRIED_SETTLED_PERIODS,
    BillingMember,
    ConsolidatedInvoice,
    CustomerBillingCarried,
    CustomerBillingKey,
    CustomerBillingStart,
    InvoiceSection,
    SectionShare,
    fold,
    section_id,
)
from domain.periods import Period

CONTRACTS = ["C-1a2b3c4d", "C-2b3c4d5e", "C-3c4d5e6f"]
MONTHS = 60
#: The project's bound on what a run hands to the next.
CARRIED_BOUND = 16 * 1024


def _periods(n: int) -> list[str]:
    period, periods = Period.parse("2021-11"), []
    for _ in range(n):
        periods.append(str(period))
        period = period.next()
    return periods


def _section(cid: str, period: str, total: str = "1210.00") -> InvoiceSection:
    return InvoiceSection(
        section_id=section_id(cid, period),
        contract_id=cid,
        period=period,
        subtotal=Decimal(total) - Decimal("210.00"),
        tax=Decimal("210.00"),
        total=Decimal(total),
        invoice_date=Period.parse(period).last_day,
        tax_code=f"TX-{cid}-{period}",
        erp_contract_id=f"ERP-CT-{cid}",
        erp_project_id=f"ERP-PR-{cid}",
    )


def _invoice(
    n: int, period: str, sections: list[InvoiceSection], paid: bool
) -> ConsolidatedInvoice:
    total = sum((s.total for s in sections), Decimal(0))
    return ConsolidatedInvoice(
        invoice_id=f"INV-{n:07d}",
        number=f"CI-2026-{n:06d}",
        invoice_date=Period.parse(period).next().first_day,
        due_on=Period.parse(period).next().last_day,
        subtotal=total - Decimal("630.00"),
        tax=Decimal("630.00"),
        total=total,
        period=period,
        batch=1,
        reference=period,
        sections=[
            SectionShare(
                section_id=s.section_id,
                contract_id=s.contract_id,
                total=s.total,
                paid=s.total if paid else Decimal(0),
            )
            for s in sections
        ],
    )


def _long_customer(months: int = MONTHS) -> CustomerBillingCarried:
    """Three contracts invoiced together every month for five years, every invoice paid in
    two payments but the last two months', and the next month's sections waiting."""
    periods = _periods(months + 1)
    sections, placed, invoices, payments, history = [], {}, [], [], []
    for n, period in enumerate(periods[:-1], start=1):
        made = [_section(cid, period) for cid in CONTRACTS]
        invoice = _invoice(n, period, made, paid=n <= months - 2)
        sections += made
        placed |= {s.section_id: invoice.invoice_id for s in made}
        invoices.append(invoice)
        payments += [f"pi_{period}_{part}_3MkP2cLkdF0e" for part in (1, 2)]
        history += [f"2026-12-0{n % 9 + 1} 10:00:00 consolidated invoice {invoice.number}"] * 6
    waiting = [_section(cid, periods[-1]) for cid in CONTRACTS[:2]]
    return CustomerBillingCarried(
        run=2,
        members=[
            BillingMember(contract_id=cid, first_period=periods[0], last_period="2031-12")
            for cid in CONTRACTS
        ],
        sections=[*sections, *waiting],
        placed=placed,
        waiting_since={periods[-1]: datetime(2026, 12, 1, tzinfo=UTC)},
        invoices=invoices,
        payments=payments,
        history=history,
    )


def _start(carried: CustomerBillingCarried) -> CustomerBillingStart:
    return CustomerBillingStart(
        key=CustomerBillingKey(legal_entity="US01", crm_account_id="ACME-US", currency="USD"),
        mode="customer",
        erp_customer_id="CUST-000042",
        continue_as_new_events=10_000,
        carried=carried,
    )


def _size(carried: CustomerBillingCarried) -> int:
    return len(pydantic_data_converter.payload_converter.to_payloads([_start(carried)])[0].data)


def test_a_five_year_customer_hands_over_less_than_16_kb() -> None:
    whole = _long_customer()
    folded = fold(whole)
    print(f"carried input: {_size(whole)} B whole, {_size(folded)} B folded")
    assert _size(folded) < CARRIED_BOUND
    # The open invoices and the paid ones of the latest periods are whole, with what is
    # paid of each section; the others are folded, their total counted.
    assert [i.period for i in folded.invoices] == _periods(MONTHS)[-CARRIED_SETTLED_PERIODS:]
    assert [i.balance > 0 for i in folded.invoices] == [True, True]
    assert len(folded.folded) == MONTHS - CARRIED_SETTLED_PERIODS
    assert folded.folded_total == sum(
        (i.total for i in whole.invoices[: len(folded.folded)]), Decimal(0)
    )
    # A paid invoice of the latest periods stays whole.
    assert fold(whole.model_copy(update={"invoices": whole.invoices[:-1]})).invoices[0].balance == 0
    # The sections kept: those of the invoices held and those waiting, with their placing.
    held = {s.section_id for i in folded.invoices for s in i.sections}
    waiting = {s.section_id for s in folded.sections if s.section_id not in folded.placed}
    assert {s.section_id for s in folded.sections} == held | waiting and len(waiting) == 2
    assert folded.waiting_since == whole.waiting_since and folded.members == whole.members
    # Every section of a folded invoice is still found, on the invoice it went on.
    first = folded.folded[0]
    assert first.section_ids(CONTRACTS) == [section_id(cid, first.period) for cid in CONTRACTS]
    assert (first.invoice_id, first.number) == (whole.invoices[0].invoice_id, "CI-2026-000001")
    # The latest payment ids and history lines, and how many were left behind.
    assert folded.payments == whole.payments[-CARRIED_PAYMENT_IDS:]
    assert folded.payments_forgotten == len(whole.payments) - CARRIED_PAYMENT_IDS
    assert len(folded.history) == CARRIED_HISTORY_LINES
    assert folded.history_omitted == len(whole.history) - CARRIED_HISTORY_LINES


def test_the_folded_state_reads_back_as_written_and_folds_no_further() -> None:
    folded = fold(_long_customer())
    payload = pydantic_data_converter.payload_converter.to_payloads([_start(folded)])[0]
    read = pydantic_data_converter.payload_converter.from_payload(payload, CustomerBillingStart)
    assert read.carried == folded
    again = fold(folded)
    assert again.folded == folded.folded and again.invoices == folded.invoices
    assert (again.payments_forgotten, again.history_omitted) == (
        folded.payments_forgotten,
        folded.history_omitted,
    )


def test_an_invoice_whose_section_ids_are_not_derived_from_members_stays_whole() -> None:
    whole = _long_customer(6)
    odd = whole.invoices[0]
    odd.sections[0].section_id = "SEC-hand-made"
    folded = fold(whole)
    assert odd.invoice_id in {i.invoice_id for i in folded.invoices}
    assert odd.invoice_id not in {f.invoice_id for f in folded.folded}


def test_a_start_without_carried_state_is_the_one_recorded_before() -> None:
    start = CustomerBillingStart(
        key=CustomerBillingKey(legal_entity="US01", crm_account_id="ACME-US", currency="USD"),
        mode="customer",
        erp_customer_id="CUST-1",
    )
    payload = pydantic_data_converter.payload_converter.to_payloads([start])[0]
    assert b"carried" not in payload.data and b"continue_as_new" not in payload.data
    assert CustomerBillingStart.model_validate_json(payload.data).carried is None
