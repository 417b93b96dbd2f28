"""Shared steps of the billing-model workflow tests: start, wait, pay, read the ERP; two
contracts of one customer on one consolidated invoice."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer, Worker

from activities.reconcile import ReconcileActivities
from c2c.settings import Settings
from connectors.registry import build_connectors
from domain.consolidation import CustomerBillingKey, customer_billing_workflow_id
from domain.models import ClosePeriod, ContractStatus, PaymentReceived
from domain.names import contract_workflow_id
from domain.reconcile import Difference, ReconcileBatch
from ledger import Ledger
from starter.api.contracts import (
    close_period_for,
    customer_billing_status,
    record_customer_payment,
    record_payment,
    start_contract,
)
from tests.workflows.helpers import add_time, approval, wait_for, wait_stage
from workflows.contract_to_cash import ContractToCash


async def start_active(
    client: Client, settings: Settings, **changes: Any
) -> tuple[str, ContractStatus]:
    """Start a contract built from ``approval(**changes)`` and wait until it is active."""
    event = approval(**changes)
    await start_contract(client, event, task_queue=settings.task_queue)
    return event.contract_id, await wait_stage(client, event.contract_id, "active")


async def consolidating_contracts(
    client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    hours: tuple[str, ...],
    *,
    legal_entity: str = "US01",
    currency: str = "USD",
    crm_account_id: str = "ACME-US",
    **changes: Any,
) -> tuple[list[str], str]:
    """Contracts of one customer under one fresh PO (``customer_po``), one per entry of
    ``hours``, each with that much approved time in October 2026, all asked to close October;
    and their customer billing workflow's id. ``changes`` go to each approval."""
    po = f"PO-{uuid.uuid4().hex[:8]}"
    cids = []
    for worked in hours:
        cid, status = await start_active(
            client,
            settings,
            legal_entity=legal_entity,
            currency=currency,
            consolidated_invoicing="customer_po",
            po_number=po,
            **changes,
        )
        await wait_for(
            client,
            cid,
            lambda s: any("joined the consolidated invoicing" in h.event for h in s.history),
            what="joined",
        )
        await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-05", worked)
        cids.append(cid)
    for cid in cids:
        await close_period_for(client, cid, ClosePeriod(period="2026-10"))
    key = CustomerBillingKey(
        legal_entity=legal_entity, crm_account_id=crm_account_id, currency=currency, po_number=po
    )
    return cids, customer_billing_workflow_id(key)


async def wait_invoices(client: Client, cid: str, count: int) -> ContractStatus:
    return await wait_for(
        client, cid, lambda s: len(s.invoices) >= count, what=f"{count} invoice(s)"
    )


async def pay(client: Client, cid: str, payment_id: str, amount: Decimal, **extra: Any) -> None:
    status = await wait_for(client, cid, lambda s: True)
    await record_payment(
        client,
        cid,
        PaymentReceived(
            payment_id=payment_id,
            amount=amount,
            currency=status.currency,
            received_on=date(2026, 11, 23),
            **extra,
        ),
    )


async def erp_balances(sandbox: httpx.AsyncClient, erp_contract_id: str) -> dict[str, Decimal]:
    response = await sandbox.get(f"/erp/v1/contracts/{erp_contract_id}/balances")
    response.raise_for_status()
    body = response.json()
    return {
        key: Decimal(value)
        for key, value in body.items()
        if key
        in {
            "billed_to_date",
            "recognised_to_date",
            "contract_asset",
            "contract_liability",
            "receivable",
            "unapplied_cash",
        }
    }


async def replay(client: Client, cid: str) -> None:
    """Replay the contract's history so far: the workflow code must reproduce it exactly."""
    history = await client.get_workflow_handle(contract_workflow_id(cid)).fetch_history()
    await Replayer(
        workflows=[ContractToCash], data_converter=pydantic_data_converter
    ).replay_workflow(history)


async def two_consolidating_contracts(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient, hours: tuple[str, str]
) -> tuple[list[str], str]:
    """Two consolidating contracts of ACME-US under one fresh PO, each with approved time in
    October 2026, both asked to close October; their customer billing workflow's id."""
    return await consolidating_contracts(client, settings, sandbox, hours)


async def consolidated_invoiced(client: Client, cid: str) -> ContractStatus:
    """The contract's status once its one section is on a consolidated invoice."""
    return await wait_for(
        client,
        cid,
        lambda s: len(s.invoices) == 1 and s.invoices[0].consolidated_invoice_id is not None,
        what="its section on the consolidated invoice",
    )


@dataclass(frozen=True)
class Billed:
    """Two contracts on one consolidated invoice, paid in part."""

    contract_ids: list[str]
    workflow_id: str
    number: str
    payment_id: str
    #: Each section's total and what is paid of it, in the order of the contracts' ids.
    totals: list[Decimal]
    paid: list[Decimal]


async def billed_and_paid_in_part(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> Billed:
    """Two consolidating contracts (10 and 5 hours) on one consolidated invoice, and a
    payment of it: the first section (by contract id) in full and 100.00 of the second. The
    first contract, paid, closes and leaves; the second is the one member left."""
    cids, workflow_id = await two_consolidating_contracts(client, settings, sandbox, ("10", "5"))
    statuses = sorted(
        [await consolidated_invoiced(client, cid) for cid in cids], key=lambda s: s.contract_id
    )
    totals = [s.invoices[0].total for s in statuses]
    number = statuses[0].invoices[0].number or ""
    paid = [totals[0], Decimal("100.00")]
    payment_id = f"PAY-{uuid.uuid4().hex[:8]}"
    await record_customer_payment(
        client,
        workflow_id,
        PaymentReceived(
            payment_id=payment_id,
            invoice_id=number,
            amount=sum(paid, Decimal(0)),
            currency="USD",
            received_on=date(2026, 11, 23),
        ),
    )
    for status, part in zip(statuses, paid, strict=True):
        await wait_for(
            client,
            status.contract_id,
            lambda s, part=part: bool(s.invoices) and s.invoices[0].amount_paid == part,
            what=f"{part} paid",
        )
    # Its period billed and paid, the first contract closes and leaves the customer's billing.
    first = statuses[0].contract_id
    for _ in range(200):
        billing = await customer_billing_status(client, workflow_id)
        if f"contract {first} left" in "\n".join(billing.history):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"contract {first} did not leave: {billing.history}")
    return Billed(sorted(cids), workflow_id, number, payment_id, totals, paid)


@pytest_asyncio.fixture(scope="module")
async def billed(
    worker: Worker, temporal_client: Client, settings: Settings, sandbox_url: str
) -> Billed:
    """``billed_and_paid_in_part``, once for the module that imports this fixture."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as sandbox:
        return await billed_and_paid_in_part(temporal_client, settings, sandbox)


async def reconcile_differences(
    settings: Settings, ledger: Ledger, contract_ids: list[str]
) -> list[Difference]:
    """What reconciliation finds between the ledger and the ERP for these contracts, as the
    nightly run's comparison step finds it."""
    connectors = build_connectors(settings)
    try:
        books = ReconcileActivities(connectors, ledger, settings)
        batch = ReconcileBatch(contract_ids=contract_ids)
        found: list[Difference] = await ActivityEnvironment().run(
            books.compare_ledger_with_erp, batch
        )
        return found
    finally:
        await connectors.aclose()
