"""Business Central stand-in (``/vendors/bc``): API v2.0 paths for the records c2c writes, with
OData JSON, ``@odata.etag`` and ``If-Match``, ``$filter``, Business Central's error shape,
throttling, and a Microsoft Entra-shaped token endpoint.

Paths are Business Central's own: ``/v2.0/{tenant}/{environment}/api/v2.0/companies`` and, per
company, ``companies({id})/<entitySet>``, ``<entitySet>({id})``, ``<entitySet>({id})/<nav>`` and
the bound action ``<entitySet>({id})/Microsoft.NAV.post``. c2c's own API pages (its contracts
and revenue entries) are under ``/api/c2c/contractToCash/v1.0/companies({id})/...``, as an
extension's pages are. Errors are ``{"error": {"code", "message"}}``.

Every API request needs ``Authorization: Bearer`` with a token this stand-in issued from
``/login/{tenant}/oauth2/v2.0/token`` (client credentials, the configured client id and
secret); its discovery document is ``/login/{tenant}/v2.0/.well-known/openid-configuration``.
A change (``PATCH``, ``DELETE``, a bound action) needs ``If-Match`` with the record's current
``@odata.etag`` (``*`` matches any): none is ``428``, another is ``412``. ``/_admin/bc`` makes the
next requests answer ``429`` with ``Retry-After``, or the next changes find their record changed
by someone else (a stale ETag).

Totals and what remains on an invoice are computed on read. Posting a sales invoice turns its
draft number into a posted one; posting the customer payment journal applies each line to its
invoice, and posting a credit memo applies it to its invoice. Unlike Business Central, whose
posted journal lines leave the journal, posted payment lines stay readable, marked ``posted``.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import JSON
from sqlmodel import Field as SqlField
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from c2c.bc_mapping import (
    SANDBOX_ACCOUNTS,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_COMPANIES,
    SANDBOX_DIMENSIONS,
    SANDBOX_ENVIRONMENT,
    SANDBOX_TENANT,
)
from sandbox.db import Database, Row, next_number

router = APIRouter(tags=["business-central"])
admin_router = APIRouter(tags=["admin"])

STANDARD = "v2.0"
C2C_PAGES = "c2c/contractToCash/v1.0"
#: Entity sets of each API, per company.
ENTITY_SETS: dict[str, frozenset[str]] = {
    STANDARD: frozenset(
        {
            "customers",
            "projects",
            "salesInvoices",
            "salesInvoiceLines",
            "salesCreditMemos",
            "salesCreditMemoLines",
            "customerPaymentJournals",
            "customerPayments",
            "currencyExchangeRates",
            "companyInformation",
            "journals",
            "generalLedgerEntries",
            "documentAttachments",
        }
    ),
    C2C_PAGES: frozenset({"contracts", "revenueEntries"}),
}
LINES = {"salesInvoices": "salesInvoiceLines", "salesCreditMemos": "salesCreditMemoLines"}
#: Number series: entity → (draft prefix, posted prefix).
SERIES = {
    "customers": ("C", None),
    "salesInvoices": ("S-INV", "PS-INV"),
    "salesCreditMemos": ("S-CR", "PS-CR"),
}
#: Exchange rates of each company: (currency, starting date, units of currency, units of LCY).
RATES: dict[str, list[tuple[str, str, str, str]]] = {
    "GBP": [("USD", "2026-01-01", "1", "0.79"), ("EUR", "2026-01-01", "1", "0.86")],
    "USD": [("GBP", "2026-01-01", "1", "1.27"), ("EUR", "2026-01-01", "1", "1.09")],
}
TOKEN_LIFETIME_S = 3600
CENT = Decimal("0.01")


class BcRecord(Row, table=True):
    """One record of any entity set: company, number, external document number, body, and
    the version its ETag names."""

    __tablename__ = "sbx_bc_record"

    guid: str = SqlField(index=True)
    company_id: str = SqlField(index=True)
    entity: str = SqlField(index=True)
    parent: str | None = SqlField(default=None, index=True)
    number: str | None = SqlField(default=None, index=True)
    version: int = 1
    body: dict[str, Any] = SqlField(default_factory=dict, sa_type=JSON)


class BcError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(exc: BcError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}},
        status_code=exc.status,
        headers=headers,
    )


class Control:
    """Issued tokens, the client secrets accepted, and the admin knobs."""

    def __init__(self) -> None:
        self.client_id = SANDBOX_CLIENT_ID
        self.client_secrets = {SANDBOX_CLIENT_SECRET}
        self.tokens: dict[str, float] = {}
        self.throttle = 0
        self.retry_after_s = 1
        self.conflicts = 0
        self.throttled = 0
        self.token_requests = 0
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
            self.tokens[token] = now + TOKEN_LIFETIME_S
            self.token_requests += 1
        return token

    def authenticate(self, request: Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expires = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if expires is None or expires < time.time():
            raise BcError(
                401,
                "Authentication_InvalidCredentials",
                "The server has rejected the client credentials.",
            )

    def take_throttle(self) -> bool:
        with self._lock:
            if self.throttle <= 0:
                return False
            self.throttle -= 1
            self.throttled += 1
            return True

    def take_conflict(self) -> bool:
        with self._lock:
            if self.conflicts <= 0:
                return False
            self.conflicts -= 1
            return True

    def settings(self) -> dict[str, int]:
        return {
            "throttle": self.throttle,
            "retry_after_s": self.retry_after_s,
            "conflicts": self.conflicts,
            "throttled": self.throttled,
            "token_requests": self.token_requests,
        }


def control(request: Request) -> Control:
    state = request.app.state
    if not hasattr(state, "bc"):
        state.bc = Control()
    found: Control = state.bc
    return found


# --- Entra-shaped token endpoint -------------------------------------------------------------


def _login_root(request: Request, tenant: str) -> str:
    # Named over https, as an Entra tenant's are (msal accepts no other authority).
    root = str(request.url).split("/login/", 1)[0].replace("http://", "https://", 1)
    return f"{root}/login/{tenant}"


@router.get("/login/{tenant}/v2.0/.well-known/openid-configuration")
def openid_configuration(request: Request, tenant: str) -> Response:
    """The tenant's discovery document: where its token endpoint is."""
    if tenant != SANDBOX_TENANT:
        return JSONResponse(
            {"error": "invalid_tenant", "error_description": f"Tenant '{tenant}' not found."},
            status_code=400,
        )
    root = _login_root(request, tenant)
    return JSONResponse(
        {
            "issuer": f"{root}/v2.0",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "grant_types_supported": ["client_credentials"],
        }
    )


@router.post("/login/{tenant}/oauth2/v2.0/token")
async def token(request: Request, tenant: str) -> Response:
    """OAuth 2.0 client credentials: a bearer token for the configured client."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    form = {name: values[0] for name, values in fields.items()}
    ctl = control(request)

    def refuse(error: str, description: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=status)

    if tenant != SANDBOX_TENANT:
        return refuse("invalid_request", f"Tenant '{tenant}' not found.")
    if form.get("grant_type") != "client_credentials":
        return refuse("unsupported_grant_type", "Only client_credentials is supported.")
    if form.get("client_id") != ctl.client_id or form.get("client_secret") not in (
        ctl.client_secrets
    ):
        return refuse("invalid_client", "Invalid client secret provided.", 401)
    if "api.businesscentral.dynamics.com" not in str(form.get("scope") or ""):
        return refuse("invalid_scope", "The scope must be Business Central's API.")
    return JSONResponse(
        {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_S,
            "ext_expires_in": TOKEN_LIFETIME_S,
            "access_token": ctl.issue(),
        }
    )


# --- records ---------------------------------------------------------------------------------


def etag(row: BcRecord) -> str:
    raw = f"{row.guid};{row.version}".encode()
    return 'W/"' + base64.b64encode(raw).decode() + '"'


def _dec(value: Any, field: str = "amount") -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0))
    except ArithmeticError:
        raise BcError(400, "BadRequest", f"'{field}' is not a number.") from None


def _num(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _rows(session: Session, company: str, entity: str, parent: str | None = None) -> list[BcRecord]:
    query = select(BcRecord).where(BcRecord.company_id == company, BcRecord.entity == entity)
    if parent is not None:
        query = query.where(BcRecord.parent == parent)
    return list(session.exec(query.order_by(col(BcRecord.id))).all())


def _find(session: Session, company: str, entity: str, guid: str) -> BcRecord | None:
    query = select(BcRecord).where(
        BcRecord.company_id == company, BcRecord.entity == entity, BcRecord.guid == guid
    )
    return session.exec(query).first()


def _get(session: Session, company: str, entity: str, guid: str) -> BcRecord:
    row = _find(session, company, entity, guid)
    if row is None:
        raise BcError(
            404,
            "BadRequest_NotFound",
            f"The {entity} with id {guid} does not exist.",
        )
    return row


def _line_total(body: dict[str, Any]) -> Decimal:
    if body.get("lineType") == "Comment":
        return Decimal(0)
    amount = _dec(body.get("quantity") or 0) * _dec(body.get("unitPrice") or 0)
    return amount.quantize(CENT, ROUND_HALF_UP)


def _document_total(session: Session, row: BcRecord) -> Decimal:
    lines = _rows(session, row.company_id, LINES[row.entity], row.guid)
    return sum((_line_total(line.body) for line in lines), Decimal(0))


def _applied_to_invoice(session: Session, company: str, invoice: str) -> Decimal:
    applied = Decimal(0)
    for entity in ("customerPayments", "salesCreditMemos"):
        for row in _rows(session, company, entity):
            if row.body.get("_appliedTo") == invoice:
                applied += _dec(row.body.get("_applied"))
    return applied


def render(session: Session, row: BcRecord, expand: str = "") -> dict[str, Any]:
    """The record as ``GET`` answers it: fields, computed totals, its ETag."""
    out: dict[str, Any] = {
        "@odata.etag": etag(row),
        "id": row.guid,
        **{k: v for k, v in row.body.items() if not k.startswith("_")},
    }
    if row.number is not None:
        out["number"] = row.number
    if row.entity in LINES:
        total = _document_total(session, row)
        out |= {
            "totalAmountExcludingTax": _num(total),
            "totalTaxAmount": 0,
            "totalAmountIncludingTax": _num(total),
        }
        if row.entity == "salesInvoices":
            posted = row.body.get("_posted", False)
            remaining = total - _applied_to_invoice(session, row.company_id, row.guid)
            out["remainingAmount"] = _num(remaining if posted else total)
            out["status"] = "Draft" if not posted else "Paid" if remaining <= 0 else "Open"
        else:
            out["status"] = "Open" if row.body.get("_posted") else "Draft"
        if LINES[row.entity] in expand:
            out[LINES[row.entity]] = [
                render(session, line)
                for line in _rows(session, row.company_id, LINES[row.entity], row.guid)
            ]
    elif row.entity in ("salesInvoiceLines", "salesCreditMemoLines"):
        out["documentId"] = row.parent
        total = _line_total(row.body)
        out |= {"amountExcludingTax": _num(total), "amountIncludingTax": _num(total)}
    elif row.entity == "customerPayments":
        out["journalId"] = row.parent
        out["posted"] = bool(row.body.get("_posted"))
    elif row.entity == "journalLines":
        out["journalId"] = row.parent
    elif row.entity == "documentAttachments":
        out["byteSize"] = len(base64.b64decode(row.body.get("_content") or ""))
    return out


def _check_account(number: Any) -> None:
    account = str(number or "")
    if account not in SANDBOX_ACCOUNTS:
        raise BcError(
            400,
            "Internal_RecordNotFound",
            f"The G/L Account does not exist. Identification fields and values: No.='{account}'",
        )


def _validate_lines(lines: list[dict[str, Any]], entity: str) -> None:
    if not lines:
        raise BcError(400, "Application_DialogException", f"The {entity} has no lines.")
    for index, line in enumerate(lines):
        kind = line.get("lineType") or "Item"
        if kind == "Comment":
            continue
        if kind != "Account":
            raise BcError(
                400,
                "BadRequest",
                f"lines[{index}].lineType: this company sells services on G/L accounts only.",
            )
        _check_account(line.get("lineObjectNumber"))
        for dim in line.get("dimensionSetLines") or []:
            values = SANDBOX_DIMENSIONS.get(str(dim.get("code")))
            if values is None or dim.get("valueCode") not in values:
                raise BcError(
                    400,
                    "Internal_RecordNotFound",
                    f"The Dimension Value does not exist. Identification fields and values: "
                    f"Dimension Code='{dim.get('code')}',Code='{dim.get('valueCode')}'",
                )
        _dec(line.get("quantity"), f"lines[{index}].quantity")
        _dec(line.get("unitPrice"), f"lines[{index}].unitPrice")


def _customer(session: Session, company: str, body: dict[str, Any]) -> BcRecord:
    ref = body.get("customerId")
    if ref:
        found = _find(session, company, "customers", str(ref))
    else:
        number = body.get("customerNumber")
        found = next((r for r in _rows(session, company, "customers") if r.number == number), None)
    if found is None:
        raise BcError(
            400,
            "Internal_RecordNotFound",
            "The Customer does not exist. Identification fields and values: "
            f"No.='{body.get('customerNumber') or ref}'",
        )
    return found


def _create(
    session: Session, company: str, entity: str, body: dict[str, Any], parent: str | None = None
) -> BcRecord:
    body = {
        k: v for k, v in body.items() if k not in ("id", "@odata.etag") and not k.startswith("_")
    }
    number = body.pop("number", None)
    if entity in ("customers", "projects", "contracts", "revenueEntries"):
        if entity in ("customers", "projects") and not body.get("displayName"):
            raise BcError(400, "BadRequest", "displayName: a value is required.")
        if number and any(r.number == number for r in _rows(session, company, entity)):
            raise BcError(
                400,
                "Internal_EntityWithSameKeyExists",
                f"The record in table {entity} already exists. Identification fields and values: "
                f"No.='{number}'",
            )
    if entity in ("projects", "contracts", "revenueEntries") and not number:
        raise BcError(400, "BadRequest", "number: a value is required.")
    lines: list[dict[str, Any]] = []
    if entity in LINES:
        lines = list(body.pop(LINES[entity], None) or [])
        _validate_lines(lines, entity)
        customer = _customer(session, company, body)
        body["customerId"], body["customerNumber"] = customer.guid, customer.number
        body.setdefault("currencyCode", "")
        if entity == "salesCreditMemos" and body.get("invoiceId"):
            _get(session, company, "salesInvoices", str(body["invoiceId"]))
    if entity == "customerPayments":
        customer = _customer(session, company, body)
        body["customerId"], body["customerNumber"] = customer.guid, customer.number
        if body.get("appliesToInvoiceId"):
            _get(session, company, "salesInvoices", str(body["appliesToInvoiceId"]))
        _dec(body.get("amount"))
    if number is None and entity in SERIES:
        prefix = SERIES[entity][0]
        number = f"{prefix}{10000 + next_number(session, f'bc-{company}-{entity}')}"
    row = BcRecord(
        guid=str(uuid.uuid4()),
        company_id=company,
        entity=entity,
        parent=parent,
        number=number,
        body=body,
    )
    session.add(row)
    for index, line in enumerate(lines):
        line_body = {k: v for k, v in line.items() if k != "id"}
        line_body.setdefault("sequence", (index + 1) * 10000)
        session.add(
            BcRecord(
                guid=str(uuid.uuid4()),
                company_id=company,
                entity=LINES[entity],
                parent=row.guid,
                body=line_body,
            )
        )
    session.flush()
    return row


_EQ = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.I)
_STARTS = re.compile(r"^\s*startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)\s*$", re.I)


def _matcher(expression: str | None) -> Callable[[dict[str, Any]], bool]:
    """OData ``$filter`` of ``field eq 'v'`` and ``startswith(field,'v')`` joined by ``and``."""
    if not expression:
        return lambda _: True
    tests: list[tuple[str, str, str]] = []
    for part in re.split(r"\s+and\s+", expression.strip(), flags=re.I):
        found = _EQ.match(part) or _STARTS.match(part)
        if found is None:
            raise BcError(400, "BadRequest", f"Could not parse $filter near {part!r}.")
        op = "eq" if found.re is _EQ else "startswith"
        tests.append((found.group(1), op, found.group(2).replace("''", "'")))

    def matches(record: dict[str, Any]) -> bool:
        for field, op, value in tests:
            actual = "" if record.get(field) is None else str(record.get(field))
            if op == "eq" and actual.lower() != value.lower():
                return False
            if op == "startswith" and not actual.lower().startswith(value.lower()):
                return False
        return True

    return matches


def _check_match(request: Request, row: BcRecord) -> None:
    """``If-Match`` must name the record's current ETag on every change."""
    given = request.headers.get("If-Match")
    if given is None:
        raise BcError(
            428,
            "Request_PreconditionRequired",
            "An If-Match header with the record's @odata.etag is required to change it.",
        )
    if control(request).take_conflict():
        # Someone else changed the record a moment ago.
        row.version += 1
    if given != "*" and given != etag(row):
        raise BcError(
            412,
            "Request_EntityChanged",
            "Could not save the record: another user has modified it. Read it again.",
        )


def _post_document(session: Session, row: BcRecord) -> None:
    if row.body.get("_posted"):
        raise BcError(400, "Application_DialogException", f"{row.number} is already posted.")
    total = _document_total(session, row)
    if total <= 0:
        raise BcError(400, "Application_DialogException", "There is nothing to post.")
    posted_prefix = SERIES[row.entity][1]
    row.number = (
        f"{posted_prefix}{10000 + next_number(session, f'bc-{row.company_id}-{row.entity}-posted')}"
    )
    body = {
        **row.body,
        "_posted": True,
        "postingDate": row.body.get("postingDate") or date.today().isoformat(),
    }
    if row.entity == "salesCreditMemos" and body.get("invoiceId"):
        invoice = _get(session, row.company_id, "salesInvoices", str(body["invoiceId"]))
        left = _document_total(session, invoice) - _applied_to_invoice(
            session, row.company_id, invoice.guid
        )
        body["_appliedTo"], body["_applied"] = invoice.guid, str(max(Decimal(0), min(total, left)))
    row.body = body
    row.version += 1
    session.add(row)


def _post_journal(session: Session, journal: BcRecord) -> None:
    for line in _rows(session, journal.company_id, "customerPayments", journal.guid):
        if line.body.get("_posted"):
            continue
        body = {**line.body, "_posted": True}
        invoice_id = body.get("appliesToInvoiceId")
        if invoice_id:
            invoice = _get(session, journal.company_id, "salesInvoices", str(invoice_id))
            left = _document_total(session, invoice) - _applied_to_invoice(
                session, journal.company_id, invoice.guid
            )
            amount = _dec(body.get("amount"))
            body["_appliedTo"], body["_applied"] = (
                invoice.guid,
                str(max(Decimal(0), min(amount, left))),
            )
        line.body = body
        line.version += 1
        session.add(line)
    journal.version += 1
    session.add(journal)


#: What a document attachment may be attached to, by ``parentType``.
ATTACHMENT_PARENTS = {"Sales Invoice": "salesInvoices", "Sales Credit Memo": "salesCreditMemos"}


def _journal_line(session: Session, journal: BcRecord, body: dict[str, Any]) -> BcRecord:
    """A general journal line on G/L accounts, balanced on its balancing account."""
    for field in ("accountNumber", "balanceAccountNumber"):
        kind = body.get("accountType" if field == "accountNumber" else "balanceAccountType")
        if kind != "G/L Account":
            raise BcError(400, "BadRequest", f"{field}: c2c's journal lines post to G/L accounts.")
        _check_account(body.get(field))
    if not body.get("documentNumber"):
        raise BcError(400, "BadRequest", "documentNumber: a value is required.")
    if _dec(body.get("amount")) == 0:
        raise BcError(400, "Application_DialogException", "amount: the line has no amount.")
    return _create(session, journal.company_id, "journalLines", body, journal.guid)


def _post_general_journal(session: Session, journal: BcRecord) -> None:
    """Post every line: a general ledger entry on the account and one on the balancing
    account; posted lines leave the journal, as in Business Central."""
    for line in _rows(session, journal.company_id, "journalLines", journal.guid):
        amount = _dec(line.body.get("amount"))
        for account, debit in (
            (line.body["accountNumber"], amount),
            (line.body["balanceAccountNumber"], -amount),
        ):
            session.add(
                BcRecord(
                    guid=str(uuid.uuid4()),
                    company_id=journal.company_id,
                    entity="generalLedgerEntries",
                    body={
                        "postingDate": line.body.get("postingDate"),
                        "documentNumber": line.body.get("documentNumber"),
                        "externalDocumentNumber": line.body.get("externalDocumentNumber"),
                        "accountNumber": account,
                        "description": line.body.get("description"),
                        "debitAmount": _num(max(debit, Decimal(0))),
                        "creditAmount": _num(max(-debit, Decimal(0))),
                    },
                )
            )
        session.delete(line)
    journal.version += 1
    session.add(journal)


def _attachment(session: Session, company: str, body: dict[str, Any]) -> BcRecord:
    """A document attachment of a sales invoice or credit memo, without its content yet."""
    entity_set = ATTACHMENT_PARENTS.get(str(body.get("parentType")))
    if entity_set is None:
        raise BcError(
            400, "BadRequest", f"parentType: c2c attaches to {', '.join(ATTACHMENT_PARENTS)}."
        )
    _get(session, company, entity_set, str(body.get("parentId")))
    if not body.get("fileName"):
        raise BcError(400, "BadRequest", "fileName: a value is required.")
    return _create(session, company, "documentAttachments", body)


def _seed(session: Session, company: str) -> None:
    """A company's fixed records, made on its first request: its information, the C2C payment
    journal, the C2CWO general journal, and exchange rates."""
    if not _rows(session, company, "journals"):
        # Apart from the rest: a company seeded before write-offs gets its journal too.
        session.add(
            BcRecord(
                guid=str(uuid.uuid4()),
                company_id=company,
                entity="journals",
                body={"code": "C2CWO", "displayName": "c2c write-offs"},
            )
        )
    if _rows(session, company, "companyInformation"):
        return
    name, country, currency = SANDBOX_COMPANIES[company]
    session.add(
        BcRecord(
            guid=str(uuid.uuid4()),
            company_id=company,
            entity="companyInformation",
            body={"displayName": name, "country": country, "currencyCode": currency},
        )
    )
    session.add(
        BcRecord(
            guid=str(uuid.uuid4()),
            company_id=company,
            entity="customerPaymentJournals",
            body={"code": "C2C", "displayName": "c2c receipts", "balancingAccountNumber": "10100"},
        )
    )
    for code, starting, units, lcy in RATES[currency]:
        session.add(
            BcRecord(
                guid=str(uuid.uuid4()),
                company_id=company,
                entity="currencyExchangeRates",
                body={
                    "currencyCode": code,
                    "startingDate": starting,
                    "exchangeRateAmount": float(units),
                    "relationalCurrencyCode": "",
                    "relationalExchangeRateAmount": float(lcy),
                },
            )
        )
    session.flush()


_PATH = re.compile(r"^companies\(([^)]+)\)(?:/(\w+)(?:\(([^)]+)\))?(?:/([\w.]+))?)?$")


async def _serve(request: Request, tenant: str, environment: str, api: str, rest: str) -> Response:
    ctl = control(request)
    try:
        ctl.authenticate(request)
        if ctl.take_throttle():
            raise BcError(
                429,
                "Application_TooManyRequests",
                "Too many requests reached. Wait and try again.",
            )
        if tenant != SANDBOX_TENANT or environment != SANDBOX_ENVIRONMENT:
            raise BcError(
                404, "NoEnvironment", f"Environment '{environment}' of '{tenant}' not found."
            )
        if api not in ENTITY_SETS:
            raise BcError(404, "BadRequest_ResourceNotFound", f"No API at {api}.")
        if rest.rstrip("/") == "companies" and api == STANDARD:
            companies = [
                {"id": cid, "name": name, "displayName": name}
                for cid, (name, _, _) in SANDBOX_COMPANIES.items()
            ]
            return JSONResponse({"value": companies})
        found = _PATH.match(rest.strip("/"))
        if found is None:
            raise BcError(404, "BadRequest_ResourceNotFound", f"Resource not found: {rest}.")
        company, entity, guid, tail = found.groups()
        company = company.strip("'")
        if company not in SANDBOX_COMPANIES:
            raise BcError(404, "Internal_CompanyNotFound", f"Company '{company}' does not exist.")
        if entity is None or entity not in ENTITY_SETS[api]:
            raise BcError(404, "BadRequest_ResourceNotFound", f"Resource not found: {entity}.")
        changes = request.method in ("POST", "PATCH") and tail != "Microsoft.NAV.post"
        if tail == "attachmentContent":
            content = await request.body()
            body = {"_content": base64.b64encode(content).decode()} if changes else {}
        else:
            body = await _json(request) if changes else {}
        args = (request.app.state.db, request, company, entity, guid, tail, body)
        response: Response = await run_in_threadpool(_work, *args)
        return response
    except BcError as exc:
        headers = {"Retry-After": str(ctl.retry_after_s)} if exc.status == 429 else None
        if exc.status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'}
        return error_response(exc, headers)


def _work(
    db: Database,
    request: Request,
    company: str,
    entity: str,
    guid: str | None,
    tail: str | None,
    body: dict[str, Any],
) -> Response:
    method = request.method
    params = request.query_params
    expand = params.get("$expand") or ""
    with db.write() as session:
        _seed(session, company)
        if guid is None:
            if method == "GET":
                matches = _matcher(params.get("$filter"))
                parent = None
                rows = [render(session, r, expand) for r in _rows(session, company, entity, parent)]
                return JSONResponse({"value": [r for r in rows if matches(r)]})
            if method == "POST":
                parent = None
                if entity == "customerPayments":
                    journal = _get(
                        session, company, "customerPaymentJournals", str(body.get("journalId"))
                    )
                    parent = journal.guid
                    body = {k: v for k, v in body.items() if k != "journalId"}
                if entity == "documentAttachments":
                    row = _attachment(session, company, body)
                    return JSONResponse(render(session, row), status_code=201)
                if entity in ("journals", "generalLedgerEntries"):
                    raise BcError(
                        405, "BadRequest_MethodNotAllowed", f"{entity} is read-only here."
                    )
                row = _create(session, company, entity, body, parent)
                return JSONResponse(render(session, row, LINES.get(entity, "")), status_code=201)
            raise BcError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed here.")
        guid = guid.strip("'")
        row = _get(session, company, entity, guid)
        if tail is None:
            if method == "GET":
                return JSONResponse(render(session, row, expand))
            if method == "PATCH":
                _check_match(request, row)
                if row.body.get("_posted") and entity in LINES:
                    raise BcError(
                        400, "Application_DialogException", "A posted document cannot be changed."
                    )
                changes = {
                    k: v
                    for k, v in body.items()
                    if k not in ("id", "number", "@odata.etag") and not k.startswith("_")
                }
                row.body = {**row.body, **changes}
                row.version += 1
                session.add(row)
                session.flush()
                return JSONResponse(render(session, row))
            if method == "DELETE":
                _check_match(request, row)
                session.delete(row)
                return Response(status_code=204)
            raise BcError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed here.")
        if tail == "Microsoft.NAV.post" and method == "POST":
            _check_match(request, row)
            if entity in LINES:
                _post_document(session, row)
            elif entity == "customerPaymentJournals":
                _post_journal(session, row)
            elif entity == "journals":
                _post_general_journal(session, row)
            else:
                raise BcError(400, "BadRequest_MethodNotFound", f"{entity} has no post action.")
            return Response(status_code=204)
        if method == "GET" and tail in (LINES.get(entity), "customerPayments"):
            child = str(tail)
            return JSONResponse(
                {"value": [render(session, r) for r in _rows(session, company, child, row.guid)]}
            )
        if entity == "journals" and tail == "journalLines":
            if method == "POST":
                created = _journal_line(session, row, body)
                return JSONResponse(render(session, created), status_code=201)
            matches = _matcher(params.get("$filter"))
            lines = [render(session, r) for r in _rows(session, company, "journalLines", row.guid)]
            return JSONResponse({"value": [r for r in lines if matches(r)]})
        if entity == "documentAttachments" and tail == "attachmentContent":
            if method == "GET":
                return Response(base64.b64decode(row.body.get("_content") or ""))
            if method == "PATCH":
                _check_match(request, row)
                row.body = {**row.body, **body}
                row.version += 1
                session.add(row)
                return Response(status_code=204)
        if method == "POST" and entity == "customerPaymentJournals" and tail == "customerPayments":
            created = _create(session, company, "customerPayments", body, row.guid)
            return JSONResponse(render(session, created), status_code=201)
        raise BcError(404, "BadRequest_ResourceNotFound", f"Resource not found: {tail}.")


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BcError(
            400, "BadRequest_InvalidRequestBody", "The request body must be a JSON object."
        )
    return body


API_ROUTE = "/v2.0/{tenant}/{environment}/api/{rest:path}"


@router.api_route(API_ROUTE, methods=["GET", "POST", "PATCH", "DELETE"])
async def api(request: Request, tenant: str, environment: str, rest: str) -> Response:
    """Every API v2.0 and c2c API page request (see the module's docstring)."""
    for name in ENTITY_SETS:
        if rest.startswith(name + "/"):
            return await _serve(request, tenant, environment, name, rest[len(name) + 1 :])
    return error_response(BcError(404, "BadRequest_ResourceNotFound", f"No API at {rest}."))


class ControlIn(BaseModel):
    throttle: int | None = Field(default=None, ge=0, le=1000)
    retry_after_s: int | None = Field(default=None, ge=0, le=3600)
    conflicts: int | None = Field(default=None, ge=0, le=1000)
    client_secret: str | None = Field(default=None, min_length=1)
    revoke_tokens: bool = False


@admin_router.get("")
def read_control(request: Request) -> dict[str, int]:
    """Requests still to throttle, changes still to find their record changed, and counters."""
    return control(request).settings()


@admin_router.put("")
def change_control(request: Request, change: ControlIn) -> dict[str, int]:
    """Throttle the next ``throttle`` API requests (``429`` with ``Retry-After``), make the next
    ``conflicts`` changes meet a record someone else changed, accept another client secret, or
    revoke every token issued."""
    ctl = control(request)
    if change.throttle is not None:
        ctl.throttle = change.throttle
    if change.retry_after_s is not None:
        ctl.retry_after_s = change.retry_after_s
    if change.conflicts is not None:
        ctl.conflicts = change.conflicts
    if change.client_secret is not None:
        ctl.client_secrets.add(change.client_secret)
    if change.revoke_tokens:
        ctl.tokens.clear()
    return ctl.settings()
