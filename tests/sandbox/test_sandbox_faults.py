"""Fault rules: failures, rate limits, latency and lost answers, as the connectors meet them."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.sandbox.support import ok

ACCOUNT = {"crm_account_id": "HOOLI-US", "name": "Hooli", "country": "US", "region": "CA"}


def add_rule(client: httpx.Client, **rule: Any) -> dict[str, Any]:
    created: dict[str, Any] = ok(client.post("/_admin/faults", json=rule), 201)
    return created


def test_a_503_with_times_1_fails_once_then_recovers(client: httpx.Client) -> None:
    rule = add_rule(client, system="erp", path_prefix="/legal-entities", status=503, times=1)

    failed = client.get("/erp/v1/legal-entities")
    recovered = client.get("/erp/v1/legal-entities")

    assert rule["id"]
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "unavailable"
    assert "Retry-After" not in failed.headers
    assert recovered.status_code == 200
    rules = ok(client.get("/_admin/faults"))["rules"]
    assert [(r["id"], r["fired"]) for r in rules] == [(rule["id"], 1)]
    assert ok(client.get("/_admin/stats"))["faults_fired"] == 1


def test_a_429_answers_retry_after(client: httpx.Client) -> None:
    add_rule(client, system="tax", status=429, retry_after_s=7, method="get")

    limited = client.get("/tax/v1/jurisdictions")
    other_method = client.post("/tax/v1/addresses/validate", json={"country": "GB"})

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.json()["error"]["code"] == "rate_limited"
    assert other_method.status_code == 200


def test_rules_match_only_their_system_and_prefix(client: httpx.Client) -> None:
    add_rule(client, system="erp", path_prefix="/erp/v1/invoices", status=500)

    assert client.get("/erp/v1/customers").status_code == 200
    assert client.get("/crm/v1/accounts").status_code == 200
    broken = client.get("/erp/v1/invoices")
    assert broken.status_code == 500
    assert ok(client.get("/_admin/faults"))["rules"][0]["path_prefix"] == "/invoices"


def test_phase_after_writes_then_fails_and_the_retry_replays(client: httpx.Client) -> None:
    add_rule(client, system="crm", path_prefix="/accounts", status=503, times=1, phase="after")
    headers = {"Idempotency-Key": "lost-answer"}

    lost = client.post("/crm/v1/accounts", json=ACCOUNT, headers=headers)
    retried = client.post("/crm/v1/accounts", json=ACCOUNT, headers=headers)

    assert lost.status_code == 503
    assert retried.status_code == 201
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["crm_account_id"] == "HOOLI-US"
    stats = ok(client.get("/_admin/stats"))
    assert stats["writes"]["crm"] == {"POST /accounts": 1}
    assert stats["requests"]["crm"] == {"POST /accounts": 2}


def test_latency_delays_without_failing(client: httpx.Client) -> None:
    add_rule(client, system="crm", latency_ms=300, times=1)

    started = time.monotonic()
    slow = client.get("/crm/v1/accounts/ACME-US")
    elapsed = time.monotonic() - started

    assert slow.status_code == 200
    assert elapsed >= 0.3


def test_probability_zero_never_fires(client: httpx.Client) -> None:
    add_rule(client, system="crm", status=503, probability=0)

    assert all(client.get("/crm/v1/accounts").status_code == 200 for _ in range(5))


def test_rules_are_replaced_and_cleared(client: httpx.Client) -> None:
    add_rule(client, system="crm", status=503)
    replaced = client.put(
        "/_admin/faults",
        json={"rules": [{"system": "psa", "status": 500}, {"system": "tax", "latency_ms": 10}]},
    )
    invalid = client.post("/_admin/faults", json={"system": "crm"})

    assert [r["system"] for r in ok(replaced)["rules"]] == ["psa", "tax"]
    assert client.get("/crm/v1/accounts").status_code == 200
    assert invalid.status_code == 422
    ok(client.delete("/_admin/faults"))
    assert ok(client.get("/_admin/faults")) == {"rules": []}
