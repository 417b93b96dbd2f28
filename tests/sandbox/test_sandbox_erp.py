"""ERP: provisioning rules, invoice arithmetic and numbering, payment application, FX rates."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox.support import (
    create_erp_contract,
    create_invoice,
    error,
    invoice_body,
    issued_invoice,
    ok,
)


def test_provisioning_refuses_unknown_references_and_currencies(client: httpx.Client) -> None:
    customer = {
        "crm_account_id": "ACME-US",
        "name": "Acme Corp",
        "country": "US",
        "currency": "USD",
    }
    unknown_entity = client.post("/erp/v1/customers", json={**customer, "legal_entity": "ZZ01"})
    created = ok(client.post("/erp/v1/customers", json={**customer, "legal_entity": "US01"}), 201)
    project = {
        "contract_id": "C-1",
        "customer_id": created["customer_id"],
        "legal_entity": "US01",
        "name": "P",
        "start_date": "2026-01-01",
        "end_date": "2026-12-31",
        "project_template": "standard",
    }
    chf = client.post("/erp/v1/projects", json={**project, "currency": "CHF"})
    unknown_customer = client.post(
        "/erp/v1/projects", json={**project, "currency": "USD", "customer_id": "CUST-999999"}
    )

    assert error(unknown_entity) == {
        "code": "unknown_legal_entity",
        "message": "legal entity 'ZZ01' does not exist",
        "field": "legal_entity",
    }
    assert created["customer_id"].startswith("CUST-")
    assert error(chf)["code"] == "currency_not_allowed"
    assert error(chf)["field"] == "currency"
    assert error(unknown_customer)["field"] == "customer_id"


def test_project_and_contract_are_unique_per_contract(client: httpx.Client) -> None:
    refs = create_erp_contract(client, "C-7")
    project = ok(client.get(f"/erp/v1/projects/{refs.project_id}"))
    again = client.post(
        "/erp/v1/projects",
        json={
            k: project[k]
            for k in (
                "contract_id",
                "customer_id",
                "legal_entity",
                "name",
                "currency",
                "start_date",
                "end_date",
                "project_template",
            )
        },
    )
    closed = ok(client.post(f"/erp/v1/projects/{refs.project_id}/close"))
    closed_again = ok(client.post(f"/erp/v1/projects/{refs.project_id}/close"))

    assert again.status_code == 409 and again.json()["existing_id"] == refs.project_id
    assert closed["status"] == closed_again["status"] == "closed"
    contracts = ok(client.get("/erp/v1/contracts", params={"contract_id": "C-7"}))["items"]
    assert [c["erp_contract_id"] for c in contracts] == [refs.erp_contract_id]
    assert contracts[0]["billing_schedule"]["lines"][0]["roles"] == ["consultant"]
    assert contracts[0]["revenue_schedule"] == {"method": "as_invoiced"}


def test_an_invoice_needs_both_schedules(client: httpx.Client) -> None:
    refs = create_erp_contract(client, schedules=False)

    refused = client.post("/erp/v1/invoices", json=invoice_body(refs))
    client.put(
        f"/erp/v1/contracts/{refs.erp_contract_id}/billing-schedule",
        json={"frequency": "monthly", "bill_on": "period_close", "lines": [{"kind": "retainer"}]},
    )
    still_refused = client.post("/erp/v1/invoices", json=invoice_body(refs))

    assert error(refused)["code"] == "billing_schedule_missing"
    assert error(still_refused)["code"] == "revenue_schedule_missing"


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"subtotal": "1400.00"}, "subtotal", "lines_do_not_add_up"),
        ({"total": "1600.00"}, "total", "total_mismatch"),
        ({"amounts": ("1500.005",)}, "lines.0.amount", "invalid_amount"),
        ({"amounts": ("100.00", "-5.00")}, "lines.1.amount", "invalid_amount"),
        ({"period": "2026-13"}, "period", "invalid_period"),
    ],
)
def test_invoice_figures_must_add_up(
    client: httpx.Client, changes: dict[str, Any], field: str, code: str
) -> None:
    refs = create_erp_contract(client)

    refused = client.post("/erp/v1/invoices", json=invoice_body(refs, **changes))

    assert error(refused)["field"] == field
    assert error(refused)["code"] == code


def test_jpy_amounts_have_no_decimals(client: httpx.Client) -> None:
    refs = create_erp_contract(client, currency="JPY")

    refused = client.post(
        "/erp/v1/invoices", json=invoice_body(refs, amounts=("150000.50",), tax="15000")
    )
    accepted = create_invoice(client, refs, amounts=("150000",), tax="15000")

    assert error(refused)["field"] == "lines.0.amount"
    assert (accepted["subtotal"], accepted["tax"], accepted["total"]) == (
        "150000",
        "15000",
        "165000",
    )
    assert accepted["amount_paid"] == "0"


def test_a_new_invoice_is_a_draft_with_its_balance(client: httpx.Client) -> None:
    refs = create_erp_contract(client)

    invoice = create_invoice(client, refs, amounts=("1000", "500.00"), tax="108.75")

    assert invoice["invoice_id"].startswith("INV-")
    assert invoice["number"] is None and invoice["status"] == "draft"
    assert (invoice["subtotal"], invoice["total"]) == ("1500.00", "1608.75")
    assert (invoice["amount_paid"], invoice["balance"]) == ("0.00", "1608.75")


def test_one_invoice_per_period_or_milestone(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    first = create_invoice(client, refs, period="2026-10")

    same_period = client.post("/erp/v1/invoices", json=invoice_body(refs, period="2026-10"))
    milestone = create_invoice(client, refs, period="2026-10", milestone_id="M1")
    same_milestone = client.post(
        "/erp/v1/invoices", json=invoice_body(refs, period="2026-11", milestone_id="M1")
    )

    assert same_period.status_code == 409
    assert same_period.json()["existing_id"] == first["invoice_id"]
    assert milestone["milestone_id"] == "M1"
    assert same_milestone.status_code == 409
    assert same_milestone.json()["existing_id"] == milestone["invoice_id"]
    listed = ok(client.get("/erp/v1/invoices", params={"contract_id": refs.contract_id}))
    assert [i["invoice_id"] for i in listed["items"]] == [
        first["invoice_id"],
        milestone["invoice_id"],
    ]


def test_issue_numbers_per_legal_entity_and_year(client: httpx.Client) -> None:
    us = create_erp_contract(client, "C-US")
    de = create_erp_contract(
        client, "C-DE", crm_account_id="INITECH-DE", legal_entity="DE01", currency="EUR"
    )
    first = issued_invoice(client, us, period="2026-10")
    second = issued_invoice(client, us, period="2026-11", invoice_date="2026-11-30")
    german = issued_invoice(client, de, period="2026-10")
    next_year = issued_invoice(client, us, period="2027-01", invoice_date="2027-01-31")
    reissued = ok(client.post(f"/erp/v1/invoices/{first['invoice_id']}/issue"))

    assert first["number"] == "US01-2026-000001"
    assert second["number"] == "US01-2026-000002"
    assert german["number"] == "DE01-2026-000001"
    assert next_year["number"] == "US01-2027-000001"
    assert first["status"] == "issued" and first["issued_at"]
    assert reissued == first
    issued = ok(client.get("/erp/v1/invoices", params={"status": "issued", "period": "2026-11"}))
    assert [i["number"] for i in issued["items"]] == ["US01-2026-000002"]


def test_payments_apply_up_to_the_balance(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    invoice = issued_invoice(client, refs, amounts=("1000.00",), tax="0")
    invoice_id = invoice["invoice_id"]
    payment = {"invoice_id": invoice_id, "currency": "USD", "received_on": "2026-11-15"}

    partial = ok(
        client.post("/erp/v1/payments", json={**payment, "payment_id": "P1", "amount": "400.00"}),
        201,
    )
    after_partial = ok(client.get(f"/erp/v1/invoices/{invoice_id}"))
    over = ok(
        client.post("/erp/v1/payments", json={**payment, "payment_id": "P2", "amount": "700"}), 201
    )
    repeat = client.post(
        "/erp/v1/payments", json={**payment, "payment_id": "P2", "amount": "700.00"}
    )
    conflict = client.post("/erp/v1/payments", json={**payment, "payment_id": "P2", "amount": "1"})
    paid = ok(client.get(f"/erp/v1/invoices/{invoice_id}"))

    assert (partial["applied_amount"], partial["unapplied_amount"]) == ("400.00", "0.00")
    assert partial["contract_id"] == refs.contract_id
    assert after_partial["status"] == "partially_paid"
    assert (after_partial["amount_paid"], after_partial["balance"]) == ("400.00", "600.00")
    assert (over["applied_amount"], over["unapplied_amount"]) == ("600.00", "100.00")
    assert repeat.status_code == 200 and repeat.json() == over
    assert conflict.status_code == 409 and conflict.json()["existing_id"] == "P2"
    assert (paid["status"], paid["amount_paid"], paid["balance"]) == ("paid", "1000.00", "0.00")
    listed = ok(client.get("/erp/v1/payments", params={"invoice_id": invoice_id}))
    assert [p["payment_id"] for p in listed["items"]] == ["P1", "P2"]
    stats = ok(client.get("/_admin/stats"))
    assert stats["writes"]["erp"]["POST /payments"] == 2


def test_payments_need_an_issued_invoice_in_its_currency(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    draft = create_invoice(client, refs)
    payment = {"payment_id": "P1", "amount": "10.00", "received_on": "2026-11-15"}

    not_issued = client.post(
        "/erp/v1/payments", json={**payment, "invoice_id": draft["invoice_id"], "currency": "USD"}
    )
    client.post(f"/erp/v1/invoices/{draft['invoice_id']}/issue")
    wrong_currency = client.post(
        "/erp/v1/payments", json={**payment, "invoice_id": draft["invoice_id"], "currency": "EUR"}
    )
    unknown = client.post(
        "/erp/v1/payments", json={**payment, "invoice_id": "INV-999999", "currency": "USD"}
    )

    assert error(not_issued)["code"] == "invoice_not_issued"
    assert error(wrong_currency) == {
        "code": "currency_mismatch",
        "message": f"invoice {draft['invoice_id']} is in USD",
        "field": "currency",
    }
    assert error(unknown)["field"] == "invoice_id"


def test_exchange_rates(client: httpx.Client) -> None:
    params = {"from": "USD", "to": "JPY", "date": "2026-10-31"}
    usd_jpy = ok(client.get("/erp/v1/exchange-rates", params=params))
    jpy_usd = ok(
        client.get("/erp/v1/exchange-rates", params={**params, "from": "JPY", "to": "USD"})
    )
    same = ok(client.get("/erp/v1/exchange-rates", params={**params, "to": "USD"}))
    none = client.get("/erp/v1/exchange-rates", params={**params, "to": "CHF"})

    assert usd_jpy["from"] == "USD" and usd_jpy["date"] == "2026-10-31"
    assert 140 < float(usd_jpy["rate"]) < 160
    assert abs(float(usd_jpy["rate"]) * float(jpy_usd["rate"]) - 1) < 1e-4
    assert same["rate"] == "1.00000000"
    assert none.status_code == 404
