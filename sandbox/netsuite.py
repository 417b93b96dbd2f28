"""NetSuite stand-in (``/vendors/netsuite``): SuiteTalk REST record paths for the records c2c
writes, with NetSuite's external-id addressing, upsert, error shape and concurrency governance.

Paths are NetSuite's own, under ``/services/rest/record/v1``: ``POST /<type>`` creates and
answers ``204`` with the new record's URL in ``Location``; ``GET``/``PATCH /<type>/<id>`` and
``/<type>/eid:<externalId>`` read and update; ``PUT /<type>/eid:<externalId>`` upserts;
``GET /<type>?q=<field> IS "<value>"`` lists ids. Errors are NetSuite's
``{"type", "title", "status", "o:errorDetails": [{"detail", "o:errorCode"}]}``.

Every request must carry token-based authentication (OAuth 1.0a, HMAC-SHA256, ``realm`` = the
account id) signed with the sandbox's credentials. No more than ``concurrency_limit`` requests
are served at once; one more is answered ``429 CONCURRENCY_LIMIT_EXCEEDED``. The limit, an added
latency and the most requests seen in flight are under ``/_admin/netsuite``.

Totals, amounts paid and remaining, and statuses are computed on read, as NetSuite does: an
invoice's total is its lines' amounts plus the tax c2c sends per line, and what payments and
credit memos apply to it lowers what remains.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import JSON
from sqlmodel import Field as SqlField
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from c2c.netsuite_auth import (
    SANDBOX_ACCOUNT,
    SANDBOX_CONSUMER_KEY,
    SANDBOX_CONSUMER_SECRET,
    SANDBOX_TOKEN_ID,
    SANDBOX_TOKEN_SECRET,
    TokenCredentials,
    parse_authorization,
    signature,
)
from sandbox.db import Database, Row, next_number

router = APIRouter(tags=["netsuite"])
admin_router = APIRouter(tags=["admin"])

RECORD_ROOT = "/services/rest/record/v1"

#: The sandbox account's token-based authentication credentials (sandbox values only).
SANDBOX_CREDENTIALS = TokenCredentials(
    account=SANDBOX_ACCOUNT,
    consumer_key=SANDBOX_CONSUMER_KEY,
    consumer_secret=SANDBOX_CONSUMER_SECRET,
    token_id=SANDBOX_TOKEN_ID,
    token_secret=SANDBOX_TOKEN_SECRET,
)

#: Record types served (``subsidiary`` is read-only, from ``SUBSIDIARIES``).
RECORD_TYPES = frozenset(
    {
        "customer",
        "job",
        "invoice",
        "creditMemo",
        "customerPayment",
        "journalEntry",
        "currencyRate",
        "customrecord_c2c_contract",
        "customrecord_c2c_revenue",
    }
)

#: The account's subsidiaries (read-only): id → (name, country, currency id).
SUBSIDIARIES: dict[str, tuple[str, str, str]] = {
    "1": ("c2c Consulting Inc.", "US", "1"),
    "2": ("c2c Consulting Ltd", "GB", "2"),
    "3": ("c2c Beratung GmbH", "DE", "4"),
}
#: The account's currencies: id → ISO code.
CURRENCIES: dict[str, str] = {"1": "USD", "2": "GBP", "3": "CAD", "4": "EUR"}

#: Fields each record needs on create, as ``(field, must be a reference)``.
REQUIRED: dict[str, tuple[tuple[str, bool], ...]] = {
    "customer": (("companyName", False), ("subsidiary", True), ("currency", True)),
    "job": (("companyName", False), ("parent", True)),
    "invoice": (("entity", True), ("subsidiary", True), ("currency", True), ("tranDate", False)),
    "creditMemo": (("entity", True), ("createdFrom", True), ("tranDate", False)),
    "customerPayment": (("customer", True), ("payment", False), ("currency", True)),
    "journalEntry": (("subsidiary", True), ("currency", True), ("tranDate", False)),
}
#: Classifications this account makes mandatory on every transaction line.
LINE_SEGMENTS = ("item", "department", "class", "location")

TRANSACTION_PREFIX = {
    "invoice": "INV",
    "creditMemo": "CM",
    "customerPayment": "PYMT",
    "journalEntry": "JE",
}


class NetSuiteRecord(Row, table=True):
    """One record of any type: its type, external id and field values as NetSuite holds them."""

    __tablename__ = "sbx_netsuite_record"

    record_type: str = SqlField(index=True)
    external_id: str | None = SqlField(default=None, index=True)
    body: dict[str, Any] = SqlField(default_factory=dict, sa_type=JSON)


class NetSuiteError(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra


TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Record Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
}


def error_response(exc: NetSuiteError) -> JSONResponse:
    detail = {"detail": exc.detail, "o:errorCode": exc.code, **exc.extra}
    return JSONResponse(
        {
            "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#status.{exc.status}",
            "title": TITLES.get(exc.status, "Error"),
            "status": exc.status,
            "o:errorDetails": [detail],
        },
        status_code=exc.status,
    )


class Governance:
    """Credentials, the account's concurrency limit, and what the sandbox saw in flight."""

    def __init__(self, credentials: TokenCredentials = SANDBOX_CREDENTIALS) -> None:
        self.credentials = credentials
        self.concurrency_limit = 5
        self.latency_ms = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.rejected = 0
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()

    def settings(self) -> dict[str, int]:
        return {
            "concurrency_limit": self.concurrency_limit,
            "latency_ms": self.latency_ms,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "rejected": self.rejected,
        }

    def authenticate(self, request: Request) -> None:
        """Verify the request's OAuth 1.0a signature, realm, timestamp and nonce."""
        fields = parse_authorization(request.headers.get("Authorization", ""))
        creds = self.credentials
        if not fields:
            raise NetSuiteError(401, "INVALID_LOGIN", "Authorization header is missing.")
        if fields.get("realm") != creds.account:
            raise NetSuiteError(401, "INVALID_LOGIN", "The realm is not this account's id.")
        if fields.get("oauth_signature_method") != "HMAC-SHA256":
            raise NetSuiteError(401, "INVALID_LOGIN", "Only HMAC-SHA256 signatures are accepted.")
        if (
            fields.get("oauth_consumer_key") != creds.consumer_key
            or fields.get("oauth_token") != creds.token_id
        ):
            raise NetSuiteError(401, "INVALID_LOGIN", "Unknown consumer key or token.")
        try:
            stamp = int(fields.get("oauth_timestamp", ""))
        except ValueError:
            raise NetSuiteError(401, "INVALID_LOGIN", "oauth_timestamp is missing.") from None
        now = time.time()
        if abs(now - stamp) > 300:
            raise NetSuiteError(401, "INVALID_LOGIN", "oauth_timestamp is too far from now.")
        params = [*request.query_params.multi_items(), *fields.items()]
        # The path as sent (``eid:c2c-revenue-K%3A2026-10``), not as decoded for routing.
        raw_path = request.scope.get("raw_path")
        url = request.url.replace(path=raw_path.decode("latin-1")) if raw_path else request.url
        expected = signature(
            request.method, str(url), params, creds.consumer_secret, creds.token_secret
        )
        if fields.get("oauth_signature") != expected:
            raise NetSuiteError(401, "INVALID_LOGIN", "The signature does not verify.")
        nonce = fields.get("oauth_nonce", "")
        with self._lock:
            self._nonces = {n: t for n, t in self._nonces.items() if now - t < 600}
            if not nonce or nonce in self._nonces:
                raise NetSuiteError(401, "INVALID_LOGIN", "The nonce was used before.")
            self._nonces[nonce] = now

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """One request in flight, or ``429 CONCURRENCY_LIMIT_EXCEEDED`` beyond the limit."""
        with self._lock:
            if self.in_flight >= self.concurrency_limit:
                self.rejected += 1
                raise NetSuiteError(
                    429,
                    "CONCURRENCY_LIMIT_EXCEEDED",
                    "Concurrent request limit exceeded. Request blocked.",
                )
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000)
            yield
        finally:
            with self._lock:
                self.in_flight -= 1


def governance(request: Request) -> Governance:
    state = request.app.state
    if not hasattr(state, "netsuite"):
        state.netsuite = Governance()
    gov: Governance = state.netsuite
    return gov


async def serve(request: Request, work: Any, *, with_body: bool = False) -> Response:
    """Authenticate, admit under the concurrency limit, and run ``work(db[, body])`` in a
    thread; a ``NetSuiteError`` anywhere is answered in NetSuite's error shape."""
    try:
        gov = governance(request)
        gov.authenticate(request)
        args = (await _json(request),) if with_body else ()
        async with gov.admitted():
            response: Response = await run_in_threadpool(work, request.app.state.db, *args)
            return response
    except NetSuiteError as exc:
        return error_response(exc)


# --- records -------------------------------------------------------------------------------


def _check_type(record_type: str) -> None:
    if record_type not in RECORD_TYPES and record_type != "subsidiary":
        raise NetSuiteError(
            404, "INVALID_RCRD_TYPE", f"Record type '{record_type}' does not exist."
        )


def _find(session: Session, record_type: str, ref: str) -> NetSuiteRecord | None:
    query = select(NetSuiteRecord).where(NetSuiteRecord.record_type == record_type)
    if ref.startswith("eid:"):
        query = query.where(NetSuiteRecord.external_id == ref[4:])
    elif ref.isdigit():
        query = query.where(NetSuiteRecord.id == int(ref))
    else:
        return None
    return session.exec(query).first()


def _get(session: Session, record_type: str, ref: str) -> NetSuiteRecord:
    row = _find(session, record_type, ref)
    if row is None:
        raise NetSuiteError(
            404,
            "NONEXISTENT_ID",
            f"The record instance does not exist. Provide a valid record instance ID ({ref}).",
            **{"o:errorUrl": ref},
        )
    return row


def _ref_id(value: Any) -> str | None:
    if isinstance(value, dict):
        ref = value.get("id")
        return str(ref) if ref is not None else None
    return None


def _money(value: Any, field: str) -> Decimal:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise NetSuiteError(400, "INVALID_FLD_VALUE", f"'{field}' is not a number.") from None


def _validate(session: Session, record_type: str, body: dict[str, Any]) -> None:
    """NetSuite's checks that c2c depends on: required fields, references, line segments."""
    for field, reference in REQUIRED.get(record_type, ()):
        value = body.get(field)
        if value in (None, "") or (reference and _ref_id(value) is None):
            raise NetSuiteError(
                400,
                "USER_ERROR",
                f"Please enter value(s) for: {field}",
                **{"o:errorPath": field},
            )
    sub = _ref_id(body.get("subsidiary"))
    if sub is not None and sub not in SUBSIDIARIES:
        raise NetSuiteError(
            400,
            "INVALID_KEY_OR_REF",
            f"Invalid subsidiary reference key {sub}.",
            **{"o:errorPath": "subsidiary"},
        )
    currency = _ref_id(body.get("currency"))
    if currency is not None and currency not in CURRENCIES:
        raise NetSuiteError(
            400,
            "INVALID_KEY_OR_REF",
            f"Invalid currency reference key {currency}.",
            **{"o:errorPath": "currency"},
        )
    for field, target in (("parent", "customer"), ("entity", "customer"), ("customer", "customer")):
        ref = _ref_id(body.get(field))
        if ref is not None and _find(session, target, ref) is None:
            raise NetSuiteError(
                400,
                "INVALID_KEY_OR_REF",
                f"Invalid {field} reference key {ref}.",
                **{"o:errorPath": field},
            )
    if record_type in ("invoice", "creditMemo"):
        lines = (body.get("item") or {}).get("items") or []
        if not lines:
            raise NetSuiteError(
                400,
                "USER_ERROR",
                "You must enter at least one line item for this transaction.",
                **{"o:errorPath": "item"},
            )
        for index, line in enumerate(lines):
            for segment in LINE_SEGMENTS:
                if _ref_id(line.get(segment)) is None:
                    raise NetSuiteError(
                        400,
                        "USER_ERROR",
                        f"Please enter value(s) for: {segment}",
                        **{"o:errorPath": f"item.items[{index}].{segment}"},
                    )
            _money(line.get("amount"), f"item.items[{index}].amount")
    if record_type == "journalEntry":
        _check_journal(body)
    if record_type in ("customerPayment", "creditMemo"):
        for index, line in enumerate((body.get("apply") or {}).get("items") or []):
            doc = _ref_id(line.get("doc"))
            if doc is None or _find(session, "invoice", doc) is None:
                raise NetSuiteError(
                    400,
                    "INVALID_KEY_OR_REF",
                    f"Invalid apply doc reference key {doc}.",
                    **{"o:errorPath": f"apply.items[{index}].doc"},
                )


def _check_journal(body: dict[str, Any]) -> None:
    """A journal entry's lines: each an account with a debit or a credit; debits equal credits."""
    lines = (body.get("line") or {}).get("items") or []
    if len(lines) < 2:
        raise NetSuiteError(
            400,
            "USER_ERROR",
            "You must enter at least two lines for this transaction.",
            **{"o:errorPath": "line"},
        )
    debits = credits = Decimal(0)
    for index, line in enumerate(lines):
        if _ref_id(line.get("account")) is None:
            raise NetSuiteError(
                400,
                "USER_ERROR",
                "Please enter value(s) for: Account",
                **{"o:errorPath": f"line.items[{index}].account"},
            )
        debit = _money(line.get("debit") or 0, f"line.items[{index}].debit")
        credit = _money(line.get("credit") or 0, f"line.items[{index}].credit")
        if debit < 0 or credit < 0 or (debit > 0) == (credit > 0):
            raise NetSuiteError(
                400,
                "INVALID_FLD_VALUE",
                "A line has either a debit or a credit, not negative.",
                **{"o:errorPath": f"line.items[{index}]"},
            )
        debits, credits = debits + debit, credits + credit
    if debits != credits:
        raise NetSuiteError(
            400,
            "USER_ERROR",
            f"This transaction is not in balance: debits {debits}, credits {credits}.",
            **{"o:errorPath": "line"},
        )


def _records(session: Session, record_type: str) -> list[NetSuiteRecord]:
    query = select(NetSuiteRecord).where(NetSuiteRecord.record_type == record_type)
    return list(session.exec(query.order_by(col(NetSuiteRecord.id))).all())


def _applied_to(session: Session, invoice_id: str, record_type: str) -> Decimal:
    total = Decimal(0)
    for row in _records(session, record_type):
        for line in (row.body.get("apply") or {}).get("items") or []:
            if _ref_id(line.get("doc")) == invoice_id and line.get("apply", True):
                total += Decimal(str(line.get("amount") or 0))
    return total


def _lines_total(body: dict[str, Any]) -> tuple[Decimal, Decimal]:
    subtotal = tax = Decimal(0)
    for line in (body.get("item") or {}).get("items") or []:
        subtotal += Decimal(str(line.get("amount") or 0))
        tax += Decimal(str(line.get("custcol_c2c_tax_amount") or 0))
    return subtotal, tax


def _applied(body: dict[str, Any]) -> Decimal:
    """What a payment or credit memo applies to invoices: its ``apply`` lines' amounts."""
    return sum(
        (Decimal(str(x.get("amount") or 0)) for x in (body.get("apply") or {}).get("items") or []),
        Decimal(0),
    )


def _number(value: Decimal) -> float | int:
    """A JSON number as NetSuite writes one."""
    return int(value) if value == value.to_integral_value() else float(value)


def render(session: Session, row: NetSuiteRecord, base: str) -> dict[str, Any]:
    """The record as ``GET`` answers it: its fields plus what NetSuite computes."""
    assert row.id is not None
    out: dict[str, Any] = {
        "links": [{"rel": "self", "href": f"{base}/{row.record_type}/{row.id}"}],
        "id": str(row.id),
        **row.body,
    }
    if row.external_id is not None:
        out["externalId"] = row.external_id
    if row.record_type == "invoice":
        subtotal, tax = _lines_total(row.body)
        total = subtotal + tax
        paid = _applied_to(session, str(row.id), "customerPayment")
        credited = _applied_to(session, str(row.id), "creditMemo")
        remaining = total - paid - credited
        out |= {
            "subtotal": _number(subtotal),
            "taxTotal": _number(tax),
            "total": _number(total),
            "amountPaid": _number(paid),
            "amountRemaining": _number(remaining),
            "status": {"id": "B", "refName": "Paid In Full"}
            if remaining <= 0
            else {"id": "A", "refName": "Open"},
        }
    elif row.record_type == "creditMemo":
        subtotal, tax = _lines_total(row.body)
        applied = _applied(row.body)
        out |= {
            "subtotal": _number(subtotal),
            "taxTotal": _number(tax),
            "total": _number(subtotal + tax),
            "applied": _number(applied),
            "unapplied": _number(subtotal + tax - applied),
        }
    elif row.record_type == "customerPayment":
        amount = Decimal(str(row.body.get("payment") or 0))
        applied = _applied(row.body)
        out |= {"applied": _number(applied), "unapplied": _number(amount - applied)}
    return out


def _subsidiary(ref: str, base: str) -> dict[str, Any]:
    if ref not in SUBSIDIARIES:
        raise NetSuiteError(404, "NONEXISTENT_ID", f"The record instance does not exist ({ref}).")
    name, country, currency = SUBSIDIARIES[ref]
    return {
        "links": [{"rel": "self", "href": f"{base}/subsidiary/{ref}"}],
        "id": ref,
        "name": name,
        "country": {"id": country, "refName": country},
        "currency": {"id": currency, "refName": CURRENCIES[currency]},
        "isInactive": False,
    }


def _base(request: Request) -> str:
    root = str(request.url).split(RECORD_ROOT, 1)[0]
    return f"{root}{RECORD_ROOT}"


def _store(
    session: Session, record_type: str, body: dict[str, Any], external_id: str | None
) -> NetSuiteRecord:
    body = {k: v for k, v in body.items() if k not in ("id", "externalId", "links")}
    _validate(session, record_type, body)
    if record_type in TRANSACTION_PREFIX and "tranId" not in body:
        body["tranId"] = (
            f"{TRANSACTION_PREFIX[record_type]}{next_number(session, 'ns-' + record_type)}"
        )
    row = NetSuiteRecord(record_type=record_type, external_id=external_id, body=body)
    session.add(row)
    session.flush()
    return row


def _update(session: Session, row: NetSuiteRecord, body: dict[str, Any]) -> None:
    """Replace the fields given (a sublist as a whole), checked as a create is."""
    given = {k: v for k, v in body.items() if k not in ("id", "links", "externalId")}
    merged = {**row.body, **given}
    _validate(session, row.record_type, merged)
    row.body = merged
    session.add(row)


def _created(request: Request, row: NetSuiteRecord) -> Response:
    return Response(
        status_code=204, headers={"Location": f"{_base(request)}/{row.record_type}/{row.id}"}
    )


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise NetSuiteError(400, "INVALID_CONTENT", "The request body must be a JSON object.")
    return body


_CONDITION = re.compile(r'^\s*([A-Za-z_][\w.]*)\s+(IS|ON_OR_BEFORE)\s+"?([^"]*)"?\s*$', re.I)


def _matches(row: NetSuiteRecord, q: str) -> bool:
    for part in re.split(r"\s+AND\s+", q.strip(), flags=re.I):
        found = _CONDITION.match(part)
        if found is None:
            raise NetSuiteError(
                400,
                "INVALID_PARAMETER",
                f"Invalid search query: {part!r}.",
                **{"o:errorQueryParam": "q"},
            )
        field, operator, value = found.groups()
        actual: Any = row.external_id if field == "externalId" else row.body.get(field)
        if isinstance(actual, dict):
            actual = actual.get("id")
        text = "" if actual is None else str(actual)
        if operator.upper() == "IS" and text != value:
            return False
        if operator.upper() == "ON_OR_BEFORE" and not (text and text <= value):
            return False
    return True


@router.get(RECORD_ROOT + "/{record_type}")
async def list_records(
    request: Request, record_type: str, q: str | None = None, limit: int = 1000, offset: int = 0
) -> Response:
    """Ids and links of the records of a type, filtered by ``q``, a page at a time."""

    def work(db: Database) -> Response:
        _check_type(record_type)
        base = _base(request)
        with db.read() as session:
            rows = [r for r in _records(session, record_type) if not q or _matches(r, q)]
        page = rows[offset : offset + max(1, min(limit, 1000))]
        return JSONResponse(
            {
                "links": [{"rel": "self", "href": str(request.url)}],
                "count": len(page),
                "hasMore": offset + len(page) < len(rows),
                "items": [
                    {
                        "links": [{"rel": "self", "href": f"{base}/{record_type}/{r.id}"}],
                        "id": str(r.id),
                    }
                    for r in page
                ],
                "offset": offset,
                "totalResults": len(rows),
            }
        )

    return await serve(request, work)


@router.get(RECORD_ROOT + "/{record_type}/{ref}")
async def get_record(request: Request, record_type: str, ref: str) -> Response:
    """One record by internal id or ``eid:<externalId>``."""

    def work(db: Database) -> Response:
        _check_type(record_type)
        if record_type == "subsidiary":
            return JSONResponse(_subsidiary(ref, _base(request)))
        with db.read() as session:
            return JSONResponse(render(session, _get(session, record_type, ref), _base(request)))

    return await serve(request, work)


@router.post(RECORD_ROOT + "/{record_type}")
async def create_record(request: Request, record_type: str) -> Response:
    """Create; an ``externalId`` that a record of the type holds already is refused."""

    def work(db: Database, body: dict[str, Any]) -> Response:
        _check_type(record_type)
        external_id = body.get("externalId")
        with db.write() as session:
            if external_id and _find(session, record_type, f"eid:{external_id}") is not None:
                raise NetSuiteError(
                    400,
                    "DUP_RCRD",
                    f"A {record_type} record with external ID {external_id} already exists.",
                    **{"o:errorPath": "externalId"},
                )
            row = _store(session, record_type, body, external_id)
            return _created(request, row)

    return await serve(request, work, with_body=True)


@router.put(RECORD_ROOT + "/{record_type}/{ref}")
async def upsert_record(request: Request, record_type: str, ref: str) -> Response:
    """Upsert by external id: create the record, or replace the fields given."""

    def work(db: Database, body: dict[str, Any]) -> Response:
        _check_type(record_type)
        if not ref.startswith("eid:") or len(ref) == 4:
            raise NetSuiteError(
                405, "INVALID_REQUEST", "Upsert (PUT) needs an external id: <type>/eid:<id>."
            )
        with db.write() as session:
            row = _find(session, record_type, ref)
            if row is None:
                row = _store(session, record_type, body, ref[4:])
            else:
                _update(session, row, body)
            return _created(request, row)

    return await serve(request, work, with_body=True)


@router.patch(RECORD_ROOT + "/{record_type}/{ref}")
async def update_record(request: Request, record_type: str, ref: str) -> Response:
    """Update the fields given; a sublist given replaces the record's."""

    def work(db: Database, body: dict[str, Any]) -> Response:
        _check_type(record_type)
        with db.write() as session:
            _update(session, _get(session, record_type, ref), body)
        return Response(status_code=204)

    return await serve(request, work, with_body=True)


class GovernanceIn(BaseModel):
    concurrency_limit: int | None = Field(default=None, ge=1, le=1000)
    latency_ms: int | None = Field(default=None, ge=0, le=60_000)
    reset_counters: bool = False


@admin_router.get("")
def read_governance(request: Request) -> dict[str, int]:
    """The concurrency limit, added latency, and requests seen in flight."""
    return governance(request).settings()


@admin_router.put("")
def change_governance(request: Request, change: GovernanceIn) -> dict[str, int]:
    """Change the concurrency limit or latency; ``reset_counters`` zeroes the maxima."""
    gov = governance(request)
    if change.concurrency_limit is not None:
        gov.concurrency_limit = change.concurrency_limit
    if change.latency_ms is not None:
        gov.latency_ms = change.latency_ms
    if change.reset_counters:
        gov.max_in_flight = gov.rejected = 0
    return gov.settings()
