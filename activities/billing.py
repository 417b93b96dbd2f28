"""Billing: one invoice priced, capped, taxed, issued in ERP, and the revenue it carries posted.

The step is safe to repeat at any point. Work is first frozen into a PSA billing batch named by
the workflow and the invoice's reference, so every attempt prices exactly the same entries; the
ERP invoice is found by that reference before it is created under a key of the same name, then
issued; the batch is marked invoiced; revenue is posted under its own entry id. Last, the time
the PSA still holds unbilled is read and priced for the unbilled-time KPI (``ledger.kpis``).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial

from temporalio import activity

from activities.base import (
    StepActivities,
    business_error,
    error_classes,
    idempotency_key,
    workflow_run,
)
from c2c.telemetry import record_invoice_issued
from connectors.ports import ErpPort
from connectors.records import (
    BillingBatch,
    ErpInvoice,
)
from domain.billing import OverageAccumulator, apply_cap
from domain.consolidation import InvoiceSection
from domain.errors import NotFound, Rejection
from domain.models import DraftInvoice, InvoiceSummary, RevenueStatus
from domain.money import money_sum, round_money
from domain.periods import Period
from domain.pricing import (
    ExpenseAccumulator,
    InvoiceLine,
    RateTable,
    TimeAccumulator,
    UnknownRole,
    number_lines,
)
from domain.steps import BILL_PERIOD, BillPeriodInput, BillPeriodResult, RevenuePlan
from domain.tax import apply_tax, tax_code
from domain.write_models import (
    BillToContact,
    InvoiceCollection,
    InvoiceDraft,
    InvoiceLineDraft,
    RevenueEntryDraft,
    TaxLineRequest,
    TaxRequest,
)
from ledger import BillingStartIn, InvoiceIssuedIn, RevenueFactIn
from ledger.drafts import InvoiceDraft as DraftRow
from ledger.drafts import InvoiceDraftIn
from ledger.models import UnbilledMonthIn

_STATUS = {"void": "credited"}

#: Invoice statuses whose balance the customer still pays through the gateway.
COLLECTABLE = frozenset({"issued", "partially_paid", "overdue"})

#: Lines whose amount is revenue as invoiced (the right-to-invoice practical expedient).
AS_INVOICED_KINDS = frozenset({"time", "expense", "overage", "release"})


def _drafted(draft: DraftInvoice, frozen: tuple[str, BillingBatch] | None) -> BillPeriodResult:
    batch = frozen[1] if frozen else None
    return BillPeriodResult(
        draft=draft,
        hours=batch.hours if batch else Decimal(0),
        time_entries=batch.time_entry_count if batch else 0,
        expenses=batch.expense_count if batch else 0,
    )


def _draft_result(made: DraftRow, frozen: tuple[str, BillingBatch] | None) -> BillPeriodResult:
    """A draft the ledger already holds, as the billing step first answered it."""
    draft = DraftInvoice(
        invoice_id=made.draft_id,
        reference=made.reference,
        period=made.period,
        milestone_id=made.milestone_id,
        subtotal=made.subtotal,
        tax=made.tax,
        total=made.total,
        drafted_at=made.drafted_at,
        po_number=made.po_number,
    )
    return _drafted(draft, frozen)


def invoice_summary(invoice: ErpInvoice) -> InvoiceSummary:
    """The workflow's view of an ERP invoice: ids and totals only."""
    return InvoiceSummary(
        invoice_id=invoice.invoice_id,
        number=invoice.number,
        period=invoice.period,
        milestone_id=invoice.milestone_id,
        reference=invoice.reference,
        subtotal=invoice.subtotal,
        tax=invoice.tax,
        total=invoice.total,
        amount_paid=invoice.amount_paid,
        amount_credited=invoice.credited_amount,
        status=_STATUS.get(invoice.status, invoice.status),
        due_on=invoice.due_on,
        invoice_date=invoice.invoice_date,
        functional_currency=invoice.functional_currency,
        exchange_rate=invoice.exchange_rate,
        functional_total=invoice.functional_total,
    )


class BillingActivities(StepActivities):
    async def _price_work(
        self, project_id: str, batch_id: str, batch: BillingBatch, step: BillPeriodInput
    ) -> list[InvoiceLine]:
        """The batch's time (by rate card or as retainer overage) and expenses, as lines; a
        kind of work the batch holds none of is not read."""
        psa = self.connectors.psa
        time: TimeAccumulator | OverageAccumulator | None = None
        if step.time_pricing == "rate_card":
            time = TimeAccumulator(step.rates, step.currency)
        elif step.time_pricing == "overage":
            time = OverageAccumulator(step.rates, step.currency, step.included_hours)
        lines: list[InvoiceLine] = []
        if time is not None and batch.time_entry_count:
            async for page in psa.batch_time_entries(project_id, batch_id):
                for entry in page:
                    try:
                        time.add(entry.role, entry.work_date, entry.hours)
                    except UnknownRole as exc:
                        raise business_error(
                            Rejection(
                                system="psa",
                                code="unknown_role",
                                message=f"time entry {entry.entry_id}: {exc}",
                                field="role",
                            )
                        ) from exc
                activity.heartbeat(time.entries)
            lines.extend(time.lines())
        if step.expenses_billable and batch.expense_count:
            expenses = ExpenseAccumulator(step.currency, step.expense_markup_percent)
            rates: dict[str, Decimal] = {step.currency: Decimal(1)}
            async for expense_page in psa.batch_expenses(project_id, batch_id):
                for expense in expense_page:
                    if expense.currency not in rates:
                        rates[expense.currency] = await self.connectors.erp.get_exchange_rate(
                            expense.currency, step.currency, step.invoice_date
                        )
                    expenses.add(expense.category, expense.amount * rates[expense.currency])
            lines.extend(expenses.lines())
        return lines

    async def _freeze(self, step: BillPeriodInput) -> tuple[str, BillingBatch] | None:
        """Freeze the approved work the invoice covers, or ``None`` when it covers none."""
        if step.through_date is None or (
            step.time_pricing == "none" and not step.expenses_billable
        ):
            return None
        project_id = step.refs["psa_project_id"]
        batch_id = f"{workflow_run()[0]}.{step.reference}"
        batch = await self.connectors.psa.freeze_billing_batch(
            project_id, batch_id, step.through_date, include_expenses=step.expenses_billable
        )
        return batch_id, batch

    async def _unbilled(
        self, project_id: str, step: BillPeriodInput
    ) -> list[UnbilledMonthIn] | None:
        """The approved, billable time the PSA holds unbilled once this invoice is made, by
        month of work, priced at the contract's rates with lines rounded per role and rate as an
        invoice's are; ``None`` when the contract's time is not billed by the hour."""
        if step.time_pricing != "rate_card":
            return None
        rates = RateTable(step.rates)
        hours: dict[str, Decimal] = defaultdict(Decimal)
        unpriced: dict[str, Decimal] = defaultdict(Decimal)
        priced: dict[tuple[str, str, Decimal], Decimal] = defaultdict(Decimal)
        async for page in self.connectors.psa.unbilled_time_entries(project_id):
            for entry in page:
                month = str(Period.of(entry.work_date))
                hours[month] += entry.hours
                try:
                    rate = rates.rate(entry.role, entry.work_date)
                except UnknownRole:
                    unpriced[month] += entry.hours
                else:
                    priced[(month, entry.role, rate)] += entry.hours
        value: dict[str, Decimal] = defaultdict(Decimal)
        for (month, _, rate), worked in priced.items():
            value[month] += round_money(worked * rate, step.currency)
        return [
            UnbilledMonthIn(
                work_month=month,
                currency=step.currency,
                hours=worked,
                value=value[month],
                unpriced_hours=unpriced[month],
            )
            for month, worked in sorted(hours.items())
            if worked
        ]

    @activity.defn(name=BILL_PERIOD)
    async def bill_period(self, step: BillPeriodInput) -> BillPeriodResult:
        """Invoice what ``step`` describes: work up to ``through_date`` plus its charges."""
        # The audit entries so far and the KPI fact of the start, in one transaction.
        await self.write_together(
            self.audit_write(step.contract_id, step.audit),
            partial(self.ledger.record_billing_started, _billing_start(step)),
        )
        erp, psa = self.connectors.erp, self.connectors.psa
        project_id = step.refs["psa_project_id"]
        async with error_classes(BILL_PERIOD):
            frozen = await self._freeze(step)
            lines = list(step.charges)
            if frozen is not None and (frozen[1].time_entry_count or frozen[1].expense_count):
                lines = [*await self._price_work(project_id, *frozen, step), *lines]
            capped = apply_cap(
                number_lines(lines),
                cap=step.not_to_exceed,
                billed_to_date=step.billed_to_date,
                currency=step.currency,
            )
            as_invoiced = money_sum(
                [line.amount for line in capped.lines if line.kind in AS_INVOICED_KINDS],
                step.currency,
            )
            if step.section_id is not None:
                return await self._section(step, capped.lines, capped.held_back, frozen)
            if step.draft_id is not None:
                made = await asyncio.to_thread(self.ledger.get_draft, step.draft_id)
                if made is not None:
                    # Drafted before (an earlier attempt, or a run a reset replaced): the same
                    # preview, whatever was reviewed or issued since.
                    return _draft_result(made, frozen)
            invoice = await erp.find_invoice(step.contract_id, reference=step.reference)
            if invoice is not None:
                # Made by an earlier attempt (or run, before a reset): the ERP's invoice is the
                # truth, whatever pricing would give today.
                as_invoiced = money_sum(
                    [line.amount for line in invoice.lines if line.kind in AS_INVOICED_KINDS],
                    step.currency,
                )
                priced = money_sum([line.amount for line in lines], step.currency)
                capped = capped.model_copy(
                    update={"held_back": max(Decimal(0), priced - invoice.subtotal)}
                )
            elif capped.lines and step.draft_id is not None:
                # Reviewed first: a preview in the ledger, nothing issued anywhere.
                return await self._draft(step, capped.lines, frozen)
            elif capped.lines:
                invoice = await self._create_invoice(step, capped.lines)
            if invoice is not None and invoice.status == "draft":
                invoice = await erp.issue_invoice(
                    invoice.invoice_id,
                    idempotency_key=idempotency_key("invoice", step.reference, "issue"),
                )
                record_invoice_issued(
                    currency=invoice.currency, legal_entity=step.legal_entity, total=invoice.total
                )
            if invoice is not None and invoice.status != "draft":
                await self._commit_tax(step)
                await self._collect(step, invoice)
            if invoice is not None and frozen is not None and frozen[1].invoice_id is None:
                await psa.mark_batch_invoiced(
                    project_id,
                    frozen[0],
                    invoice.invoice_id,
                    idempotency_key=idempotency_key("batch", step.reference, "invoiced"),
                )
            posted, revenue, writes = await self._revenue_and_unbilled(step, as_invoiced)
        if invoice is not None:
            writes += [
                partial(
                    self.ledger.record_xref, step.contract_id, "erp", "invoice", invoice.invoice_id
                ),
                partial(self.ledger.record_invoice_issued, _invoice_issued(step, invoice)),
            ]
        if step.approved_draft is not None:
            writes.append(
                partial(
                    self.ledger.review_draft,
                    step.approved_draft,
                    "approved",
                    at=datetime.now(UTC),
                    by=step.approved_by,
                    invoice_id=invoice.invoice_id if invoice else None,
                )
            )
        await self.write_together(*writes)
        batch = frozen[1] if frozen else None
        return BillPeriodResult(
            invoice=invoice_summary(invoice) if invoice else None,
            hours=batch.hours if batch else Decimal(0),
            time_entries=batch.time_entry_count if batch else 0,
            expenses=batch.expense_count if batch else 0,
            held_back=capped.held_back,
            as_invoiced=as_invoiced if invoice else Decimal(0),
            revenue_posted=posted,
            revenue=revenue,
        )

    async def _revenue_and_unbilled(
        self, step: BillPeriodInput, as_invoiced: Decimal
    ) -> tuple[Decimal, RevenueStatus, list[Callable[[], object]]]:
        """Post the bill's revenue and read the time the PSA still holds unbilled: what was
        posted, the contract's revenue status, and the ledger writes of both."""
        posted, revenue = await self._post_revenue(step, as_invoiced)
        posting = await revenue_fact(
            self.connectors.erp,
            step.contract_id,
            step.revenue,
            posted,
            currency=step.currency,
            functional_currency=step.functional_currency,
        )
        unbilled = await self._unbilled(step.refs["psa_project_id"], step)
        writes: list[Callable[[], object]] = []
        if posting is not None:
            writes.append(partial(self.ledger.record_revenue_fact, posting))
        if unbilled is not None:
            read_at = datetime.now(UTC)
            writes.append(
                partial(self.ledger.record_unbilled_time, step.contract_id, unbilled, read_at)
            )
        return posted, revenue, writes

    async def _commit_tax(self, step: BillPeriodInput) -> None:
        """Commit the invoice's tax document once the invoice is issued: the engine reports
        it for filing from then on."""
        try:
            await self.connectors.tax.commit_document(
                step.legal_entity,
                invoice_tax_code(step.reference),
                idempotency_key=idempotency_key("invoice", step.reference, "tax-commit"),
            )
        except NotFound:
            # Created before c2c kept tax documents (taxed by a plain calculation): nothing to
            # commit, and the invoice stands as issued.
            activity.logger.info("no tax document for invoice %s", step.reference)

    async def _collect(self, step: BillPeriodInput, invoice: ErpInvoice) -> None:
        """Open the issued invoice's payment at the gateway (a Stripe PaymentIntent for its
        total); a gateway that takes payments without one opens nothing."""
        if invoice.status not in COLLECTABLE or invoice.total <= 0:
            return
        await self.connectors.payments.collect_invoice(
            InvoiceCollection(
                invoice_id=invoice.invoice_id,
                contract_id=step.contract_id,
                number=invoice.number,
                amount=invoice.total,
                currency=invoice.currency,
            ),
            idempotency_key=idempotency_key("invoice", step.reference, "collect"),
        )

    async def _draft(
        self,
        step: BillPeriodInput,
        lines: list[InvoiceLine],
        frozen: tuple[str, BillingBatch] | None,
    ) -> BillPeriodResult:
        """A draft of the invoice: priced and taxed (the tax document saved, not committed),
        kept in the ledger for review under ``step.draft_id``; no number, no ERP invoice."""
        assert step.draft_id is not None
        taxed = await self._taxed(step, lines)
        draft = DraftInvoice(
            invoice_id=step.draft_id,
            reference=step.reference,
            period=None if step.milestone_id else step.period,
            milestone_id=step.milestone_id,
            subtotal=taxed.subtotal,
            tax=taxed.tax,
            total=taxed.total,
            drafted_at=datetime.now(UTC),
            po_number=step.po_number,
        )
        await self._keep(step, draft, taxed)
        return _drafted(draft, frozen)

    async def _keep(
        self, step: BillPeriodInput, draft: DraftInvoice, taxed: InvoiceDraft, status: str = "draft"
    ) -> None:
        """Keep a draft (or a section) in the ledger with its lines, once by its id."""
        await self.write_together(
            partial(
                self.ledger.record_draft,
                InvoiceDraftIn(
                    **draft.model_dump(exclude={"invoice_id"}),
                    draft_id=draft.invoice_id,
                    contract_id=step.contract_id,
                    legal_entity=step.legal_entity,
                    currency=step.currency,
                    lines=[line.model_dump(mode="json", exclude_none=True) for line in taxed.lines],
                    bill_to=step.bill_to.model_dump(mode="json") if step.bill_to else None,
                    status=status,
                ),
            )
        )

    async def _section(
        self,
        step: BillPeriodInput,
        lines: list[InvoiceLine],
        held_back: Decimal,
        frozen: tuple[str, BillingBatch] | None,
    ) -> BillPeriodResult:
        """A section of the customer's consolidated invoice: priced and taxed as an invoice
        (the tax document saved, committed when the consolidated invoice is issued), its lines
        kept in the ledger under ``step.section_id``, its revenue posted; no ERP invoice. A
        repeat finds the section in the ledger and answers the same."""
        assert step.section_id is not None
        made = await asyncio.to_thread(self.ledger.get_draft, step.section_id)
        if made is None and lines:
            taxed = await self._taxed(step, lines)
            preview = DraftInvoice(
                invoice_id=step.section_id,
                reference=step.reference,
                period=step.period,
                subtotal=taxed.subtotal,
                tax=taxed.tax,
                total=taxed.total,
                drafted_at=datetime.now(UTC),
                po_number=step.po_number,
            )
            await self._keep(step, preview, taxed, "section")
            made = await asyncio.to_thread(self.ledger.get_draft, step.section_id)
        as_invoiced = money_sum(
            [
                Decimal(str(line["amount"]))
                for line in (made.lines if made else [])
                if line.get("kind") in AS_INVOICED_KINDS
            ],
            step.currency,
        )
        posted, revenue, writes = await self._revenue_and_unbilled(step, as_invoiced)
        await self.write_together(*writes)
        batch = frozen[1] if frozen else None
        section = InvoiceSection(
            section_id=step.section_id,
            contract_id=step.contract_id,
            period=step.period,
            payment_terms_days=step.payment_terms_days,
            invoice_date=step.invoice_date,
            erp_contract_id=step.refs.get("erp_contract_id"),
            erp_project_id=step.refs.get("erp_project_id"),
        )
        if made is not None:
            section = section.model_copy(
                update={
                    "subtotal": made.subtotal,
                    "tax": made.tax,
                    "total": made.total,
                    "tax_code": invoice_tax_code(step.reference),
                }
            )
        return BillPeriodResult(
            section=section,
            hours=batch.hours if batch else Decimal(0),
            time_entries=batch.time_entry_count if batch else 0,
            expenses=batch.expense_count if batch else 0,
            held_back=held_back,
            as_invoiced=as_invoiced,
            revenue_posted=posted,
            revenue=revenue,
        )

    async def _taxed(self, step: BillPeriodInput, lines: list[InvoiceLine]) -> InvoiceDraft:
        """The invoice, taxed from a tax document saved (not committed) under its reference:
        an invoice the ERP refuses, or a draft waiting for review, is never reported."""
        document = await self.connectors.tax.create_or_adjust(
            TaxRequest(
                code=invoice_tax_code(step.reference),
                type="SalesInvoice",
                company=step.legal_entity,
                on=step.invoice_date,
                customer_code=step.refs["erp_customer_id"],
                customer_tax_id=step.customer_tax_id,
                ship_from_country=step.seller_country,
                ship_to_country=step.country,
                ship_to_region=step.region,
                currency=step.currency,
                lines=[
                    TaxLineRequest(
                        number=line.line_id,
                        amount=line.amount,
                        tax_code=tax_code(line.kind),
                        description=line.description,
                    )
                    for line in lines
                ],
            )
        )
        draft = InvoiceDraft(
            contract_id=step.contract_id,
            reference=step.reference,
            erp_contract_id=step.refs["erp_contract_id"],
            customer_id=step.refs["erp_customer_id"],
            project_id=step.refs["erp_project_id"],
            legal_entity=step.legal_entity,
            currency=step.currency,
            period=None if step.milestone_id else step.period,
            milestone_id=step.milestone_id,
            invoice_date=step.invoice_date,
            due_on=_due_on(step),
            lines=tuple(
                InvoiceLineDraft.model_validate(line.model_dump(exclude_none=True))
                for line in lines
            ),
            notes=tuple(document.messages),
            po_number=step.po_number,
            bill_to=BillToContact.model_validate(step.bill_to.model_dump())
            if step.bill_to
            else None,
        )
        try:
            draft = apply_tax(draft, document.result())
        except ValueError as exc:
            raise business_error(
                Rejection(system="tax", code="incomplete_tax", message=str(exc), field="lines")
            ) from exc
        return draft

    async def _create_invoice(self, step: BillPeriodInput, lines: list[InvoiceLine]) -> ErpInvoice:
        erp = self.connectors.erp
        # The tax document is committed once the invoice is issued.
        draft = await self._taxed(step, lines)
        functional = step.functional_currency
        if functional and functional != step.currency:
            # Reported in the legal entity's books at the ERP's rate of the invoice date.
            rate = await erp.get_exchange_rate(step.currency, functional, step.invoice_date)
            f_subtotal = round_money(draft.subtotal * rate, functional)
            f_tax = round_money(draft.tax * rate, functional)
            draft = draft.model_copy(
                update={
                    "functional_currency": functional,
                    "exchange_rate": rate,
                    "functional_subtotal": f_subtotal,
                    "functional_tax": f_tax,
                    "functional_total": f_subtotal + f_tax,
                }
            )
        elif functional:
            draft = draft.model_copy(
                update={
                    "functional_currency": functional,
                    "exchange_rate": Decimal(1),
                    "functional_subtotal": draft.subtotal,
                    "functional_tax": draft.tax,
                    "functional_total": draft.total,
                }
            )
        return await erp.create_invoice(
            draft, idempotency_key=idempotency_key("invoice", step.reference)
        )

    async def _post_revenue(
        self, step: BillPeriodInput, as_invoiced: Decimal
    ) -> tuple[Decimal, RevenueStatus]:
        plan = step.revenue
        amount = Decimal(0)
        if plan is not None:
            amount = plan.amount + (as_invoiced if plan.add_as_invoiced else Decimal(0))
        revenue = await post_revenue(
            self.connectors.erp,
            step.refs["erp_contract_id"],
            plan,
            amount,
            plan.method if plan else step.revenue_method,
        )
        return amount, revenue


async def post_revenue(
    erp: ErpPort, erp_contract_id: str, plan: RevenuePlan | None, amount: Decimal, method: str
) -> RevenueStatus:
    """Post ``amount`` under ``plan`` (if any and not zero) and read the contract's balances."""
    if plan is not None and amount != 0:
        await erp.post_revenue(
            erp_contract_id,
            RevenueEntryDraft(
                entry_id=plan.entry_id,
                period=plan.period,
                amount=amount,
                method=plan.method,
                description=plan.description,
                # Revenue belongs to its period: dated at the period's end, so the entry is
                # the same whenever (and however often) it is posted.
                recognised_on=Period.parse(plan.period).last_day,
            ),
            idempotency_key=idempotency_key("revenue", plan.entry_id),
        )
    balances = await erp.get_balances(erp_contract_id)
    return RevenueStatus(
        method=method,
        recognised_to_date=balances.recognised_to_date,
        billed_to_date=balances.billed_to_date,
        contract_asset=balances.contract_asset,
        contract_liability=balances.contract_liability,
    )


async def revenue_fact(
    erp: ErpPort,
    contract_id: str,
    plan: RevenuePlan | None,
    amount: Decimal,
    *,
    currency: str,
    functional_currency: str | None,
) -> RevenueFactIn | None:
    """The books' fact of the revenue ``post_revenue`` posted (``None`` when it posted none),
    with the ERP's rate to the legal entity's currency on the day it is recognised."""
    if plan is None or amount == 0:
        return None
    recognised_on = Period.parse(plan.period).last_day
    rate = Decimal(1)
    if functional_currency and functional_currency != currency:
        rate = await erp.get_exchange_rate(currency, functional_currency, recognised_on)
    return RevenueFactIn(
        entry_id=plan.entry_id,
        contract_id=contract_id,
        period=plan.period,
        currency=currency,
        amount=amount,
        recognised_on=recognised_on,
        functional_currency=functional_currency,
        exchange_rate=rate if functional_currency else None,
        recorded_at=datetime.now(UTC),
    )


def _billing_start(step: BillPeriodInput) -> BillingStartIn:
    """The KPI fact of the step's start: the first attempt's schedule time is kept, so an
    operator's retry after a hold still counts from when the period close was taken up."""
    return BillingStartIn(
        contract_id=step.contract_id,
        reference=step.reference,
        period=step.period,
        period_close=step.reference == step.period and step.milestone_id is None,
        legal_entity=step.legal_entity,
        currency=step.currency,
        requested_at=activity.info().scheduled_time,
    )


def _invoice_issued(step: BillPeriodInput, invoice: ErpInvoice) -> InvoiceIssuedIn:
    """The KPI fact of the issued invoice: amounts and dates as the ERP holds them."""
    return InvoiceIssuedIn(
        contract_id=step.contract_id,
        reference=step.reference,
        invoice_id=invoice.invoice_id,
        invoice_date=invoice.invoice_date,
        due_on=invoice.due_on,
        total=invoice.total,
        subtotal=invoice.subtotal,
        tax=invoice.tax,
        functional_currency=invoice.functional_currency,
        exchange_rate=invoice.exchange_rate,
        issued_at=datetime.now(UTC),
    )


def invoice_tax_code(reference: str) -> str:
    """The tax document of the invoice under ``reference``: named by the invoice's own
    idempotency key, so a retried or re-run step adjusts the one document, never a second."""
    return idempotency_key("invoice", reference)


def _due_on(step: BillPeriodInput) -> date:
    return step.invoice_date + timedelta(days=step.payment_terms_days)
