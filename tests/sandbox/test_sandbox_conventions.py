"""Conventions shared by every system: idempotency, errors, paging, natural keys."""

from __future__ import annotations

import asyncio

import httpx

from tests.sandbox.support import ok

ACCOUNT = {"crm_account_id": "HOOLI-US", "name": "Hooli", "country": "US", "region": "CA"}


def test_idempotent_replay_answers_the_stored_response_and_writes_once(
    client: httpx.Client,
) -> None:
    headers = {"Idempotency-Key": "create-hooli"}
    first = client.post("/crm/v1/accounts", json=ACCOUNT, headers=headers)
    again = client.post("/crm/v1/accounts", json=ACCOUNT, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    stats = ok(client.get("/_admin/stats"))
    assert stats["requests"]["crm"]["POST /accounts"] == 2
    assert stats["writes"]["crm"]["POST /accounts"] == 1


def test_same_key_with_another_request_is_a_conflict(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "k-1"}
    ok(client.post("/crm/v1/accounts", json=ACCOUNT, headers=headers), 201)

    other = client.post("/crm/v1/accounts", json={**ACCOUNT, "name": "Other"}, headers=headers)

    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"


def test_keys_are_per_system(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "shared"}
    ok(client.post("/crm/v1/accounts", json=ACCOUNT, headers=headers), 201)
    entity = {"code": "FR01", "name": "c2c Conseil", "country": "FR", "functional_currency": "EUR"}

    created = client.post("/erp/v1/legal-entities", json=entity, headers=headers)

    assert created.status_code == 201
    assert "Idempotent-Replayed" not in created.headers


def test_a_refused_request_keeps_no_answer_under_its_key(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "retry-after-fix"}
    child = {**ACCOUNT, "crm_account_id": "HOOLI-EU", "parent_crm_account_id": "HOOLI-US"}
    refused = client.post("/crm/v1/accounts", json=child, headers=headers)
    ok(client.post("/crm/v1/accounts", json=ACCOUNT), 201)

    retried = client.post("/crm/v1/accounts", json=child, headers=headers)

    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "parent_crm_account_id"
    assert retried.status_code == 201


async def test_concurrent_requests_with_one_key_execute_once(fresh_sandbox: str) -> None:
    headers = {"Idempotency-Key": "parallel"}
    async with httpx.AsyncClient(base_url=fresh_sandbox) as http:
        answers = await asyncio.gather(
            *(http.post("/crm/v1/accounts", json=ACCOUNT, headers=headers) for _ in range(8))
        )

    assert [a.status_code for a in answers] == [201] * 8
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 7
    async with httpx.AsyncClient(base_url=fresh_sandbox) as http:
        stats = (await http.get("/_admin/stats")).json()
    assert stats["writes"]["crm"]["POST /accounts"] == 1


def test_validation_errors_name_the_field(client: httpx.Client) -> None:
    missing = client.post("/crm/v1/accounts", json={"crm_account_id": "X", "country": "US"})
    nested = client.post(
        "/tax/v1/calculate",
        json={
            "customer": {"country": "DE"},
            "legal_entity": "DE01",
            "currency": "EUR",
            "date": "2026-10-31",
            "lines": [{"line_id": "L1", "amount": "1.00"}, {"line_id": "L2", "amount": 1.5}],
        },
    )
    not_json = client.post(
        "/crm/v1/accounts", content=b"{", headers={"Content-Type": "application/json"}
    )

    assert missing.status_code == 422
    assert missing.json() == {
        "error": {"code": "validation_error", "message": "Field required", "field": "name"}
    }
    assert nested.status_code == 422
    assert nested.json()["error"]["field"] == "lines.1.amount"
    assert "float" in nested.json()["error"]["message"]
    assert not_json.status_code == 422
    assert not_json.json()["error"]["code"] == "invalid_json"


def test_unknown_records_and_routes_are_404_in_the_error_format(client: httpx.Client) -> None:
    record = client.get("/crm/v1/accounts/NOPE")
    route = client.get("/crm/v1/nothing-here")

    assert record.status_code == route.status_code == 404
    assert record.json()["error"]["code"] == route.json()["error"]["code"] == "not_found"


def test_lists_page_in_creation_order_with_a_stable_cursor(client: httpx.Client) -> None:
    for i in range(5):
        body = {"type": "call", "subject": f"call {i}"}
        ok(client.post("/crm/v1/accounts/ACME-US/activities", json=body), 201)

    first = ok(client.get("/crm/v1/accounts/ACME-US/activities", params={"limit": 2}))
    late = {"type": "note", "subject": "late"}
    ok(client.post("/crm/v1/accounts/ACME-US/activities", json=late), 201)
    subjects = [i["subject"] for i in first["items"]]
    cursor = first["next"]
    while cursor:
        page = ok(
            client.get("/crm/v1/accounts/ACME-US/activities", params={"limit": 2, "cursor": cursor})
        )
        subjects += [i["subject"] for i in page["items"]]
        cursor = page["next"]

    assert subjects == [f"call {i}" for i in range(5)] + ["late"]


def test_list_limits(client: httpx.Client) -> None:
    everything = ok(client.get("/crm/v1/accounts"))
    too_many = client.get("/crm/v1/accounts", params={"limit": 501})
    bad_cursor = client.get("/crm/v1/accounts", params={"cursor": "abc"})

    assert len(everything["items"]) == 6 and everything["next"] is None
    assert too_many.status_code == 422 and too_many.json()["error"]["field"] == "limit"
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["field"] == "cursor"


def test_natural_key_duplicate_is_409_with_the_existing_id(client: httpx.Client) -> None:
    body = {
        "crm_account_id": "GLOBEX-UK",
        "name": "Globex Ltd",
        "country": "GB",
        "legal_entity": "UK01",
        "currency": "GBP",
    }
    created = ok(client.post("/erp/v1/customers", json=body), 201)

    again = client.post("/erp/v1/customers", json={**body, "name": "Globex"})

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate"
    assert again.json()["existing_id"] == created["customer_id"]
    found = ok(client.get("/erp/v1/customers", params={"crm_account_id": "GLOBEX-UK"}))
    assert [c["customer_id"] for c in found["items"]] == [created["customer_id"]]
