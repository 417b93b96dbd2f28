"""Billing a period: approved work priced by the rate card, taxed, invoiced and issued in ERP.

The step is safe to repeat at any point. Work is first frozen into a PSA billing batch named by
the workflow and the period, so every attempt prices exactly the same entries; the ERP invoice
is created under a key of the same name, then issued, then the batch is marked invoiced.
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import activity

from activities.base import (
    StepActivities,
    business_error,
    error_classes,
    idempotency_key,
    workflow_run,
)
from connectors.records import ErpInvoice
from domain.errors import Rejection
from domain.models import InvoiceSummary
from domain.money import money_sum
from domain.pricing import (
    ExpenseAccumulator,
    InvoiceLine,
    TimeAccumulator,
    UnknownRole,
    number_lines,
)
from domain.steps import BILL_PERIOD, BillPeriodInput, BillPeriodResult

_STATUS = {"void": "credited"}


def invoice_summary(invoice: ErpInvoice) -> InvoiceSummary:
    """The workflow's view of an ERP invoice: ids and totals only."""
    return InvoiceSummary(
        invoice_id=invoice.invoice_id,
        number=invoice.number,
        period=invoice.period,
        milestone_id=invoice.milestone_id,
        subtotal=invoice.subtotal,
        tax=invoice.tax,
        total=invoice.total,
        amount_paid=invoice.amount_paid,
        status=_STATUS.get(invoice.status, invoice.status),
        due_on=invoice.due_on,
    )


class BillingActivities(StepActivities):
    async def _price(
        self, project_id: str, batch_id: str, step: BillPeriodInput
    ) -> tuple[list[InvoiceLine], TimeAccumulator]:
        psa = self.connectors.psa
        time = TimeAccumulator(step.rates, step.currency)
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
        lines = time.lines()
        if step.expenses_billable:
            expenses = ExpenseAccumulator(step.currency)
            async for expense_page in psa.batch_expenses(project_id, batch_id):
                for expense in expense_page:
                    expenses.add(expense.category, expense.amount)
            lines = number_lines([*lines, *expenses.lines()])
        return lines, time

    @activity.defn(name=BILL_PERIOD)
    async def bill_period(self, step: BillPeriodInput) -> BillPeriodResult:
        """Invoice the approved, not yet billed work dated up to ``step.through_date``."""
        await self.write_audit(step.contract_id, step.audit)
        erp, psa, tax = self.connectors.erp, self.connectors.psa, self.connectors.tax
        project_id = step.refs["psa_project_id"]
        batch_id = f"{workflow_run()[0]}.{step.period}"
        async with error_classes(BILL_PERIOD):
            batch = await psa.freeze_billing_batch(
                project_id, batch_id, step.through_date, include_expenses=step.expenses_billable
            )
            if batch.time_entry_count == 0 and batch.expense_count == 0:
                return BillPeriodResult()
            invoice = await erp.find_invoice(step.contract_id, period=step.period)
            if invoice is None:
                lines, _ = await self._price(project_id, batch_id, step)
                quote = await tax.calculate(
                    country=step.country,
                    region=step.region,
                    legal_entity=step.legal_entity,
                    currency=step.currency,
                    on=step.invoice_date,
                    lines=[(line.line_id, line.amount) for line in lines],
                    document_id=batch_id,
                )
                tax_by_line = {t.line_id: t.tax_amount for t in quote.lines}
                subtotal = money_sum([line.amount for line in lines], step.currency)
                invoice = await erp.create_invoice(
                    {
                        "contract_id": step.contract_id,
                        "erp_contract_id": step.refs["erp_contract_id"],
                        "customer_id": step.refs["erp_customer_id"],
                        "project_id": step.refs["erp_project_id"],
                        "legal_entity": step.legal_entity,
                        "currency": step.currency,
                        "period": step.period,
                        "invoice_date": step.invoice_date.isoformat(),
                        "due_on": _due_on(step).isoformat(),
                        "lines": [
                            {
                                **line.model_dump(mode="json"),
                                "tax_amount": format(tax_by_line[line.line_id], "f"),
                            }
                            for line in lines
                        ],
                        "subtotal": format(subtotal, "f"),
                        "tax": format(quote.total_tax, "f"),
                        "total": format(subtotal + quote.total_tax, "f"),
                    },
                    idempotency_key=idempotency_key("invoice", step.period),
                )
            if invoice.status == "draft":
                invoice = await erp.issue_invoice(
                    invoice.invoice_id,
                    idempotency_key=idempotency_key("invoice", step.period, "issue"),
                )
            await psa.mark_batch_invoiced(
                project_id,
                batch_id,
                invoice.invoice_id,
                idempotency_key=idempotency_key("batch", step.period, "invoiced"),
            )
        await self.record_ref(step.contract_id, "erp", "invoice", invoice.invoice_id)
        return BillPeriodResult(
            invoice=invoice_summary(invoice),
            hours=batch.hours,
            time_entries=batch.time_entry_count,
            expenses=batch.expense_count,
        )


def _due_on(step: BillPeriodInput) -> date:
    return step.invoice_date + timedelta(days=step.payment_terms_days)
