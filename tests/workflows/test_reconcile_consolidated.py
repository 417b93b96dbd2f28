"""Reconciliation of a consolidated invoice on the real dev server, the sandbox's reference ERP
and the API over HTTP.

Two consolidating contracts of one customer in a legal entity of the test's own are billed on
one ERP invoice, partly paid: reconciliation finds nothing. Then someone keys a payment into
the ERP by hand on that invoice and voids it: reconciliation reports exactly those two
differences, naming the consolidated invoice, on the dashboard's reconciliation page too, and
a second run opens no exception again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ContractStatus, PaymentReceived
from ledger import Ledger
from starter.api.contracts import record_customer_payment
from tests.support import serve
from tests.workflows.billing_helpers import consolidating_contracts
from tests.workflows.helpers import items, wait_for
from tests.workflows.test_books import keyed_by_hand, new_entity

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    with serve(settings) as url:
        yield url


async def _consolidated_pair(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient, entity: str
) -> tuple[list[ContractStatus], str]:
    """Two contracts of ``entity`` on one consolidated invoice for October, in the order of
    their sections on it; their customer billing workflow's id."""
    cids, billing_id = await consolidating_contracts(
        client, settings, sandbox, ("10", "5"), legal_entity=entity
    )
    invoiced = [
        await wait_for(
            client,
            cid,
            lambda s: len(s.invoices) == 1 and s.invoices[0].consolidated_invoice_id is not None,
            what="its section on the consolidated invoice",
        )
        for cid in sorted(cids)
    ]
    return invoiced, billing_id


async def _reconcile(api: httpx.AsyncClient, entity: str) -> dict[str, Any]:
    answer = await api.post("/api/ops/reconcile", json={"legal_entity": entity})
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()["report"]
    return report


async def test_a_consolidated_invoice_voided_and_paid_by_hand_is_reported_once(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    api_url: str,
    ledger: Ledger,
) -> None:
    entity = await new_entity(sandbox)
    (first, second), billing_id = await _consolidated_pair(
        temporal_client, settings, sandbox, entity
    )
    a, b = first.invoices[0], second.invoices[0]
    invoice_id = a.consolidated_invoice_id
    assert invoice_id is not None and b.consolidated_invoice_id == invoice_id
    # Partly paid: all of the first section and 10.00 of the second.
    await record_customer_payment(
        temporal_client,
        billing_id,
        PaymentReceived(
            payment_id=f"PAY-{uuid.uuid4().hex[:8]}",
            invoice_id=invoice_id,
            amount=a.total + Decimal(10),
            currency="USD",
            received_on=date(2026, 11, 23),
        ),
    )
    for status, paid in ((first, a.total), (second, Decimal(10))):
        await wait_for(
            temporal_client,
            status.contract_id,
            lambda s, paid=paid: s.invoices[0].amount_paid == paid,
            what=f"{paid} paid",
        )
    [erp] = await items(sandbox, "/erp/v1/invoices", contract_id=billing_id)
    assert erp["invoice_id"] == invoice_id and erp["status"] == "partially_paid"

    async with httpx.AsyncClient(base_url=api_url, timeout=120) as api:
        clean = await _reconcile(api, entity)
        assert clean["contracts"] == 2
        assert clean["differences"] == [] and clean["exceptions_opened"] == 0

        # Cash keyed into the ERP by hand on the consolidated invoice, then the invoice voided
        # in the ERP's own screens: c2c knows of neither.
        stranger = f"HAND-{uuid.uuid4().hex[:8]}"
        await keyed_by_hand(sandbox, stranger, "40.00", invoice_id=invoice_id)
        voided = await sandbox.post(f"/_admin/erp/invoices/{invoice_id}/void")
        assert voided.status_code == 200 and voided.json()["status"] == "void"

        found = await _reconcile(api, entity)
        again = await _reconcile(api, entity)
        # The dashboard's reconciliation page lists them with the others.
        page = await api.get("/reconciliation")
        assert page.status_code == 200, page.text
        for code in ("consolidated_invoice_voided_in_erp", "consolidated_payment_unknown_to_c2c"):
            assert code in page.text
        assert f"consolidated invoice {invoice_id}" in page.text

    differences = {(d["code"], d["record_id"]): d for d in found["differences"]}
    assert set(differences) == {
        ("consolidated_invoice_voided_in_erp", invoice_id),
        ("consolidated_payment_unknown_to_c2c", stranger),
    }
    assert found["exceptions_opened"] == 2
    # Both name the consolidated invoice; they belong to the contract of its first section.
    void = differences["consolidated_invoice_voided_in_erp", invoice_id]
    assert void["contract_id"] == first.contract_id
    assert a.invoice_id in void["message"] and b.invoice_id in void["message"]
    assert f"{invoice_id} (number {a.number})" in void["message"]
    unknown = differences["consolidated_payment_unknown_to_c2c", stranger]
    assert "(40.00)" in unknown["message"] and invoice_id in unknown["message"]
    assert unknown["contract_id"] == first.contract_id
    # Found again: no second exception.
    assert again["differences"] == found["differences"] and again["exceptions_opened"] == 0
    opened = [
        (e.contract_id, e.code, e.queue, e.status)
        for cid in (first.contract_id, second.contract_id)
        for e in ledger.list_exceptions(contract_id=cid)
        if e.step == "reconcile"
    ]
    assert sorted(opened) == [
        (first.contract_id, "consolidated_invoice_voided_in_erp", "integration", "open"),
        (first.contract_id, "consolidated_payment_unknown_to_c2c", "integration", "open"),
    ]
