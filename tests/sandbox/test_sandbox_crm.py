"""CRM: accounts, their hierarchy and activities."""

from __future__ import annotations

import httpx

from tests.sandbox.support import ok


def test_hierarchy_lists_ancestors_nearest_first(client: httpx.Client) -> None:
    child = {
        "crm_account_id": "ACME-US-WEST",
        "name": "Acme West",
        "country": "US",
        "region": "CA",
        "parent_crm_account_id": "ACME-US",
        "billing_email": "west@acme.example",
    }
    created = ok(client.post("/crm/v1/accounts", json=child), 201)

    hierarchy = ok(client.get("/crm/v1/accounts/ACME-US-WEST/hierarchy"))
    children = ok(client.get("/crm/v1/accounts", params={"parent_crm_account_id": "ACME-US"}))

    assert created["status"] == "active" and created["created_at"].endswith("Z")
    assert hierarchy["account"] == created
    assert [a["crm_account_id"] for a in hierarchy["ancestors"]] == ["ACME-US", "ACME-HOLD"]
    assert [a["crm_account_id"] for a in children["items"]] == ["ACME-US-WEST"]


def test_account_fields_are_checked(client: httpx.Client) -> None:
    bad_country = client.post(
        "/crm/v1/accounts", json={"crm_account_id": "X", "name": "X", "country": "usa"}
    )
    bad_email = client.post(
        "/crm/v1/accounts",
        json={"crm_account_id": "X", "name": "X", "country": "US", "billing_email": "nope"},
    )
    typo = client.post(
        "/crm/v1/accounts", json={"crm_account_id": "X", "name": "X", "country": "US", "regoin": 1}
    )

    assert [r.json()["error"]["field"] for r in (bad_country, bad_email, typo)] == [
        "country",
        "billing_email",
        "regoin",
    ]


def test_activities_belong_to_an_existing_account(client: httpx.Client) -> None:
    body = {"type": "meeting", "subject": "QBR", "occurred_at": "2026-10-01T09:30:00Z"}

    created = ok(client.post("/crm/v1/accounts/GLOBEX-UK/activities", json=body), 201)
    missing = client.post("/crm/v1/accounts/NOBODY/activities", json=body)

    assert created["activity_id"] == "ACT-000001"
    assert created["occurred_at"] == "2026-10-01T09:30:00Z"
    assert missing.status_code == 404
