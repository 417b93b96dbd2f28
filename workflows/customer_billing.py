"""``CustomerBilling``: one invoice per customer and period across its contracts.

One workflow per customer billing key (legal entity, customer, currency, and purchase order
in ``customer_po`` mode), id ``customer_billing_workflow_id(key)``, started by the first of
its contracts to send it a message (signal-with-start). Contracts join it at activation and
leave it as they close; at each period close each sends its section (``submit_section``; an
empty one when it bills nothing). When every member billing that period has sent its section,
or ``cutoff_s`` after the period's first section, it makes one ERP invoice of the sections
(``issue_consolidated_invoice``, keyed by its workflow id and the period) and answers each
contract with its section's place on it (``section_invoiced``). A section that comes after
its period's invoice goes on another invoice of the period (reference ``YYYY-MM:2``...).

A payment of a consolidated invoice (``payment_received``, routed here by the API because the
ledger knows the invoice as this workflow's) is recorded on the invoice in the ERP and
allocated to the sections (``domain.consolidation.allocate``): each contract receives its part
as a ``payment_received`` under a derived payment id, which it applies once.

Every message is kept once by its id (section id, payment id), and every answer goes again
to a contract that sends its section again (a contract reset to before its period close): an
answer the contract already recorded changes nothing there.

It lives as long as the customer, so it continues as new when its history is long, at rest
(inbox empty, no step or signal in flight, no invoice due): the next run starts from its
state folded by ``domain.consolidation.fold`` (``CustomerBillingStart.carried``), which keeps
what is open and folds paid invoices of older periods into what a resend or a payment naming
them still needs.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import date, datetime, timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.consolidation import (
        BillingMember,
        ConsolidatedInvoice,
        ConsolidatedInvoiceIssued,
        CustomerBillingCarried,
        CustomerBillingStart,
        CustomerBillingStatus,
        FoldedInvoice,
        InvoiceSection,
        SectionShare,
        allocate,
        consolidated_reference,
        fold,
        section_id,
    )
    from domain.models import PaymentReceived, SectionCredited, SectionInvoiced
    from domain.money import ZERO
    from domain.names import (
        CUSTOMER_BILLING_WORKFLOW_TYPE,
        QUERY_STATUS,
        SIGNAL_JOIN_BILLING,
        SIGNAL_LEAVE_BILLING,
        SIGNAL_PAYMENT_RECEIVED,
        SIGNAL_SECTION_CREDITED,
        SIGNAL_SECTION_INVOICED,
        SIGNAL_SUBMIT_SECTION,
        System,
        contract_workflow_id,
        system_task_queue,
    )
    from domain.steps import (
        APPLY_CONSOLIDATED_PAYMENT,
        ISSUE_CONSOLIDATED_INVOICE,
        LOOK_UP_CONSOLIDATED_PAYMENT,
        RECORD_CONSOLIDATED_INVOICE_PAID,
        RENDER_CONSOLIDATED_INVOICE_DOCUMENTS,
        ConsolidatedDocumentsInput,
        ConsolidatedDocumentsRendered,
        ConsolidatedInvoiceInput,
        ConsolidatedInvoicePaidInput,
        ConsolidatedPaymentInput,
        PaymentApplied,
        PaymentKnown,
        PaymentLookUp,
    )
    from workflows.history_length import history_is_long
    from workflows.policies import STEP_RETRY, STEP_TIMEOUT

#: The customer's ERP steps retry transient failures without end: no person waits on them,
#: and nothing may be lost; a business rejection is recorded and tried again at the cut-off.
ERP_RETRY = RetryPolicy(
    initial_interval=STEP_RETRY.initial_interval,
    backoff_coefficient=STEP_RETRY.backoff_coefficient,
    maximum_interval=STEP_RETRY.maximum_interval,
    non_retryable_error_types=STEP_RETRY.non_retryable_error_types,
)

#: History lines the status keeps (the latest).
HISTORY_LINES = 200

#: The patch that lets a running customer's billing continue as new: runs recorded before it
#: never did, and replay them as they were.
CONTINUE_AS_NEW_PATCH = "customer-billing-continue-as-new"
#: The patch under which a period the ERP refused waits for its cut-off before it is tried
#: again (runs recorded before it tried again at once).
REFUSED_WAITS_PATCH = "consolidated-refusal-waits"

#: Marks runs that render each consolidated invoice's documents (a step after the invoice is
#: issued): a history recorded before it replays without the step.
PATCH_CONSOLIDATED_DOCUMENTS = "consolidated-invoice-documents"

#: Marks runs that record an invoice paid (``consolidated_invoice.paid``) when a payment or a
#: credit note brings its sections' balance to zero: a history recorded before it replays
#: without the step.
PATCH_CONSOLIDATED_PAID = "consolidated-invoice-paid-event"

Message = BillingMember | InvoiceSection | PaymentReceived | SectionCredited


@workflow.defn(name=CUSTOMER_BILLING_WORKFLOW_TYPE)
class CustomerBilling:
    @workflow.init
    def __init__(self, start: CustomerBillingStart) -> None:
        self.start = start
        self.members: dict[str, BillingMember] = {}
        self.left: set[str] = set()
        #: Every section received, by id; where each went (an invoice id, "" when empty).
        self.sections: dict[str, InvoiceSection] = {}
        self.placed: dict[str, str] = {}
        #: When each period's first section waiting for an invoice came (the cut-off's start).
        self.waiting_since: dict[str, datetime] = {}
        #: Periods whose invoice the ERP refused since they last waited: tried at the cut-off.
        self.refused: set[str] = set()
        self.invoices: list[ConsolidatedInvoice] = []
        self.payments: list[str] = []
        self.history: list[str] = []
        #: Messages in arrival order, each decided against what those before it decided.
        self.inbox: list[tuple[str, Message]] = []
        #: Which run this is, and what earlier runs folded away (``domain.consolidation.fold``).
        self.run_number = 1
        self.folded: list[FoldedInvoice] = []
        self.folded_total = ZERO
        self.payments_forgotten = 0
        self.history_omitted = 0
        self._continue_declined = False
        if start.carried is not None:
            self._resume(start.carried)

    def _resume(self, carried: CustomerBillingCarried) -> None:
        """Start from the state the run before handed over."""
        self.run_number = carried.run
        self.members = {m.contract_id: m for m in carried.members}
        self.left = set(carried.left)
        self.sections = {s.section_id: s for s in carried.sections}
        self.placed = dict(carried.placed)
        self.waiting_since = dict(carried.waiting_since)
        self.invoices = list(carried.invoices)
        self.folded = list(carried.folded)
        self.folded_total = carried.folded_total
        self.payments = list(carried.payments)
        self.payments_forgotten = carried.payments_forgotten
        self.history = list(carried.history)
        self.history_omitted = carried.history_omitted

    def _carry(self) -> CustomerBillingCarried:
        return fold(
            CustomerBillingCarried(
                run=self.run_number + 1,
                members=list(self.members.values()),
                left=sorted(self.left),
                sections=list(self.sections.values()),
                placed=self.placed,
                waiting_since=self.waiting_since,
                invoices=self.invoices,
                folded=self.folded,
                folded_total=self.folded_total,
                payments=self.payments,
                payments_forgotten=self.payments_forgotten,
                history=self.history,
                history_omitted=self.history_omitted,
            )
        )

    # ------------------------------------------------------------------ messages

    @workflow.signal(name=SIGNAL_JOIN_BILLING)
    def join_billing(self, member: BillingMember) -> None:
        self.inbox.append(("join", member))

    @workflow.signal(name=SIGNAL_LEAVE_BILLING)
    def leave_billing(self, member: BillingMember) -> None:
        self.inbox.append(("leave", member))

    @workflow.signal(name=SIGNAL_SUBMIT_SECTION)
    def submit_section(self, section: InvoiceSection) -> None:
        self.inbox.append(("section", section))

    @workflow.signal(name=SIGNAL_PAYMENT_RECEIVED)
    def payment_received(self, payment: PaymentReceived) -> None:
        self.inbox.append(("payment", payment))

    @workflow.signal(name=SIGNAL_SECTION_CREDITED)
    def section_credited(self, credited: SectionCredited) -> None:
        self.inbox.append(("credited", credited))

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> CustomerBillingStatus:
        waiting: dict[str, list[str]] = {}
        for sid, section in self.sections.items():
            if sid not in self.placed:
                waiting.setdefault(section.period, []).append(sid)
        return CustomerBillingStatus(
            workflow_id=workflow.info().workflow_id,
            key=self.start.key,
            mode=self.start.mode,
            members=[m for cid, m in sorted(self.members.items()) if cid not in self.left],
            waiting=waiting,
            invoices=self.invoices,
            payments=self.payments,
            history=self.history,
            run=self.run_number,
            history_omitted=self.history_omitted,
            settled_invoices=len(self.folded),
            settled_total=self.folded_total,
            payments_forgotten=self.payments_forgotten,
        )

    # ------------------------------------------------------------------ the loop

    @workflow.run
    async def run(self, start: CustomerBillingStart) -> None:
        while True:
            if self._continue_as_new_due():
                self._continue_as_new()
            due = self._next_cutoff()
            timeout = None if due is None else max(due - workflow.now(), timedelta(0))
            with suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: bool(self.inbox) or self._ready() is not None,
                    timeout=timeout,
                    timeout_summary="until the cut-off of a period's consolidated invoice",
                )
            while self.inbox:
                kind, message = self.inbox.pop(0)
                await self._decide(kind, message)
            while (period := self._ready()) is not None:
                await self._issue(period)

    def _record(self, line: str) -> None:
        history = [*self.history, f"{workflow.now():%Y-%m-%d %H:%M:%S} {line}"]
        self.history_omitted += max(len(history) - HISTORY_LINES, 0)
        self.history = history[-HISTORY_LINES:]

    # ------------------------------------------------------------------ continue-as-new

    def _continue_as_new_due(self) -> bool:
        """Whether the history is long enough to hand over, and the workflow is at rest: no
        message waits, no invoice is due, no handler is at work (the loop calls this between
        its steps, so no step or signal to a contract is in flight)."""
        if self._continue_declined or self.inbox or self._ready() is not None:
            return False
        long = history_is_long(self.start.continue_as_new_events)
        return long and workflow.all_handlers_finished()

    def _continue_as_new(self) -> None:
        """Hand the customer's billing over to a new run with everything decided so far."""
        if not workflow.patched(CONTINUE_AS_NEW_PATCH):
            # A run recorded before the patch went on in one run: replay it so.
            self._continue_declined = True
            return
        self._record(
            f"history continued in run {self.run_number + 1} "
            f"({workflow.info().get_current_history_length()} events in run {self.run_number})"
        )
        workflow.continue_as_new(self.start.model_copy(update={"carried": self._carry()}))

    async def _decide(self, kind: str, message: Message) -> None:
        if kind == "join" and isinstance(message, BillingMember):
            if message.contract_id not in self.members:
                self._record(f"contract {message.contract_id} joined")
            self.members[message.contract_id] = message
            self.left.discard(message.contract_id)
        elif kind == "leave" and isinstance(message, BillingMember):
            if message.contract_id not in self.left:
                self._record(f"contract {message.contract_id} left")
            self.left.add(message.contract_id)
        elif isinstance(message, InvoiceSection):
            await self._take_section(message)
        elif isinstance(message, PaymentReceived):
            await self._take_payment(message)
        elif isinstance(message, SectionCredited):
            balances = self._balances()
            self._take_credit(message)
            await self._record_paid(balances, workflow.now().date())

    async def _take_section(self, section: InvoiceSection) -> None:
        sid = section.section_id
        folded = self._folded_with(section)
        if folded is not None:
            # Sent again after its paid invoice folded: answered again with the invoice as it
            # was issued and the section's figures as sent (a contract sends them from its
            # ledger record of the section, the same each time).
            self._record(f"section {sid} sent again: answered again")
            await self._answer(folded, section)
            return
        if sid in self.sections:
            # Sent again (a contract reset, a retried step): the first is kept, and a section
            # already on an invoice is answered again.
            invoice_id = self.placed.get(sid)
            invoice = next((i for i in self.invoices if i.invoice_id == invoice_id), None)
            if invoice is not None:
                self._record(f"section {sid} sent again: answered again")
                await self._answer(invoice, self.sections[sid])
            return
        self.sections[sid] = section
        if section.empty:
            self.placed[sid] = ""
            self._record(f"contract {section.contract_id} bills nothing for {section.period}")
            return
        self.waiting_since.setdefault(section.period, workflow.now())
        self._record(
            f"section {sid} of contract {section.contract_id} for {section.period}: "
            f"{section.total} {self.start.key.currency}"
        )

    # ------------------------------------------------------------------ invoices

    def _expected(self, period: str) -> list[str]:
        """The members that bill ``period`` and have not left."""
        return [
            cid
            for cid, m in self.members.items()
            if cid not in self.left and m.first_period <= period <= m.last_period
        ]

    def _sent(self, contract_id: str, period: str) -> bool:
        return any(
            s.contract_id == contract_id and s.period == period for s in self.sections.values()
        ) or any(
            f.period == period and contract_id in f.contracts(list(self.members))
            for f in self.folded
        )

    def _folded_with(self, section: InvoiceSection) -> FoldedInvoice | None:
        """The folded invoice a section is on, if it is on one."""
        return next(
            (
                f
                for f in self.folded
                if f.period == section.period
                and section.section_id in f.section_ids(list(self.members))
            ),
            None,
        )

    def _next_batch(self, period: str) -> int:
        """The number of the next invoice of ``period``: one more than those made of it."""
        made = [*(i.period for i in self.invoices), *(f.period for f in self.folded)]
        return 1 + made.count(period)

    def _ready(self) -> str | None:
        """The first period whose waiting sections go on an invoice now: every member that
        bills it has sent its section, or its cut-off has passed."""
        now = workflow.now()
        for period, since in sorted(self.waiting_since.items()):
            due = now >= since + timedelta(seconds=self.start.cutoff_s)
            if period in self.refused and workflow.patched(REFUSED_WAITS_PATCH):
                # Refused by the ERP: tried again at its cut-off, not at once and again.
                if due:
                    return period
                continue
            complete = all(self._sent(cid, period) for cid in self._expected(period))
            if complete or due:
                return period
        return None

    def _next_cutoff(self) -> datetime | None:
        cutoff = timedelta(seconds=self.start.cutoff_s)
        return min((since + cutoff for since in self.waiting_since.values()), default=None)

    async def _issue(self, period: str) -> None:
        waiting = sorted(
            (
                s
                for sid, s in self.sections.items()
                if s.period == period and sid not in self.placed
            ),
            key=lambda s: s.contract_id,
        )
        batch = self._next_batch(period)
        reference = consolidated_reference(period, batch)
        try:
            issued: ConsolidatedInvoiceIssued = await workflow.execute_activity(
                ISSUE_CONSOLIDATED_INVOICE,
                ConsolidatedInvoiceInput(
                    contract_id=workflow.info().workflow_id,
                    key=self.start.key,
                    erp_customer_id=self.start.erp_customer_id,
                    reference=reference,
                    period=period,
                    invoice_date=workflow.now().date(),
                    sections=waiting,
                ),
                result_type=ConsolidatedInvoiceIssued,
                task_queue=system_task_queue(workflow.info().task_queue, System.ERP.value),
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=ERP_RETRY,
                summary=f"consolidated invoice {reference}",
            )
        except ActivityError as failed:
            # A business rejection: tried again at the next cut-off, the sections kept.
            self.waiting_since[period] = workflow.now()
            self.refused.add(period)
            workflow.logger.warning(
                f"consolidated invoice {reference} refused by the ERP: tried again at the "
                f"cut-off, in {self.start.cutoff_s:.0f} s",
                extra={"customer_billing": workflow.info().workflow_id},
            )
            self._record(f"consolidated invoice {reference} refused by the ERP: {failed.cause}")
            return
        invoice = ConsolidatedInvoice(
            **issued.model_dump(),
            period=period,
            batch=batch,
            reference=reference,
            sections=[
                SectionShare(section_id=s.section_id, contract_id=s.contract_id, total=s.total)
                for s in waiting
            ],
        )
        invoice = await self._documented(invoice, waiting)
        self.invoices = [*self.invoices, invoice]
        del self.waiting_since[period]
        self.refused.discard(period)
        self._record(
            f"consolidated invoice {issued.number} for {reference}: {len(waiting)} sections, "
            f"{issued.total} {self.start.key.currency}"
        )
        for section in waiting:
            self.placed[section.section_id] = issued.invoice_id
            await self._answer(invoice, section)

    async def _documented(
        self, invoice: ConsolidatedInvoice, sections: list[InvoiceSection]
    ) -> ConsolidatedInvoice:
        """The invoice with its documents rendered, archived and linked in the ERP, before
        its sections are answered (each contract then shows them on its section). Documents
        that cannot be made are recorded, and the invoice goes on without them."""
        if not workflow.patched(PATCH_CONSOLIDATED_DOCUMENTS):
            return invoice
        try:
            rendered: ConsolidatedDocumentsRendered = await workflow.execute_activity(
                RENDER_CONSOLIDATED_INVOICE_DOCUMENTS,
                ConsolidatedDocumentsInput(
                    contract_id=workflow.info().workflow_id,
                    invoice_id=invoice.invoice_id,
                    key=self.start.key,
                    sections=sections,
                ),
                result_type=ConsolidatedDocumentsRendered,
                task_queue=system_task_queue(workflow.info().task_queue, System.ERP.value),
                start_to_close_timeout=STEP_TIMEOUT,
                # Bounded: the sections' answers wait for this step.
                retry_policy=STEP_RETRY,
                summary=f"documents of {invoice.number}",
            )
        except ActivityError as failed:
            self._record(f"documents of {invoice.number} not rendered: {failed.cause}")
            return invoice
        kinds = ", ".join(f"{d.kind} sha256 {d.sha256[:12]}" for d in rendered.documents)
        self._record(f"documents of {invoice.number} archived: {kinds}")
        return invoice.model_copy(update={"documents": rendered.documents})

    async def _answer(
        self, invoice: ConsolidatedInvoice | FoldedInvoice, section: InvoiceSection
    ) -> None:
        """Tell a contract where its section is; a contract that is gone is noted. (A folded
        invoice was paid: a contract that holds its section has its documents already.)"""
        answer = SectionInvoiced(
            section_id=section.section_id,
            period=section.period,
            consolidated_invoice_id=invoice.invoice_id,
            number=invoice.number,
            subtotal=section.subtotal,
            tax=section.tax,
            total=section.total,
            invoice_date=invoice.invoice_date,
            due_on=invoice.due_on,
            customer_billing_id=workflow.info().workflow_id,
            documents={
                d.kind: d.sha256
                for d in (invoice.documents if isinstance(invoice, ConsolidatedInvoice) else [])
            },
        )
        await self._signal(section.contract_id, SIGNAL_SECTION_INVOICED, answer)

    async def _signal(
        self, contract_id: str, name: str, message: SectionInvoiced | PaymentReceived
    ) -> None:
        handle = workflow.get_external_workflow_handle(contract_workflow_id(contract_id))
        try:
            await handle.signal(name, message)
        except Exception as err:  # the contract's workflow is not running
            self._record(f"{name} for contract {contract_id} not delivered: {err}")

    def _take_credit(self, credited: SectionCredited) -> None:
        """A contract credited its section: later payments go to what it still owes."""
        for invoice in self.invoices:
            for share in invoice.sections:
                if share.section_id != credited.section_id:
                    continue
                if credited.credit_note_id not in share.credit_notes:
                    share.credited += credited.total
                    share.credit_notes.append(credited.credit_note_id)
                    self._record(
                        f"credit note {credited.credit_note_id}: {credited.total} off section "
                        f"{share.section_id} of {invoice.number}"
                    )
                return
        self._record(f"credit note {credited.credit_note_id} names no section here: ignored")

    # ------------------------------------------------------------------ payments

    async def _take_payment(self, payment: PaymentReceived) -> None:
        pid = payment.payment_id
        if pid not in self.payments and self.payments_forgotten and await self._recorded(pid):
            self.payments = [*self.payments, pid]
        if pid in self.payments:
            self._record(f"payment {pid} already allocated: ignored")
            return
        named = payment.invoice_id
        invoices = [*self.invoices, *self._revived(named)]
        invoice = next(
            (i for i in invoices if named in (i.invoice_id, i.number)),
            None,
        )
        if invoice is None or payment.currency != self.start.key.currency:
            self.payments = [*self.payments, pid]
            self._record(
                f"payment {pid} of {payment.amount} {payment.currency} names no consolidated "
                f"invoice of this customer in {self.start.key.currency} ({named}): not applied"
            )
            return
        await workflow.execute_activity(
            APPLY_CONSOLIDATED_PAYMENT,
            ConsolidatedPaymentInput(
                contract_id=workflow.info().workflow_id,
                payment=payment,
                invoice_id=invoice.invoice_id,
            ),
            result_type=PaymentApplied,
            task_queue=system_task_queue(workflow.info().task_queue, System.ERP.value),
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=ERP_RETRY,
            summary=f"payment {pid} on {invoice.number}",
        )
        self.payments = [*self.payments, pid]
        balances = self._balances()
        parts = allocate(pid, payment.amount, invoices, invoice.invoice_id)
        for part in parts:
            owner = next(
                i for i in invoices if part.section_id in {s.section_id for s in i.sections}
            )
            for share in owner.sections:
                if share.section_id == part.section_id:
                    share.paid += part.amount
            self._record(
                f"payment {pid}: {part.amount} to section {part.section_id} of {owner.number}"
            )
            await self._signal(
                part.contract_id,
                SIGNAL_PAYMENT_RECEIVED,
                PaymentReceived(
                    payment_id=part.payment_id,
                    invoice_id=part.section_id,
                    amount=part.amount,
                    currency=payment.currency,
                    received_on=payment.received_on,
                    consolidated_invoice_id=owner.invoice_id,
                ),
            )
        await self._record_paid(balances, payment.received_on)

    def _balances(self) -> dict[str, Decimal]:
        """What each invoice's sections still owe, by invoice id."""
        return {i.invoice_id: i.balance for i in self.invoices}

    async def _record_paid(self, before: dict[str, Decimal], paid_on: date) -> None:
        """Record paid each invoice that a payment (or a credit note) has just brought to a
        zero balance, with something paid of it (one wholly credited is not paid)."""
        for invoice in self.invoices:
            settled = before.get(invoice.invoice_id, ZERO) > ZERO >= invoice.balance
            if not settled or not any(s.paid > ZERO for s in invoice.sections):
                continue
            if not workflow.patched(PATCH_CONSOLIDATED_PAID):
                return
            try:
                await workflow.execute_activity(
                    RECORD_CONSOLIDATED_INVOICE_PAID,
                    ConsolidatedInvoicePaidInput(
                        contract_id=workflow.info().workflow_id,
                        key=self.start.key,
                        invoice=invoice,
                        paid_on=paid_on,
                    ),
                    start_to_close_timeout=STEP_TIMEOUT,
                    retry_policy=ERP_RETRY,
                    summary=f"{invoice.number} paid",
                )
            except ActivityError as failed:
                self._record(f"consolidated invoice {invoice.number} paid, not recorded: {failed}")
                continue
            self._record(f"consolidated invoice {invoice.number} paid")

    def _revived(self, named: str | None) -> list[ConsolidatedInvoice]:
        """A folded invoice a payment names, as a paid invoice: the payment is then allocated
        as it would have been before the fold (to what is open, the rest to its first
        section's contract as unapplied cash). It stays folded."""
        return [
            ConsolidatedInvoice(
                invoice_id=f.invoice_id,
                number=f.number,
                invoice_date=f.invoice_date,
                due_on=f.due_on,
                subtotal=ZERO,
                tax=ZERO,
                total=ZERO,
                period=f.period,
                batch=f.batch,
                reference=consolidated_reference(f.period, f.batch),
                sections=[
                    SectionShare(section_id=section_id(cid, f.period), contract_id=cid, total=ZERO)
                    for cid in f.contracts(list(self.members))
                ],
            )
            for f in self.folded
            if named in (f.invoice_id, f.number)
        ]

    async def _recorded(self, payment_id: str) -> bool:
        """Whether an earlier run recorded the payment in the ERP: runs carry only the latest
        payment ids, and the ledger keeps the cross-reference of every payment recorded."""
        known: PaymentKnown = await workflow.execute_local_activity(
            LOOK_UP_CONSOLIDATED_PAYMENT,
            PaymentLookUp(contract_id=workflow.info().workflow_id, payment_id=payment_id),
            result_type=PaymentKnown,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=ERP_RETRY,
            summary=f"look up payment {payment_id}",
        )
        return known.known
