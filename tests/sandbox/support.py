"""Helpers shared by the sandbox tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx

WEBHOOK_SECRET = "whsec-sandbox-tests"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A tiny HTTP server that records what it receives and answers planned statuses."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    #: Statuses to answer, by path, before answering 200 again.
    planned: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.received.clear()
            self.planned.clear()

    def matching(self, payment_id: str) -> list[Received]:
        """What was received about ``payment_id`` (older tests' deliveries may still land)."""
        with self.lock:
            return [r for r in self.received if r.json()["data"].get("payment_id") == payment_id]

    def wait_for(self, count: int, payment_id: str, timeout_s: float = 5.0) -> list[Received]:
        """Wait until ``count`` deliveries about ``payment_id`` arrived; answer them."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            received = self.matching(payment_id)
            if len(received) >= count:
                return received
            time.sleep(0.02)
        raise AssertionError(f"expected {count} webhooks about {payment_id}")


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of ``response``, after checking its status."""
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def error(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    """The ``error`` object of a refusal, after checking its status."""
    assert response.status_code == status, (response.status_code, response.text)
    payload: dict[str, Any] = response.json()["error"]
    return payload


@dataclass(frozen=True)
class ErpContractRefs:
    contract_id: str
    customer_id: str
    project_id: str
    erp_contract_id: str
    legal_entity: str
    currency: str


def create_erp_contract(
    client: httpx.Client,
    contract_id: str = "C-1001",
    *,
    crm_account_id: str = "ACME-US",
    legal_entity: str = "US01",
    currency: str = "USD",
    schedules: bool = True,
) -> ErpContractRefs:
    """A customer, project and contract in the ERP (with both schedules unless told not to)."""
    response = client.post(
        "/erp/v1/customers",
        json={
            "crm_account_id": crm_account_id,
            "name": "Customer of " + contract_id,
            "country": "US",
            "region": "CA",
            "legal_entity": legal_entity,
            "currency": currency,
        },
    )
    if response.status_code == 409:  # a second contract of the same customer
        customer_id = response.json()["existing_id"]
    else:
        customer_id = ok(response, 201)["customer_id"]
    dates = {"start_date": "2026-01-01", "end_date": "2026-12-31"}
    project = ok(
        client.post(
            "/erp/v1/projects",
            json={
                "contract_id": contract_id,
                "customer_id": customer_id,
                "legal_entity": legal_entity,
                "name": "Project " + contract_id,
                "currency": currency,
                "project_template": "standard",
                **dates,
            },
        ),
        201,
    )
    contract = ok(
        client.post(
            "/erp/v1/contracts",
            json={
                "contract_id": contract_id,
                "project_id": project["project_id"],
                "customer_id": customer_id,
                "legal_entity": legal_entity,
                "currency": currency,
                "billing_model": "time_and_materials",
                "payment_terms_days": 30,
                "contract_value": "0",
                "rate_card": [
                    {"role": "consultant", "hourly_rate": "150", "effective_from": "2026-01-01"}
                ],
                **dates,
            },
        ),
        201,
    )
    erp_contract_id = contract["erp_contract_id"]
    if schedules:
        ok(
            client.put(
                f"/erp/v1/contracts/{erp_contract_id}/billing-schedule",
                json={
                    "frequency": "monthly",
                    "bill_on": "period_close",
                    "lines": [{"kind": "time_and_materials", "roles": ["consultant"]}],
                },
            )
        )
        ok(
            client.put(
                f"/erp/v1/contracts/{erp_contract_id}/revenue-schedule",
                json={"method": "as_invoiced"},
            )
        )
    return ErpContractRefs(
        contract_id, customer_id, project["project_id"], erp_contract_id, legal_entity, currency
    )


def invoice_body(
    refs: ErpContractRefs,
    *,
    period: str | None = "2026-10",
    invoice_date: str = "2026-10-31",
    amounts: tuple[str, ...] = ("1500.00",),
    tax: str = "108.75",
    subtotal: str | None = None,
    total: str | None = None,
    milestone_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An invoice request whose figures add up unless told otherwise; ``extra`` fields
    (``reference``, the functional amounts) are added as given."""
    computed_subtotal = sum((Decimal(a) for a in amounts), Decimal(0))
    subtotal = subtotal or str(computed_subtotal)
    return {
        "contract_id": refs.contract_id,
        "erp_contract_id": refs.erp_contract_id,
        "customer_id": refs.customer_id,
        "project_id": refs.project_id,
        "legal_entity": refs.legal_entity,
        "currency": refs.currency,
        "period": period,
        "milestone_id": milestone_id,
        "invoice_date": invoice_date,
        "due_on": (date.fromisoformat(invoice_date) + timedelta(days=30)).isoformat(),
        "lines": [
            {
                "line_id": f"L{i + 1}",
                "kind": "time",
                "description": "Consulting",
                "role": "consultant",
                "quantity": "10",
                "unit_price": "150.00",
                "amount": amount,
                "tax_amount": "0",
            }
            for i, amount in enumerate(amounts)
        ],
        "subtotal": subtotal,
        "tax": tax,
        "total": total or str(Decimal(subtotal) + Decimal(tax)),
        **extra,
    }


def create_invoice(client: httpx.Client, refs: ErpContractRefs, **kwargs: Any) -> dict[str, Any]:
    """A draft invoice (``kwargs`` as for ``invoice_body``)."""
    invoice: dict[str, Any] = ok(
        client.post("/erp/v1/invoices", json=invoice_body(refs, **kwargs)), 201
    )
    return invoice


def issued_invoice(client: httpx.Client, refs: ErpContractRefs, **kwargs: Any) -> dict[str, Any]:
    """An issued invoice (``kwargs`` as for ``invoice_body``)."""
    invoice = create_invoice(client, refs, **kwargs)
    issued: dict[str, Any] = ok(client.post(f"/erp/v1/invoices/{invoice['invoice_id']}/issue"))
    return issued


#: A PSA project request (a T&M project with one milestone).
PROJECT = {
    "contract_id": "C-2001",
    "name": "Data platform",
    "customer_name": "Acme Corp",
    "erp_project_id": "PRJ-000001",
    "currency": "USD",
    "start_date": "2026-09-01",
    "end_date": "2026-12-31",
    "project_template": "standard",
    "rate_card": [{"role": "consultant", "hourly_rate": "150.00"}],
    "milestones": [{"milestone_id": "M1", "name": "Design", "amount": "5000.00"}],
}


def active_project(client: httpx.Client) -> str:
    """The id of a new, active PSA project made from ``PROJECT``."""
    project_id: str = ok(client.post("/psa/v1/projects", json=PROJECT), 201)["project_id"]
    ok(client.post(f"/psa/v1/projects/{project_id}/activate"))
    return project_id


def log_time(
    client: httpx.Client, project_id: str, work_date: str, *, approved: bool = True, **extra: Any
) -> httpx.Response:
    """Log eight billable hours (``extra`` overrides any field) and answer the response."""
    body = {
        "consultant_id": "ann",
        "role": "consultant",
        "work_date": work_date,
        "hours": "8",
        "billable": True,
        "approved": approved,
        **extra,
    }
    return client.post(f"/psa/v1/projects/{project_id}/time-entries", json=body)
