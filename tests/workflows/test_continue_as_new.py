"""A five-year contract continues as new and loses nothing on the way.

The dev server here suggests continue-as-new after a low number of history events, so a
contract of sixty monthly periods, two rate amendments and sixty payments runs as several
runs. Each run's history stays near that number; the last run's status is what one run
would have reached; payments signalled while a run hands over are applied, once each. What a
run hands to the next stays small and does not grow with the runs: settled invoices fold into
sums and only the latest history lines are carried, the rest being in the ledger.

On the time-skipping server, with ``C2C_CONTINUE_AS_NEW_EVENTS`` low instead, an exception
opened by dunning stays open across the hand-over and an operator resolves it on the new run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from c2c.ports import free_port
from c2c.settings import Settings
from domain.carried import CARRIED_HISTORY_LINES, CARRIED_PAYMENT_IDS, CarriedState, ContractRun
from domain.models import (
    Amendment,
    ClosePeriod,
    ContractStatus,
    PaymentReceived,
    RateCardEntry,
    ResolveException,
)
from domain.names import SA_OPEN_EXCEPTIONS, SEARCH_ATTRIBUTES, contract_workflow_id
from domain.periods import Period
from ledger import get_ledger
from starter.api.contracts import (
    close_period_for,
    contract_handle,
    contract_result,
    record_payment,
    resolve_exception,
    start_contract,
)
from starter.api.updates import amend
from tests.support import venv_binary
from tests.workflows import test_calendar
from tests.workflows.billing_helpers import start_active
from tests.workflows.helpers import add_time, approval, items, wait_for, wait_stage
from worker import contract_worker
from workflows.contract_to_cash import ContractToCash

#: The time-skipping server of the calendar tests.
time_skipping_env = test_calendar.skipping_env

#: The server suggests continue-as-new from this many events on.
SUGGEST_AT = 150
#: What a run may add after the suggestion before it reaches a quiet moment: the step in
#: progress and the signals that arrive meanwhile (a batch of this test is 24 signals).
MARGIN = 120
FIRST = Period.parse("2021-11")
MONTHS = 60
HOURS = Decimal(10)
#: The Senior Consultant's rate from each month on: approved, then two amendments.
RATES = {
    FIRST: Decimal("200.00"),
    Period.parse("2023-11"): Decimal("220.00"),
    Period.parse("2025-11"): Decimal("240.00"),
}
#: The most a run may hand to the next besides what is open (unpaid invoices and waiting
#: messages, which this test lets pile up for a year): terms, history lines, sums, ids.
CARRIED_BOUND = 16 * 1024
#: How much more of that the last run may be handed than the first runs: the closed periods
#: and the payment ids seen, about 25 bytes a month.
CARRIED_DRIFT = 2 * 1024
#: The project's limit on any payload in a contract's history.
PAYLOAD_LIMIT = 64 * 1024


@pytest_asyncio.fixture(scope="module")
async def short_history_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        port=free_port(),
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AT}",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="module")
def short_settings(
    short_history_env: WorkflowEnvironment, sandbox_url: str, state_dir: Path
) -> Settings:
    client = short_history_env.client
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_address=client.service_client.config.target_host,
        temporal_namespace=client.namespace,
        sandbox_url=sandbox_url,
        database_url=f"sqlite:///{state_dir / 'ledger.db'}",
        state_dir=state_dir,
        task_queue=f"c2c-can-{uuid.uuid4().hex[:8]}",
    )


def months() -> list[Period]:
    periods, period = [], FIRST
    for _ in range(MONTHS):
        periods.append(period)
        period = period.next()
    return periods


def rate_for(period: Period) -> Decimal:
    return max((start, rate) for start, rate in RATES.items() if start <= period)[1]


async def run_histories(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """The history of each run of the workflow, oldest first."""
    runs = []
    async for execution in client.list_workflows(f'WorkflowId = "{workflow_id}"'):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        runs.append((execution.start_time, await handle.fetch_history()))
    return [history for _, history in sorted(runs, key=lambda run: run[0])]


def input_bytes(history: WorkflowHistory) -> tuple[int, int, int]:
    """The size of the run's input (the contract, and the state carried from the run before),
    how much of it is what was open at the hand-over, and how many open items that is."""
    started = history.events[0].workflow_execution_started_event_attributes
    data = started.input.payloads[0].data
    carried = json.loads(data)["carried"]
    open_items = [
        *carried["inbox"],
        *carried["collections"]["invoices"],
        *carried["collections"]["book"]["invoices"],
        *carried["collections"]["book"]["receipts"],
    ]
    return len(data), sum(len(json.dumps(item)) for item in open_items), len(open_items)


def carried_state(history: WorkflowHistory) -> CarriedState:
    """The state the run began with."""
    started = history.events[0].workflow_execution_started_event_attributes
    payload = started.input.payloads[0]
    run = pydantic_data_converter.payload_converter.from_payload(payload, ContractRun)
    assert run.carried is not None
    return run.carried


def carried_payments(history: WorkflowHistory) -> list[str]:
    """Payments that waited in the inbox when the run began."""
    started = history.events[0].workflow_execution_started_event_attributes
    payload = started.input.payloads[0]
    run = pydantic_data_converter.payload_converter.from_payload(payload, ContractRun)
    inbox = run.carried.inbox if run.carried else []
    return [m.payment_received.payment_id for m in inbox if m.payment_received]


async def pay_all(client: Client, cid: str, status: ContractStatus) -> None:
    for invoice in status.invoices:
        if invoice.amount_paid == 0:
            await record_payment(
                client,
                cid,
                PaymentReceived(
                    payment_id=f"pay-{invoice.period}",
                    invoice_id=invoice.invoice_id,
                    amount=invoice.total,
                    currency="USD",
                    received_on=date(2026, 11, 20),
                ),
            )


async def test_five_year_contract_continues_as_new_without_losing_anything(
    short_history_env: WorkflowEnvironment, short_settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    client = short_history_env.client
    event = approval(
        start_date=str(FIRST.first_day),
        end_date="2026-10-31",
        not_to_exceed=None,
        payment_terms_days=60,
    )
    cid = event.contract_id
    async with contract_worker(client, short_settings):
        await start_contract(client, event, task_queue=short_settings.task_queue)
        active = await wait_stage(client, cid, "active")
        psa = active.refs["psa_project_id"]
        for period in months():
            await add_time(sandbox, psa, "Senior Consultant", str(period.first_day), str(HOURS))

        # A year at a time: the close of twelve periods and the payments of the year before
        # arrive together, so runs hand over while messages still wait in the inbox.
        status = active
        for year in range(MONTHS // 12):
            for period in months()[year * 12 : (year + 1) * 12]:
                await close_period_for(client, cid, ClosePeriod(period=str(period)))
            await pay_all(client, cid, status)
            if year == 2:
                # A payment id seen in an earlier run is applied only once: this one changes
                # nothing (it would otherwise leave 1.00 of unapplied cash).
                await record_payment(
                    client,
                    cid,
                    PaymentReceived(
                        payment_id=f"pay-{FIRST}",
                        amount=Decimal("1.00"),
                        currency="USD",
                        received_on=date(2026, 11, 20),
                    ),
                )
            closed = (year + 1) * 12
            status = await wait_for(
                client,
                cid,
                lambda s, n=closed: (
                    len(s.closed_periods) >= n and len(s.invoices) + s.settled_invoices.count >= n
                ),
                timeout=180,
                what=f"{closed} periods closed",
            )
            start = Period.parse(f"{2022 + year}-11")
            if start in RATES:
                result = await amend(
                    client,
                    cid,
                    Amendment(
                        amendment_id=f"rate-{start}",
                        effective_date=start.first_day,
                        rate_card=[
                            RateCardEntry(role="Senior Consultant", hourly_rate=RATES[start])
                        ],
                        reason="annual rate review",
                    ),
                )
                assert result.status == "applied", result
        await pay_all(client, cid, status)
        final = (await contract_result(client, cid)).status

    runs = await run_histories(client, contract_workflow_id(cid))
    assert len(runs) >= 3, f"expected several runs, got {len(runs)}"
    sizes = [len(history.events) for history in runs]
    assert all(size <= SUGGEST_AT + MARGIN for size in sizes), sizes
    for history in runs[:-1]:
        last = history.events[-1].event_type
        assert last == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    # Some run handed over with payments still waiting; the next run applied them (below).
    handed_over = [pid for history in runs[1:] for pid in carried_payments(history)]
    assert handed_over, "no run handed over while payments waited: the test proves too little"
    # What each run was handed, besides what was open at the hand-over, stays under the bound,
    # and the last is handed no more of it than the first three: the carried state does not
    # grow with the contract's history.
    carried = [input_bytes(history) for history in runs[1:]]
    fixed = [size - open_bytes for size, open_bytes, _ in carried]
    print(f"carried input (bytes, of it open items, open items) by run: {carried}")
    assert len(carried) >= 3, f"expected at least four runs, got {len(runs)}"
    assert all(size < PAYLOAD_LIMIT for size, _, _ in carried), carried
    assert all(size < CARRIED_BOUND for size in fixed), fixed
    assert fixed[-1] <= max(fixed[:3]) + CARRIED_DRIFT, fixed
    # Each run, started from carried state, replays on the workflow code.
    replayer = Replayer(workflows=[ContractToCash], data_converter=pydantic_data_converter)
    for history in runs:
        await replayer.replay_workflow(history)

    # What one run would have billed: every month once, at the rate in force that month. The
    # invoices settled in earlier runs are sums in the status, and each one is in the ERP.
    assert final.closed_periods == [str(p) for p in months()]
    erp_invoices = await items(sandbox, "/erp/v1/invoices", contract_id=cid)
    subtotals = {inv["period"]: Decimal(inv["subtotal"]) for inv in erp_invoices}
    assert subtotals == {str(p): HOURS * rate_for(p) for p in months()}
    held, settled = final.invoices, final.settled_invoices
    assert len(held) + settled.count == MONTHS
    assert all(subtotals[inv.period or ""] == inv.subtotal for inv in held)
    assert sum(inv.subtotal for inv in held) + settled.subtotal == sum(subtotals.values())
    erp_total = sum(Decimal(inv["total"]) for inv in erp_invoices)
    assert sum(inv.total for inv in held) + settled.total == erp_total
    assert sum(inv.amount_paid for inv in held) + settled.amount_paid == erp_total
    assert settled.amount_credited == 0 and settled.credit_notes == 0
    assert all(inv.status == "paid" for inv in held)
    assert final.balance_due == 0
    assert final.unapplied_cash == 0
    assert [(a.amendment_id, a.status) for a in final.amendments] == [
        ("rate-2023-11", "applied"),
        ("rate-2025-11", "applied"),
    ]
    # The status keeps the latest history lines; the ledger's audit trail has every line,
    # among them each hand-over.
    assert final.history_omitted > 0
    assert len(final.history) <= CARRIED_HISTORY_LINES + SUGGEST_AT + MARGIN
    trail = [e.event for e in get_ledger(short_settings.ledger_url).audit_trail(cid)]
    assert len(trail) == final.history_omitted + len(final.history)
    assert trail[-len(final.history) :] == [h.event for h in final.history]
    continued = [e for e in trail if e.startswith("history continued in run")]
    assert [e.split()[4] for e in continued] == [str(n) for n in range(2, len(runs) + 1)]

    # And the systems agree: sixty invoices, each paid once.
    assert len(erp_invoices) == MONTHS
    for invoice in erp_invoices:
        payments = await items(sandbox, "/erp/v1/payments", invoice_id=invoice["invoice_id"])
        assert len(payments) == 1, invoice["number"]


async def test_a_ten_year_contract_hands_over_less_than_16_kb(
    short_history_env: WorkflowEnvironment, short_settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    """120 monthly invoices, 10 rate amendments and 200 payments (80 invoices paid in two
    parts): every run is handed under 16 KB, contract and open items included, because a run
    carries what is open and the latest history lines and payment ids, not what happened. A
    payment sent again long after its id was left behind is still applied once: the ledger
    holds it."""
    client = short_history_env.client
    first = Period.parse("2016-11")
    periods = [first]
    while len(periods) < 120:
        periods.append(periods[-1].next())
    event = approval(start_date=str(first.first_day), end_date="2026-10-31", not_to_exceed=None)
    cid = event.contract_id
    payments = 0
    async with contract_worker(client, short_settings):
        await start_contract(client, event, task_queue=short_settings.task_queue)
        active = await wait_stage(client, cid, "active")
        psa = active.refs["psa_project_id"]
        for period in periods:
            await add_time(sandbox, psa, "Senior Consultant", str(period.first_day), "1")
        for n, period in enumerate(periods):
            if n % 12 == 6:
                rate = Decimal(200 + n)
                result = await amend(
                    client,
                    cid,
                    Amendment(
                        amendment_id=f"rate-{period}",
                        effective_date=period.first_day,
                        rate_card=[RateCardEntry(role="Senior Consultant", hourly_rate=rate)],
                        reason="annual rate review",
                    ),
                )
                assert result.status == "applied", result
            await close_period_for(client, cid, ClosePeriod(period=str(period)))
            status = await wait_for(
                client,
                cid,
                lambda s, name=str(period): any(i.period == name for i in s.invoices),
                what=f"the {period} invoice",
            )
            invoice = next(i for i in status.invoices if i.period == str(period))
            parts = [invoice.total] if n >= 80 else [Decimal("1.00"), invoice.total - 1]
            for part, amount in enumerate(parts):
                payments += 1
                await record_payment(
                    client,
                    cid,
                    PaymentReceived(
                        payment_id=f"pay-{period}-{part}",
                        invoice_id=invoice.invoice_id,
                        amount=amount,
                        currency="USD",
                        received_on=date(2026, 11, 20),
                    ),
                )
            if n == 110:
                # The first payment again, many hand-overs later.
                await record_payment(
                    client,
                    cid,
                    PaymentReceived(
                        payment_id=f"pay-{first}-0",
                        invoice_id=None,
                        amount=Decimal("1.00"),
                        currency="USD",
                        received_on=date(2026, 11, 20),
                    ),
                )
        final = (await contract_result(client, cid)).status

    assert payments == 200
    assert final.stage == "closed" and final.balance_due == 0
    assert len(final.amendments) == 10
    runs = await run_histories(client, contract_workflow_id(cid))
    sizes = [size for size, _, _ in (input_bytes(history) for history in runs[1:])]
    print(f"carried input by run (bytes): {sizes}")
    assert len(sizes) >= 5, f"expected several hand-overs, got {len(sizes)}"
    assert max(sizes) < CARRIED_BOUND, sizes
    # The payment ids carried stay bounded: the latest ones and those of cash still open.
    seen = [len(carried_state(history).collections.payments_seen) for history in runs[1:]]
    assert max(seen) <= CARRIED_PAYMENT_IDS + 2, seen
    assert final.unapplied_cash == 0
    trail = [e.event for e in get_ledger(short_settings.ledger_url).audit_trail(cid)]
    assert f"payment pay-{first}-0 already applied: ignored" in trail


async def test_an_open_exception_survives_the_hand_over_and_is_resolved_on_the_new_run(
    time_skipping_env: WorkflowEnvironment, short_settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    # The lowest threshold there is: the contract hands over soon after dunning escalates.
    settings = short_settings.model_copy(
        update={
            "continue_as_new_events": 100,
            "task_queue": f"c2c-can-skip-{uuid.uuid4().hex[:8]}",
        }
    )
    async with contract_worker(client, settings):
        cid, status = await start_active(
            client, settings, end_date="2027-12-31", payment_terms_days=10
        )
        first_run = (await contract_handle(client, cid).describe()).run_id
        await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-05", "10")
        await close_period_for(client, cid, ClosePeriod(period="2026-10"))
        await wait_for(client, cid, lambda s: bool(s.invoices), what="the October invoice")
        # Overdue, three reminders, then the final one opens an exception to finance.
        await env.sleep(timedelta(days=11 + 30 + 1))
        status = await wait_for(
            client, cid, lambda s: bool(s.open_exceptions), what="an escalation"
        )
        [escalation] = status.open_exceptions
        assert escalation.code == "dunning_exhausted"

        # Messages that change nothing still lengthen the history, up to the hand-over.
        for _ in range(20):
            await close_period_for(client, cid, ClosePeriod(period="2026-10"))
        status = await wait_for(
            client,
            cid,
            lambda s: any("history continued in run" in h.event for h in s.history),
            what="a continue-as-new",
        )
        # The unpaid invoice is carried whole, with its dunning.
        assert [e.exception_id for e in status.open_exceptions] == [escalation.exception_id]
        assert status.invoices[0].dunning_level == 3
        described = await contract_handle(client, cid).describe()
        assert described.run_id != first_run
        assert described.typed_search_attributes.get(SA_OPEN_EXCEPTIONS) == 1

        await resolve_exception(
            client,
            cid,
            ResolveException(
                exception_id=escalation.exception_id,
                action="skip",
                operator="ar@example.com",
                note="collected by the agency",
            ),
        )
        status = await wait_for(
            client,
            cid,
            lambda s: any("stopped by ar@example.com" in h.event for h in s.history),
            what="dunning stopped by the operator",
        )
        assert status.open_exceptions == []
