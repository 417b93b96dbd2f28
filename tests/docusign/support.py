"""What the DocuSign tests share: an envelope's custom fields for a valid contract, and the
Connect message a completed envelope sends."""

from __future__ import annotations

from typing import Any


def contract_fields(contract_id: str, **changes: str) -> dict[str, str]:
    """Text custom fields describing a time-and-materials SOW for the demo account ACME-US,
    as c2c's default mapping reads them (``changes`` replace or add fields)."""
    fields = {
        "contract_id": contract_id,
        "contract_title": "Data platform build-out",
        "crm_account_id": "ACME-US",
        "customer_name": "Acme Corp",
        "customer_country": "US",
        "customer_region": "CA",
        "c2c.customer.parent_crm_account_id": "ACME-HOLD",
        "legal_entity": "US01",
        "currency": "USD",
        "billing_model": "time_and_materials",
        "start_date": "2026-10-01",
        "end_date": "2026-10-31",
        "payment_terms_days": "30",
        "rate_card": "Senior Consultant=200.00; Analyst=120.00",
        "not_to_exceed": "50000.00",
    }
    fields.update(changes)
    return fields


def connect_message(
    envelope_id: str,
    text_fields: dict[str, str] | None,
    *,
    event: str = "envelope-completed",
    list_fields: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A JSON (SIM) Connect message for an envelope (no custom fields when ``None``)."""
    summary: dict[str, Any] = {
        "status": event.removeprefix("envelope-"),
        "emailSubject": "Please sign: Data platform build-out",
        "envelopeId": envelope_id,
        "completedDateTime": "2026-09-28T10:00:00.1234567Z",
        "sender": {"userName": "Contracts Desk", "email": "contracts@example.com"},
    }
    if text_fields is not None:
        summary["customFields"] = {
            "textCustomFields": [
                {"fieldId": str(n), "name": k, "value": v}
                for n, (k, v) in enumerate(text_fields.items())
            ],
            "listCustomFields": [
                {"fieldId": "99", "name": k, "value": v, "listItems": [v]}
                for k, v in (list_fields or {}).items()
            ],
        }
    return {
        "event": event,
        "apiVersion": "v2.1",
        "retryCount": 0,
        "configurationId": 10501,
        "generatedDateTime": "2026-09-28T10:00:01.0000000Z",
        "data": {
            "accountId": "acct-1",
            "userId": "user-1",
            "envelopeId": envelope_id,
            "envelopeSummary": summary,
        },
    }
