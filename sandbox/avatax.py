"""Avalara AvaTax stand-in (``/vendors/avatax``): AvaTax REST v2's paths, JSON and errors.

It serves the tax engine's documents (``sandbox.tax_documents``) at AvaTax's own paths, as
the ``avalara`` client calls them, with its basic authentication (account id and license key)
and its error shape ``{"error": {"code", "message", "target", "details": [...]}}``:

- ``POST /api/v2/transactions/create`` (CreateTransaction) and
  ``POST /api/v2/transactions/createoradjust`` (CreateOrAdjustTransaction);
- ``GET /api/v2/companies/{companyCode}/transactions/{transactionCode}`` (GetTransactionByCode)
  and ``GET /api/v2/companies/{companyCode}/transactions`` (ListTransactionsByCompany,
  ``{"@recordsetCount", "value"}``);
- ``POST .../{transactionCode}/commit``, ``/void``, ``/refund``;
- ``POST /api/v2/addresses/resolve`` (ResolveAddressPost): the address with its tax
  authority, or ``messages`` of severity ``Error`` naming the part of the address at fault;
- ``GET /api/v2/utilities/ping``.

Rates and jurisdictions are the tax engine's (``sandbox.tax``); a document made here is the
same record as one made at ``/tax/v1``.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from pydantic import Field as PydanticField

from sandbox import tax_documents
from sandbox.db import Database
from sandbox.errors import ApiError
from sandbox.paging import MAX_LIMIT, Page
from sandbox.schemas import Body, Country
from sandbox.tax import resolve

router = APIRouter(tags=["avatax"])

#: The account the sandbox's AvaTax accepts unless configured otherwise.
DEFAULT_ACCOUNT_ID = "1100000000"
DEFAULT_LICENSE_KEY = "sandbox-license-key"

_STATUS = {404: 404, 409: 400, 422: 400}


class ResolveAddressIn(Body):
    """AvaTax's ``AddressValidationInfo``."""

    line1: str | None = PydanticField(default=None, max_length=100)
    line2: str | None = PydanticField(default=None, max_length=100)
    line3: str | None = PydanticField(default=None, max_length=100)
    city: str | None = PydanticField(default=None, max_length=50)
    region: str | None = PydanticField(default=None, max_length=10)
    country: Country
    postalCode: str | None = PydanticField(default=None, max_length=20)
    textCase: str | None = None
    latitude: float | None = None
    longitude: float | None = None


def _camel(code: str) -> str:
    return "".join(part.capitalize() for part in code.split("_"))


def avatax_error(
    status: int, code: str, message: str, refers_to: str | None = None
) -> JSONResponse:
    """An answer in AvaTax's error shape."""
    detail = {
        "code": code,
        "number": status,
        "message": message,
        "description": message,
        "faultCode": "Client",
        "refersTo": refers_to,
        "severity": "Error",
    }
    return JSONResponse(
        {
            "error": {
                "code": code,
                "message": message,
                "target": "IncorrectData",
                "details": [detail],
            }
        },
        status_code=status,
    )


def _from_sandbox(exc: ApiError) -> JSONResponse:
    code = "EntityNotFoundError" if exc.status == 404 else _camel(exc.code)
    return avatax_error(_STATUS.get(exc.status, exc.status), code, exc.message, exc.field)


def _from_validation(exc: ValidationError, prefix: str = "") -> JSONResponse:
    first = exc.errors()[0]
    field = prefix + ".".join(str(p) for p in first.get("loc", ()))
    message = f"{field or 'the request'}: {first.get('msg', 'is not valid')}"
    return avatax_error(400, "ModelStateInvalid", message, field or None)


def _authorized(request: Request) -> bool:
    """Basic auth with the configured account id and license key."""
    expected = getattr(request.app.state, "avatax_credentials", None) or (
        DEFAULT_ACCOUNT_ID,
        DEFAULT_LICENSE_KEY,
    )
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return secrets.compare_digest(user, expected[0]) and secrets.compare_digest(
        password, expected[1]
    )


async def _serve(
    request: Request, model: type[BaseModel] | None, handler: Callable[..., Any]
) -> Response:
    """Authenticate, read the body as ``model`` (if any), run ``handler(body, db)`` and answer
    in AvaTax's shapes."""
    answer = await _answer(request, model, handler)
    # AvaTax names every answer; Avalara's client reads the header back.
    answer.headers["X-Correlation-Id"] = str(uuid.uuid4())
    return answer


async def _answer(
    request: Request, model: type[BaseModel] | None, handler: Callable[..., Any]
) -> Response:
    if not _authorized(request):
        return avatax_error(
            401, "AuthenticationException", "the account id or license key is not valid"
        )
    db: Database = request.app.state.db
    body: Any = None
    if model is not None:
        try:
            body = model.model_validate_json(await request.body())
        except ValidationError as exc:
            return _from_validation(exc)
    try:
        result = handler(body, db)
    except ApiError as exc:
        return _from_sandbox(exc)
    if isinstance(result, Response):
        return result
    return JSONResponse(result, status_code=200)


@router.get("/api/v2/utilities/ping")
async def ping(request: Request) -> Response:
    """Ping: whether the caller authenticated."""
    known = _authorized(request)
    return JSONResponse(
        {
            "version": "sandbox",
            "authenticated": known,
            "authenticationType": "AccountIdLicenseKey" if known else "None",
        },
        headers={"X-Correlation-Id": str(uuid.uuid4())},
    )


@router.post("/api/v2/transactions/createoradjust")
async def create_or_adjust(request: Request) -> Response:
    return await _serve(request, tax_documents.CreateOrAdjustIn, tax_documents.create_or_adjust)


@router.post("/api/v2/transactions/create")
async def create(request: Request) -> Response:
    """CreateTransaction: a new document, or the uncommitted one of its code replaced."""

    def handler(body: tax_documents.CreateTransactionIn, db: Database) -> Any:
        with db.read() as session:
            existing = tax_documents._find(session, body.companyCode, body.code)
        if existing is not None and existing.status == "Committed":
            raise ApiError(
                409,
                "transaction_already_committed",
                f"transaction {body.code} is committed: adjust it, or use another code",
                field="code",
            )
        wrapped = tax_documents.CreateOrAdjustIn(createTransactionModel=body)
        return tax_documents.create_or_adjust(wrapped, db)

    return await _serve(request, tax_documents.CreateTransactionIn, handler)


@router.get("/api/v2/companies/{company_code}/transactions")
async def list_transactions(
    request: Request,
    company_code: str,
    top: Annotated[int, Query(alias="$top", ge=1)] = 100,
) -> Response:
    """The company's documents, the first ``$top`` (at most the sandbox's page size)."""

    def handler(_: None, db: Database) -> Any:
        page = Page(limit=min(top, MAX_LIMIT), after=0)
        listed = tax_documents.list_documents(company_code, db, page)
        return {"@recordsetCount": len(listed["items"]), "value": listed["items"]}

    return await _serve(request, None, handler)


@router.get("/api/v2/companies/{company_code}/transactions/{code}")
async def get_transaction(request: Request, company_code: str, code: str) -> Response:
    return await _serve(
        request, None, lambda _, db: tax_documents.read_document(company_code, code, db)
    )


@router.post("/api/v2/companies/{company_code}/transactions/{code}/commit")
async def commit(request: Request, company_code: str, code: str) -> Response:
    return await _serve(
        request,
        tax_documents.CommitIn,
        lambda body, db: tax_documents.commit_document(company_code, code, body, db),
    )


@router.post("/api/v2/companies/{company_code}/transactions/{code}/void")
async def void(request: Request, company_code: str, code: str) -> Response:
    return await _serve(
        request,
        tax_documents.VoidIn,
        lambda body, db: tax_documents.void_document(company_code, code, body, db),
    )


@router.post("/api/v2/companies/{company_code}/transactions/{code}/refund")
async def refund(request: Request, company_code: str, code: str) -> Response:
    return await _serve(
        request,
        tax_documents.RefundIn,
        lambda body, db: tax_documents.refund_document(company_code, code, body, db),
    )


@router.post("/api/v2/addresses/resolve")
async def resolve_address(request: Request) -> Response:
    """ResolveAddressPost: the address, its tax authority, and messages when unresolved."""

    def handler(body: ResolveAddressIn, db: Database) -> Any:
        address = body.model_dump(exclude_none=True)
        try:
            with db.read() as session:
                jurisdiction = resolve(session, body.country, body.region)
        except ApiError as exc:
            part = "Region" if (exc.field or "").endswith("region") else "Country"
            return {
                "address": address,
                "validatedAddresses": [],
                "resolutionQuality": "NotCoded",
                "messages": [
                    {
                        "summary": exc.message,
                        "details": exc.message,
                        "refersTo": f"Address.{part}",
                        "severity": "Error",
                        "source": "Avalara.AvaTax.Services.Address",
                    }
                ],
            }
        return {
            "address": address,
            "validatedAddresses": [{**address, "addressType": "UnknownAddressType"}],
            "resolutionQuality": "Intersection",
            "taxAuthorities": [
                {
                    "avalaraId": jurisdiction.code,
                    "jurisdictionName": jurisdiction.name,
                    "jurisdictionType": "State" if jurisdiction.region else "Country",
                    "signatureCode": jurisdiction.code,
                }
            ],
        }

    return await _serve(request, ResolveAddressIn, handler)
