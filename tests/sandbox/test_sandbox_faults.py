"""Fault rules: failures, rate limits, latency and lost answers, as the connectors meet them."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

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


# --- The vendor-shaped fakes ----------------------------------------------------------------

STRIPE_KEY = {"Authorization": "Bearer sk_test_c2c"}


def test_vendor_failures_come_in_each_vendors_own_error_shape(client: httpx.Client) -> None:
    for vendor in ("netsuite", "business-central", "avatax", "stripe", "salesforce", "docusign"):
        add_rule(client, system=vendor, status=503, times=1)
    add_rule(client, system="ironclad", status=429, times=1)

    netsuite = client.get("/vendors/netsuite/services/rest/record/v1/customer")
    bc = client.get("/vendors/bc/v2.0/tenant/production/api/v2.0/companies")
    avatax = client.get("/vendors/avatax/api/v2/utilities/ping")
    stripe = client.get("/vendors/stripe/v1/payment_intents", headers=STRIPE_KEY)
    salesforce = client.get("/vendors/salesforce/services/data/v60.0/limits")
    docusign = client.get("/vendors/docusign/restapi/v2.1/accounts/a/envelopes/e")
    ironclad = client.get("/vendors/ironclad/public/api/v1/workflows/w")

    assert [r.status_code for r in (netsuite, bc, avatax, stripe, salesforce, docusign)] == [
        503
    ] * 6
    assert netsuite.json()["o:errorDetails"][0]["o:errorCode"] == "UNEXPECTED_ERROR"
    assert netsuite.json()["status"] == 503
    assert bc.json()["error"]["code"] == "Internal_ServerError"
    assert avatax.json()["error"]["details"][0]["number"] == 503
    assert avatax.headers["X-Correlation-Id"]
    assert stripe.json()["error"]["type"] == "api_error"
    assert salesforce.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert docusign.json()["errorCode"] == "SERVICE_UNAVAILABLE"
    assert ironclad.status_code == 429 and ironclad.json()["code"] == "TOO_MANY_REQUESTS"
    assert "Retry-After" not in ironclad.headers
    rules = ok(client.get("/_admin/faults"))["rules"]
    assert all(r["fired"] == 1 for r in rules)


def test_a_vendor_429_has_retry_after_only_where_the_vendor_sends_it(client: httpx.Client) -> None:
    add_rule(client, system="business-central", status=429, retry_after_s=2, times=1)
    add_rule(client, system="stripe", status=429, times=1)
    add_rule(client, system="netsuite", status=429, times=1)

    bc = client.get("/vendors/bc/v2.0/tenant/production/api/v2.0/companies")
    stripe = client.get("/vendors/stripe/v1/payment_intents", headers=STRIPE_KEY)
    netsuite = client.get("/vendors/netsuite/services/rest/record/v1/customer")

    assert bc.status_code == 429 and bc.headers["Retry-After"] == "2"
    assert bc.json()["error"]["code"] == "Application_TooManyRequests"
    assert stripe.status_code == 429 and "Retry-After" not in stripe.headers
    assert stripe.json()["error"] == {
        "type": "invalid_request_error",
        "message": stripe.json()["error"]["message"],
    }
    assert netsuite.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"


def test_a_dropped_connection_after_a_vendor_write_keeps_the_write(client: httpx.Client) -> None:
    add_rule(
        client,
        system="stripe",
        path_prefix="/v1/payment_intents",
        method="post",
        drop=True,
        phase="after",
        times=1,
    )
    created = {"amount": "1234", "currency": "usd", "metadata[c2c_invoice_id]": "INV-DROP"}

    with pytest.raises(httpx.TransportError):
        client.post("/vendors/stripe/v1/payment_intents", data=created, headers=STRIPE_KEY)

    found = client.get(
        "/vendors/stripe/v1/payment_intents/search",
        params={"query": "metadata['c2c_invoice_id']:'INV-DROP'"},
        headers=STRIPE_KEY,
    )
    assert [i["amount"] for i in ok(found)["data"]] == [1234]
    assert ok(client.get("/_admin/stats"))["faults_fired"] == 1


def test_a_sandbox_system_connection_dropped_before_the_work_writes_nothing(
    client: httpx.Client,
) -> None:
    add_rule(client, system="crm", path_prefix="/accounts", method="post", drop=True, times=1)

    with pytest.raises(httpx.TransportError):
        client.post("/crm/v1/accounts", json=ACCOUNT)

    assert client.get("/crm/v1/accounts/HOOLI-US").status_code == 404
