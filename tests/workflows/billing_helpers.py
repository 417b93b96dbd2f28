"""Shared steps of the billing-model workflow tests: start, wait, pay, read the ERP."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from c2c.settings import Settings
from domain.consolidation import CustomerBillingKey, customer_billing_workflow_id
from domain.models import ClosePeriod, ContractStatus, PaymentReceived
from domain.names import contract_workflow_id
from starter.api.contracts import close_period_for, record_payment, start_contract
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
