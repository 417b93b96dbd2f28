"""The fault campaign over the vendor-shaped fakes: US01's contracts on NetSuite, UK01's on
Business Central, tax by AvaTax and payment by Stripe, in one stack.

A worker process configured as a firm would (``C2C_ERP_ROUTES``, ``C2C_TAX=avatax``,
``C2C_PAYMENTS=stripe``) runs the contracts from approval to paid and closed while the
sandbox fails its vendor paths: ``503``s and ``429``s (Business Central's with
``Retry-After``), writes whose answer is lost (a ``503``, or the connection dropped, after the
write was made), and the worker is killed with SIGKILL at random moments. Every payment
arrives as a signed Stripe ``payment_intent.succeeded`` webhook to a ``c2c api`` process, which
Stripe sends again (a duplicate).
Afterwards each vendor fake's records are checked: no duplicate customer, job or project,
invoice, credit memo, payment, tax document or PaymentIntent; nothing missing; every total
exact. ``C2C_CAMPAIGN_VENDOR_CONTRACTS`` sets how many contracts run (4 by default).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import create_engine
from sqlmodel import Session, select
from temporalio.client import Client

from c2c.stripe_events import to_minor
from domain.models import ClosePeriod, ContractApproved, CreditInvoice, MilestoneCompleted
from sandbox.avatax import DEFAULT_ACCOUNT_ID, DEFAULT_LICENSE_KEY
from sandbox.business_central import BcRecord
from sandbox.netsuite import NetSuiteRecord
from sandbox.stripe import StripeObject
from sandbox.tax_documents import TaxDocument
from starter.api.contracts import (
    close_period_for,
    complete_milestone,
    credit_invoice,
    get_status,
    start_contract,
)
from tests.bc_support import dimensions
from tests.campaign.processes import ApiProcess, api_receiving
from tests.campaign.test_fault_campaign import TASK_QUEUE, Stack, _started
from tests.netsuite_support import segments
from tests.support import approval_payload
from tests.workflows.helpers import add_time

CONTRACTS = int(os.environ.get("C2C_CAMPAIGN_VENDOR_CONTRACTS", "4"))
KILLS = 2
STRIPE_SECRET = "whsec_c2c_campaign"
STRIPE_KEY = {"Authorization": "Bearer sk_test_c2c"}
VENDORS = ("netsuite", "business-central", "avatax", "stripe")
pytestmark = pytest.mark.timeout(900)

#: The kinds of record each ERP holds (once each) for one contract with one invoice, by
#: whether the invoice was credited (the records that name the contract).
ERP_RECORDS = {
    "netsuite": {
        False: {"job", "customrecord_c2c_contract", "customrecord_c2c_revenue", "invoice"}
        | {"customerPayment"},
        True: {"job", "customrecord_c2c_contract", "customrecord_c2c_revenue", "invoice"}
        | {"creditMemo"},
    },
    "business-central": {
        False: {"projects", "contracts", "revenueEntries", "salesInvoiceLines"}
        | {"customerPayments"},
        True: {"projects", "contracts", "revenueEntries", "salesInvoiceLines"}
        | {"salesCreditMemoLines"},
    },
}

#: What goes wrong on each vendor's paths.
VENDOR_CHAOS: list[dict[str, Any]] = [
    {"probability": 0.12, "status": 503},
    # The write is made and its answer lost: a 503, or the connection dropped.
    {"probability": 0.05, "status": 503, "phase": "after", "method": "POST"},
    {"probability": 0.05, "status": 503, "phase": "after", "method": "PUT"},
    {"probability": 0.05, "status": 503, "phase": "after", "method": "PATCH"},
    {"probability": 0.04, "drop": True, "phase": "after"},
    {"probability": 0.05, "status": 429},
]


@dataclass
class Planned:
    """One contract and what it must leave behind."""

    event: ContractApproved
    model: str
    subtotal: Decimal
    total: Decimal
    #: Settled by a credit note for the whole invoice instead of a payment.
    credited: bool = False

    @property
    def cid(self) -> str:
        return self.event.contract_id

    @property
    def erp(self) -> str:
        return "netsuite" if self.event.legal_entity == "US01" else "business-central"


def plan(i: int) -> Planned:
    """US01 and UK01 in turn, time and materials and fixed fee in turn; a fixed fee's invoice is
    credited in full, a time and materials one paid."""
    model = ("time_and_materials", "fixed_fee")[(i // 2) % 2]
    changes: dict[str, Any] = {"billing_model": model, "not_to_exceed": None}
    if i % 2:
        changes |= {
            "customer": {"crm_account_id": "GLOBEX-UK", "name": "Globex Ltd", "country": "GB"},
            "legal_entity": "UK01",
            "currency": "GBP",
        }
    if model == "fixed_fee":
        changes["milestones"] = [
            {"milestone_id": "M1", "name": "Design", "amount": "1000.00"},
            {"milestone_id": "M2", "name": "Build", "amount": "2000.00"},
        ]
        subtotal = Decimal("3000.00")
    else:
        subtotal = Decimal("1600.00")  # 8 h x 200.00
    # AvaTax's rates: California 7.25 %, the United Kingdom's VAT 20 %.
    rate = Decimal("0.20") if i % 2 else Decimal("0.0725")
    event = ContractApproved.model_validate(approval_payload(**changes))
    total = subtotal + (subtotal * rate).quantize(Decimal("0.01"))
    return Planned(event, model, subtotal, total, credited=model == "fixed_fee")


def vendor_env(stack: Stack) -> dict[str, str]:
    return {
        "C2C_ERP_ROUTES": '{"US01": "netsuite", "UK01": "business-central", "*": "reference"}',
        "C2C_NETSUITE_SEGMENTS": segments().model_dump_json(by_alias=True),
        "C2C_BC_DIMENSIONS": dimensions().model_dump_json(by_alias=True),
        # A billing step makes a dozen vendor calls, some waiting out a Retry-After: an attempt
        # gets 10 s before it counts as lost with a killed worker (5 s in the base campaign).
        "C2C_STEP_TIMEOUT_S": "10",
        "C2C_TAX": "avatax",
        "C2C_PAYMENTS": "stripe",
        "C2C_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        # Nothing answers here: a step that used the reference engine or gateway would fail.
        "C2C_TAX_URL": "http://127.0.0.1:9/tax/v1",
        "C2C_PAYMENTS_URL": "http://127.0.0.1:9/payments/v1",
    }


@pytest.fixture
def vendor_stack(tmp_path: Path, sandbox_url: str) -> Iterator[Stack]:
    with _started(tmp_path, sandbox_url) as running:
        running.env |= vendor_env(running)
        yield running


@pytest_asyncio.fixture
async def stripe_api(
    vendor_stack: Stack, tmp_path: Path, sandbox: httpx.AsyncClient
) -> AsyncIterator[ApiProcess]:
    """``c2c api`` receiving Stripe's webhooks, which the sandbox's Stripe signs and sends."""
    hooks = {
        "/_admin/stripe/webhook": (
            "/webhooks/stripe",
            {"secrets": [STRIPE_SECRET]},
            {"secrets": []},
        )
    }
    async with api_receiving(vendor_stack.env, tmp_path / "api.log", sandbox, hooks) as api:
        yield api


async def add_vendor_chaos(sandbox: httpx.AsyncClient, vendors: tuple[str, ...]) -> None:
    for vendor in vendors:
        for rule in VENDOR_CHAOS:
            answer = await sandbox.post("/_admin/faults", json={"system": vendor, **rule})
            assert answer.status_code in (200, 201), answer.text


async def until(client: Client, cids: list[str], check: Any, what: str) -> None:
    """Wait until ``check`` holds for every contract; a contract held for an exception fails
    at once, naming it."""
    for _ in range(2000):
        done = 0
        for cid in cids:
            try:
                status = await get_status(client, cid)
            except Exception:
                continue
            assert not status.open_exceptions, (cid, status.open_exceptions)
            done += bool(check(status))
        if done == len(cids):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"not every contract reached {what}")


async def killer(stack: Stack, stop: asyncio.Event, rng: random.Random, kills: int) -> None:
    """SIGKILL the worker at random moments (``kills`` times) and start a new one."""
    while not stop.is_set() and stack.kills < kills:
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(3, 8))
        if stop.is_set():
            return
        stack.kill_worker()
        await asyncio.sleep(rng.uniform(0.2, 1.0))
        stack.start_worker()


async def test_the_campaign_over_netsuite_business_central_avatax_and_stripe(
    vendor_stack: Stack,
    stripe_api: ApiProcess,
    sandbox: httpx.AsyncClient,
    state_dir: Path,
) -> None:
    stack = vendor_stack
    began = time.monotonic()
    rng = random.Random(20261207)
    planned = [plan(i) for i in range(CONTRACTS)]
    cids = [p.cid for p in planned]
    client = await stack.client()
    stack.start_worker()
    stop = asyncio.Event()
    kills = asyncio.create_task(killer(stack, stop, rng, KILLS))
    await add_vendor_chaos(sandbox, VENDORS)
    try:
        for p in planned:
            await start_contract(client, p.event, task_queue=TASK_QUEUE)
        await until(client, cids, lambda s: s.stage == "active", "active")
        for p in planned:
            status = await get_status(client, p.cid)
            if p.model == "time_and_materials":
                project = status.refs["psa_project_id"]
                await add_time(sandbox, project, "Senior Consultant", "2026-10-05", "8")
            else:
                for mid, day in (("M1", 10), ("M2", 20)):
                    done = MilestoneCompleted(milestone_id=mid, completed_on=date(2026, 10, day))
                    await complete_milestone(client, p.cid, done)
        for cid in cids:
            await close_period_for(client, cid, ClosePeriod(period="2026-10"))
        await until(client, cids, lambda s: len(s.invoices) == 1, "its invoice")
        await until(client, cids, lambda s: all(i.status == "issued" for i in s.invoices), "issued")
        # Half the invoices are credited in full (the request sent twice, as a caller retries);
        # the other customers pay: Stripe sends each signed payment_intent.succeeded to c2c.
        for p in planned:
            [invoice] = (await get_status(client, p.cid)).invoices
            if p.credited:
                credit = CreditInvoice(
                    invoice_id=invoice.invoice_id,
                    amount=p.subtotal,
                    reason="the work was not accepted",
                    credit_note_id=f"CN-{p.cid}",
                )
                await credit_invoice(client, p.cid, credit)
                await credit_invoice(client, p.cid, credit)
                continue
            intent = await _one_intent(sandbox, invoice.invoice_id)
            paid = await sandbox.post(f"/_admin/stripe/payment_intents/{intent['id']}/succeed")
            assert paid.status_code == 200, paid.text
            await stripe_resends(sandbox, paid.json())
        await until(client, cids, lambda s: s.stage == "closed", "closed")
    finally:
        stop.set()
        await kills
        rules = (await sandbox.get("/_admin/faults")).json()["rules"]
        fired = sum(r["fired"] for r in rules)
        await sandbox.delete("/_admin/faults")
        if stack.worker is None or stack.worker.poll() is not None:
            stack.start_worker()

    counts = await _check_vendor_records(client, sandbox, state_dir, planned)
    print(
        f"\nvendor campaign checked {len(planned)} contracts in "
        f"{time.monotonic() - began:.0f} s: {counts}, worker kills: {stack.kills}, "
        f"faults fired: {fired}"
    )
    assert stack.kills >= 1


async def stripe_resends(sandbox: httpx.AsyncClient, sent: dict[str, Any]) -> None:
    """Stripe resends the event until c2c answers ``2xx``, and once more (a resend whose
    answer Stripe never saw): that one is a duplicate."""
    status = sent["status"]
    for _ in range(100):
        if status is not None and 200 <= status < 300:
            break
        await asyncio.sleep(0.2)
        again = await sandbox.post(f"/_admin/stripe/events/{sent['event_id']}/send", json={})
        status = again.json()["status"]
    resent = await sandbox.post(f"/_admin/stripe/events/{sent['event_id']}/send", json={})
    assert resent.json()["status"] == 202, resent.text
    assert resent.json()["answer"]["duplicate"] is True, resent.text


async def _one_intent(sandbox: httpx.AsyncClient, invoice_id: str) -> dict[str, Any]:
    """The invoice's PaymentIntent (the test's own look-up meets the chaos too: it retries)."""
    for _ in range(50):
        try:
            found = await sandbox.get(
                "/vendors/stripe/v1/payment_intents/search",
                params={"query": f"metadata['c2c_invoice_id']:'{invoice_id}'"},
                headers=STRIPE_KEY,
            )
        except httpx.TransportError:
            continue
        if found.status_code == 200:
            [intent] = found.json()["data"]
            return dict(intent)
        await asyncio.sleep(0.1)
    raise AssertionError(f"Stripe never answered the search for {invoice_id}")


async def _check_vendor_records(
    client: Client, sandbox: httpx.AsyncClient, state_dir: Path, planned: list[Planned]
) -> dict[str, int]:
    """Each vendor fake holds each expected record once, with its exact total."""
    engine = create_engine(f"sqlite:///{state_dir / 'sandbox.db'}")
    counts: Counter[str] = Counter()
    try:
        with Session(engine) as session:
            netsuite = session.exec(select(NetSuiteRecord)).all()
            bc = session.exec(select(BcRecord)).all()
            intents = session.exec(
                select(StripeObject).where(StripeObject.kind == "payment_intent")
            ).all()
            documents = session.exec(select(TaxDocument)).all()
        # No two NetSuite records of a type share an externalId; no two Business Central
        # records of an entity share a number or an external document number.
        keys = Counter((r.record_type, r.external_id) for r in netsuite if r.external_id)
        assert [k for k, n in keys.items() if n > 1] == []
        numbers = Counter((r.company_id, r.entity, r.number) for r in bc if r.number)
        assert [k for k, n in numbers.items() if n > 1] == []
        external = Counter(
            (r.company_id, r.entity, r.body.get("externalDocumentNumber"))
            for r in bc
            if r.body.get("externalDocumentNumber")
        )
        assert [k for k, n in external.items() if n > 1] == []
        for p in planned:
            status = await get_status(client, p.cid)
            assert status.stage == "closed", p.cid
            [invoice] = status.invoices
            assert (invoice.subtotal, invoice.total) == (p.subtotal, p.total), p.cid
            if p.credited:
                assert invoice.status == "credited" and invoice.amount_paid == 0, p.cid
                [note] = status.credit_notes or []
                assert (note.subtotal, note.total) == (p.subtotal, p.total), p.cid
            else:
                assert invoice.status == "paid" and invoice.amount_paid == p.total, p.cid
            # The ERP's own records of the contract.
            if p.erp == "netsuite":
                mine = [
                    r for r in netsuite if p.cid in str(r.body) or p.cid in (r.external_id or "")
                ]
                kinds = Counter(r.record_type for r in mine)
            else:
                # Lines count by the document they belong to (a memo has comment lines).
                mine = [r for r in bc if p.cid in str(r.body)]
                kinds = Counter(
                    entity for entity, _ in {(r.entity, r.parent or r.guid) for r in mine}
                )
            # Each once; a credit memo for a credited invoice, a payment for a paid one.
            assert set(kinds.values()) == {1}, (p.cid, kinds)
            assert set(kinds) == ERP_RECORDS[p.erp][p.credited], (p.cid, kinds)
            counts.update({f"{p.erp}:{k}": n for k, n in kinds.items()})
            # The tax documents: one per invoice, committed, with the invoice's tax; one return
            # document per credit note.
            code = f"contract-{p.cid}:invoice:{invoice.period}"
            mine_docs = {d.code: d for d in documents if d.code.startswith(f"contract-{p.cid}:")}
            # (a code longer than AvaTax's 50 characters is shortened by a hash of its end)
            returns = {c for c in mine_docs if c.startswith(f"contract-{p.cid}:credit-note:")}
            assert len(returns) == p.credited, (p.cid, list(mine_docs))
            assert set(mine_docs) == {code} | returns, (p.cid, list(mine_docs))
            for note_code in returns:
                assert mine_docs[note_code].type == "ReturnInvoice", p.cid
                assert mine_docs[note_code].status == "Committed", p.cid
                counts["avatax:return_documents"] += 1
            document = await sandbox.get(
                f"/vendors/avatax/api/v2/companies/{p.event.legal_entity}/transactions/{code}",
                auth=(DEFAULT_ACCOUNT_ID, DEFAULT_LICENSE_KEY),
            )
            assert document.json()["status"] == "Committed", p.cid
            assert Decimal(str(document.json()["totalTax"])) == p.total - p.subtotal, p.cid
            counts["avatax:transactions"] += 1
            # One PaymentIntent per invoice, succeeded, for its total in minor units.
            mine_intents = [
                i.body for i in intents if i.body["metadata"].get("c2c_contract_id") == p.cid
            ]
            assert len(mine_intents) == 1, p.cid
            assert mine_intents[0]["amount"] == to_minor(p.total, p.event.currency), p.cid
            paid = mine_intents[0]["status"] == "succeeded"
            assert paid is not p.credited, (p.cid, mine_intents[0]["status"])
            counts["stripe:payment_intents"] += 1
    finally:
        engine.dispose()
    return dict(counts)
