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


def reminder(**changes: object) -> dict[str, object]:
    return {
        "activity_id": "C-1001:dunning:INV-000001:1",
        "type": "dunning_reminder",
        "subject": "Payment reminder 1 for invoice US01-2026-000001",
        "body": "Invoice US01-2026-000001 was due on 2026-11-30; 1608.75 USD is outstanding.",
        "related_to": {"invoice_id": "INV-000001", "contract_id": "C-1001"},
        "occurred_on": "2026-12-07",
        **changes,
    }


def test_a_dunning_reminder_is_recorded_once(client: httpx.Client) -> None:
    url = "/crm/v1/accounts/ACME-US/activities"
    headers = {"Idempotency-Key": "dunning:INV-000001:1"}

    created = ok(client.post(url, json=reminder(), headers=headers), 201)
    replayed = client.post(url, json=reminder(), headers=headers)
    repeated = client.post(url, json=reminder())
    conflict = client.post(url, json=reminder(subject="Final payment reminder"))

    assert created == {
        "activity_id": "C-1001:dunning:INV-000001:1",
        "crm_account_id": "ACME-US",
        "type": "dunning_reminder",
        "subject": "Payment reminder 1 for invoice US01-2026-000001",
        "body": "Invoice US01-2026-000001 was due on 2026-11-30; 1608.75 USD is outstanding.",
        "related_to": {"invoice_id": "INV-000001", "contract_id": "C-1001"},
        "occurred_at": "2026-12-07T00:00:00Z",
        "occurred_on": "2026-12-07",
    }
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json() == created
    assert repeated.status_code == 200 and repeated.json() == created
    assert conflict.status_code == 409
    assert conflict.json()["existing_id"] == "C-1001:dunning:INV-000001:1"
    stats = ok(client.get("/_admin/stats"))
    assert stats["writes"]["crm"]["POST /accounts/{crm_account_id}/activities"] == 1


def test_activities_are_listed_by_type_and_invoice(client: httpx.Client) -> None:
    url = "/crm/v1/accounts/ACME-US/activities"
    ok(client.post(url, json={"type": "meeting", "subject": "QBR"}), 201)
    ok(client.post(url, json=reminder()), 201)
    second = reminder(
        activity_id="C-1001:dunning:INV-000002:1",
        related_to={"invoice_id": "INV-000002"},
    )
    ok(client.post(url, json=second), 201)
    ok(client.post(url, json=reminder(activity_id="C-1001:dunning:INV-000001:2")), 201)

    everything = ok(client.get(url))["items"]
    reminders = ok(client.get(url, params={"type": "dunning_reminder"}))["items"]
    of_invoice = ok(client.get(url, params={"invoice_id": "INV-000001"}))["items"]

    assert [a["type"] for a in everything] == ["meeting", *["dunning_reminder"] * 3]
    assert everything[0]["activity_id"] == "ACT-000001" and everything[0]["related_to"] is None
    assert len(reminders) == 3
    assert [a["activity_id"] for a in of_invoice] == [
        "C-1001:dunning:INV-000001:1",
        "C-1001:dunning:INV-000001:2",
    ]


def test_activity_fields_are_checked(client: httpx.Client) -> None:
    url = "/crm/v1/accounts/ACME-US/activities"

    both_times = client.post(url, json=reminder(occurred_at="2026-12-07T09:00:00Z"))
    bad_id = client.post(url, json=reminder(activity_id="reminder #1"))
    bad_relation = client.post(url, json=reminder(related_to={"order_id": "O-1"}))
    bad_day = client.post(url, json=reminder(occurred_on="2026-12-32"))

    assert [r.json()["error"]["field"] for r in (both_times, bad_id, bad_relation, bad_day)] == [
        "occurred_on",
        "activity_id",
        "related_to.order_id",
        "occurred_on",
    ]
    assert all(r.status_code == 422 for r in (both_times, bad_id, bad_relation, bad_day))


def test_an_account_change_is_reported_as_account_updated(client: httpx.Client) -> None:
    changed = ok(
        client.patch(
            "/crm/v1/accounts/ACME-US",
            json={
                "name": "Acme Corporation",
                "billing_email": "billing@acme.example",
                "tax_id": None,
            },
        )
    )
    assert (changed["name"], changed["billing_email"], changed["tax_id"]) == (
        "Acme Corporation",
        "billing@acme.example",
        None,
    )
    [sent] = ok(client.get("/_admin/webhooks", params={"type": "account.updated"}))["items"]
    assert sent["url"].endswith("/webhooks/crm")
    assert sent["payload"]["data"] == {
        "crm_account_id": "ACME-US",
        "changes": {
            "name": "Acme Corporation",
            "billing_email": "billing@acme.example",
            "tax_id": None,
        },
    }
    # The same values again change nothing and report nothing.
    ok(client.patch("/crm/v1/accounts/ACME-US", json={"name": "Acme Corporation"}))
    assert len(ok(client.get("/_admin/webhooks", params={"type": "account.updated"}))["items"]) == 1

    cleared = client.patch("/crm/v1/accounts/ACME-US", json={"name": None})
    own_parent = client.patch("/crm/v1/accounts/ACME-US", json={"parent_crm_account_id": "ACME-US"})
    assert (cleared.status_code, cleared.json()["error"]["field"]) == (422, "name")
    assert (own_parent.status_code, own_parent.json()["error"]["field"]) == (
        422,
        "parent_crm_account_id",
    )
