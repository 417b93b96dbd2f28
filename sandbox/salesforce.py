"""Salesforce stand-in (``/vendors/salesforce``): the REST API paths c2c's client uses.

It follows Salesforce's REST API reference for what c2c sends and reads:

- ``POST /services/oauth2/token``: OAuth 2.0 client credentials (client id and secret in a
  ``Basic`` header or the form); answers ``access_token`` and ``instance_url``.
- ``GET|PATCH /services/data/vXX.X/sobjects/{Account|Task}/{id}`` (sObject rows; ``fields``
  picks the fields read), ``POST /services/data/vXX.X/sobjects/{Account|Task}/`` (create).
- ``GET /services/data/vXX.X/query?q=``: a subset of SOQL, the one c2c sends:
  ``SELECT f, ... FROM Account|Task [WHERE f = 'v' | f LIKE 'v' | f = null [AND ...]]
  [ORDER BY f [ASC|DESC]] [LIMIT n]``.
- ``GET /services/data/vXX.X/limits``: ``DailyApiRequests`` (``Max``, ``Remaining``).

Each data call needs ``Authorization: Bearer <access_token>``, counts against the org's daily
API budget and answers ``Sforce-Limit-Info: api-usage=<used>/<max>``; past the budget a call
is ``403 REQUEST_LIMIT_EXCEEDED``. Errors are Salesforce's: a JSON list of
``{"message", "errorCode", "fields"}``.

Test and demo control, not part of Salesforce: ``PUT /_admin/limits`` sets the budget;
``POST /_admin/accounts/{id}/change`` changes an account as a user would and sends its Change
Data Capture event (``AccountChangeEvent``, in the streaming API's JSON shape) to c2c's
``/webhooks/salesforce``, signed as every sandbox webhook is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs
from uuid import uuid4

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import JSON
from sqlmodel import Field, Session, col, select

from sandbox.db import Database, Row, UtcDateTime, find, next_number, utcnow
from sandbox.errors import invalid, not_found
from sandbox.webhooks import WebhookDispatcher

router = APIRouter(tags=["salesforce"])

#: The sandbox org's connected app: what ``C2C_SALESFORCE_CLIENT_ID``/``_SECRET`` default to.
CLIENT_ID = "c2c"
CLIENT_SECRET = "sandbox"
ORG_ID = "00D000000000001AAA"
USER_ID = "005000000000001AAA"
#: The daily API request allocation of a new sandbox org.
DAILY_MAX = 100_000
#: Where CDC events go, on the webhook target (c2c's API).
CDC_PATH = "/webhooks/salesforce"
_TOKEN_KEY = b"c2c-sandbox-salesforce"
_VERSION = re.compile(r"^v\d{2,3}\.\d$")

#: The key prefix of each object's ids, and the fields the stand-in knows.
OBJECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Account": (
        "001",
        (
            "Id",
            "Name",
            "ParentId",
            "BillingStreet",
            "BillingCity",
            "BillingState",
            "BillingStateCode",
            "BillingPostalCode",
            "BillingCountry",
            "BillingCountryCode",
            "Active__c",
            "Tax_Number__c",
            "Billing_Email__c",
            "CreatedDate",
            "LastModifiedDate",
            "IsDeleted",
        ),
    ),
    "Task": (
        "00T",
        (
            "Id",
            "WhatId",
            "Subject",
            "Description",
            "ActivityDate",
            "Status",
            "Priority",
            "CreatedDate",
            "LastModifiedDate",
            "IsDeleted",
        ),
    ),
}
#: Fields the system sets; a write naming one is refused.
READ_ONLY = frozenset({"Id", "CreatedDate", "LastModifiedDate", "IsDeleted"})
#: The address fields of the ``BillingAddress`` compound field, by component.
ADDRESS = {
    "BillingStreet": "Street",
    "BillingCity": "City",
    "BillingState": "State",
    "BillingStateCode": "StateCode",
    "BillingPostalCode": "PostalCode",
    "BillingCountry": "Country",
    "BillingCountryCode": "CountryCode",
}
MAX_LENGTH = {"Name": 255, "Subject": 255, "Description": 32_000}


class SfRecord(Row, table=True):
    """One sObject record; its fields as Salesforce names them."""

    __tablename__ = "sf_record"

    sobject: str = Field(index=True)
    record_id: str = Field(unique=True)
    fields: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(sa_type=UtcDateTime)


class SfApiUsage(Row, table=True):
    """The org's daily API budget: one row."""

    __tablename__ = "sf_api_usage"

    used: int = 0
    maximum: int = DAILY_MAX


class SalesforceError(Exception):
    """An answer in Salesforce's error shape."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        body = [{"message": self.message, "errorCode": self.code, "fields": self.fields}]
        return JSONResponse(body, status_code=self.status, headers=headers)


# --- OAuth ---------------------------------------------------------------------------------


def _token_for(client_id: str) -> str:
    digest = hmac.new(_TOKEN_KEY, client_id.encode(), hashlib.sha256).hexdigest()
    return f"{ORG_ID[:15]}!{client_id}.{digest}"


def _valid_token(token: str) -> bool:
    _, _, rest = token.partition("!")
    client_id, _, _ = rest.rpartition(".")
    return bool(client_id) and hmac.compare_digest(token, _token_for(client_id))


@router.post("/services/oauth2/token")
async def token(request: Request) -> JSONResponse:
    """OAuth 2.0 client credentials flow."""
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    client_id, secret = form.get("client_id"), form.get("client_secret")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            client_id = secret = None
    if form.get("grant_type") != "client_credentials":
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    if client_id != CLIENT_ID or secret != CLIENT_SECRET:
        return _oauth_error("invalid_client", "invalid client credentials")
    base = str(request.base_url).rstrip("/")
    instance_url = f"{base}/vendors/salesforce"
    issued_at = str(int(time.time() * 1000))
    access_token = _token_for(client_id)
    signature = base64.b64encode(
        hmac.new(_TOKEN_KEY, f"{instance_url}{issued_at}".encode(), hashlib.sha256).digest()
    ).decode()
    return JSONResponse(
        {
            "access_token": access_token,
            "instance_url": instance_url,
            "id": f"{base}/id/{ORG_ID}/{USER_ID}",
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
            "scope": "api",
        }
    )


def _oauth_error(code: str, description: str) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=400)


# --- The REST API --------------------------------------------------------------------------


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _spend(request: Request, version: str) -> str:
    """Authenticate a data call and count it; the ``Sforce-Limit-Info`` value to answer."""
    if not _VERSION.match(version):
        raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Bearer ") or not _valid_token(auth[7:].strip()):
        raise SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
    with _db(request).write() as session:
        usage = _usage(session)
        if usage.used >= usage.maximum:
            raise SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        usage.used += 1
        session.add(usage)
        return f"api-usage={usage.used}/{usage.maximum}"


def _usage(session: Session) -> SfApiUsage:
    usage = session.exec(select(SfApiUsage)).first()
    if usage is None:
        usage = SfApiUsage()
        session.add(usage)
        session.flush()
    return usage


def _answer(body: Any, limit_info: str, status: int = 200) -> Response:
    headers = {"Sforce-Limit-Info": limit_info}
    if body is None:
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


async def _handle(request: Request, version: str, work: Any) -> Response:
    try:
        limit_info = _spend(request, version)
    except SalesforceError as exc:
        return exc.response()
    try:
        body, status = await work()
    except SalesforceError as exc:
        return exc.response({"Sforce-Limit-Info": limit_info})
    return _answer(body, limit_info, status)


@router.get("/services/data/{version}/limits")
@router.get("/services/data/{version}/limits/")
async def limits(version: str, request: Request) -> Response:
    async def work() -> tuple[Any, int]:
        with _db(request).read() as session:
            usage = session.exec(select(SfApiUsage)).first() or SfApiUsage()
            remaining = max(usage.maximum - usage.used, 0)
        return {
            "DailyApiRequests": {"Max": usage.maximum, "Remaining": remaining},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
        }, 200

    return await _handle(request, version, work)


@router.get("/services/data/{version}/sobjects/{sobject}/{record_id}")
async def get_record(version: str, sobject: str, record_id: str, request: Request) -> Response:
    async def work() -> tuple[Any, int]:
        _known(sobject)
        fields = request.query_params.get("fields")
        wanted = [f.strip() for f in fields.split(",")] if fields else None
        if wanted:
            _check_fields(sobject, wanted)
        with _db(request).read() as session:
            record = _record(session, sobject, record_id)
            return _out(record, version, wanted), 200

    return await _handle(request, version, work)


@router.patch("/services/data/{version}/sobjects/{sobject}/{record_id}")
async def update_record(version: str, sobject: str, record_id: str, request: Request) -> Response:
    async def work() -> tuple[Any, int]:
        _known(sobject)
        values = _writable(sobject, await _json(request))
        with _db(request).write() as session:
            record = _record(session, sobject, record_id)
            _apply(session, record, values)
        return None, 204

    return await _handle(request, version, work)


@router.post("/services/data/{version}/sobjects/{sobject}")
@router.post("/services/data/{version}/sobjects/{sobject}/")
async def create_record(version: str, sobject: str, request: Request) -> Response:
    async def work() -> tuple[Any, int]:
        _known(sobject)
        values = _writable(sobject, await _json(request))
        if sobject == "Account" and not values.get("Name"):
            raise SalesforceError(
                400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ["Name"]
            )
        with _db(request).write() as session:
            record = new_record(session, sobject, values)
        return {"id": record.record_id, "success": True, "errors": []}, 201

    return await _handle(request, version, work)


@router.get("/services/data/{version}/query")
@router.get("/services/data/{version}/query/")
async def query(version: str, request: Request) -> Response:
    async def work() -> tuple[Any, int]:
        soql = request.query_params.get("q")
        if not soql:
            raise SalesforceError(400, "MALFORMED_QUERY", "the q parameter is required")
        parsed = parse_soql(soql)
        with _db(request).read() as session:
            rows = session.exec(
                select(SfRecord)
                .where(col(SfRecord.sobject) == parsed.sobject)
                .order_by(col(SfRecord.id))
            ).all()
            matched = [r for r in rows if parsed.matches(r.fields)]
        if parsed.order_by:
            field, descending = parsed.order_by
            matched.sort(key=lambda r: str(r.fields.get(field) or ""), reverse=descending)
        if parsed.limit is not None:
            matched = matched[: parsed.limit]
        records = [_out(r, version, parsed.fields) for r in matched]
        return {"totalSize": len(records), "done": True, "records": records}, 200

    return await _handle(request, version, work)


# --- Test and demo control -----------------------------------------------------------------


@router.put("/_admin/limits")
async def set_limits(request: Request) -> dict[str, int]:
    """Set the org's daily budget: ``{"max": n, "used": n}`` (either may be left out)."""
    body = await _json(request)
    with _db(request).write() as session:
        usage = _usage(session)
        for key, attr in (("max", "maximum"), ("used", "used")):
            if key in body:
                value = body[key]
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise _admin_error(key, "must be a whole number, 0 or more")
                setattr(usage, attr, value)
        session.add(usage)
        return {"max": usage.maximum, "used": usage.used}


@router.post("/_admin/accounts/{record_id}/change")
async def change_account(record_id: str, request: Request) -> dict[str, Any]:
    """Change an account as a user would, and send its ``AccountChangeEvent`` to c2c.

    Body: ``{"fields": {"Name": ..., "BillingCity": ..., ...}}``. Answers the event sent.
    """
    body = await _json(request)
    fields = body.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise _admin_error("fields", "must be an object naming at least one field")
    try:
        values = _writable("Account", fields)
    except SalesforceError as exc:
        raise _admin_error("fields", exc.message) from None
    webhooks: WebhookDispatcher = request.app.state.webhooks
    with _db(request).write() as session:
        try:
            record = _record(session, "Account", record_id)
        except SalesforceError:
            raise not_found("account", record_id) from None
        try:
            changed = _apply(session, record, values)
        except SalesforceError as exc:
            raise _admin_error("fields", exc.message) from None
        event = change_event(session, record, changed)
        webhooks.emit(session, CDC_PATH, "AccountChangeEvent", {}, body=event)
        return event


def _admin_error(field: str, message: str) -> Exception:
    return invalid("invalid_field", message, field)


def change_event(session: Session, record: SfRecord, changed: dict[str, Any]) -> dict[str, Any]:
    """The Change Data Capture event of an account's update, as the streaming API sends it."""
    payload: dict[str, Any] = {}
    changed_fields: list[str] = []
    nulled: list[str] = []
    for field, value in changed.items():
        if field in ADDRESS:
            payload.setdefault("BillingAddress", {})[ADDRESS[field]] = value
            changed_fields.append(f"BillingAddress.{ADDRESS[field]}")
        else:
            payload[field] = value
            changed_fields.append(field)
        if value is None:
            nulled.append(field)
    payload["LastModifiedDate"] = record.fields["LastModifiedDate"]
    changed_fields.append("LastModifiedDate")
    number = next_number(session, "sf_replay")
    header = {
        "entityName": "Account",
        "recordIds": [record.record_id],
        "changeType": "UPDATE",
        "changeOrigin": "com/salesforce/api/rest/62.0",
        "transactionKey": uuid4().hex,
        "sequenceNumber": 1,
        "commitTimestamp": int(time.time() * 1000),
        "commitNumber": 10_000_000 + number,
        "commitUser": USER_ID,
        "changedFields": changed_fields,
        "nulledFields": nulled,
        "diffFields": [],
    }
    return {
        "channel": "/data/AccountChangeEvent",
        "data": {
            "schema": "sandbox-AccountChangeEvent-1",
            "payload": {"ChangeEventHeader": header, **payload},
            "event": {"replayId": number},
        },
    }


# --- Records -------------------------------------------------------------------------------


def new_record(session: Session, sobject: str, values: dict[str, Any]) -> SfRecord:
    """A new record with Salesforce's system fields (also used by tests through the API)."""
    prefix, _ = OBJECTS[sobject]
    number = next_number(session, f"sf_{sobject}")
    record_id = f"{prefix}{number:012d}AAA"
    now = _now()
    fields: dict[str, Any] = dict.fromkeys(OBJECTS[sobject][1])
    fields.update(values)
    if sobject == "Account" and fields.get("Active__c") is None:
        fields["Active__c"] = "Yes"
    if sobject == "Task":
        fields.setdefault("Priority", "Normal")
        fields["Priority"] = fields["Priority"] or "Normal"
        fields["Status"] = fields["Status"] or "Not Started"
    fields.update(Id=record_id, CreatedDate=now, LastModifiedDate=now, IsDeleted=False)
    _check_references(session, sobject, fields)
    record = SfRecord(sobject=sobject, record_id=record_id, fields=fields, created_at=utcnow())
    session.add(record)
    return record


def _apply(session: Session, record: SfRecord, values: dict[str, Any]) -> dict[str, Any]:
    changed = {k: v for k, v in values.items() if record.fields.get(k) != v}
    fields = {**record.fields, **values, "LastModifiedDate": _now()}
    _check_references(session, record.sobject, fields)
    if fields.get("ParentId") == record.record_id:
        raise SalesforceError(
            400, "FIELD_INTEGRITY_EXCEPTION", "an account cannot be its own parent", ["ParentId"]
        )
    record.fields = fields
    session.add(record)
    return changed


def _check_references(session: Session, sobject: str, fields: dict[str, Any]) -> None:
    for field, target in (("ParentId", "Account"), ("WhatId", "Account")):
        value = fields.get(field)
        if field in OBJECTS[sobject][1] and value is not None:
            found = find(session, SfRecord, SfRecord.record_id, value)
            if found is None or found.sobject != target:
                raise SalesforceError(
                    400,
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"invalid cross reference id: {value}",
                    [field],
                )
    if sobject == "Task" and fields.get("WhatId") is None:
        raise SalesforceError(
            400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [WhatId]", ["WhatId"]
        )


def _record(session: Session, sobject: str, record_id: str) -> SfRecord:
    record = find(session, SfRecord, SfRecord.record_id, record_id)
    if record is None or record.sobject != sobject:
        raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
    return record


def _out(record: SfRecord, version: str, wanted: list[str] | None) -> dict[str, Any]:
    names = wanted or list(OBJECTS[record.sobject][1])
    return {
        "attributes": {
            "type": record.sobject,
            "url": f"/services/data/{version}/sobjects/{record.sobject}/{record.record_id}",
        },
        **{name: record.fields.get(name) for name in names},
    }


def _known(sobject: str) -> None:
    if sobject not in OBJECTS:
        raise SalesforceError(
            404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{sobject}'"
        )


def _check_fields(sobject: str, names: list[str]) -> None:
    for name in names:
        if name not in OBJECTS[sobject][1]:
            raise SalesforceError(
                400, "INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'", [name]
            )


def _writable(sobject: str, values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "the body must be a JSON object")
    _check_fields(sobject, list(values))
    for name, value in values.items():
        if name in READ_ONLY:
            raise SalesforceError(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {name}",
                [name],
            )
        if value is not None and not isinstance(value, str | bool):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", f"{name}: a text value is expected", [name]
            )
        if isinstance(value, str) and len(value) > MAX_LENGTH.get(name, 255):
            raise SalesforceError(
                400,
                "STRING_TOO_LONG",
                f"{name}: data value too large (max length={MAX_LENGTH.get(name, 255)})",
                [name],
            )
    if sobject == "Task" and values.get("ActivityDate"):
        try:
            date.fromisoformat(str(values["ActivityDate"]))
        except ValueError:
            raise SalesforceError(
                400,
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                "ActivityDate: value not of required type",
                ["ActivityDate"],
            ) from None
    return dict(values)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except ValueError:
        raise SalesforceError(400, "JSON_PARSER_ERROR", "the body is not valid JSON") from None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


# --- SOQL: the subset c2c sends ------------------------------------------------------------

_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<sobject>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?P<dir>ASC|DESC))?)?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION = re.compile(
    r"^\s*(?P<field>\w+)\s*(?P<op>=|!=|LIKE)\s*(?P<value>'(?:[^'\\]|\\.)*'|null)\s*",
    re.IGNORECASE,
)


class Soql:
    """A parsed query: fields, object, conditions (ANDed), order and limit."""

    def __init__(
        self,
        fields: list[str],
        sobject: str,
        conditions: list[tuple[str, str, str | None]],
        order_by: tuple[str, bool] | None,
        limit: int | None,
    ) -> None:
        self.fields, self.sobject, self.conditions = fields, sobject, conditions
        self.order_by, self.limit = order_by, limit

    def matches(self, fields: dict[str, Any]) -> bool:
        for name, op, value in self.conditions:
            actual = fields.get(name)
            if op == "like":
                if actual is None or value is None or not _like(value).match(str(actual)):
                    return False
            elif (op == "=" and actual != value) or (op == "!=" and actual == value):
                return False
        return True


def parse_soql(text: str) -> Soql:
    """Parse the subset of SOQL the stand-in answers; anything else is ``MALFORMED_QUERY``."""
    match = _SOQL.match(text)
    if match is None:
        raise SalesforceError(400, "MALFORMED_QUERY", f"unsupported query: {text[:200]}")
    sobject = match["sobject"]
    if sobject not in OBJECTS:
        raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
    fields = [f.strip() for f in match["fields"].split(",")]
    _check_fields(sobject, fields)
    conditions: list[tuple[str, str, str | None]] = []
    rest = match["where"] or ""
    while rest.strip():
        cond = _CONDITION.match(rest)
        if cond is None:
            raise SalesforceError(400, "MALFORMED_QUERY", f"unsupported condition: {rest[:100]}")
        _check_fields(sobject, [cond["field"]])
        raw = cond["value"]
        value = None if raw.lower() == "null" else _unquote(raw[1:-1])
        conditions.append((cond["field"], cond["op"].lower(), value))
        rest = rest[cond.end() :]
        if rest.strip():
            joined = re.match(r"^AND\s+", rest.strip(), re.IGNORECASE)
            if joined is None:
                raise SalesforceError(400, "MALFORMED_QUERY", "conditions are joined by AND")
            rest = rest.strip()[joined.end() :]
    order = None
    if match["order"]:
        _check_fields(sobject, [match["order"]])
        order = (match["order"], (match["dir"] or "").upper() == "DESC")
    limit = int(match["limit"]) if match["limit"] else None
    return Soql(fields, sobject, conditions, order, limit)


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), text)


def _like(pattern: str) -> re.Pattern[str]:
    parts = (".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE | re.DOTALL)
