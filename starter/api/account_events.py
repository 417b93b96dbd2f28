"""Account changes from the CRM: c2c's ``account.updated`` and Salesforce's Change Data Capture.

``POST /webhooks/crm`` takes c2c's dialect, ``{"id", "type": "account.updated", "data":
{crm_account_id, changes: {name?, billing_address?, country?, region?, billing_email?,
parent_crm_account_id?, tax_id?}, changed_at?}}``. ``POST /webhooks/salesforce`` takes an
``AccountChangeEvent`` as Salesforce's streaming API shapes it (``{"data": {"payload":
{"ChangeEventHeader": ..., <fields>}, "event": {"replayId"}}}``), posted by whatever forwards
the org's CDC stream (a Pub/Sub API subscriber, a middleware), signed as every c2c webhook;
each record it names becomes one ``account.updated`` with the id
``salesforce-cdc:<replayId>:<recordId>``.

Either is recorded in the ledger and delivered by the event queue, in arrival order per
account, to the account's ``AccountSync`` workflow (signal-with-start), which applies it to the
ERP customers of the account's running contracts.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from c2c import json_input
from c2c.logs import get_logger
from c2c.settings import Settings
from domain.account_sync import (
    ACCOUNT_SYNC_WORKFLOW,
    ACCOUNT_UPDATED,
    SIGNAL_ACCOUNT_CHANGED,
    AccountChange,
    AccountSyncInput,
    AccountUpdated,
    account_workflow_id,
)
from ledger import InboundSource
from starter.api.context import ApiContext
from starter.api.errors import ApiError, from_validation, invalid_field
from starter.ops.dead_letters import Answer

log = get_logger("c2c.api.accounts")

#: The prefix of the event ids given to Salesforce's change events.
CDC_EVENT_PREFIX = "salesforce-cdc"
#: Salesforce's address components, as c2c's account fields take them.
_ADDRESS_PARTS = {"Street": "street", "City": "city", "PostalCode": "postal_code"}
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def parse_account_event(body: bytes) -> tuple[str, AccountUpdated]:
    """The event id and data of an ``account.updated`` event.

    Raises:
        ApiError: ``400`` for a body that is not JSON; ``422`` naming the field at fault.
    """
    try:
        payload = json_input.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise invalid_field(None, "the body must be a JSON object")
    if payload.get("type") != ACCOUNT_UPDATED:
        raise invalid_field(
            "type", f"unknown event type {payload.get('type')!r}; expected {ACCOUNT_UPDATED}"
        )
    event_id = payload.get("id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 255:
        raise invalid_field("id", "an event id (1 to 255 characters) is required")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise invalid_field("data", "must be an object")
    try:
        return event_id.strip(), AccountUpdated.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, ("data",)) from None


def order_key(crm_account_id: str) -> str:
    """What the event queue orders an account's events by: its sync workflow's id."""
    return account_workflow_id(crm_account_id)


def queued_answer(body: bytes) -> Answer:
    """The answer to a valid ``account.updated`` taken by the event queue.

    Raises:
        ApiError: the event is not valid (it is then refused, and kept as a dead letter).
    """
    _, event = parse_account_event(body)
    return _accepted(event.crm_account_id, queued=True)


def _accepted(crm_account_id: str, *, queued: bool) -> Answer:
    body = {
        "crm_account_id": crm_account_id,
        "workflow_id": account_workflow_id(crm_account_id),
        "run_id": None,
        "duplicate": False,
        **({"queued": True} if queued else {}),
    }
    return Answer(202, body, order_key(crm_account_id))


async def process_crm(context: ApiContext, body: bytes) -> Answer:
    """Hand an account's change to its ``AccountSync`` workflow, starting it if needed."""
    event_id, event = parse_account_event(body)
    change = AccountChange(
        event_id=event_id,
        source=InboundSource.CRM.value,
        crm_account_id=event.crm_account_id,
        changes=event.changes.model_dump(mode="json", exclude_unset=True),
        changed_at=event.changed_at,
    )
    client = await context.temporal()
    handle = await client.start_workflow(
        ACCOUNT_SYNC_WORKFLOW,
        AccountSyncInput(crm_account_id=event.crm_account_id),
        id=account_workflow_id(event.crm_account_id),
        task_queue=context.settings.task_queue,
        start_signal=SIGNAL_ACCOUNT_CHANGED,
        start_signal_args=[change],
    )
    log.info("account change sent", event_id=event_id, crm_account_id=event.crm_account_id)
    answer = _accepted(event.crm_account_id, queued=False)
    return Answer(
        answer.status, {**answer.body, "run_id": handle.result_run_id}, answer.contract_id
    )


def cdc_events(body: bytes, settings: Settings) -> list[bytes]:
    """The ``account.updated`` events (as webhook bodies) of one ``AccountChangeEvent``.

    Raises:
        ApiError: ``400`` for a body that is not JSON; ``422`` naming what is missing or not an
            account's update.
    """
    try:
        message = json_input.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    data = message.get("data") if isinstance(message, dict) else None
    if not isinstance(data, dict):
        raise invalid_field("data", "must be an object: the change event")
    payload, replay = data.get("payload"), data.get("event")
    if not isinstance(payload, dict):
        raise invalid_field("data.payload", "must be an object")
    replay_id = replay.get("replayId") if isinstance(replay, dict) else None
    if not isinstance(replay_id, int | str) or isinstance(replay_id, bool) or replay_id == "":
        raise invalid_field("data.event.replayId", "Field required")
    header = payload.get("ChangeEventHeader")
    if not isinstance(header, dict):
        raise invalid_field("data.payload.ChangeEventHeader", "Field required")
    if header.get("entityName") != "Account":
        raise invalid_field(
            "data.payload.ChangeEventHeader.entityName",
            f"only Account changes are synced, not {header.get('entityName')!r}",
        )
    if header.get("changeType") != "UPDATE":
        raise invalid_field(
            "data.payload.ChangeEventHeader.changeType",
            f"only UPDATE changes are synced, not {header.get('changeType')!r}",
        )
    record_ids = header.get("recordIds")
    if (
        not isinstance(record_ids, list)
        or not record_ids
        or not all(isinstance(r, str) and r for r in record_ids)
    ):
        raise invalid_field("data.payload.ChangeEventHeader.recordIds", "a list of record ids")
    changes = account_changes(payload, settings)
    if not changes:
        raise invalid_field("data.payload", "the event changes no field that c2c syncs")
    changed_at = header.get("commitTimestamp")
    events = []
    for record_id in record_ids:
        event = {
            "id": f"{CDC_EVENT_PREFIX}:{replay_id}:{record_id}",
            "type": ACCOUNT_UPDATED,
            "data": {
                "crm_account_id": record_id,
                "changes": changes,
                **({"changed_at": _from_millis(changed_at)} if isinstance(changed_at, int) else {}),
            },
        }
        events.append(json.dumps(event, separators=(",", ":")).encode())
    return events


def account_changes(payload: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """c2c's account fields from the fields of a change event (only those it carries)."""
    header = payload.get("ChangeEventHeader") or {}
    nulled = set(header.get("nulledFields") or [])
    custom = settings.salesforce_fields

    def carried(field: str) -> bool:
        return field in payload and (payload[field] is not None or field in nulled)

    out: dict[str, Any] = {}
    if carried("Name"):
        out["name"] = payload["Name"]
    if carried("ParentId"):
        out["parent_crm_account_id"] = payload["ParentId"]
    for key, field in (
        ("tax_id", custom.get("tax_id")),
        ("billing_email", custom.get("billing_email")),
    ):
        if field and carried(field):
            out[key] = payload[field]
    address = payload.get("BillingAddress")
    if isinstance(address, dict):
        country = address.get("CountryCode") or address.get("Country")
        if isinstance(country, str) and _COUNTRY.match(country):
            out["country"] = country
        region = address.get("StateCode") or address.get("State")
        if "StateCode" in address or "State" in address:
            out["region"] = region
        street = {
            ours: address[theirs] for theirs, ours in _ADDRESS_PARTS.items() if theirs in address
        }
        if street:
            out["billing_address"] = street
    return out


def _from_millis(millis: int) -> str | None:
    try:
        return datetime.fromtimestamp(millis / 1000, UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return None  # not a time: the change stands without it
