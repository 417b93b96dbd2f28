"""Plain-text tables and the contract status as the CLI prints them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from domain.consolidation import CustomerBillingStatus
from domain.models import ContractStatus
from starter.api.contracts import ContractListItem
from starter.api.customer_billing import CustomerBillingRow
from starter.ops.dead_letters import DeadLetterItem
from starter.ops.exception_queue import ExceptionItem
from starter.ops.invoice_review import DraftItem

if TYPE_CHECKING:
    from ledger.models import BillingFact


def cell(value: Any) -> str:
    """A value as a table shows it: blanks for ``None``, minutes for timestamps."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, indent: str = "") -> str:
    """Columns padded to their widest cell, the last one left ragged."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [v.ljust(w) for v, w in zip(values[:-1], widths[:-1], strict=True)]
        return (indent + "  ".join([*padded, values[-1]])).rstrip()

    return "\n".join([line(list(headers)), *(line(r) for r in cells)])


def contracts_table(items: Sequence[ContractListItem]) -> str:
    """``c2c contracts list``."""
    if not items:
        return "No contracts."
    return table(
        ["CONTRACT", "STAGE", "CUSTOMER", "ENTITY", "MODEL", "WORKFLOW", "STARTED"],
        [
            [
                i.contract_id,
                i.stage,
                i.customer_id,
                i.legal_entity,
                i.billing_model,
                i.status,
                i.started_at,
            ]
            for i in items
        ],
    )


def drafts_table(items: Sequence[DraftItem]) -> str:
    """``c2c billing drafts``."""
    if not items:
        return "No draft invoices."
    return table(
        ["DRAFT", "CONTRACT", "FOR", "SUBTOTAL", "TAX", "TOTAL", "PO", "STATUS", "DRAFTED"],
        [
            [
                d.invoice_id,
                d.contract_id,
                d.reference,
                d.subtotal,
                d.tax,
                f"{d.total} {d.currency}",
                d.po_number or "-",
                d.status if d.status == "draft" else f"{d.status} by {d.reviewed_by}",
                d.drafted_at,
            ]
            for d in items
        ],
    )


def exceptions_table(items: Sequence[ExceptionItem]) -> str:
    """``c2c ops exceptions``."""
    if not items:
        return "No exceptions."
    return table(
        [
            "EXCEPTION",
            "CONTRACT",
            "STAGE",
            "SYSTEM",
            "CODE",
            "QUEUE",
            "STATUS",
            "OPENED",
            "MESSAGE",
        ],
        [
            [
                e.exception_id,
                e.contract_id,
                e.stage,
                e.system,
                e.code,
                e.queue,
                f"{e.status} (escalated)" if e.escalated_at and e.status == "open" else e.status,
                e.opened_at,
                e.message,
            ]
            for e in items
        ],
    )


def dead_letters_table(items: Sequence[DeadLetterItem], *, empty: str = "No dead letters.") -> str:
    """``c2c ops dead-letters``."""
    if not items:
        return empty
    return table(
        ["SOURCE", "EVENT", "TYPE", "CONTRACT", "STATUS", "ATTEMPTS", "RECEIVED", "REASON"],
        [
            [
                e.source,
                e.event_id,
                e.type,
                e.contract_id,
                e.status,
                e.attempts,
                e.received_at,
                e.reason,
            ]
            for e in items
        ],
    )


def _section(title: str, body: str) -> list[str]:
    return ["", title, body]


def status_text(status: ContractStatus, settled: Sequence[BillingFact] = ()) -> str:
    """``c2c contracts status``: stage, references, invoices, open exceptions, history.

    ``settled`` are the ledger's invoices settled in earlier runs, which the status sums up
    in ``settled_invoices`` but no longer lists.
    """
    lines = [
        f"Contract {status.contract_id}",
        f"  stage:           {status.stage}"
        + (f" (waiting for {status.waiting_for})" if status.waiting_for else ""),
        *([f"  retrying:        {status.retrying}"] if status.retrying else []),
        f"  billing model:   {status.billing_model} in {status.currency}",
        f"  balance due:     {status.balance_due}",
        f"  unapplied cash:  {status.unapplied_cash}",
    ]
    if status.closed_periods:
        lines.append(f"  periods billed:  {', '.join(status.closed_periods)}")
    if status.po_number:
        lines.append(f"  purchase order:  {status.po_number}")
    if status.bill_to:
        lines.append(f"  bill to:         {status.bill_to.name}")
    if status.drafts:
        lines += _section(
            "Drafts waiting for review",
            table(
                ["DRAFT", "FOR", "SUBTOTAL", "TAX", "TOTAL", "PO"],
                [
                    [d.invoice_id, d.reference, d.subtotal, d.tax, d.total, d.po_number or "-"]
                    for d in status.drafts
                ],
                indent="  ",
            ),
        )
    if status.refs:
        lines += _section(
            "References", table(["SYSTEM ID", "VALUE"], sorted(status.refs.items()), indent="  ")
        )
    if status.invoices:
        lines += _section(
            "Invoices",
            table(
                ["INVOICE", "NUMBER", "FOR", "SUBTOTAL", "TAX", "TOTAL", "PAID", "STATUS", "DUE"],
                [
                    [
                        i.invoice_id,
                        i.number,
                        i.period or i.milestone_id,
                        i.subtotal,
                        i.tax,
                        i.total,
                        i.amount_paid,
                        i.status,
                        i.due_on,
                    ]
                    for i in status.invoices
                ],
                indent="  ",
            ),
        )
    done = status.settled_invoices
    if done.count:
        lines += _section(
            f"Settled in earlier runs: {done.count} invoices, total {done.total}, paid "
            f"{done.amount_paid}, credited {done.amount_credited}",
            table(
                ["INVOICE", "FOR", "TOTAL", "ISSUED", "DUE"],
                [[f.invoice_id, f.reference, f.total, f.invoice_date, f.due_on] for f in settled],
                indent="  ",
            )
            if settled
            else "  (listed in the ERP and the ledger's billing facts)",
        )
    if status.amendments:
        lines += _section(
            "Amendments",
            table(
                ["AMENDMENT", "STATUS", "PROPAGATED TO", "REASON"],
                [
                    [a.amendment_id, a.status, ", ".join(a.propagated_to), a.reason]
                    for a in status.amendments
                ],
                indent="  ",
            ),
        )
    if status.open_exceptions:
        lines += _section(
            "Open exceptions",
            table(
                ["EXCEPTION", "STAGE", "SYSTEM", "CODE", "QUEUE", "OPENED", "MESSAGE"],
                [
                    [e.exception_id, e.stage, e.system, e.code, e.queue, e.opened_at, e.message]
                    for e in status.open_exceptions
                ],
                indent="  ",
            ),
        )
    if status.history:
        earlier = status.history_omitted
        lines += _section(
            "History"
            + (
                f" (the latest lines; {earlier} earlier ones are in the audit trail)"
                if earlier
                else ""
            ),
            table(
                ["AT", "STAGE", "EVENT"],
                [[h.at.strftime("%Y-%m-%d %H:%M:%S"), h.stage, h.event] for h in status.history],
                indent="  ",
            ),
        )
    return "\n".join(lines)


def customer_billing_table(items: Sequence[CustomerBillingRow]) -> str:
    """``c2c billing customers``."""
    if not items:
        return "No customer billing workflows."
    return table(
        [
            "WORKFLOW",
            "ENTITY",
            "CUSTOMER",
            "PO",
            "MODE",
            "MEMBERS",
            "WAITING",
            "OPEN BALANCE",
            "LAST INVOICE",
            "STATUS",
        ],
        [
            [
                i.workflow_id,
                i.legal_entity,
                i.customer,
                i.po_number or "-",
                i.mode,
                i.members,
                i.sections_waiting,
                "" if i.open_balance is None else f"{i.open_balance} {i.currency}",
                f"{i.last_invoice_number} of {i.last_invoice_date}"
                if i.last_invoice_number
                else "-",
                i.status if i.unreadable is None else f"{i.status} (unreadable: {i.unreadable})",
            ]
            for i in items
        ],
    )


def customer_billing_text(status: CustomerBillingStatus) -> str:
    """``c2c billing customer``: key, members, sections waiting, invoices section by section,
    payments and history."""
    key = status.key
    balance = sum((i.balance for i in status.invoices), Decimal(0))
    lines = [
        f"Customer billing {status.workflow_id}",
        f"  legal entity:    {key.legal_entity}",
        f"  customer:        {key.crm_account_id}",
        f"  currency:        {key.currency}",
        *([f"  purchase order:  {key.po_number}"] if key.po_number else []),
        f"  mode:            {status.mode}",
        f"  open balance:    {balance} {key.currency}",
    ]
    lines += _section(
        "Members",
        table(
            ["CONTRACT", "FIRST PERIOD", "LAST PERIOD"],
            [[m.contract_id, m.first_period, m.last_period] for m in status.members],
            indent="  ",
        )
        if status.members
        else "  None.",
    )
    lines += _section(
        "Sections waiting for an invoice",
        table(
            ["PERIOD", "SECTIONS"],
            [[period, ", ".join(ids)] for period, ids in sorted(status.waiting.items())],
            indent="  ",
        )
        if status.waiting
        else "  None.",
    )
    lines += ["", "Invoices"]
    if not status.invoices:
        lines.append("  None yet.")
    for invoice in status.invoices:
        lines += [
            f"  {invoice.number} ({invoice.invoice_id}) for {invoice.reference}: issued "
            f"{invoice.invoice_date}, due {invoice.due_on}; subtotal {invoice.subtotal}, tax "
            f"{invoice.tax}, total {invoice.total}, balance {invoice.balance} {key.currency}",
            table(
                ["SECTION", "CONTRACT", "TOTAL", "CREDITED", "PAID", "BALANCE"],
                [
                    [s.section_id, s.contract_id, s.total, s.credited, s.paid, s.balance]
                    for s in invoice.sections
                ],
                indent="    ",
            ),
        ]
    payments = ", ".join(status.payments) or "None."
    history = "\n".join(f"  {line}" for line in status.history) or "  None."
    lines += [*_section("Payments", f"  {payments}"), *_section("History", history)]
    return "\n".join(lines)
