"""Record the committed histories that ``tests/workflows/test_replay_histories.py`` replays.

Run by hand from the repository root, only when a recording is due (see README.md)::

    /tmp/venv/bin/python -m tests.histories.record [NAME ...]

With names (``continued_as_new``), only those contracts are recorded (``customer_billing``:
the customer billing workflow's history, under ``customer_billing/``;
``customer_billing_continued``: the runs of one that continued as new). It starts its own
Temporal dev server, sandbox, ledger and worker in a temporary directory, drives one
representative contract per file to a resting or final state, and writes each workflow's
history to ``tests/histories/<name>.json`` (``<name>_run<n>.json`` for each run of a contract
that continued as new).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from c2c.logs import configure_logging
from c2c.settings import Settings
from domain.consolidation import CustomerBillingKey, customer_billing_workflow_id
from domain.models import (
    Amendment,
    ClosePeriod,
    ContractStatus,
    MilestoneCompleted,
    PaymentReceived,
    ResolveException,
    TerminateContract,
)
from domain.names import SEARCH_ATTRIBUTES, ExceptionAction, contract_workflow_id
from domain.periods import Period
from ledger import get_ledger
from sandbox.testing import run_sandbox_in_thread
from starter.api.contracts import (
    close_period_for,
    complete_milestone,
    contract_handle,
    customer_billing_status,
    record_customer_payment,
    resolve_exception,
    start_contract,
    terminate_contract,
)
from starter.api.updates import amend
from tests.support import venv_binary
from tests.workflows.billing_helpers import pay, wait_invoices
from tests.workflows.helpers import add_time, approval, wait_for, wait_stage
from tests.workflows.reset_helpers import completed_tasks, reset_with_client
from worker import contract_worker

HERE = Path(__file__).resolve().parent
TASK_QUEUE = "c2c-record-histories"
#: The queue of the contract that continues as new: its worker hands over after few events.
SHORT_QUEUE = "c2c-record-histories-short"


class Recorder:
    """The steps the recorded contracts share; contract and event ids are fixed, so that two
    recordings of the same contract can be compared."""

    def __init__(self, client: Client, sandbox: httpx.AsyncClient) -> None:
        self.client = client
        self.sandbox = sandbox

    async def start(self, cid: str, *, queue: str = TASK_QUEUE, **changes: Any) -> ContractStatus:
        event = approval(contract_id=cid, event_id=f"evt-{cid}", **changes)
        await start_contract(self.client, event, task_queue=queue)
        return await wait_stage(self.client, cid, "active")

    async def time(self, status: ContractStatus, work_date: str, hours: str) -> None:
        psa = status.refs["psa_project_id"]
        await add_time(self.sandbox, psa, "Senior Consultant", work_date, hours)

    async def close(self, cid: str, period: str) -> None:
        await close_period_for(self.client, cid, ClosePeriod(period=period))

    async def hold_on_the_cap(self, cid: str, **changes: Any) -> ContractStatus:
        """A cap of 500.00 against 8 h at 200.00: 500.00 invoiced, the rest held for delivery."""
        status = await self.start(cid, not_to_exceed="500.00", **changes)
        await self.time(status, "2026-10-05", "8")
        await self.close(cid, "2026-10")
        held = await wait_stage(self.client, cid, "on_hold")
        assert held.open_exceptions[0].code == "not_to_exceed_reached", held
        return held

    async def raise_the_cap_and_retry(self, cid: str) -> None:
        """On hold on the cap, the cap raised by an amendment (an update), the hold retried."""
        held = await self.hold_on_the_cap(cid, end_date="2026-12-31")
        raised = Amendment(
            amendment_id="A-cap",
            effective_date=date(2026, 11, 1),
            not_to_exceed="2000.00",
            reason="change order 12",
        )
        assert (await amend(self.client, cid, raised)).status == "applied"
        await self.decide(cid, held, ExceptionAction.RETRY)

    async def decide(self, cid: str, held: ContractStatus, action: ExceptionAction) -> None:
        decision = ResolveException(
            exception_id=held.open_exceptions[0].exception_id,
            action=action,
            operator="ops@c2c.example",
        )
        await resolve_exception(self.client, cid, decision)


async def time_and_materials_closed(r: Recorder, cid: str) -> None:
    status = await r.start(cid)
    await r.time(status, "2026-10-05", "8")
    await r.time(status, "2026-10-20", "4")
    await r.close(cid, "2026-10")
    invoice = (await wait_invoices(r.client, cid, 1)).invoices[0]
    await pay(r.client, cid, f"pay-{cid}", invoice.total, invoice_id=invoice.invoice_id)
    await wait_stage(r.client, cid, "closed")


async def fixed_fee_amended(r: Recorder, cid: str) -> None:
    await r.start(
        cid,
        billing_model="fixed_fee",
        milestones=[
            {"milestone_id": "M1", "name": "Discovery", "amount": "4000.00"},
            {"milestone_id": "M2", "name": "Build", "amount": "6000.00"},
        ],
        not_to_exceed=None,
        end_date="2026-11-15",
    )
    await complete_milestone(
        r.client, cid, MilestoneCompleted(milestone_id="M1", completed_on=date(2026, 10, 20))
    )
    await r.close(cid, "2026-10")
    await wait_invoices(r.client, cid, 1)
    added = Amendment(
        amendment_id="A-1",
        effective_date=date(2026, 11, 1),
        add_milestones=[{"milestone_id": "M3", "name": "Handover", "amount": "2000.00"}],
        reason="handover added by change order 7",
    )
    assert (await amend(r.client, cid, added)).status == "applied"
    for mid in ("M2", "M3"):
        await complete_milestone(
            r.client, cid, MilestoneCompleted(milestone_id=mid, completed_on=date(2026, 11, 10))
        )
    await r.close(cid, "2026-11")
    status = await wait_invoices(r.client, cid, 2)
    await pay(r.client, cid, f"pay-{cid}", status.balance_due)
    await wait_stage(r.client, cid, "closed")


async def retainer_terminated(r: Recorder, cid: str) -> None:
    status = await r.start(
        cid,
        customer={"crm_account_id": "GLOBEX-UK", "name": "Globex Ltd", "country": "GB"},
        legal_entity="UK01",
        currency="GBP",
        billing_model="retainer",
        start_date="2026-09-13",
        end_date="2026-11-30",
        retainer_monthly_amount="10000.00",
        retainer_included_hours="20",
        rate_card=[{"role": "Senior Consultant", "hourly_rate": "150.00"}],
        not_to_exceed=None,
    )
    await wait_invoices(r.client, cid, 1)  # the advance fee, billed at activation
    await r.time(status, "2026-09-15", "15")  # 3 h of overage past 12 included
    await r.close(cid, "2026-09")
    await wait_invoices(r.client, cid, 2)
    await terminate_contract(
        r.client, cid, TerminateContract(effective_date=date(2026, 10, 20), reason="reorganised")
    )
    status = await wait_for(r.client, cid, lambda s: bool(s.credit_notes), what="a credit note")
    await pay(r.client, cid, f"pay-{cid}", status.balance_due)
    await wait_stage(r.client, cid, "closed")


async def exception_retried(r: Recorder, cid: str) -> None:
    await r.raise_the_cap_and_retry(cid)
    # The held-back 1100.00 is released on its own invoice; the contract stays active.
    await wait_for(
        r.client,
        cid,
        lambda s: s.stage == "active" and len(s.invoices) == 2 and s.held_back == Decimal(0),
        what="the held-back work invoiced",
    )


async def aborted_compensated(r: Recorder, cid: str) -> None:
    held = await r.hold_on_the_cap(cid)
    await r.decide(cid, held, ExceptionAction.ABORT)
    await wait_stage(r.client, cid, "cancelled")


async def continued_as_new(r: Recorder, cid: str) -> None:
    """Twelve months billed and paid on a worker that hands over after 100 events: the first
    run ends in continue-as-new with its settled invoices folded; the second bills one more
    month and rests, active."""
    status = await r.start(
        cid, queue=SHORT_QUEUE, start_date="2025-11-01", end_date="2027-06-30", not_to_exceed=None
    )
    period = Period.parse("2025-11")
    for _ in range(13):
        await r.time(status, str(period.first_day), "2")
        await r.close(cid, str(period))
        name = str(period)

        def billed(s: ContractStatus, name: str = name) -> bool:
            return any(i.period == name for i in s.invoices)

        def paid(s: ContractStatus, name: str = name) -> bool:
            return s.balance_due == 0 and name in s.closed_periods

        status = await wait_for(r.client, cid, billed, what=f"the {name} invoice")
        invoice = next(i for i in status.invoices if i.period == name)
        await pay(r.client, cid, f"pay-{name}", invoice.total, invoice_id=invoice.invoice_id)
        await wait_for(r.client, cid, paid, what=f"{name} paid")
        period = period.next()
    assert (await run_ids(r.client, cid))[1:], "the contract did not continue as new"


async def reset_redecided(r: Recorder, cid: str) -> None:
    """On hold on the cap, the cap raised by update and the hold retried, November closed;
    then reset to the first workflow task, as the Temporal UI's Reset button does. The new
    run (the file) decides the redelivered signals and update in their order: the amendment
    before the retry, the release, then November."""
    await r.raise_the_cap_and_retry(cid)
    await r.close(cid, "2026-11")
    before = await wait_for(
        r.client, cid, lambda s: "2026-11" in s.closed_periods, what="November closed"
    )
    await reset_with_client(r.client, cid, (await completed_tasks(r.client, cid))[0])
    await wait_for(
        r.client,
        cid,
        lambda s: (
            s.closed_periods == before.closed_periods
            and [i.invoice_id for i in s.invoices] == [i.invoice_id for i in before.invoices]
        ),
        what="the new run to decide everything again",
    )


#: Where the customer billing workflows' histories go (replayed on ``CustomerBilling``).
CUSTOMER_BILLING = HERE / "customer_billing"


async def customer_billing(r: Recorder, cid: str) -> str:
    """Two contracts of one customer under one purchase order close October: one consolidated
    invoice with two sections, partly paid, the payment allocated to the first section. The
    customer's billing workflow runs on, as it does in production. Returns its workflow id."""
    po = f"PO-{cid}"
    cids = [f"{cid}-1", f"{cid}-2"]
    for n, each in enumerate(cids):
        status = await r.start(each, consolidated_invoicing="customer_po", po_number=po)
        await wait_for(
            r.client,
            each,
            lambda s: any("joined the consolidated invoicing" in h.event for h in s.history),
            what="joined",
        )
        await r.time(status, "2026-10-05", str(8 + 4 * n))
    for each in cids:
        await r.close(each, "2026-10")
    for each in cids:
        await wait_for(
            r.client,
            each,
            lambda s: len(s.invoices) == 1 and s.invoices[0].consolidated_invoice_id is not None,
            what="its section on the consolidated invoice",
        )
    key = CustomerBillingKey(
        legal_entity="US01", crm_account_id="ACME-US", currency="USD", po_number=po
    )
    workflow_id = customer_billing_workflow_id(key)
    [invoice] = (await customer_billing_status(r.client, workflow_id)).invoices
    payment = PaymentReceived(
        payment_id=f"pay-{cid}",
        invoice_id=invoice.invoice_id,
        amount=Decimal("1000.00"),
        currency="USD",
        received_on=date(2026, 11, 23),
    )
    await record_customer_payment(r.client, workflow_id, payment)
    await wait_for(
        r.client,
        cids[0],
        lambda s: s.invoices[0].amount_paid == Decimal("1000.00"),
        what="the payment allocated",
    )
    return workflow_id


async def customer_billing_continued(r: Recorder, cid: str) -> str:
    """Two contracts of one customer, on the worker that hands over after few events, bill
    May to October, each month's consolidated invoice paid in full: the customer's billing
    continues as new, its older paid invoices folded. Returns its workflow id."""
    po = f"PO-{cid}"
    cids = [f"{cid}-1", f"{cid}-2"]
    periods = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
    for n, each in enumerate(cids):
        status = await r.start(
            each,
            queue=SHORT_QUEUE,
            consolidated_invoicing="customer_po",
            po_number=po,
            start_date="2026-05-01",
        )
        await wait_for(
            r.client,
            each,
            lambda s: any("joined the consolidated invoicing" in h.event for h in s.history),
            what="joined",
        )
        for period in periods:
            await r.time(status, f"{period}-05", str(2 + n))
    key = CustomerBillingKey(
        legal_entity="US01", crm_account_id="ACME-US", currency="USD", po_number=po
    )
    workflow_id = customer_billing_workflow_id(key)
    for period in periods:
        for each in cids:
            await r.close(each, period)
        invoice = None
        while invoice is None:
            status = await customer_billing_status(r.client, workflow_id)
            invoice = next((i for i in status.invoices if i.period == period), None)
            await asyncio.sleep(0.2)
        payment = PaymentReceived(
            payment_id=f"pay-{cid}-{period}",
            invoice_id=invoice.invoice_id,
            amount=invoice.total,
            currency="USD",
            received_on=date(2026, 11, 23),
        )
        await record_customer_payment(r.client, workflow_id, payment)
        while any(i.balance for i in status.invoices if i.period == period):
            await asyncio.sleep(0.2)
            status = await customer_billing_status(r.client, workflow_id)
    return workflow_id


async def run_ids(client: Client, cid: str) -> list[str]:
    """The contract's runs, oldest first."""
    return await workflow_runs(client, contract_workflow_id(cid))


async def workflow_runs(client: Client, workflow_id: str) -> list[str]:
    """A workflow's runs, oldest first."""
    runs = [
        (e.start_time, e.run_id)
        async for e in client.list_workflows(f'WorkflowId = "{workflow_id}"')
    ]
    return [run_id for _, run_id in sorted(runs)]


Drive = Callable[[Recorder, str], Awaitable[None]]

CONTRACTS: tuple[Drive, ...] = (
    time_and_materials_closed,
    fixed_fee_amended,
    retainer_terminated,
    exception_retried,
    aborted_compensated,
    continued_as_new,
    reset_redecided,
)


async def resting(client: Client, cid: str, *, contract: bool = True) -> None:
    """Wait until nothing is in flight, so the history ends on a completed workflow task."""
    handle = contract_handle(client, cid) if contract else client.get_workflow_handle(cid)
    quiet = 0
    while quiet < 3:
        raw = (await handle.describe()).raw_description
        busy = bool(raw.pending_activities) or raw.HasField("pending_workflow_task")
        quiet = 0 if busy else quiet + 1
        await asyncio.sleep(0.2)


async def write_histories(client: Client, name: str, cid: str) -> None:
    """One file for a contract of one run. Of a contract that continued as new: its first run
    (``<name>_run1.json``, ending in continue-as-new), its second (``_run2``, started from
    carried state) and its last (``_last``, started from state carried several times)."""
    runs = await run_ids(client, cid)
    files = {f"{name}.json": runs[0]}
    if name == reset_redecided.__name__:
        files = {f"{name}.json": runs[-1]}
    elif len(runs) > 1:
        files = {f"{name}_run1.json": runs[0], f"{name}_run2.json": runs[1]}
    if len(runs) > 2:
        files[f"{name}_last.json"] = runs[-1]
    for file, run_id in files.items():
        handle = client.get_workflow_handle(contract_workflow_id(cid), run_id=run_id)
        history = await handle.fetch_history()
        path = HERE / file
        path.write_text(history.to_json() + "\n")
        print(f"{path.name}: {len(history.events)} events")


async def write_customer_billing_runs(client: Client, workflow_id: str) -> None:
    """A customer's billing that continued as new: its first run (``continued_run1.json``,
    ending in continue-as-new), its second (``continued_run2.json``, started from carried
    state) and its last (``continued_last.json``, still running)."""
    runs = await workflow_runs(client, workflow_id)
    assert len(runs) > 2, f"{workflow_id} continued as new {len(runs) - 1} times"
    files = {"continued_run1": runs[0], "continued_run2": runs[1], "continued_last": runs[-1]}
    for name, run_id in files.items():
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        path = CUSTOMER_BILLING / f"{name}.json"
        path.write_text(history.to_json() + "\n")
        print(f"customer_billing/{path.name}: {len(history.events)} events")


async def record(state: Path, names: list[str]) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
    )
    try:
        with run_sandbox_in_thread(
            f"sqlite:///{state / 'sandbox.db'}", "http://127.0.0.1:9", []
        ) as sandbox_url:
            settings = Settings(
                _env_file=None,
                temporal_address=env.client.service_client.config.target_host,
                temporal_namespace=env.client.namespace,
                sandbox_url=sandbox_url,
                database_url=f"sqlite:///{state / 'ledger.db'}",
                state_dir=state,
                task_queue=TASK_QUEUE,
            )
            get_ledger(settings.ledger_url).create_all()
            short = settings.model_copy(
                update={"continue_as_new_events": 100, "task_queue": SHORT_QUEUE}
            )
            async with (
                contract_worker(env.client, settings),
                contract_worker(env.client, short),
                httpx.AsyncClient(base_url=sandbox_url, timeout=10) as sandbox,
            ):
                recorder = Recorder(env.client, sandbox)
                if not names or customer_billing.__name__ in names:
                    workflow_id = await customer_billing(recorder, "H-customer-billing")
                    await resting(env.client, workflow_id, contract=False)
                    handle = env.client.get_workflow_handle(workflow_id)
                    history = await handle.fetch_history()
                    CUSTOMER_BILLING.mkdir(exist_ok=True)
                    path = CUSTOMER_BILLING / "running.json"
                    path.write_text(history.to_json() + "\n")
                    print(f"{path.name}: {len(history.events)} events")
                if not names or customer_billing_continued.__name__ in names:
                    workflow_id = await customer_billing_continued(recorder, "H-cb-continued")
                    await resting(env.client, workflow_id, contract=False)
                    await write_customer_billing_runs(env.client, workflow_id)
                for drive in CONTRACTS:
                    name = drive.__name__
                    if names and name not in names:
                        continue
                    cid = "H-" + name.replace("_", "-")
                    await drive(recorder, cid)
                    await resting(env.client, cid)
                    await write_histories(env.client, name, cid)
    finally:
        await env.shutdown()


def main() -> None:
    configure_logging("histories", level="WARNING")
    with tempfile.TemporaryDirectory(prefix="c2c-histories-") as state:
        asyncio.run(record(Path(state), sys.argv[1:]))


if __name__ == "__main__":
    main()
