"""The OpenAPI description of the signed webhooks' bodies and signature header.

The webhooks read their raw bytes (the signature covers them), so FastAPI cannot derive their
request bodies from a parameter. This module states them, exactly as the processors in
``starter.api.webhooks`` accept them, so a sender (or a fuzzer) can build a valid event from the
document alone:

- the envelope ``{"id", "type", "data"}`` keeps members it does not know; ``id`` may be any
  JSON value (a string or an integer is the event's id; anything else, or none, makes the
  body's digest the id);
- ``data`` is the event type's payload: strict for the CLM's events (c2c's own canonical
  payloads), open to added members for the PSA's and the payment gateway's.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from domain.account_sync import ACCOUNT_UPDATED, AccountUpdated
from domain.models import NOT_BLANK, ContractApproved, MilestoneCompleted, PaymentReceived
from domain.names import SIGNATURE_HEADER


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` references written out in place, so that it
    can sit inside an operation (FastAPI adds only its own models to the components)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                merged = {
                    **defs[ref.removeprefix("#/$defs/")],
                    **{k: v for k, v in node.items() if k != "$ref"},
                }
                return resolve(merged)
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _payload(
    model: type[BaseModel], *, open_to_more: bool, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    schema = _inline(model.model_json_schema())
    if open_to_more:
        schema.pop("additionalProperties", None)
    for name in required:  # optional in the model, required of this event: and never null
        field = schema["properties"][name]
        variants = [v for v in field.pop("anyOf", []) if v.get("type") != "null"]
        if variants:
            field.update(variants[0])
        field.pop("default", None)
    if required:
        schema["required"] = sorted({*schema.get("required", []), *required})
    return schema


def _event(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "title": kind,
        "required": ["type", "data"],
        "properties": {
            "id": {
                "description": "the sender's event id: a string or an integer; another value, "
                "or none, makes the body's SHA-256 the id",
            },
            "type": {"type": "string", "enum": [kind]},
            "data": data,
        },
    }


def _milestone_completed() -> dict[str, Any]:
    schema = _payload(MilestoneCompleted, open_to_more=True)
    schema["properties"]["contract_id"] = {
        "type": "string",
        "minLength": 1,
        "pattern": NOT_BLANK,
        "description": "the contract the milestone belongs to",
    }
    schema["required"] = sorted({*schema.get("required", []), "contract_id"})
    return schema


#: One valid event of each type, as a sender would post it.
EXAMPLES: dict[str, dict[str, Any]] = {
    "contract.approved": {
        "id": "evt-0001",
        "type": "contract.approved",
        "data": {
            "contract_id": "SOW-2026-0042",
            "version": 1,
            "title": "Data platform build-out",
            "customer": {
                "crm_account_id": "ACME-US",
                "name": "Acme Corp",
                "parent_crm_account_id": "ACME-HOLD",
                "country": "US",
                "region": "CA",
            },
            "legal_entity": "US01",
            "currency": "USD",
            "billing_model": "time_and_materials",
            "start_date": "2026-10-01",
            "end_date": "2027-03-31",
            "payment_terms_days": 30,
            "rate_card": [{"role": "Senior Consultant", "hourly_rate": "200.00"}],
            "not_to_exceed": "150000.00",
            "approved_at": "2026-09-28T10:00:00Z",
            "approved_by": "U-1042",
        },
    },
    "milestone.completed": {
        "id": "evt-0002",
        "type": "milestone.completed",
        "data": {
            "contract_id": "SOW-2026-0042",
            "milestone_id": "M1",
            "completed_on": "2026-11-14",
        },
    },
    "payment.succeeded": {
        "id": "evt-0003",
        "type": "payment.succeeded",
        "data": {
            "payment_id": "PAY-7781",
            "invoice_id": "INV-000123",
            "amount": "1250.00",
            "currency": "USD",
            "received_on": "2026-12-01",
        },
    },
}


def body(*events: dict[str, Any]) -> dict[str, Any]:
    """An operation's ``openapi_extra``: its signed JSON body, one of ``events``, and the
    signature header it must carry."""
    schema = events[0] if len(events) == 1 else {"oneOf": list(events)}
    example = EXAMPLES.get(events[0]["title"])
    return {
        "parameters": [
            {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "description": "`t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>` "
                "with the webhook secret (docs/api.md, Webhooks)",
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema, **({"example": example} if example else {})}
            },
        },
    }


#: What ``contract.approved`` must also satisfy, across its fields, that a JSON schema cannot
#: state; each is a ``422`` naming the field.
APPROVAL_RULES = (
    "`end_date` is not before `start_date`",
    "every amount (rates, milestones, `not_to_exceed`, `retainer_monthly_amount`) has at most "
    "the currency's decimal places and at most its digits before the decimal point "
    "(docs/api.md, Limits)",
    "roles on the rate card and milestone ids are each used once",
    "a `time_and_materials` contract has a rate card, a `fixed_fee` one milestones, a "
    "`retainer` one a monthly amount",
)


def clm(amended: type[BaseModel]) -> dict[str, Any]:
    """The CLM's events; ``amended`` is the model ``contract.amended`` data is read with."""
    approved = _payload(ContractApproved, open_to_more=False)
    approved["description"] = "A contract approved in the CLM. Beyond this schema: " + "; ".join(
        APPROVAL_RULES
    )
    return body(
        _event("contract.approved", approved),
        _event("contract.amended", _payload(amended, open_to_more=False)),
    )


def psa() -> dict[str, Any]:
    return body(_event("milestone.completed", _milestone_completed()))


#: What ``payment.succeeded`` must also satisfy that a JSON schema cannot state.
PAYMENT_RULES = (
    "`amount` has at most the currency's decimal places and digits before the decimal point "
    "(docs/api.md, Limits)",
    "`invoice_id` is an invoice of one of c2c's contracts (else `404 unknown_invoice`)",
)


def payments() -> dict[str, Any]:
    paid = _payload(PaymentReceived, open_to_more=True, required=("invoice_id",))
    paid["description"] = "A payment that succeeded at the gateway. Beyond this schema: " + (
        "; ".join(PAYMENT_RULES)
    )
    return body(_event("payment.succeeded", paid))


def crm() -> dict[str, Any]:
    """``account.updated``: its ``id`` is required (the change is applied once by it)."""
    updated = _payload(AccountUpdated, open_to_more=False)
    updated["properties"]["changes"]["minProperties"] = 1
    event = _event(ACCOUNT_UPDATED, updated)
    event["required"] = ["id", "type", "data"]
    event["properties"]["id"] = {"type": "string", "minLength": 1, "maxLength": 255}
    return body(event)


def salesforce() -> dict[str, Any]:
    """A Salesforce ``AccountChangeEvent`` in the streaming API's JSON shape."""
    header = {
        "type": "object",
        "required": ["entityName", "changeType", "recordIds"],
        "properties": {
            "entityName": {"type": "string", "enum": ["Account"]},
            "changeType": {"type": "string", "enum": ["UPDATE"]},
            "recordIds": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "pattern": "^[A-Za-z0-9]{15,18}$"},
            },
            "commitTimestamp": {"type": "integer", "minimum": 0, "maximum": 10**14},
            "changedFields": {"type": "array", "items": {"type": "string"}},
            "nulledFields": {"type": "array", "items": {"type": "string"}},
        },
    }
    event = {
        "type": "object",
        "title": "AccountChangeEvent",
        "required": ["data"],
        "properties": {
            "channel": {"type": "string"},
            "data": {
                "type": "object",
                "required": ["payload", "event"],
                "properties": {
                    "schema": {"type": "string"},
                    "payload": {
                        "type": "object",
                        "required": ["ChangeEventHeader", "Name"],
                        "properties": {
                            "ChangeEventHeader": header,
                            "Name": {"type": "string", "minLength": 1, "maxLength": 255},
                        },
                    },
                    "event": {
                        "type": "object",
                        "required": ["replayId"],
                        "properties": {"replayId": {"type": "integer", "minimum": 0}},
                    },
                },
            },
        },
    }
    return body(event)
