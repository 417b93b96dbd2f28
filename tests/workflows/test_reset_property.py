"""Property: a contract's decisions are a function of its ordered messages, so any reset
decides everything as before and creates nothing twice.

Hypothesis draws contracts of every billing model and a sequence of messages for each: time
recorded, period closes, amendments (signals and updates; rates, caps, end dates, milestones
added, changed and removed; valid, and refused only for what was invoiced before them),
payments with repeats, milestones, a termination, operator decisions (retry or skip) on
the holds they cause (a skip of the cap's hold writes the work off, in the ERP too), and, on
contracts that review their invoices, the approval or rejection of each draft. Each sequence
runs on the real dev server and sandbox; then the contract is reset, to its first workflow
task or to a random one, by the ``temporal`` CLI, the client's own reset (what the Temporal UI
sends) or ``c2c ops reset``. The new run must give every message the same decision with the
same reason, leave the ERP with the same invoices, credit notes, revenue entries, payments and
write-offs, and end in an equal status.

Each example runs a batch of contracts at once (the server does the waiting). CI runs
``EXAMPLES`` × ``BATCH`` sequences; a larger run, for instance 1,000 sequences of up to 12
messages with fresh random draws:

    C2C_RESET_EXAMPLES=50 C2C_RESET_BATCH=20 C2C_RESET_STEPS=12 C2C_RESET_RANDOM=1 \
        pytest tests/workflows/test_reset_property.py --timeout 0

A run that long needs ``--timeout 0``: pytest-timeout's limit (600 s a test) interrupts the
session's worker in the middle of a workflow task, and the contract it was running then
answers "Workflow Task in failed state".
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from c2c.settings import Settings
from domain.consolidation import CustomerBillingKey, customer_billing_workflow_id
from domain.models import (
    Amendment,
    ClosePeriod,
    ContractStatus,
    CreditInvoice,
    MilestoneCompleted,
    PaymentReceived,
    ResolveException,
    ReviewInvoice,
    TerminateContract,
)
from starter.api.contracts import (
    close_period_for,
    complete_milestone,
    contract_handle,
    credit_invoice,
    customer_billing_status,
    get_status,
    queue_amendment,
    record_customer_payment,
    record_payment,
    resolve_exception,
    review_invoice,
    start_contract,
    terminate_contract,
)
from starter.api.updates import amend
from tests.workflows.helpers import add_time, approval, items
from tests.workflows.reset_helpers import reset_somehow

pytestmark = pytest.mark.usefixtures("worker")

EXAMPLES = int(os.environ.get("C2C_RESET_EXAMPLES", "20"))
BATCH = int(os.environ.get("C2C_RESET_BATCH", "10"))
STEPS = int(os.environ.get("C2C_RESET_STEPS", "7"))
RANDOM = os.environ.get("C2C_RESET_RANDOM") == "1"

#: How long one contract may take to come to rest; generous, for a loaded CI machine.
REST_TIMEOUT_S = 120.0

MILESTONES = [
    {"milestone_id": "M1", "name": "Design", "amount": "3000.00"},
    {"milestone_id": "M2", "name": "Build", "amount": "4000.00"},
]
ROLES = ["Senior Consultant", "Analyst"]
WORK_DATES = ["2026-10-10", "2026-10-28", "2026-11-10"]
#: Effective dates around the closes: some fall in a period a close before them invoiced.
EFFECTIVE = [date(2026, 10, 20), date(2026, 11, 2), date(2026, 11, 20), date(2026, 12, 1)]


@dataclass(frozen=True)
class Scenario:
    terms: dict[str, Any]
    steps: tuple[tuple[Any, ...], ...]
    reset: str
    seed: int


def contract_terms() -> st.SearchStrategy[dict[str, Any]]:
    base = {"start_date": "2026-10-01", "end_date": "2026-12-31"}
    tm = st.fixed_dictionaries(
        {
            "billing_model": st.just("time_and_materials"),
            "not_to_exceed": st.sampled_from([None, "1500.00", "6000.00"]),
        }
    )
    fixed = st.fixed_dictionaries(
        {
            "billing_model": st.just("fixed_fee"),
            "milestones": st.just(MILESTONES),
            "milestone_invoicing": st.sampled_from(["on_completion", "period_close"]),
            "not_to_exceed": st.sampled_from([None, "5000.00"]),
        }
    )
    retainer = st.fixed_dictionaries(
        {
            "billing_model": st.just("retainer"),
            "retainer_monthly_amount": st.just("4000.00"),
            "retainer_included_hours": st.just("20"),
            "not_to_exceed": st.sampled_from([None, "10000.00"]),
        }
    )
    # Some contracts review every invoice: each is a draft until approved or rejected.
    review = st.sampled_from([None, None, "required"])
    return st.tuples(st.one_of(tm, fixed, retainer), review).map(
        lambda t: {**base, **t[0], **({"invoice_review": t[1]} if t[1] else {})}
    )


def amendment_step() -> st.SearchStrategy[tuple[Any, ...]]:
    change = st.one_of(
        st.fixed_dictionaries(
            {
                "rate_card": st.lists(
                    st.fixed_dictionaries(
                        {
                            "role": st.sampled_from(ROLES),
                            "hourly_rate": st.sampled_from(["90.00", "150.00", "240.00"]),
                        }
                    ),
                    min_size=1,
                    max_size=1,
                )
            }
        ),
        st.fixed_dictionaries(
            {"not_to_exceed": st.sampled_from([Decimal("800.00"), Decimal("20000.00")])}
        ),
        st.fixed_dictionaries({"end_date": st.sampled_from([date(2026, 11, 30)])}),
        st.fixed_dictionaries(
            {
                "add_milestones": st.just(
                    [{"milestone_id": "M9", "name": "Extra", "amount": "1000.00"}]
                )
            }
        ),
        # Milestones changed or removed: applied while not invoiced, refused once they are.
        st.fixed_dictionaries(
            {
                "change_milestones": st.tuples(
                    st.sampled_from(["M1", "M2"]),
                    st.sampled_from(["2500.00", "4500.00"]),
                    st.sampled_from([None, date(2026, 12, 15)]),
                ).map(lambda c: [{"milestone_id": c[0], "amount": c[1], "due_date": c[2]}])
            }
        ),
        st.fixed_dictionaries({"remove_milestones": st.sampled_from([["M1"], ["M2"]])}),
    )
    return st.tuples(
        st.just("amend"),
        st.sampled_from(["signal", "update"]),
        st.sampled_from(EFFECTIVE),
        change,
    )


def steps() -> st.SearchStrategy[list[tuple[Any, ...]]]:
    step = st.one_of(
        st.tuples(
            st.just("time"),
            st.sampled_from(ROLES),
            st.sampled_from(WORK_DATES),
            st.sampled_from(["2", "8", "12"]),
        ),
        st.tuples(st.just("close"), st.sampled_from(["2026-10", "2026-11"])),
        amendment_step(),
        st.tuples(
            st.just("pay"),
            st.integers(0, 2),
            st.sampled_from(["full", "half", "over", "wrong_currency"]),
        ),
        st.tuples(st.just("credit"), st.integers(0, 1), st.sampled_from(["cent", "half", "rest"])),
        st.tuples(
            st.just("milestone"),
            st.sampled_from(["M1", "M2"]),
            st.sampled_from([date(2026, 10, 15), date(2026, 11, 12)]),
        ),
        st.tuples(st.just("terminate"), st.sampled_from([date(2026, 11, 30)])),
        st.tuples(st.just("resolve"), st.sampled_from(["retry", "skip"])),
        st.tuples(st.just("review"), st.sampled_from(["approve", "approve", "reject"])),
    )
    return st.lists(step, min_size=1, max_size=STEPS)


scenarios = st.builds(
    Scenario,
    terms=contract_terms(),
    steps=steps().map(tuple),
    reset=st.sampled_from(["cli", "client-first", "client-random", "ops"]),
    seed=st.integers(0, 2**16),
)


#: Milestones changed and removed around an invoiced one, on a fixed fee billed at the period
#: close and one billed on completion: always run, whatever Hypothesis draws.
MILESTONE_AMENDMENTS = [
    Scenario(
        terms={
            "start_date": "2026-10-01",
            "end_date": "2026-12-31",
            "billing_model": "fixed_fee",
            "milestones": MILESTONES,
            "milestone_invoicing": invoicing,
            "not_to_exceed": None,
        },
        steps=(
            ("milestone", "M1", date(2026, 10, 15)),
            ("close", "2026-10"),
            ("amend", "update", date(2026, 11, 2), {"remove_milestones": ["M1"]}),
            (
                "amend",
                "signal",
                date(2026, 11, 2),
                {"change_milestones": [{"milestone_id": "M2", "amount": "4500.00"}]},
            ),
            ("milestone", "M2", date(2026, 11, 12)),
            ("amend", "update", date(2026, 11, 20), {"remove_milestones": ["M2"]}),
            ("close", "2026-11"),
        ),
        reset=reset,
        seed=7,
    )
    for invoicing, reset in (("period_close", "client-random"), ("on_completion", "cli"))
]


#: A termination decided while the contract is set up, then again once it runs, around
#: amendments; reset to the first workflow task.
TERMINATED_TWICE = [
    Scenario(
        terms={
            "start_date": "2026-10-01",
            "end_date": "2026-12-31",
            "not_to_exceed": "6000.00",
            "billing_model": "time_and_materials",
        },
        steps=(
            ("terminate", date(2026, 11, 30)),
            (
                "amend",
                "update",
                date(2026, 11, 2),
                {"change_milestones": [{"milestone_id": "M1", "amount": "4500.00"}]},
            ),
            ("milestone", "M1", date(2026, 10, 15)),
            ("terminate", date(2026, 11, 30)),
            ("pay", 0, "wrong_currency"),
            ("credit", 0, "cent"),
        ),
        reset=reset,
        seed=3613,
    )
    for reset in ("client-first", "cli", "ops")
]


#: A reviewed contract: a draft rejected, its exception retried into a second draft after a
#: PO amendment, that draft approved and paid; then a second period drafted and left waiting.
REVIEWED = [
    Scenario(
        terms={
            "start_date": "2026-10-01",
            "end_date": "2026-12-31",
            "billing_model": "time_and_materials",
            "not_to_exceed": None,
            "invoice_review": "required",
        },
        steps=(
            ("time", "Analyst", "2026-10-10", "8"),
            ("close", "2026-10"),
            ("review", "reject"),
            ("amend", "update", date(2026, 11, 2), {"po_number": "PO-1"}),
            ("resolve", "retry"),
            ("review", "approve"),
            ("pay", 0, "full"),
            ("time", "Analyst", "2026-11-10", "2"),
            ("close", "2026-11"),
        ),
        reset=reset,
        seed=11,
    )
    for reset in ("client-first", "client-random", "cli")
]


#: A terminated contract paid in full, and a second payment sent right behind the one that
#: lets it close: the second comes after the contract's last decision, and is decided (refused,
#: a finance exception) as the run ends, before and after a reset of the closed contract.
PAYMENT_RACING_THE_CLOSE = [
    Scenario(
        terms={
            "start_date": "2026-10-01",
            "end_date": "2026-12-31",
            "billing_model": "time_and_materials",
            "not_to_exceed": None,
        },
        steps=(
            ("time", "Analyst", "2026-10-10", "2"),
            ("terminate", date(2026, 10, 31)),
            ("close", "2026-10"),
            ("pay_and_more",),
        ),
        reset=reset,
        seed=5,
    )
    for reset in ("cli", "client-random")
]


#: A contract whose customer is invoiced once per period across its contracts (alone, under
#: its own purchase order): its sections go on consolidated invoices, payments of those come
#: back through the customer's billing workflow, one of them twice; its sections are credited
#: on the consolidated invoices (a cent, then half of what is left).
CONSOLIDATED = [
    Scenario(
        terms={
            "start_date": "2026-10-01",
            "end_date": "2026-12-31",
            "billing_model": "time_and_materials",
            "not_to_exceed": None,
            "consolidated_invoicing": "customer_po",
        },
        steps=(
            ("time", "Analyst", "2026-10-10", "8"),
            ("close", "2026-10"),
            ("credit", 0, "cent"),
            ("pay", 0, "half"),
            ("pay", 0, "half"),
            ("time", "Senior Consultant", "2026-11-10", "2"),
            ("close", "2026-11"),
            ("credit", 1, "half"),
            ("pay", 1, "full"),
        ),
        reset=reset,
        seed=13,
    )
    for reset in ("client-first", "client-random", "cli", "ops")
]


@example(batch=CONSOLIDATED)
@example(batch=REVIEWED)
@example(batch=PAYMENT_RACING_THE_CLOSE)
@example(batch=MILESTONE_AMENDMENTS)
@example(batch=TERMINATED_TWICE)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(batch=st.lists(scenarios, min_size=BATCH, max_size=BATCH))
async def test_any_reset_decides_every_message_as_before(
    batch: list[Scenario],
    temporal_client: Client,
    settings: Settings,
    sandbox_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as sandbox:
        results = await asyncio.gather(
            *(check(temporal_client, settings, sandbox, s) for s in batch),
            return_exceptions=True,
        )
    failures = [(s, r) for s, r in zip(batch, results, strict=True) if r is not None]
    assert not failures, "\n\n".join(f"{s}\n  -> {r!r}" for s, r in failures)


async def check(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient, scenario: Scenario
) -> None:
    """Run one scenario, reset it, and compare; returns ``None`` when the property holds."""
    terms = dict(scenario.terms)
    if terms.get("consolidated_invoicing"):
        # Its own customer billing: no other contract's period closes to wait for.
        terms["po_number"] = f"PO-{uuid.uuid4().hex[:10]}"
    event = approval(**terms)
    cid = event.contract_id
    await start_contract(client, event, task_queue=settings.task_queue)
    status = await at_rest(client, cid)
    payments: list[PaymentReceived] = []
    for step in scenario.steps:
        if status.stage in ("closed", "cancelled"):
            break  # Temporal refuses messages to a finished contract: nothing to decide
        await perform(client, sandbox, cid, status, step, payments)
        status = await at_rest(client, cid)
    before = await snapshot(client, sandbox, cid)
    assert_money_holds(await get_status(client, cid), before["erp"])

    await reset_somehow(client, cid, scenario.reset, random.Random(scenario.seed))

    try:
        await at_rest(client, cid, until=lambda s: decided(s) == before["decisions"])
    except AssertionError:
        now = decided(await get_status(client, cid))
        differ = {
            k: (before["decisions"][k], now[k]) for k in now if now[k] != before["decisions"][k]
        }
        raise AssertionError(f"{cid} decided differently after the reset: {differ}") from None
    assert await snapshot(client, sandbox, cid) == before
    await assert_hold_can_be_left(client, cid)
    return None


async def assert_hold_can_be_left(client: Client, cid: str) -> None:
    """Whatever came before, a contract on hold takes one of ``retry``, ``skip`` or ``abort``:
    no history leaves it where an operator can do nothing."""
    status = await get_status(client, cid)
    if status.stage != "on_hold" or not status.open_exceptions:
        return
    exception_id = status.open_exceptions[0].exception_id
    refusals = []
    for action in ("retry", "skip", "abort"):
        decision = ResolveException(exception_id=exception_id, action=action, operator="ops")
        try:
            await asyncio.wait_for(resolve_exception(client, cid, decision), REST_TIMEOUT_S)
            return
        except WorkflowUpdateFailedError as exc:
            refusals.append(f"{action}: {exc.cause}")
    raise AssertionError(f"{cid}: no action leaves the hold on {exception_id}: {refusals}")


async def perform(
    client: Client,
    sandbox: httpx.AsyncClient,
    cid: str,
    status: ContractStatus,
    step: tuple[Any, ...],
    payments: list[PaymentReceived],
) -> None:
    kind = step[0]
    if kind == "time":
        if "psa_project_id" in status.refs:
            await add_time(sandbox, status.refs["psa_project_id"], step[1], step[2], step[3])
    elif kind == "close":
        await close_period_for(client, cid, ClosePeriod(period=step[1]))
        if status.consolidated_invoicing != "none":
            await section_answered(client, cid, step[1])
    elif kind == "amend":
        _, via, effective, change = step
        amendment = Amendment(
            amendment_id=f"A-{len(status.amendments) + 1}-{via}",
            effective_date=effective,
            reason="drawn by the property test",
            **change,
        )
        if via == "signal":
            await queue_amendment(client, cid, amendment)
        else:
            await asyncio.wait_for(amend(client, cid, amendment), REST_TIMEOUT_S)
    elif kind == "pay":
        made = payment(status, step[1], step[2], payments)
        section = next(
            (i for i in status.invoices if i.invoice_id == made.invoice_id),
            None,
        )
        if section is None or section.consolidated_invoice_id is None:
            await record_payment(client, cid, made)
        else:
            await pay_consolidated(client, status, made, section.consolidated_invoice_id)
    elif kind == "pay_and_more":
        await record_payment(client, cid, payment(status, 99, "full", payments))
        # Sent at once: it reaches the contract as it closes, or after (Temporal refuses it).
        with suppress(RPCError):
            await record_payment(client, cid, payment(status, 99, "over", payments))
    elif kind == "credit":
        if request := credit(status, step[1], step[2]):
            await credit_invoice(client, cid, request)
    elif kind == "milestone":
        await complete_milestone(
            client, cid, MilestoneCompleted(milestone_id=step[1], completed_on=step[2])
        )
    elif kind == "terminate":
        await terminate_contract(
            client, cid, TerminateContract(effective_date=step[1], reason="customer ended it")
        )
    elif kind == "review" and status.drafts:
        review = ReviewInvoice(
            invoice_id=status.drafts[0].invoice_id,
            decision=step[1],
            operator="fin@example.com",
            reason="drawn by the property test" if step[1] == "reject" else None,
        )
        # Refused in its turn (already reviewed, after a decision on its hold) is a decision.
        with suppress(WorkflowUpdateFailedError):
            await asyncio.wait_for(review_invoice(client, cid, review), REST_TIMEOUT_S)
    elif kind == "resolve" and status.open_exceptions:
        exception = status.open_exceptions[0]
        decision = ResolveException(
            exception_id=exception.exception_id, action=step[1], operator="ops@example.com"
        )
        # Refused in its turn (a step that cannot be skipped) is a decision too.
        with suppress(WorkflowUpdateFailedError):
            await asyncio.wait_for(resolve_exception(client, cid, decision), REST_TIMEOUT_S)


async def section_answered(client: Client, cid: str, period: str) -> None:
    """Wait until a consolidating contract has closed ``period`` and its section (if any) is
    on its customer's invoice: the answer comes from another workflow, after the contract
    may already look at rest."""
    deadline = asyncio.get_running_loop().time() + REST_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        now = await get_status(client, cid)
        if period in now.closed_periods and not now.sections_waiting:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{cid} did not close {period} with its section answered")


async def pay_consolidated(
    client: Client, status: ContractStatus, made: PaymentReceived, invoice_id: str
) -> None:
    """A payment of a consolidated invoice, as the API routes it: to the customer's billing
    workflow, which allocates it to the contract's section; waited for until the contract
    has its part (or the customer's billing has taken a repeat)."""
    key = CustomerBillingKey(
        legal_entity="US01",
        crm_account_id="ACME-US",
        currency=status.currency,
        po_number=status.po_number,
    )
    billing_id = customer_billing_workflow_id(key)
    before = await customer_billing_status(client, billing_id)
    repeat = made.payment_id in before.payments
    await record_customer_payment(
        client, billing_id, made.model_copy(update={"invoice_id": invoice_id})
    )
    deadline = asyncio.get_running_loop().time() + REST_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        if repeat:
            taken = await customer_billing_status(client, billing_id)
            if len(taken.history) > len(before.history):
                return
        else:
            now = await get_status(client, status.contract_id)
            if any(made.payment_id[:40] in h.event for h in now.history):
                return
        await asyncio.sleep(0.2)
    taken = await customer_billing_status(client, billing_id)
    raise AssertionError(
        f"payment {made.payment_id} did not reach {status.contract_id}: {taken.history}"
    )


def payment(
    status: ContractStatus, number: int, how: str, earlier: list[PaymentReceived]
) -> PaymentReceived:
    """A new payment against the oldest open invoice, or ``earlier[number]`` again."""
    if number < len(earlier):
        return earlier[number]
    open_ = [i for i in status.invoices if i.total - i.amount_paid - i.amount_credited > 0]
    target = open_[0] if open_ else None
    due = (target.total - target.amount_paid - target.amount_credited) if target else Decimal(100)
    half = (due / 2).quantize(Decimal("0.01"))
    amount = {"full": due, "half": half, "over": due + 10, "wrong_currency": half}[how]
    made = PaymentReceived(
        payment_id=f"P-{status.contract_id}-{len(earlier)}",
        invoice_id=target.invoice_id if target else None,
        amount=max(amount, Decimal("0.01")),
        currency="EUR" if how == "wrong_currency" else status.currency,
        received_on=date(2026, 12, 1),
    )
    earlier.append(made)
    return made


def credit(status: ContractStatus, number: int, how: str) -> CreditInvoice | None:
    """A credit note on the ``number``-th issued invoice: a cent, half of what is left to
    credit, or all of it (the note that must take exactly the tax that remains)."""
    issued = [i for i in status.invoices if i.status != "credited"]
    if number >= len(issued):
        return None
    invoice = issued[number]
    credited = sum(
        (n.subtotal for n in status.credit_notes if n.invoice_id == invoice.invoice_id),
        Decimal(0),
    )
    left = invoice.subtotal - credited
    amount = {"cent": Decimal("0.01"), "half": (left / 2).quantize(Decimal("0.01")), "rest": left}
    if amount[how] <= 0 or left <= 0:
        return None
    return CreditInvoice(
        invoice_id=invoice.invoice_id,
        amount=min(amount[how], left),
        reason="drawn by the property test",
        credit_note_id=f"CN-{status.contract_id}-{len(status.credit_notes) + 1}",
    )


def assert_money_holds(status: ContractStatus, erp: dict[str, Any]) -> None:
    """What a controller checks on any contract, whatever its history.

    - the credit notes of an invoice never sum above it, in subtotal or in tax;
    - a fully credited invoice is settled;
    - deferred revenue (the contract liability less the asset) is billed less recognised, and
      revenue recognised never exceeds what was billed plus what was earned and not billed;
    - every cent of cash the ERP received is applied to an invoice or unapplied on the
      contract, where customer credit from credit notes on paid invoices waits with it; a
      payment in another currency never reaches the ERP (it is a ``finance`` exception).
    """
    for invoice in status.invoices:
        notes = [n for n in status.credit_notes if n.invoice_id == invoice.invoice_id]
        assert sum((n.subtotal for n in notes), Decimal(0)) <= invoice.subtotal, invoice
        assert sum((n.tax for n in notes), Decimal(0)) <= invoice.tax, invoice
        if sum((n.total for n in notes), Decimal(0)) == invoice.total:
            assert invoice.status == "credited", invoice
    if status.revenue is not None:
        r = status.revenue
        assert r.contract_liability >= 0 and r.contract_asset >= 0, r
        assert r.contract_liability - r.contract_asset == r.billed_to_date - r.recognised_to_date
        assert r.recognised_to_date <= r.billed_to_date + r.contract_asset, r
    received = sum((Decimal(p[1]) for p in erp["payments"]), Decimal(0))
    applied = sum((Decimal(p[2]) for p in erp["payments"]), Decimal(0))
    credit = sum((Decimal(n[2]) for n in erp["credit_notes"]), Decimal(0))
    assert received - applied + credit == status.unapplied_cash, (erp, status.unapplied_cash)
    assert all(p[3] == status.currency for p in erp["payments"]), erp["payments"]


def decided(status: ContractStatus) -> dict[str, Any]:
    """What the contract decided, without the instants it decided it at."""
    return {
        "stage": status.stage,
        "amendments": [a.model_dump(exclude={"at"}) for a in status.amendments],
        "invoices": [i.model_dump(exclude={"dunning_level"}) for i in status.invoices],
        "credit_notes": [n.model_dump() for n in status.credit_notes],
        "milestones": [m.model_dump() for m in status.milestones],
        "revenue": status.revenue.model_dump() if status.revenue else None,
        "figures": (
            status.balance_due,
            status.unapplied_cash,
            status.held_back,
            status.written_off,
        ),
        "closed_periods": status.closed_periods,
        "open_exceptions": [(e.exception_id, e.code) for e in status.open_exceptions],
        "drafts": [d.model_dump(exclude={"drafted_at"}) for d in status.drafts],
        "write_offs": [w.model_dump(exclude={"written_off_on"}) for w in status.write_offs],
        "po": (status.po_number, status.bill_to),
        "history": [h.event for h in status.history],
    }


async def snapshot(client: Client, sandbox: httpx.AsyncClient, cid: str) -> dict[str, Any]:
    status = await get_status(client, cid)
    erp: dict[str, Any] = {
        "invoices": sorted(
            (i["invoice_id"], i["total"], i["status"])
            for i in await items(sandbox, "/erp/v1/invoices", contract_id=cid)
        ),
        "credit_notes": sorted(
            (n["credit_note_id"], n["total"], n["unapplied_amount"])
            for n in await items(sandbox, "/erp/v1/credit-notes", contract_id=cid)
        ),
        "payments": sorted(
            (p["payment_id"], p["amount"], p["applied_amount"], p["currency"])
            for p in await items(sandbox, "/erp/v1/payments", contract_id=cid)
        ),
    }
    if status.consolidated_invoicing != "none":
        # The customer's invoices, the credit notes on them and its payments, in the ERP.
        owner = customer_billing_workflow_id(
            CustomerBillingKey(
                legal_entity="US01",
                crm_account_id="ACME-US",
                currency=status.currency,
                po_number=status.po_number,
            )
        )
        erp["customer"] = {
            "invoices": sorted(
                (i["invoice_id"], i["total"], i["balance"], i["status"])
                for i in await items(sandbox, "/erp/v1/invoices", contract_id=owner)
            ),
            "credit_notes": sorted(
                (n["credit_note_id"], n["total"], [line["section_id"] for line in n["lines"]])
                for n in await items(sandbox, "/erp/v1/credit-notes", contract_id=owner)
            ),
            "payments": sorted(
                (p["payment_id"], p["amount"], p["applied_amount"])
                for p in await items(sandbox, "/erp/v1/payments", contract_id=owner)
            ),
        }
    erp["write_offs"] = sorted(
        (w["write_off_id"], w["amount"])
        for w in await items(sandbox, "/erp/v1/write-offs", contract_id=cid)
    )
    if (erp_contract_id := status.refs.get("erp_contract_id")) is not None:
        revenue = await items(sandbox, f"/erp/v1/contracts/{erp_contract_id}/revenue")
        erp["revenue"] = sorted((r["entry_id"], r["amount"]) for r in revenue)
    return {"decisions": decided(status), "erp": erp}


async def at_rest(
    client: Client, cid: str, until: Any = None, timeout: float = REST_TIMEOUT_S
) -> ContractStatus:
    """The status once the contract has decided every message it can and waits: for the next
    message, for an operator (messages a hold does not decide wait with it), or for nothing
    (closed or cancelled).

    The status a query answers is the one the last completed workflow task left: on a loaded
    machine a task can be waiting for the worker (a timer fired, an activity answered) while
    the status still reads "waiting". So the contract is at rest only when Temporal also has
    no workflow task and no activity pending for it, and the status read after that is the
    same.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    status = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            status = await get_status(client, cid)
        except Exception:
            status = None
        if (
            status is not None
            and resting(status)
            and (until is None or until(status))
            and await nothing_pending(client, cid)
        ):
            again = await get_status(client, cid)
            if resting(again) and decided(again) == decided(status):
                return again
        await asyncio.sleep(0.25)
    raise AssertionError(f"contract {cid} did not come to rest: {status}")


def resting(status: ContractStatus) -> bool:
    # On hold, period closes, payments and milestones wait for the hold to end. A section
    # sent to the customer's consolidated invoice is answered at once (the contract is the
    # customer's only one).
    return (
        (status.queued_messages == 0 or status.stage == "on_hold")
        and bool(status.waiting_for or status.stage in ("closed", "cancelled"))
        and not status.sections_waiting
    )


async def nothing_pending(client: Client, cid: str) -> bool:
    """Whether Temporal has no workflow task and no activity pending for the contract."""
    raw = (await contract_handle(client, cid).describe()).raw_description
    return not raw.HasField("pending_workflow_task") and not raw.pending_activities
