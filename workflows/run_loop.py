"""The run loop: the contract's stages, its one ordered inbox, and continue-as-new.

``RunLoop`` takes the contract through its stages (validating, provisioning the ERP,
activating the PSA, active, closing, closed; cancelled when an operator aborts). While it is
active it does one thing at a time: an SLA escalation, the next message from the inbox (in the
order it arrived, kept in history when signals and updates arrived in one task), or the work
the calendar asks for (dunning, the final bill of a termination, a retainer's true-up, the last
steps before closing); with nothing to do it sleeps on a durable timer until the next due date.
It decides amendments, terminations and unreadable messages itself and hands period closes,
milestones, payments, credits and the calendar's work to the deciders (``decide`` executes the
commands a decider yields, in order, and sends each result back), and it continues as new at a
quiet moment.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.amendments import Terms, apply_amendment, only_invoicing_details
    from domain.carried import ContractRun, Message
    from domain.contract_state import FINISHED, ContractState
    from domain.models import (
        Amendment,
        AmendmentResult,
        ClosePeriod,
        CreditInvoice,
        MalformedMessage,
        MilestoneCompleted,
        PaymentReceived,
        ResolveException,
        ReviewInvoice,
        SectionInvoiced,
        TerminateContract,
    )
    from domain.names import SA_CONTRACT_VALUE, Stage
    from domain.periods import Period
    from domain.steps import (
        ACTIVATE_PSA_PROJECT,
        CLOSE_CONTRACT,
        CREATE_ERP_CONTRACT,
        CREATE_ERP_PROJECT,
        ENSURE_ERP_CUSTOMER,
        LATE_MESSAGE_STEP,
        PROPAGATE_AMENDMENT,
        PROVISION_ERP,
        RECORD_ARRIVAL_ORDER,
        RENDER_INVOICE_DOCUMENTS,
        VALIDATE_CONTRACT,
        AmendmentInput,
        AmendmentPropagated,
        ArrivalOrder,
        CloseContractInput,
        ContractStep,
        CreatedRef,
        ErpProvisioned,
        InvoiceDocumentsInput,
        InvoiceDocumentsRendered,
        Validated,
    )
    from workflows import billing, collections, consolidation
    from workflows.collections import CASH_STEP
    from workflows.commands import (
        CloseException,
        Command,
        Decision,
        Hold,
        OpenException,
        Patched,
        ReadLedger,
        Record,
        RunStep,
    )
    from workflows.execution import Aborted
    from workflows.history_length import history_is_long
    from workflows.holds import INBOX_STEP, Holds, Refused
    from workflows.releases import ERP_ONBOARDING_ONE_STEP, NEW_IN_RELEASE
    from workflows.state import Inbound

T = TypeVar("T")


def purchase_order(s: Any) -> tuple[str | None, str | None]:
    """The customer's purchase order number and bill-to contact, from the terms as amended
    or the contract as approved, where they carry them (neither is required)."""
    po_number, bill_to = None, None
    for source in (s.terms, s.contract):
        po_number = po_number or getattr(source, "po_number", None)
        bill_to = bill_to or getattr(source, "bill_to", None)
    return (str(po_number) if po_number else None), _contact(bill_to)


def _note_documents(s: ContractState, document_id: str, documents: dict[str, str]) -> None:
    """Show an invoice's or credit note's archived documents on it, in the status."""
    col = s.collections
    col.invoices = [
        i.model_copy(update={"documents": documents}) if i.invoice_id == document_id else i
        for i in col.invoices
    ]
    col.credit_notes = [
        n.model_copy(update={"documents": documents}) if n.credit_note_id == document_id else n
        for n in col.credit_notes
    ]


def _contact(value: Any) -> str | None:
    """A bill-to contact as one line: its text, or its parts (name, e-mail...) joined."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    parts = value.model_dump() if hasattr(value, "model_dump") else value
    if isinstance(parts, dict):
        text = ", ".join(str(v) for v in parts.values() if isinstance(v, str | int) and v != "")
        return text or None
    return str(value)


#: Marks runs that may continue as new: a contract whose history was recorded by a worker
#: without it replays without ever continuing at that point.
PATCH_CONTINUE_AS_NEW = "continue-as-new"
#: Patches the deciders ask for (``Patched``) at points a message's timing decides: answered
#: by one patch the run asks at its start (``contract_to_cash.PATCH_MID_RUN_DECISIONS``), never
#: by a marker recorded mid-run.
MID_RUN_PATCHES = frozenset({billing.PATCH_RATABLE_RELEASE, billing.PATCH_CLOSE_TIME_ENTRY})


#: Marks runs that render each issued invoice's and credit note's documents (a step after
#: the decision that issued it). Asked at the run's start, like the deciders' patches: a run
#: recorded before it renders none.
PATCH_INVOICE_DOCUMENTS = "invoice-documents"


def _sent(inbound: Inbound) -> int:
    assert inbound.sent is not None
    return inbound.sent


class RunLoop(Holds):
    """The contract's stages, its inbox and its main loop."""

    #: The mid-run patches this run takes (all, or none for a run recorded before them).
    _mid_run_patches: frozenset[str] = frozenset()
    #: Whether this run renders invoice documents (``PATCH_INVOICE_DOCUMENTS``).
    _renders_documents: bool = False

    # ------------------------------------------------------------------ the deciders

    async def decide(self, decision: Decision[T]) -> T:
        """Run a decider to its end (``_decide``), then render the documents of the invoices
        and credit notes it issued."""
        value = await self._decide(decision)
        await self._render_documents()
        return value

    async def _decide(self, decision: Decision[T]) -> T:
        """Run a decider to its end: execute each command it yields, in order, and send the
        result back (see ``workflows.commands``)."""
        reply: Any = None
        try:
            while True:
                try:
                    command = decision.send(reply)
                except StopIteration as done:
                    value: T = done.value
                    return value
                reply = await self._execute_command(command)
        finally:
            decision.close()

    async def _execute_command(self, command: Command) -> Any:
        if isinstance(command, RunStep):
            return await self.step(
                command.name, command.arg, command.result_type, summary=command.summary
            )
        if isinstance(command, ReadLedger):
            return await self._ledger(
                command.name, command.arg, command.result_type, command.summary
            )
        if isinstance(command, Record):
            self.record(command.event)
            return None
        if isinstance(command, Hold):
            decision = await self.hold_for_decision(
                command.step,
                command.system,
                command.code,
                command.message,
                subject=command.subject,
                draft_id=command.draft_id,
            )
            return decision if command.decision else decision.action
        if isinstance(command, OpenException):
            return await self.open_exception(
                command.step,
                command.system,
                command.code,
                command.message,
                blocking=False,
                subject=command.subject,
            )
        if isinstance(command, CloseException):
            return await self.close_exception(command.exception_id, default=command.default)
        if isinstance(command, Patched):
            if command.patch_id in MID_RUN_PATCHES:
                return command.patch_id in self._mid_run_patches
            if command.patch_id in NEW_IN_RELEASE:
                return self.feature(command.patch_id)
            if command.deprecated:
                workflow.deprecate_patch(command.patch_id)
                return True
            return workflow.patched(command.patch_id)
        self.changed()
        return None

    async def _render_documents(self) -> None:
        """Render, archive and link the documents of every invoice and credit note this run
        holds that has none yet, in the order they were issued. Skipped by an operator, an
        invoice stays without documents (the API answers 404 for them)."""
        if not self._renders_documents:
            return
        s, col = self.s, self.s.collections
        c = s.contract
        held: list[tuple[str, str, str | None]] = [
            ("invoice", i.invoice_id, None) for i in col.invoices
        ]
        # A section's document is its customer's consolidated invoice's, and a credit note on
        # a section credits that invoice in the ERP.
        sections = {
            i.invoice_id: i.consolidated_invoice_id
            for i in col.invoices
            if i.consolidated_invoice_id
        }
        held += [
            ("credit_note", n.credit_note_id, sections.get(n.invoice_id, n.invoice_id))
            for n in col.credit_notes
        ]
        po_number, bill_to = purchase_order(s)
        for document_type, document_id, invoice_id in held:
            what = f"{document_type.replace('_', ' ')} {document_id}"
            if document_id in col.documented or document_id in sections:
                continue
            rendered = await self.step(
                RENDER_INVOICE_DOCUMENTS,
                InvoiceDocumentsInput(
                    contract_id=c.contract_id,
                    document_type="invoice" if document_type == "invoice" else "credit_note",
                    document_id=document_id,
                    invoice_id=invoice_id,
                    title=c.title,
                    legal_entity=c.legal_entity,
                    customer=c.customer,
                    customer_tax_id=s.validated.customer_tax_id if s.validated else None,
                    po_number=po_number,
                    bill_to=bill_to,
                    refs=s.refs,
                ),
                InvoiceDocumentsRendered,
                summary=f"documents of {what}",
            )
            col.documented.append(document_id)
            if rendered is not None:
                _note_documents(s, document_id, rendered.documents)
                kinds = ", ".join(
                    f"{kind} sha256 {sha[:12]}" for kind, sha in rendered.documents.items()
                )
                self.record(f"documents of {what} archived: {kinds}")
        # Only what the run still holds: folded invoices are gone for good.
        ids = {doc_id for _, doc_id, _ in held}
        col.documented = [d for d in col.documented if d in ids]

    # ------------------------------------------------------------------ the stages

    async def _validate(self) -> None:
        self._enter(Stage.VALIDATING, "validating customer, legal entity, tax address, rate card")

        # As amended so far: a purchase order amended in while validation waits is checked.
        def contract() -> ContractStep:
            step = self._contract_step()
            return step.model_copy(update={"contract": self.s.amended_contract()})

        self.s.validated = await self.step(VALIDATE_CONTRACT, contract(), Validated, again=contract)
        if self.s.validated:
            self.record(f"validated: tax jurisdiction {self.s.validated.jurisdiction_code}")

    async def _provision_erp(self) -> None:
        self._enter(Stage.PROVISIONING_ERP, "creating ERP customer, project and contract")
        if self.feature(ERP_ONBOARDING_ONE_STEP):
            done = await self.step(PROVISION_ERP, self._contract_step(), ErpProvisioned)
            for ref in done.created if done is not None else []:
                self._created(ref)
            return
        for step in (ENSURE_ERP_CUSTOMER, CREATE_ERP_PROJECT, CREATE_ERP_CONTRACT):
            await self._create(step)

    async def _activate_psa(self) -> None:
        # Only now: the PSA project links to an ERP customer and project that are confirmed.
        self._enter(Stage.ACTIVATING_PSA, "creating and activating the PSA project")
        await self._create(ACTIVATE_PSA_PROJECT)

    async def _create(self, step: str) -> None:
        ref = await self.step(step, self._contract_step(), CreatedRef)
        if ref is not None:
            self._created(ref)

    def _created(self, ref: CreatedRef) -> None:
        self.s.refs[ref.ref_name] = ref.external_id
        self.record(f"{ref.system} {ref.kind} {ref.external_id} ready")

    async def _run_active(self) -> None:
        while True:
            if self._continue_as_new_due():
                self._continue_as_new()
            await self._flush_audit()
            await self._wait_for_work()
            if self._continue_as_new_due():
                continue
            async with self._lock:
                if self.s.abort_reason is not None:
                    raise Aborted(self.s.abort_reason)
                if self._sla_due():
                    await self._escalate_due()
                elif self._inbox and not (self.s.ordered and self._work_due_now()):
                    await self._keep_arrival_order()
                    await self._handle(self._inbox.pop(0))
                elif collections.work_due(self.s, workflow.now()):
                    await self.decide(collections.do_due_work(self.s, workflow.now))
                elif self._final_billing_due():
                    # A terminated contract bills its last period itself once the termination
                    # has taken effect, so nothing worked up to that date goes unbilled.
                    await self.decide(billing.bill_period(self.s, workflow.now, self.final_period))
                elif billing.true_up_due(self.s, workflow.now()):
                    await self.decide(billing.true_up(self.s, workflow.now))
                elif self._ready_to_close():
                    if self.s.billing.swept and not await self._report_unapplied_cash():
                        return
                    await self.decide(billing.sweep_late_work(self.s, workflow.now))

    async def _close(self) -> None:
        self._enter(Stage.CLOSING, "delivered, billed and paid: closing projects")
        async with self._lock:
            await self.decide(consolidation.leave(self.s, workflow.now))
            await self.step(
                CLOSE_CONTRACT,
                CloseContractInput(contract_id=self.c.contract_id, refs=self.s.refs),
                None,
            )
        self._enter(Stage.CLOSED, "contract closed")
        await self._flush_audit()

    async def _compensate(self) -> None:
        """Undo the contract's effects, newest first: unpaid invoices are credited in full
        (an issued invoice is never deleted), then the PSA project is closed to time entry and
        the ERP project closed. Paid invoices and recognised revenue stay as they are."""
        async with self._lock:
            await self.decide(
                collections.void_unpaid(self.s, workflow.now, "contract aborted by operator")
            )
            if (
                self.s.refs.get("psa_project_id")
                or self.s.refs.get("erp_project_id")
                or self._erp_provisioning_unfinished()
            ):
                await self.step(
                    CLOSE_CONTRACT,
                    CloseContractInput(contract_id=self.c.contract_id, refs=self.s.refs),
                    None,
                    summary="compensate: close the PSA and ERP projects",
                )
                self.record("PSA and ERP projects closed")

    def _erp_provisioning_unfinished(self) -> bool:
        """Whether the one ERP provisioning step may have made a project the run does not
        know: it failed for good after validation (the ledger knows what it made)."""
        return (
            self.s.validated is not None
            and "erp_contract_id" not in self.s.refs
            and self.feature(ERP_ONBOARDING_ONE_STEP)
        )

    async def _handle(self, inbound: Inbound) -> None:
        message = inbound.message
        if isinstance(message, Amendment):
            self._answer(inbound, await self._decide_amendment(message))
        elif isinstance(message, ResolveException):
            try:
                self._decide_resolution(message)
            except Refused as refused:
                self._answer(inbound, refused)
            else:
                if inbound.key is not None:
                    self._unsettled.append(inbound.key)
            await self._close_notices()
        elif isinstance(message, ReviewInvoice):
            refusal = billing.review_refusal(self.s, message)
            if refusal is not None:
                self._answer(inbound, Refused(refusal))
                return
            billing.review(self.s, message)
            if inbound.key is not None:
                self._unsettled.append(inbound.key)
        elif isinstance(message, TerminateContract):
            self._decide_termination(message)
            if self.s.terminate is message:
                await self.decide(billing.close_time_entry(self.s, workflow.now))
        elif isinstance(message, MalformedMessage):
            await self._decide_malformed(message)
        elif isinstance(message, ClosePeriod):
            period, request = Period.parse(message.period), message if self.s.ordered else None
            await self.decide(billing.bill_period(self.s, workflow.now, period, request))
        elif isinstance(message, PaymentReceived):
            await self.decide(collections.receive(self.s, workflow.now, message))
        elif isinstance(message, CreditInvoice):
            await self.decide(collections.credit(self.s, workflow.now, message))
        elif isinstance(message, SectionInvoiced):
            await self.decide(consolidation.section_invoiced(self.s, workflow.now, message))
        else:
            await self.decide(billing.milestone_completed(self.s, workflow.now, message))

    async def _decide_late_messages(self) -> None:
        """As the contract ends, decide every message still in its inbox, in order, and any
        that comes while it does: none is lost in silence. Each is refused with the reason (a
        line in the status and the audit trail); an amendment is answered ``rejected``; a new
        payment becomes a ``finance`` exception, since the money reached the customer's
        account but no invoice of this contract will take it."""
        while True:
            # Operator decisions taken before the end are answered first: their updates are
            # among the handlers the run waits for.
            self._settle()
            # Nothing to wait for between the last look and the end: a message that comes
            # while the run completes makes Temporal run this task again, with it.
            if not self._inbox:
                if workflow.all_handlers_finished():
                    return
                await workflow.wait_condition(
                    lambda: bool(self._inbox) or workflow.all_handlers_finished()
                )
                continue
            async with self._lock:
                await self._keep_arrival_order()
                await self._decide_late(self._inbox.pop(0))
            await self._flush_audit()

    async def _decide_late(self, inbound: Inbound) -> None:
        message, stage = inbound.message, self.s.stage.value
        reason = f"the contract is {stage}"
        if isinstance(message, Amendment):
            aid = message.amendment_id
            if aid not in self.s.amendments:
                self.s.amendments[aid] = AmendmentResult(
                    amendment_id=aid, status="rejected", reason=reason, at=workflow.now()
                )
                self.record(f"amendment {aid} rejected: {reason}")
            self._answer(inbound, self.s.amendments[aid])
        elif isinstance(message, PaymentReceived):
            await self._decide_late_payment(message, reason)
        elif isinstance(message, ResolveException):
            self.record(f"decision {message.action} on {message.exception_id} refused: {reason}")
            self._answer(inbound, Refused(reason))
        elif isinstance(message, ClosePeriod):
            self.record(f"close of {message.period} refused: {reason}")
        elif isinstance(message, MilestoneCompleted):
            self.record(f"milestone {message.milestone_id} completion refused: {reason}")
        elif isinstance(message, CreditInvoice):
            self.record(
                f"credit of {message.amount} on {message.invoice_id} refused: {reason}; "
                "issue the credit note in the ERP"
            )
        elif isinstance(message, TerminateContract):
            self.record(f"termination effective {message.effective_date} refused: {reason}")
        elif isinstance(message, ReviewInvoice):
            self.record(f"{message.decision} of draft {message.invoice_id} refused: {reason}")
            self._answer(inbound, Refused(reason))
        elif isinstance(message, SectionInvoiced):
            self.record(f"section {message.section_id} on {message.number} refused: {reason}")
        else:
            self.record(f"{message.name} signal refused: {reason} (and it could not be read)")

    async def _decide_late_payment(self, payment: PaymentReceived, reason: str) -> None:
        pid, ccy = payment.payment_id, payment.currency
        seen = self.s.collections.payments_seen
        if pid in seen:
            self.record(f"payment {pid} received again after the contract ended: already taken")
            return
        seen.append(pid)
        self.record(
            f"payment {pid} of {payment.amount} {ccy} refused: {reason}; reported to finance"
        )
        invoice = f" for {payment.invoice_id}" if payment.invoice_id else ""
        await self.open_exception(
            LATE_MESSAGE_STEP,
            "c2c",
            "payment_after_close",
            f"payment {pid} of {payment.amount} {ccy} received on {payment.received_on}"
            f"{invoice} came after the contract ended ({reason}): c2c neither applied it nor "
            "recorded it in the ERP. Apply it to another of the customer's invoices or refund "
            "it in the ERP, then skip to close this exception",
            blocking=False,
            subject=pid,
        )

    def _refuse_waiting(self) -> None:
        """At the end of the contract, answer the updates still waiting their turn."""
        for inbound in self._inbox:
            self._answer(inbound, Refused(f"the contract is {self.s.stage.value}"))

    def _answer(self, inbound: Inbound, answer: Any) -> None:
        if inbound.key is not None:
            self._answers[inbound.key] = answer

    def _settle(self) -> None:
        """Answer the operator decisions taken since the contract last came to rest: a retry
        answers with what the retried step did, not with a stage it leaves a moment later."""
        if self._unsettled:
            status = self._status()
            for key in self._unsettled:
                self._answers[key] = status
            self._unsettled.clear()

    def _decidable_on_hold(self, message: Message) -> bool:
        """Whether a message is decided while the contract waits for an operator: decisions,
        terminations and unreadable messages always; amendments (often the fix the hold waits
        for) once the contract exists in the ERP and the PSA. Period closes, payments,
        milestones and credits wait until the hold is over."""
        if isinstance(message, Amendment):
            # An amendment of the purchase order or bill-to alone touches no system: it is
            # decided at once, and may be the fix a hold at validation waits for.
            return self.s.provisioned or self.s.stage in FINISHED or only_invoicing_details(message)
        return isinstance(
            message, ResolveException | ReviewInvoice | TerminateContract | MalformedMessage
        )

    def _next_on_hold(self) -> int | None:
        decidable = (self._decidable_on_hold(inbound.message) for inbound in self._inbox)
        return next((i for i, yes in enumerate(decidable) if yes), None)

    def _decide_termination(self, request: TerminateContract) -> None:
        if self.s.terminate is not None:
            self.record(
                f"termination effective {request.effective_date} ignored: the contract is "
                f"already terminated effective {self.s.terminate.effective_date}"
            )
            return
        self.s.terminate = request
        self.changed()
        self.record(
            f"termination requested, effective {request.effective_date}: {request.reason}; "
            f"billing ends {self.end_date}"
        )

    async def _report_unapplied_cash(self) -> bool:
        """Before a contract closes, the customer's money it still holds goes to finance, once:
        an exception with the amount, which finance closes when it has refunded it. Whether
        one was opened now (the contract then waits for it)."""
        unapplied = self.s.collections.book.unapplied
        subject = "unapplied at close"
        if not self.s.ordered or unapplied <= 0:
            return False
        if self.s.exception_counts.get(f"{CASH_STEP}:{subject}"):
            return False
        ccy = self.c.currency
        self.record(f"{unapplied} {ccy} of unapplied cash held at closing: reported to finance")
        await self.open_exception(
            CASH_STEP,
            "c2c",
            "unapplied_cash_at_close",
            f"the contract is billed and paid but holds {unapplied} {ccy} of the customer's "
            "cash that no invoice takes: refund it (or apply it elsewhere) in the ERP, then "
            "skip to close this exception and let the contract close",
            blocking=False,
            subject=subject,
        )
        return True

    async def _decide_malformed(self, message: MalformedMessage) -> None:
        """A signal that could not be read: a line in the status and an exception for the
        integration team, who can find the sender; nothing else changes."""
        self.record(f"{message.name} signal refused: {message.reason}")
        await self.open_exception(
            INBOX_STEP,
            "c2c",
            "malformed_message",
            f"a {message.name} signal could not be read and was not applied: {message.reason}. "
            f"Input: {message.excerpt or '(empty)'}. Ask the sender to send it again, "
            "corrected; skip or retry closes this exception",
            blocking=False,
            subject=message.name,
        )

    def _final_billing_due(self) -> bool:
        return billing.final_billing_due(self.s, workflow.now())

    def _ready_to_close(self) -> bool:
        return (
            self.ended()
            and str(self.final_period) in self.s.billing.closed_periods
            and not self.s.billing.sections
            and self.s.collections.book.balance_due <= 0
            and not self.s.open
        )

    def _work_due_now(self) -> bool:
        """Whether what the calendar asks for now (a reminder, the final bill of a termination,
        a retainer's true-up, the last steps before closing) is due. It goes before the next
        message: what a message decides takes effect before the next one is decided, live or
        after a reset."""
        return (
            collections.work_due(self.s, workflow.now())
            or self._final_billing_due()
            or billing.true_up_due(self.s, workflow.now())
            or self._ready_to_close()
        )

    def _has_work(self) -> bool:
        return (
            bool(self._inbox)
            or self.s.abort_reason is not None
            or bool(self._sla_due())
            or collections.work_due(self.s, workflow.now())
            or self._final_billing_due()
            or billing.true_up_due(self.s, workflow.now())
            or self._ready_to_close()
        )

    async def _wait_for_work(self) -> None:
        self._settle()
        while not self._has_work() and not self._continue_as_new_due():
            self._wait_for(self._describe_wait())
            now = workflow.now()
            events = [self._end_instant(), collections.next_wake(self.s), self._next_sla()]
            upcoming = [at for at in events if at is not None and at > now]
            changes = self._changes

            def moved(changes: int = changes) -> bool:
                return self._has_work() or self._changes != changes or self._continue_as_new_due()

            # A durable timer to the next calendar event (a due date, a dunning reminder, the
            # end date): the contract moves on without any message.
            with suppress(TimeoutError):
                await workflow.wait_condition(
                    moved,
                    timeout=min(upcoming) - now if upcoming else None,
                    timeout_summary=(
                        f"until {min(upcoming):%Y-%m-%d %H:%M} UTC, the next due date, reminder, "
                        "SLA or end date"
                        if upcoming
                        else None
                    ),
                )
        self._wait_for("")

    def _describe_wait(self) -> str:
        if not self.ended():
            return f"period closes, payments and milestones until the end date {self.end_date}"
        last = str(self.final_period)
        if last not in self.s.billing.closed_periods:
            return f"close of the final period {last}"
        if self.s.open:
            return "resolution of the open exceptions"
        if self.s.billing.sections:
            return "the customer's consolidated invoice of " + ", ".join(self.s.billing.sections)
        return f"payment of the balance due {self.s.collections.book.balance_due} {self.c.currency}"

    # ------------------------------------------------------------------ continue-as-new

    def _continue_as_new_due(self) -> bool:
        """Whether this run's history is long enough to hand over, and now is a safe moment.

        Safe means no step is running (the lock is free) and no signal or update handler is
        still at work: the next run starts from the state alone, so nothing may be half done.
        Messages waiting in the inbox are not half done: they are carried over.
        """
        if self._continue_declined or self._lock.locked():
            return False
        threshold = (
            self.s.validated.continue_as_new_events if self.s.validated is not None else None
        )
        return history_is_long(threshold) and workflow.all_handlers_finished()

    def _continue_as_new(self) -> None:
        """Hand the contract over to a new run with everything decided so far."""
        if not self.feature(PATCH_CONTINUE_AS_NEW):
            self._continue_declined = True
            return
        self.record(
            f"history continued in run {self.s.run + 1} "
            f"({workflow.info().get_current_history_length()} events in run {self.s.run})"
        )
        workflow.continue_as_new(
            ContractRun(**self.c.model_dump(), carried=self._carry()),
            search_attributes=workflow.info().typed_search_attributes,
        )

    # ------------------------------------------------------------------ amendments

    def _amendment_refusal(self, amendment: Amendment) -> str | None:
        return billing.amendment_refusal(self.s, amendment)

    async def _amend(self, amendment: Amendment) -> AmendmentResult:
        """An amendment as runs recorded before the ordered inbox decide it: as it arrives,
        once the contract is set up, between the main loop's steps."""
        # Before the ERP contract and PSA project exist there is nothing to amend in them.
        await workflow.wait_condition(lambda: self.s.provisioned or self.s.stage in FINISHED)
        async with self._lock:
            return await self._decide_amendment(amendment)

    async def _decide_amendment(self, amendment: Amendment) -> AmendmentResult:
        """Apply an amendment to the terms and every system, or refuse it with the reason.

        A repeated amendment id gets the first answer, whatever it says now.
        """
        aid = amendment.amendment_id
        if aid in self.s.amendments:
            return self.s.amendments[aid]
        reason = self._amendment_refusal(amendment)
        if reason is not None:
            result = AmendmentResult(
                amendment_id=aid, status="rejected", reason=reason, at=workflow.now()
            )
            self.s.amendments[aid] = result
            self.record(f"amendment {aid} rejected: {reason}")
            return result
        amended = apply_amendment(self.terms, amendment)
        contract = self.s.amended_contract(amended)
        if only_invoicing_details(amendment):
            return self._applied(aid, amendment, amended, ["ledger"])
        propagated = await self.step(
            PROPAGATE_AMENDMENT,
            AmendmentInput(
                contract_id=self.c.contract_id,
                amendment=amendment,
                contract=contract,
                rates=amended.rates,
                refs=self.s.refs,
            ),
            AmendmentPropagated,
            summary=f"amendment {aid}",
            abort_ends_contract=False,
        )
        if propagated is None and self.s.abort_reason is not None:
            result = AmendmentResult(
                amendment_id=aid,
                status="rejected",
                reason="the contract was aborted",
                at=workflow.now(),
            )
            self.s.amendments[aid] = result
            return result
        systems = propagated.propagated_to if propagated else ["ledger"]
        return self._applied(aid, amendment, amended, systems)

    def _applied(
        self, aid: str, amendment: Amendment, amended: Terms, systems: list[str]
    ) -> AmendmentResult:
        self.s.terms = amended
        contract = self.s.amended_contract(amended)
        result = AmendmentResult(
            amendment_id=aid, status="applied", propagated_to=systems, at=workflow.now()
        )
        self.s.amendments[aid] = result
        workflow.upsert_search_attributes(
            [SA_CONTRACT_VALUE.value_set(float(contract.contract_value))]
        )
        self.record(
            f"amendment {aid} applied from {amendment.effective_date} "
            f"({amendment.reason}); reached {', '.join(systems)}"
        )
        self.changed()
        return result

    # ------------------------------------------------------------------ the inbox

    # Every handler puts its message in the one inbox before its first ``await``: handlers
    # start in the order Temporal delivers the messages, so the inbox keeps that order, in a
    # live run and in a run that a reset fed every message at once.

    def _enqueue(
        self, message: Message, *, update: bool = False, sent: int | None = None
    ) -> int | None:
        task = workflow.info().get_current_history_length()
        if task != self._arrival_task:
            self._arrival_task, self._arrival_kinds, self._arrival_signals = task, set(), 0
        self._arrival_kinds.add(update)
        if len(self._arrival_kinds) == 2:
            self._mixed_tasks.add(task)
        key = None
        if update:
            self._arrivals += 1
            key = self._arrivals
            update_info = workflow.current_update_info()
            assert update_info is not None  # an update handler is running
            arrival = f"u:{update_info.id}"
        else:
            self._arrival_signals += 1
            arrival = f"s:{task}:{self._arrival_signals}"
        self._inbox.append(Inbound(message, key, task, arrival, sent))
        return key

    async def _keep_arrival_order(self) -> None:
        """Decide messages that arrived in one workflow task in the order they were sent.

        Signals keep their order among themselves in every replay, and so do updates; but an
        update redelivered by a reset comes, in a replay, after the signals it arrived with,
        while the live run may have received it in its place. So when one task brings both,
        they are put in the order their senders stamped on them (``PATCH_SENDER_ORDER``),
        which a reset delivers again with them. When one of them carries no stamp (or in runs
        recorded before), the order the run first saw is recorded in history (a local
        activity's result) and every replay takes it from there; a worker that replays every
        task (no cache) may first see the replay order.
        """
        for task in sorted(self._mixed_tasks):
            places = [i for i, inbound in enumerate(self._inbox) if inbound.task == task]
            group = [self._inbox[i] for i in places]
            if self._sender_order and all(inbound.sent is not None for inbound in group):
                for place, inbound in zip(places, sorted(group, key=_sent), strict=True):
                    self._inbox[place] = inbound
                continue
            recorded = await self._ledger(
                RECORD_ARRIVAL_ORDER,
                ArrivalOrder(contract_id=self.c.contract_id, arrivals=[i.arrival for i in group]),
                ArrivalOrder,
                f"keep the order of {len(group)} messages that arrived together",
            )
            rank = {arrival: n for n, arrival in enumerate(recorded.arrivals)}
            for place, inbound in zip(
                places, sorted(group, key=lambda i: rank[i.arrival]), strict=True
            ):
                self._inbox[place] = inbound
        self._mixed_tasks.clear()

    async def _answer_of(self, key: int | None) -> Any:
        """Wait for the decision of an update's message, in its turn."""
        assert key is not None
        await workflow.wait_condition(lambda: key in self._answers)
        answer = self._answers.pop(key)
        if isinstance(answer, Refused):
            # A business refusal, decided in turn: the operator reads the reason alone.
            raise ApplicationError(str(answer), type="Refused", non_retryable=True)
        return answer
