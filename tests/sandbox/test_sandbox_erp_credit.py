"""ERP: credit notes, unapplied cash, and applying cash or customer credit to invoices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.sandbox.support import (
    ErpContractRefs,
    create_erp_contract,
    create_invoice,
    error,
    issued_invoice,
    ok,
)


def credit_note(
    credit_note_id: str = "CN-A",
    *,
    amounts: tuple[tuple[str, str], ...] = (("200.00", "14.50"),),
    **changes: Any,
) -> dict[str, Any]:
    """A credit note request whose figures add up unless told otherwise."""
    subtotal = sum((Decimal(a) for a, _ in amounts), Decimal(0))
    tax = sum((Decimal(t) for _, t in amounts), Decimal(0))
    return {
        "credit_note_id": credit_note_id,
        "reason": "Hours billed twice",
        "lines": [
            {
                "line_id": str(i + 1),
                "description": "Hours billed twice",
                "amount": a,
                "tax_amount": t,
            }
            for i, (a, t) in enumerate(amounts)
        ],
        "subtotal": str(subtotal),
        "tax": str(tax),
        "total": str(subtotal + tax),
        **changes,
    }


def paid_invoice(client: httpx.Client, refs: ErpContractRefs, period: str) -> dict[str, Any]:
    """An issued invoice of 1000.00 (no tax), paid in full by payment ``P-{period}``."""
    invoice = issued_invoice(client, refs, period=period, amounts=("1000.00",), tax="0")
    ok(
        client.post(
            "/erp/v1/payments",
            json={
                "payment_id": f"P-{period}",
                "invoice_id": invoice["invoice_id"],
                "amount": "1000.00",
                "currency": "USD",
                "received_on": "2026-11-20",
            },
        ),
        201,
    )
    return invoice


def unapplied_payment(
    client: httpx.Client, refs: ErpContractRefs, payment_id: str = "P-ADV", amount: str = "500.00"
) -> dict[str, Any]:
    payment: dict[str, Any] = ok(
        client.post(
            "/erp/v1/payments",
            json={
                "payment_id": payment_id,
                "invoice_id": None,
                "contract_id": refs.contract_id,
                "amount": amount,
                "currency": refs.currency,
                "received_on": "2026-10-05",
            },
        ),
        201,
    )
    return payment


def credit_notes_url(invoice: dict[str, Any]) -> str:
    return f"/erp/v1/invoices/{invoice['invoice_id']}/credit-notes"


def test_a_credit_note_lowers_the_open_balance(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    invoice = issued_invoice(client, refs, amounts=("1000.00",), tax="72.50")
    body = credit_note()

    created = ok(client.post(credit_notes_url(invoice), json=body), 201)
    again = client.post(credit_notes_url(invoice), json={**body, "total": "214.5"})
    other = client.post(credit_notes_url(invoice), json={**body, "reason": "Goodwill"})
    after = ok(client.get(f"/erp/v1/invoices/{invoice['invoice_id']}"))

    assert {k: created[k] for k in ("credit_note_id", "number", "invoice_id", "contract_id")} == {
        "credit_note_id": "CN-A",
        "number": "CN-00001",
        "invoice_id": invoice["invoice_id"],
        "contract_id": refs.contract_id,
    }
    assert (created["subtotal"], created["tax"], created["total"]) == ("200.00", "14.50", "214.50")
    assert (created["applied_amount"], created["unapplied_amount"]) == ("214.50", "0.00")
    assert created["currency"] == "USD" and created["reason"] == "Hours billed twice"
    assert created["created_at"].endswith("Z")
    assert again.status_code == 200 and again.json() == created
    assert other.status_code == 409 and other.json()["existing_id"] == "CN-A"
    assert (after["credited_amount"], after["credit_applied"]) == ("214.50", "214.50")
    assert (after["balance"], after["status"], after["total"]) == ("858.00", "issued", "1072.50")
    stats = ok(client.get("/_admin/stats"))
    assert stats["writes"]["erp"]["POST /invoices/{invoice_id}/credit-notes"] == 1


def test_crediting_the_whole_invoice_makes_it_credited(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    invoice = issued_invoice(client, refs, amounts=("1000.00",), tax="72.50")

    first = ok(client.post(credit_notes_url(invoice), json=credit_note("CN-1")), 201)
    rest = ok(
        client.post(
            credit_notes_url(invoice),
            json=credit_note("CN-2", amounts=(("800.00", "58.00"),)),
        ),
        201,
    )
    over = client.post(
        credit_notes_url(invoice), json=credit_note("CN-3", amounts=(("0.01", "0"),))
    )
    credited = ok(client.get(f"/erp/v1/invoices/{invoice['invoice_id']}"))

    assert (first["number"], rest["number"]) == ("CN-00001", "CN-00002")
    assert (credited["status"], credited["credited_amount"], credited["balance"]) == (
        "credited",
        "1072.50",
        "0.00",
    )
    assert error(over) == {
        "code": "exceeds_invoice",
        "message": (
            f"invoice {invoice['invoice_id']} can be credited 0.00 USD more before tax, not 0.01"
        ),
        "field": "subtotal",
    }


def test_credit_notes_never_credit_more_tax_than_the_invoice_carried(
    client: httpx.Client,
) -> None:
    refs = create_erp_contract(client)
    invoice = issued_invoice(client, refs, amounts=("1000.00",), tax="72.50")
    ok(
        client.post(
            credit_notes_url(invoice), json=credit_note("CN-1", amounts=(("0.10", "0.01"),))
        ),
        201,
    )

    # 999.90 at 7.25 % rounds to 72.49, but only 72.49 of tax is left: 72.50 would be a cent
    # more than the invoice carried, though the total (1072.40) would still fit.
    over = client.post(
        credit_notes_url(invoice), json=credit_note("CN-2", amounts=(("999.90", "72.50"),))
    )
    assert error(over) == {
        "code": "exceeds_invoice",
        "message": (
            f"invoice {invoice['invoice_id']} can be credited 72.49 USD more in tax, not 72.50"
        ),
        "field": "tax",
    }
    rest = credit_note("CN-2", amounts=(("999.90", "72.49"),))
    ok(client.post(credit_notes_url(invoice), json=rest), 201)
    credited = ok(client.get(f"/erp/v1/invoices/{invoice['invoice_id']}"))
    assert (credited["status"], credited["balance"]) == ("credited", "0.00")


def test_crediting_a_paid_invoice_leaves_customer_credit(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    paid = paid_invoice(client, refs, "2026-10")
    open_invoice = issued_invoice(client, refs, period="2026-11", amounts=("300.00",), tax="0")

    note = ok(
        client.post(credit_notes_url(paid), json=credit_note(amounts=(("250.00", "0"),))), 201
    )
    still_paid = ok(client.get(f"/erp/v1/invoices/{paid['invoice_id']}"))
    balances = ok(client.get(f"/erp/v1/contracts/{refs.erp_contract_id}/balances"))
    url = "/erp/v1/credit-notes/CN-A/applications"
    application = {"application_id": "APP-1", "invoice_id": open_invoice["invoice_id"]}
    applied = ok(client.post(url, json={**application, "amount": "250.00"}), 201)
    again = client.post(url, json={**application, "amount": "250"})
    other = client.post(url, json={**application, "amount": "100.00"})
    settled = ok(client.get(f"/erp/v1/invoices/{open_invoice['invoice_id']}"))
    used = ok(client.get("/erp/v1/credit-notes/CN-A"))

    assert (note["applied_amount"], note["unapplied_amount"]) == ("0.00", "250.00")
    assert (still_paid["status"], still_paid["balance"]) == ("paid", "0.00")
    assert still_paid["credited_amount"] == "250.00"
    assert balances["unapplied_cash"] == "250.00"
    assert applied == {
        **applied,
        "application_id": "APP-1",
        "source": "credit_note",
        "credit_note_id": "CN-A",
        "payment_id": None,
        "invoice_id": open_invoice["invoice_id"],
        "amount": "250.00",
        "currency": "USD",
    }
    assert again.status_code == 200 and again.json() == applied
    assert other.status_code == 409 and other.json()["existing_id"] == "APP-1"
    assert (settled["balance"], settled["credit_applied"], settled["amount_paid"]) == (
        "50.00",
        "250.00",
        "0.00",
    )
    assert settled["status"] == "issued"
    assert (used["applied_amount"], used["unapplied_amount"]) == ("250.00", "0.00")
    assert [a["application_id"] for a in used["applications"]] == ["APP-1"]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (credit_note(subtotal="199.00", total="213.50"), "subtotal", "lines_do_not_add_up"),
        (credit_note(tax="14.00", total="214.00"), "tax", "lines_do_not_add_up"),
        (credit_note(total="214.00"), "total", "total_mismatch"),
        (credit_note(amounts=(("200.005", "0"),)), "lines.0.amount", "invalid_amount"),
        (credit_note(amounts=(("10", "-1"),)), "lines.0.tax_amount", "invalid_amount"),
        (credit_note(amounts=(("0", "0"),)), "total", "invalid_amount"),
        (credit_note(amounts=(("2000.00", "0"),)), "subtotal", "exceeds_invoice"),
        (credit_note(amounts=(("100.00", "72.51"),)), "tax", "exceeds_invoice"),
        (credit_note(lines=[]), "lines", "validation_error"),
        (credit_note(credit_note_id="CN 1"), "credit_note_id", "validation_error"),
    ],
)
def test_credit_note_rules_name_the_field(
    client: httpx.Client, body: dict[str, Any], field: str, code: str
) -> None:
    refs = create_erp_contract(client)
    invoice = issued_invoice(client, refs, amounts=("1000.00",), tax="72.50")

    refused = client.post(credit_notes_url(invoice), json=body)

    assert (error(refused)["field"], error(refused)["code"]) == (field, code)
    assert ok(client.get("/erp/v1/credit-notes"))["items"] == []


def test_only_an_issued_invoice_is_credited(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    draft = create_invoice(client, refs)

    refused = client.post(credit_notes_url(draft), json=credit_note())
    missing = client.post("/erp/v1/invoices/INV-999999/credit-notes", json=credit_note())

    assert (error(refused)["code"], error(refused)["field"]) == ("invoice_not_issued", "invoice_id")
    assert missing.status_code == 404


def test_credit_notes_are_listed_by_contract_and_invoice(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    october = issued_invoice(client, refs, period="2026-10")
    november = issued_invoice(client, refs, period="2026-11", invoice_date="2026-11-30")
    for note_id, invoice in (("CN-1", october), ("CN-2", november), ("CN-3", october)):
        ok(client.post(credit_notes_url(invoice), json=credit_note(note_id)), 201)

    first = ok(
        client.get("/erp/v1/credit-notes", params={"contract_id": refs.contract_id, "limit": 2})
    )
    second = ok(client.get("/erp/v1/credit-notes", params={"cursor": first["next"], "limit": 2}))
    of_october = ok(
        client.get("/erp/v1/credit-notes", params={"invoice_id": october["invoice_id"]})
    )

    assert [n["credit_note_id"] for n in first["items"]] == ["CN-1", "CN-2"]
    assert [n["credit_note_id"] for n in second["items"]] == ["CN-3"]
    assert second["next"] is None
    assert [n["credit_note_id"] for n in of_october["items"]] == ["CN-1", "CN-3"]


def test_a_payment_without_an_invoice_is_unapplied_cash(client: httpx.Client) -> None:
    refs = create_erp_contract(client)

    payment = unapplied_payment(client, refs)
    listed = ok(client.get("/erp/v1/payments", params={"contract_id": refs.contract_id}))
    balances = ok(client.get(f"/erp/v1/contracts/{refs.erp_contract_id}/balances"))

    assert payment == {
        **payment,
        "invoice_id": None,
        "contract_id": refs.contract_id,
        "amount": "500.00",
        "applied_amount": "0.00",
        "unapplied_amount": "500.00",
        "applications": [],
    }
    assert [p["payment_id"] for p in listed["items"]] == ["P-ADV"]
    assert balances["unapplied_cash"] == "500.00"


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"contract_id": None}, "contract_id", "contract_required"),
        ({"contract_id": "C-NOPE"}, "contract_id", "unknown_contract"),
        ({"currency": "EUR"}, "currency", "currency_mismatch"),
        ({"amount": "0"}, "amount", "invalid_amount"),
    ],
)
def test_unapplied_cash_needs_a_contract_in_its_currency(
    client: httpx.Client, changes: dict[str, Any], field: str, code: str
) -> None:
    refs = create_erp_contract(client)
    body = {
        "payment_id": "P-ADV",
        "invoice_id": None,
        "contract_id": refs.contract_id,
        "amount": "500.00",
        "currency": "USD",
        "received_on": "2026-10-05",
        **changes,
    }

    refused = client.post("/erp/v1/payments", json=body)

    assert (error(refused)["field"], error(refused)["code"]) == (field, code)


def test_a_payment_for_another_contracts_invoice_is_refused(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    invoice = issued_invoice(client, create_erp_contract(client, "C-OTHER"))

    refused = client.post(
        "/erp/v1/payments",
        json={
            "payment_id": "P-X",
            "invoice_id": invoice["invoice_id"],
            "contract_id": refs.contract_id,
            "amount": "10.00",
            "currency": "USD",
            "received_on": "2026-11-01",
        },
    )

    assert (error(refused)["field"], error(refused)["code"]) == ("contract_id", "contract_mismatch")


def test_unapplied_cash_is_applied_to_an_invoice_once(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    unapplied_payment(client, refs)
    invoice = issued_invoice(client, refs, amounts=("400.00",), tax="0")
    url = "/erp/v1/payments/P-ADV/applications"
    body = {"application_id": "APP-1", "invoice_id": invoice["invoice_id"], "amount": "300.00"}
    headers = {"Idempotency-Key": "apply-P-ADV"}

    applied = ok(client.post(url, json=body, headers=headers), 201)
    replayed = client.post(url, json=body, headers=headers)
    repeated = client.post(url, json=body)
    conflict = client.post(url, json={**body, "amount": "299.00"})
    payment = ok(client.get("/erp/v1/payments/P-ADV"))
    after = ok(client.get(f"/erp/v1/invoices/{invoice['invoice_id']}"))
    of_invoice = ok(client.get("/erp/v1/payments", params={"invoice_id": invoice["invoice_id"]}))
    listed = ok(client.get(url))

    assert applied == {
        **applied,
        "source": "payment",
        "payment_id": "P-ADV",
        "credit_note_id": None,
        "contract_id": refs.contract_id,
        "amount": "300.00",
    }
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json() == applied
    assert repeated.status_code == 200 and repeated.json() == applied
    assert conflict.status_code == 409 and conflict.json()["existing_id"] == "APP-1"
    assert (payment["applied_amount"], payment["unapplied_amount"]) == ("300.00", "200.00")
    assert [a["application_id"] for a in payment["applications"]] == ["APP-1"]
    assert (after["amount_paid"], after["balance"], after["status"]) == (
        "300.00",
        "100.00",
        "partially_paid",
    )
    assert [p["payment_id"] for p in of_invoice["items"]] == ["P-ADV"]
    assert [a["application_id"] for a in listed["items"]] == ["APP-1"]
    stats = ok(client.get("/_admin/stats"))
    assert stats["writes"]["erp"]["POST /payments/{payment_id}/applications"] == 1


@pytest.mark.parametrize(
    ("target", "amount", "field", "code"),
    [
        ("open", "600.00", "amount", "exceeds_unapplied"),
        ("small", "150.00", "amount", "exceeds_balance"),
        ("open", "10.001", "amount", "invalid_amount"),
        ("open", "0", "amount", "invalid_amount"),
        ("draft", "10.00", "invoice_id", "invoice_not_issued"),
        ("other_contract", "10.00", "invoice_id", "contract_mismatch"),
        ("missing", "10.00", "invoice_id", "unknown_invoice"),
    ],
)
def test_application_rules_name_the_field(
    client: httpx.Client, target: str, amount: str, field: str, code: str
) -> None:
    refs = create_erp_contract(client)
    unapplied_payment(client, refs)
    invoices = {
        "open": issued_invoice(client, refs, period="2026-10", amounts=("1000.00",), tax="0"),
        "small": issued_invoice(client, refs, period="2026-11", amounts=("100.00",), tax="0"),
        "draft": create_invoice(client, refs, period="2026-12"),
        "other_contract": issued_invoice(client, create_erp_contract(client, "C-OTHER")),
        "missing": {"invoice_id": "INV-999999"},
    }
    body = {
        "application_id": "APP-1",
        "invoice_id": invoices[target]["invoice_id"],
        "amount": amount,
    }

    refused = client.post("/erp/v1/payments/P-ADV/applications", json=body)

    assert (error(refused)["field"], error(refused)["code"]) == (field, code)
    assert ok(client.get("/erp/v1/payments/P-ADV"))["unapplied_amount"] == "500.00"


def test_applications_of_unknown_sources_are_not_found(client: httpx.Client) -> None:
    body = {"application_id": "APP-1", "invoice_id": "INV-000001", "amount": "1.00"}

    assert client.post("/erp/v1/payments/P-NONE/applications", json=body).status_code == 404
    assert client.post("/erp/v1/credit-notes/CN-NONE/applications", json=body).status_code == 404


def test_an_application_id_names_one_source(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    unapplied_payment(client, refs, "P-1")
    unapplied_payment(client, refs, "P-2")
    invoice = issued_invoice(client, refs, amounts=("400.00",), tax="0")
    body = {"application_id": "APP-1", "invoice_id": invoice["invoice_id"], "amount": "100.00"}

    ok(client.post("/erp/v1/payments/P-1/applications", json=body), 201)
    other_payment = client.post("/erp/v1/payments/P-2/applications", json=body)

    assert other_payment.status_code == 409
    assert other_payment.json()["existing_id"] == "APP-1"
