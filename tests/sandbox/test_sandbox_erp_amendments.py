"""ERP: contract amendments add rate revisions and milestones and replace terms, once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox.support import ErpContractRefs, create_erp_contract, error, ok


def amendment(amendment_id: str = "A-1", **changes: Any) -> dict[str, Any]:
    return {
        "amendment_id": amendment_id,
        "effective_date": "2026-07-01",
        "end_date": "2027-06-30",
        "not_to_exceed": "250000.00",
        "contract_value": "240000.00",
        "rate_card": [
            {"role": "consultant", "hourly_rate": "165.00", "effective_from": "2026-07-01"},
            {"role": "architect", "hourly_rate": "210.00", "effective_from": "2026-07-01"},
        ],
        "add_milestones": [
            {"milestone_id": "M9", "name": "Phase 2 go-live", "amount": "20000.00"},
        ],
        "reason": "Phase 2 signed",
        **changes,
    }


def amend_url(refs: ErpContractRefs) -> str:
    return f"/erp/v1/contracts/{refs.erp_contract_id}/amendments"


def test_an_amendment_changes_the_contract_once(client: httpx.Client) -> None:
    refs = create_erp_contract(client)

    amended = ok(client.post(amend_url(refs), json=amendment()), 201)
    repeated = client.post(amend_url(refs), json=amendment(not_to_exceed="250000"))
    conflict = client.post(amend_url(refs), json=amendment(reason="Phase 3"))
    read_back = ok(client.get(f"/erp/v1/contracts/{refs.erp_contract_id}"))

    assert amended["rate_card"] == [
        {"role": "consultant", "hourly_rate": "150", "effective_from": "2026-01-01"},
        {"role": "consultant", "hourly_rate": "165.00", "effective_from": "2026-07-01"},
        {"role": "architect", "hourly_rate": "210.00", "effective_from": "2026-07-01"},
    ]
    assert amended["milestones"] == [
        {"milestone_id": "M9", "name": "Phase 2 go-live", "amount": "20000.00", "due_date": None}
    ]
    assert (amended["start_date"], amended["end_date"]) == ("2026-01-01", "2027-06-30")
    assert (amended["not_to_exceed"], amended["contract_value"]) == ("250000.00", "240000.00")
    [applied] = amended["amendments"]
    assert applied == {
        "amendment_id": "A-1",
        "effective_date": "2026-07-01",
        "reason": "Phase 2 signed",
        "applied_at": applied["applied_at"],
    }
    assert applied["applied_at"].endswith("Z")
    assert repeated.status_code == 200 and repeated.json() == amended
    assert conflict.status_code == 409 and conflict.json()["existing_id"] == "A-1"
    assert read_back == amended


def test_a_later_amendment_keeps_what_it_does_not_name(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    ok(client.post(amend_url(refs), json=amendment()), 201)
    headers = {"Idempotency-Key": "amend-A-2"}
    later = {
        "amendment_id": "A-2",
        "effective_date": "2026-09-01",
        "rate_card": [
            {"role": "consultant", "hourly_rate": "170.00", "effective_from": "2026-07-01"}
        ],
        "reason": "Rate corrected",
    }

    amended = ok(client.post(amend_url(refs), json=later, headers=headers), 201)
    replayed = client.post(amend_url(refs), json=later, headers=headers)

    assert [(r["role"], r["hourly_rate"], r["effective_from"]) for r in amended["rate_card"]] == [
        ("consultant", "150", "2026-01-01"),
        ("architect", "210.00", "2026-07-01"),
        ("consultant", "170.00", "2026-07-01"),
    ]
    assert amended["end_date"] == "2027-06-30"
    assert amended["not_to_exceed"] == "250000.00"
    assert [m["milestone_id"] for m in amended["milestones"]] == ["M9"]
    assert [a["amendment_id"] for a in amended["amendments"]] == ["A-1", "A-2"]
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json() == amended


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"end_date": "2025-12-31"}, "end_date", "invalid_dates"),
        ({"effective_date": "2025-12-01"}, "effective_date", "invalid_dates"),
        (
            {"add_milestones": [{"milestone_id": "M1", "name": "Again", "amount": "1.00"}]},
            "add_milestones.0.milestone_id",
            "milestone_exists",
        ),
        (
            {
                "add_milestones": [
                    {"milestone_id": "M7", "name": "A", "amount": "1.00"},
                    {"milestone_id": "M7", "name": "B", "amount": "2.00"},
                ]
            },
            "add_milestones.1.milestone_id",
            "duplicate_key",
        ),
        (
            {"add_milestones": [{"milestone_id": "M7", "name": "A", "amount": "0"}]},
            "add_milestones.0.amount",
            "invalid_amount",
        ),
        (
            {
                "rate_card": [
                    {"role": "consultant", "hourly_rate": "165.005", "effective_from": "2026-07-01"}
                ]
            },
            "rate_card.0.hourly_rate",
            "invalid_amount",
        ),
        (
            {
                "rate_card": [
                    {"role": "consultant", "hourly_rate": "165", "effective_from": "2025-07-01"}
                ]
            },
            "rate_card.0.effective_from",
            "invalid_dates",
        ),
        (
            {
                "rate_card": [
                    {"role": "consultant", "hourly_rate": "165", "effective_from": "2026-07-01"},
                    {"role": "consultant", "hourly_rate": "166", "effective_from": "2026-07-01"},
                ]
            },
            "rate_card.1.effective_from",
            "duplicate_key",
        ),
        ({"not_to_exceed": "-1"}, "not_to_exceed", "invalid_amount"),
        ({"contract_value": "1.001"}, "contract_value", "invalid_amount"),
        ({"reason": ""}, "reason", "validation_error"),
        ({"add_milestone": []}, "add_milestone", "validation_error"),
    ],
)
def test_amendment_rules_name_the_field(
    client: httpx.Client, changes: dict[str, Any], field: str, code: str
) -> None:
    refs = create_erp_contract(client)
    ok(
        client.post(
            amend_url(refs),
            json={
                "amendment_id": "A-0",
                "effective_date": "2026-01-01",
                "add_milestones": [{"milestone_id": "M1", "name": "Design", "amount": "100.00"}],
                "reason": "Milestone M1 added",
            },
        ),
        201,
    )

    refused = client.post(amend_url(refs), json=amendment(**changes))

    assert (error(refused)["field"], error(refused)["code"]) == (field, code)
    contract = ok(client.get(f"/erp/v1/contracts/{refs.erp_contract_id}"))
    assert [a["amendment_id"] for a in contract["amendments"]] == ["A-0"]


def test_amending_an_unknown_contract_is_not_found(client: httpx.Client) -> None:
    assert (
        client.post("/erp/v1/contracts/CTR-999999/amendments", json=amendment()).status_code == 404
    )


def test_a_billing_schedule_says_when_milestones_are_invoiced(client: httpx.Client) -> None:
    refs = create_erp_contract(client, schedules=False)
    url = f"/erp/v1/contracts/{refs.erp_contract_id}/billing-schedule"
    schedule = {
        "frequency": "monthly",
        "bill_on": "period_close",
        "milestone_invoicing": "on_completion",
        "lines": [{"kind": "milestone", "milestone_id": "M1"}],
    }

    contract = ok(client.put(url, json=schedule))
    refused = client.put(url, json={**schedule, "milestone_invoicing": "weekly"})

    assert contract["billing_schedule"]["milestone_invoicing"] == "on_completion"
    assert error(refused)["field"] == "milestone_invoicing"


def test_an_amendment_changes_and_removes_milestones(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    ok(client.post(amend_url(refs), json=amendment()), 201)

    edited = ok(
        client.post(
            amend_url(refs),
            json=amendment(
                "A-2",
                add_milestones=[{"milestone_id": "M10", "name": "Phase 3", "amount": "5.00"}],
                change_milestones=[{"milestone_id": "M9", "amount": "25000.00"}],
            ),
        ),
        201,
    )
    unknown = client.post(
        amend_url(refs), json=amendment("A-3", add_milestones=[], remove_milestones=["M8"])
    )
    twice = client.post(
        amend_url(refs),
        json=amendment(
            "A-4",
            add_milestones=[],
            change_milestones=[{"milestone_id": "M9", "name": "x"}],
            remove_milestones=["M9"],
        ),
    )
    removed = ok(
        client.post(
            amend_url(refs), json=amendment("A-5", add_milestones=[], remove_milestones=["M10"])
        ),
        201,
    )

    assert [(m["milestone_id"], m["amount"]) for m in edited["milestones"]] == [
        ("M9", "25000.00"),
        ("M10", "5.00"),
    ]
    assert edited["milestones"][0]["name"] == "Phase 2 go-live"
    assert (error(unknown)["field"], error(unknown)["code"]) == (
        "remove_milestones.0",
        "unknown_milestone",
    )
    assert error(twice)["code"] == "duplicate_key"
    assert [m["milestone_id"] for m in removed["milestones"]] == ["M9"]
