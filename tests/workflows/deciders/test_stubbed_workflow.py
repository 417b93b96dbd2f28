"""``ContractToCash`` on the dev server with its activities stubbed under their step names.

Each stub is an ``@activity.defn(name=STEP)`` registered on the queue the workflow sends that
step to (the system's queue; c2c's ledger writes as local activities on the workflows' own),
so the workflow runs exactly as deployed while the stubs answer and record what they were
asked. The deciders' commands arrive as activities in the order they decided them: a contract
provisioned, billed, paid and closed; a bill an ERP refused, held and retried by an operator.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from domain.errors import BUSINESS_REJECTION
from domain.models import (
    ClosePeriod,
    ContractStatus,
    InvoiceSummary,
    OpenException,
    PaymentReceived,
    ResolveException,
)
from domain.names import ExceptionAction, ExceptionQueue, System, system_task_queue
from domain.steps import (
    ACTIVATE_PSA_PROJECT,
    APPLY_CASH,
    APPLY_PAYMENT,
    BILL_PERIOD,
    CLOSE_CONTRACT,
    CREATE_ERP_CONTRACT,
    CREATE_ERP_PROJECT,
    ENSURE_ERP_CUSTOMER,
    ESCALATE_EXCEPTION,
    ISSUE_CREDIT_NOTE,
    OPEN_EXCEPTION,
    PROPAGATE_AMENDMENT,
    PROVISION_ERP,
    RECORD_ARRIVAL_ORDER,
    RECORD_AUDIT,
    RENDER_INVOICE_DOCUMENTS,
    RESOLVE_EXCEPTION_RECORD,
    SEND_DUNNING_REMINDER,
    STEP_SYSTEM_QUEUE,
    VALIDATE_CONTRACT,
    ApplyPaymentInput,
    ArrivalOrder,
    BillPeriodInput,
    BillPeriodResult,
    ContractStep,
    CreatedRef,
    ErpProvisioned,
    ExceptionOpened,
    InvoiceDocumentsRendered,
    OpenExceptionInput,
    PaymentApplied,
    Validated,
)
from starter.api.contracts import (
    close_period_for,
    contract_result,
    get_status,
    record_payment,
    resolve_exception,
    start_contract,
)
from tests.workflows.helpers import approval
from worker import workflow_runner
from workflows.contract_to_cash import ContractToCash

pytestmark = [pytest.mark.workflow, pytest.mark.usefixtures("temporal_env")]

REFS = {
    ENSURE_ERP_CUSTOMER: CreatedRef(system="erp", kind="customer", external_id="CUS-1"),
    CREATE_ERP_PROJECT: CreatedRef(system="erp", kind="project", external_id="PRJ-1"),
    CREATE_ERP_CONTRACT: CreatedRef(system="erp", kind="contract", external_id="CON-1"),
    ACTIVATE_PSA_PROJECT: CreatedRef(system="psa", kind="project", external_id="PSA-1"),
}


class Stubs:
    """The activities of every step, recording each call: (step, input)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        #: Steps that fail with a business rejection the next time they run.
        self.reject: set[str] = set()

    def steps(self) -> list[str]:
        return [name for name, _ in self.calls]

    def _called(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        if name in self.reject:
            self.reject.discard(name)
            raise ApplicationError(
                f"erp rejected the request: period_locked: {name}",
                {"system": "erp", "code": "period_locked", "message": "the period is locked"},
                type=BUSINESS_REJECTION,
                non_retryable=True,
            )

    def by_queue(self) -> dict[str | None, list[Any]]:
        """Stub activities by system queue (``None``: the workflows' queue, ledger writes)."""

        @activity.defn(name=VALIDATE_CONTRACT)
        async def validate(arg: ContractStep) -> Validated:
            self._called(VALIDATE_CONTRACT, arg)
            return Validated(jurisdiction_code="US-CA", functional_currency="USD")

        @activity.defn(name=PROVISION_ERP)
        async def provision(arg: ContractStep) -> ErpProvisioned:
            self._called(PROVISION_ERP, arg)
            erp = (ENSURE_ERP_CUSTOMER, CREATE_ERP_PROJECT, CREATE_ERP_CONTRACT)
            return ErpProvisioned(created=[REFS[name] for name in erp])

        def creates(name: str) -> Any:
            @activity.defn(name=name)
            async def create(arg: ContractStep) -> CreatedRef:
                self._called(name, arg)
                return REFS[name]

            return create

        @activity.defn(name=BILL_PERIOD)
        async def bill(arg: BillPeriodInput) -> BillPeriodResult:
            self._called(BILL_PERIOD, arg)
            if arg.reference.endswith(":late"):
                return BillPeriodResult()  # no work approved after the period closed
            subtotal = Decimal("1000.00")
            invoice = InvoiceSummary(
                invoice_id=f"INV-{arg.reference}",
                number=f"N-{arg.reference}",
                reference=arg.reference,
                subtotal=subtotal,
                tax=Decimal("100.00"),
                total=Decimal("1100.00"),
                due_on=arg.invoice_date + timedelta(days=arg.payment_terms_days),
            )
            return BillPeriodResult(invoice=invoice, hours=Decimal("5"))

        @activity.defn(name=APPLY_PAYMENT)
        async def apply_payment(arg: ApplyPaymentInput) -> PaymentApplied:
            self._called(APPLY_PAYMENT, arg)
            amount = arg.payment.amount
            return PaymentApplied(
                invoice_id=arg.invoice_id,
                applied=amount,
                unapplied=Decimal(0),
                amount_paid=amount,
                invoice_status="paid",
            )

        def silent(name: str) -> Any:
            @activity.defn(name=name)
            async def step(arg: dict[str, Any]) -> None:
                self._called(name, arg)

            return step

        @activity.defn(name=RESOLVE_EXCEPTION_RECORD)
        async def resolve(arg: dict[str, Any]) -> None:
            self.calls.append((RESOLVE_EXCEPTION_RECORD, arg))

        @activity.defn(name=OPEN_EXCEPTION)
        async def open_exception(arg: OpenExceptionInput) -> ExceptionOpened:
            self._called(OPEN_EXCEPTION, arg)
            return ExceptionOpened(
                exception=OpenException(
                    exception_id=arg.exception_id,
                    stage=arg.stage,
                    system=arg.system,
                    code=arg.code,
                    message=arg.message,
                    queue=ExceptionQueue.FINANCE,
                    opened_at=arg.opened_at,
                    step=arg.step,
                )
            )

        @activity.defn(name=RENDER_INVOICE_DOCUMENTS)
        async def documents(arg: dict[str, Any]) -> InvoiceDocumentsRendered:
            self._called(RENDER_INVOICE_DOCUMENTS, arg)
            return InvoiceDocumentsRendered()

        @activity.defn(name=RECORD_ARRIVAL_ORDER)
        async def arrival_order(arg: ArrivalOrder) -> ArrivalOrder:
            return arg

        @activity.defn(name=RECORD_AUDIT)
        async def audit(arg: dict[str, Any]) -> None:
            return None

        queues: dict[str | None, list[Any]] = {
            None: [
                open_exception,
                arrival_order,
                audit,
                resolve,
                silent(ESCALATE_EXCEPTION),
            ]
        }
        steps = {VALIDATE_CONTRACT: validate, BILL_PERIOD: bill, APPLY_PAYMENT: apply_payment}
        steps[RENDER_INVOICE_DOCUMENTS] = documents
        steps[PROVISION_ERP] = provision
        steps |= {name: creates(name) for name in REFS}
        quiet = [APPLY_CASH, ISSUE_CREDIT_NOTE, SEND_DUNNING_REMINDER, PROPAGATE_AMENDMENT]
        steps |= {name: silent(name) for name in [*quiet, CLOSE_CONTRACT]}
        for name, stub in steps.items():
            queues.setdefault(STEP_SYSTEM_QUEUE[name], []).append(stub)
        return queues


@pytest_asyncio.fixture
async def stubbed(temporal_client: Client) -> AsyncIterator[tuple[Stubs, str]]:
    """Workers for one test on a queue of its own: the workflow and its stubbed steps."""
    stubs, queue = Stubs(), f"c2c-stubs-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        for system, activities in stubs.by_queue().items():
            if system is None:
                worker = Worker(
                    temporal_client,
                    task_queue=queue,
                    workflows=[ContractToCash],
                    activities=activities,
                    workflow_runner=workflow_runner(),
                )
            else:
                worker = Worker(
                    temporal_client,
                    task_queue=system_task_queue(queue, System(system)),
                    activities=activities,
                )
            await stack.enter_async_context(worker)
        yield stubs, queue


async def until(client: Client, cid: str, what: str, check: Any) -> ContractStatus:
    for _ in range(300):
        status = await get_status(client, cid)
        if check(status):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last status: {status}")


async def test_a_contract_runs_its_steps_in_order_on_stubbed_systems(
    temporal_client: Client, stubbed: tuple[Stubs, str]
) -> None:
    stubs, queue = stubbed
    event = approval()
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=queue)
    await until(temporal_client, cid, "active", lambda s: s.stage == "active")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await until(temporal_client, cid, "an invoice", lambda s: bool(s.invoices))
    assert status.invoices[0].invoice_id == "INV-2026-10"
    await record_payment(
        temporal_client,
        cid,
        PaymentReceived(
            payment_id="P1",
            amount=Decimal("1100.00"),
            currency="USD",
            received_on=date(2026, 11, 20),
        ),
    )
    summary = await contract_result(temporal_client, cid)

    assert summary.status.stage == "closed"
    assert stubs.steps() == [
        VALIDATE_CONTRACT,
        PROVISION_ERP,  # the customer, project and contract in one step (from 0.11)
        ACTIVATE_PSA_PROJECT,
        BILL_PERIOD,
        RENDER_INVOICE_DOCUMENTS,
        APPLY_PAYMENT,
        BILL_PERIOD,  # late work swept before closing
        CLOSE_CONTRACT,
    ]
    bill = stubs.calls[3][1]
    assert (bill.reference, bill.time_pricing, bill.refs["erp_contract_id"]) == (
        "2026-10",
        "rate_card",
        "CON-1",
    )
    assert stubs.calls[6][1].reference == "2026-10:late"
    assert summary.status.balance_due == 0


async def test_a_refused_bill_holds_the_contract_until_an_operator_retries(
    temporal_client: Client, stubbed: tuple[Stubs, str]
) -> None:
    stubs, queue = stubbed
    stubs.reject.add(BILL_PERIOD)
    event = approval()
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=queue)
    await until(temporal_client, cid, "active", lambda s: s.stage == "active")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await until(temporal_client, cid, "on hold", lambda s: s.stage == "on_hold")
    (held,) = status.open_exceptions
    assert (held.step, held.system, held.code) == (BILL_PERIOD, "erp", "period_locked")

    status = await resolve_exception(
        temporal_client,
        cid,
        ResolveException(
            exception_id=held.exception_id, action=ExceptionAction.RETRY, operator="ops"
        ),
    )
    assert status.stage == "active" and status.open_exceptions == []
    assert [i.invoice_id for i in status.invoices] == ["INV-2026-10"]
    assert stubs.steps().count(BILL_PERIOD) == 2
    assert stubs.steps().index(OPEN_EXCEPTION) < stubs.steps().index(RESOLVE_EXCEPTION_RECORD)
