"""Dynamics 365 Business Central as c2c's ERP, through its API v2.0 and c2c's API pages.

Base ``/v2.0/{tenant}/{environment}/api/v2.0/companies({companyId})``: ``customers``,
``projects``, ``salesInvoices`` (+ ``salesInvoiceLines``), ``salesCreditMemos`` (+ lines),
``customerPayments`` (lines of a customer payment journal), ``currencyExchangeRates`` and
``companyInformation``. c2c's contract (its schedules, amendments, document link, and the
project's status) and its revenue entries live on two pages of c2c's extension, under
``/api/c2c/contractToCash/v1.0/companies({companyId})``: ``contracts`` and ``revenueEntries``.
Each legal entity is a company (``C2C_BC_COMPANIES``); the ids c2c keeps are
``<legal entity>:<Business Central id>``, so a later call finds the company.

Exactly once on Business Central's terms: every record carries a number or external document
number built from its business key (a hash, since Business Central's codes are short and
upper case). A create is preceded by a look-up with ``$filter`` on it, and a create whose
answer was lost (a timeout, a ``5xx``) or refused as a duplicate is answered by a second
look-up, so a retry never makes a second record.

Changes (``PATCH``, ``DELETE``, ``Microsoft.NAV.post``) carry ``If-Match`` with the record's
``@odata.etag``; a ``412`` means someone changed it since: c2c reads it again and retries.
Tokens come from Microsoft Entra ID by OAuth 2.0 client credentials through ``msal``.
``429`` (with ``Retry-After``), ``5xx`` and timeouts are transient; ``401`` is a configuration
error; other refusals are business rejections carrying Business Central's ``error.code`` and
``error.message``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
import msal
import structlog

from c2c.bc_mapping import BC_SCOPE, BcCompany, BcDimensions, BcLine
from c2c.tracing import client_span
from connectors.erp_wire import (
    amendment_entry,
    balances,
    invoice_status,
    line_mapping,
    rate_card_text,
    schedule_text,
)
from connectors.erp_wire import dec as _dec
from connectors.erp_wire import dumps as _dumps
from connectors.erp_wire import loads as _loads
from connectors.erp_wire import wire as _wire
from connectors.http import QUICK_WAIT_S, HttpConnector
from connectors.records import (
    CashApplication,
    ErpAmendment,
    ErpContract,
    ErpContractBalances,
    ErpCreditNote,
    ErpCustomer,
    ErpInvoice,
    ErpInvoiceLine,
    ErpPayment,
    ErpProject,
    ErpWriteOff,
    LegalEntity,
    RevenueEntry,
)
from domain.errors import BusinessError, NotFound, Rejection, TransientError
from domain.write_models import (
    AmendmentDraft,
    BillingSchedule,
    CashApplicationDraft,
    ContractDraft,
    CreditNoteDraft,
    CustomerDraft,
    DocumentFile,
    InvoiceDraft,
    InvoiceLineDraft,
    PaymentDraft,
    ProjectDraft,
    RevenueEntryDraft,
    RevenueSchedule,
    WriteOffDraft,
    invoice_business_key,
)

C2C_PAGES = "api/c2c/contractToCash/v1.0"
STANDARD = "api/v2.0"
#: Business Central's answer to a create whose number a record holds already.
DUPLICATE = "Internal_EntityWithSameKeyExists"
MAPPING_MISSING = "bc_mapping_missing"
ZERO = Decimal(0)
CENT = Decimal("0.01")
#: Comment lines that name the c2c keys of an invoice or credit memo on the document itself.
CONTRACT_LINE = "Contract "
REFERENCE_LINE = "Reference "
CREDIT_LINE = "Credit note "


def code(prefix: str, *key: str, length: int = 20) -> str:
    """A Business Central code for a business key: ``prefix`` and a hash, upper case."""
    digest = hashlib.sha256("\x1f".join(key).encode()).hexdigest().upper()
    return prefix + digest[: length - len(prefix)]


def project_number(contract_id: str) -> str:
    """The number of a contract's project (and of its contract page record)."""
    return code("C2C", contract_id)


def invoice_key(contract_id: str, reference: str) -> str:
    """An invoice's external document number: its project's number and its reference."""
    return f"{project_number(contract_id)}-{code('', reference, length=14)}"


def _quote(value: str) -> str:
    return value.replace("'", "''")


def _route(path: str) -> str:
    """A path with its ids as ``{id}``, for metrics and spans."""
    path = re.sub(r"^/v2\.0/[^/]+/[^/]+/", "/", path.split("?")[0])
    return re.sub(r"\([^)]*\)", "({id})", path)


class Conflict(TransientError):
    """A ``412``: the record changed since its ETag was read (read it again and retry)."""

    def __init__(self, message: str) -> None:
        super().__init__("erp", f"412 Request_EntityChanged: {message}", status=412)


def _passing(response: httpx.Response) -> httpx.Response:
    """``response``, unless Entra ID is throttling (``429``) or down (``5xx``): msal would take
    a throttled tenant discovery for a tenant that does not exist, and an unavailable token
    endpoint for refused credentials, so these are raised as what they are, before msal reads
    them."""
    status = response.status_code
    if status == 429 or status >= 500:
        retry = response.headers.get("Retry-After")
        raise TransientError(
            "erp",
            f"Microsoft Entra ID answered {status}",
            status=status,
            retry_after_s=float(retry) if retry and retry.isdigit() else None,
        )
    return response


class _PlainHttp:
    """msal's HTTP client: httpx, and an ``http://`` authority reached over plain HTTP.

    msal accepts only ``https`` authorities; an authority configured as ``http://`` (the
    sandbox's) is given to msal as ``https://`` and this client sends its requests to the
    ``http://`` origin it was configured with.
    """

    def __init__(self, plain_origin: str | None, timeout_s: float) -> None:
        self.plain_origin = plain_origin
        self.client = httpx.Client(timeout=timeout_s)

    def _url(self, url: str) -> str:
        if self.plain_origin is None:
            return url
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.netloc == urlsplit(self.plain_origin).netloc:
            return urlunsplit(("http", *parts[1:]))
        return url

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> httpx.Response:
        return _passing(self.client.post(self._url(url), params=params, data=data, headers=headers))

    def get(
        self, url: str, params: Any = None, headers: Any = None, **kwargs: Any
    ) -> httpx.Response:
        return _passing(self.client.get(self._url(url), params=params, headers=headers))

    def close(self) -> None:
        self.client.close()


class EntraTokens:
    """Bearer tokens for Business Central's API, one ``msal`` app per tenant (msal caches
    each token until shortly before it expires)."""

    def __init__(
        self,
        authority: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str = BC_SCOPE,
        timeout_s: float = 10.0,
    ) -> None:
        authority = authority.rstrip("/")
        plain = authority if authority.startswith("http://") else None
        self.authority = "https://" + authority.removeprefix("http://").removeprefix("https://")
        self.client_id, self.client_secret, self.scope = client_id, client_secret, scope
        self.http = _PlainHttp(plain, timeout_s)
        self.apps: dict[str, Any] = {}
        self.cached: dict[str, tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    def _acquire(self, tenant: str, fresh: bool) -> dict[str, Any]:
        app = None if fresh else self.apps.get(tenant)
        if app is None:
            app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self.client_secret,
                authority=f"{self.authority}/{tenant}",
                http_client=self.http,
                instance_discovery=False,
            )
            self.apps[tenant] = app
        result: dict[str, Any] = app.acquire_token_for_client(scopes=[self.scope])
        return result

    async def token(self, tenant: str, *, fresh: bool = False) -> str:
        """A bearer token for ``tenant``; ``fresh`` asks Entra ID for a new one (the last was
        refused). Kept in the process until a minute before it expires."""
        cached = self.cached.get(tenant)
        if cached is not None and not fresh and cached[1] > time.monotonic():
            return cached[0]
        async with self._lock:
            try:
                result = await asyncio.to_thread(self._acquire, tenant, fresh)
            except httpx.TransportError as exc:
                self.apps.pop(tenant, None)
                raise TransientError("erp", f"Entra ID token request failed: {exc!r}") from exc
            except TransientError:
                self.apps.pop(tenant, None)
                raise
            except ValueError as exc:
                # msal could not discover the tenant: a wrong tenant or authority.
                self.apps.pop(tenant, None)
                raise BusinessError(
                    Rejection(
                        system="erp",
                        code="Authentication_InvalidCredentials",
                        message=f"Microsoft Entra ID has no tenant {tenant!r} at "
                        f"{self.authority}: {exc}",
                        status=401,
                    )
                ) from exc
        if "access_token" not in result:
            raise BusinessError(
                Rejection(
                    system="erp",
                    code="Authentication_InvalidCredentials",
                    message="Microsoft Entra ID refused c2c's client credentials: "
                    f"{result.get('error')}: {result.get('error_description')}",
                    status=401,
                )
            )
        token = str(result["access_token"])
        lifetime = float(result.get("expires_in") or 0)
        self.cached[tenant] = (token, time.monotonic() + max(0.0, lifetime - 60))
        return token

    def close(self) -> None:
        self.http.close()


class BusinessCentralErp(HttpConnector):
    """``ErpPort`` on the Business Central companies of c2c's legal entities."""

    system = "erp"
    vendor = "business-central"

    def __init__(
        self,
        base_url: str,
        *,
        companies: Mapping[str, BcCompany],
        dimensions: BcDimensions,
        tokens: EntraTokens,
        timeout_s: float = 10.0,
        quick_retries: int = 2,
        conflict_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url, timeout_s=timeout_s, quick_retries=quick_retries, transport=transport
        )
        self.companies = dict(companies)
        self.dimensions = dimensions
        self.tokens = tokens
        self.conflict_retries = conflict_retries
        self._lcys: dict[str, str] = {}

    async def aclose(self) -> None:
        await super().aclose()
        self.tokens.close()

    # --- transport ------------------------------------------------------------------------

    def _company(self, legal_entity: str) -> BcCompany:
        found = self.companies.get(legal_entity)
        if found is None:
            raise self._unmapped(
                "legal_entity",
                f"no Business Central company for legal entity {legal_entity} (C2C_BC_COMPANIES)",
            )
        return found

    def _path(self, legal_entity: str, tail: str, api: str = STANDARD) -> str:
        c = self._company(legal_entity)
        return f"/v2.0/{c.tenant}/{c.environment}/{api}/companies({c.company_id}){tail}"

    async def call(
        self,
        method: str,
        legal_entity: str,
        tail: str,
        *,
        api: str = STANDARD,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        if_match: str | None = None,
        repeatable: bool | None = None,
        content: bytes | None = None,
    ) -> Any:
        """One API call, tried again at once after a transient failure when it is safe to
        repeat (a read, or a change guarded by ``If-Match``) and the wait asked is short."""
        tenant = self._company(legal_entity).tenant
        path = self._path(legal_entity, tail, api)
        safe = repeatable if repeatable is not None else (method == "GET" or if_match is not None)
        fresh = False
        attempt = 0
        while True:
            try:
                return await self._send_bc(
                    method,
                    path,
                    tenant,
                    json=json,
                    params=params,
                    if_match=if_match,
                    fresh=fresh,
                    content=content,
                )
            except _Unauthorized:
                if fresh:
                    raise BusinessError(
                        Rejection(
                            system=self.system,
                            code="Authentication_InvalidCredentials",
                            message="Business Central refused c2c's token",
                            status=401,
                        )
                    ) from None
                # An expired or revoked token: one fresh token, one more try.
                fresh = True
            except Conflict:
                raise
            except TransientError as exc:
                long_wait = exc.retry_after_s is not None and exc.retry_after_s > QUICK_WAIT_S
                if not safe or long_wait or attempt >= self.quick_retries:
                    raise
                await asyncio.sleep(exc.retry_after_s or 0.05 * 2**attempt)
                attempt += 1

    async def _send_bc(
        self,
        method: str,
        path: str,
        tenant: str,
        *,
        json: Any,
        params: Mapping[str, Any] | None,
        if_match: str | None,
        fresh: bool,
        content: bytes | None = None,
    ) -> Any:
        route = _route(path)
        started = time.perf_counter()
        headers: dict[str, str] = {"Accept": "application/json"}
        body = content if content is not None else None if json is None else _dumps(_wire(json))
        with (
            structlog.contextvars.bound_contextvars(system=self.system),
            client_span(self.system, method, route, headers) as span,
        ):
            headers["Authorization"] = "Bearer " + await self.tokens.token(tenant, fresh=fresh)
            if body is not None:
                headers["Content-Type"] = (
                    "application/octet-stream" if content is not None else "application/json"
                )
            if if_match is not None:
                headers["If-Match"] = if_match
            try:
                response = await self._client.request(
                    method, path, content=body, params=params, headers=headers
                )
            except httpx.TimeoutException as exc:
                self._observe(span, method, route, None, started, "timeout")
                raise TransientError(self.system, f"{method} {route} timed out") from exc
            except httpx.TransportError as exc:
                self._observe(span, method, route, None, started, "transient")
                raise TransientError(
                    self.system, f"{method} {route}: {type(exc).__name__}"
                ) from exc
            status = response.status_code
            outcome = (
                "ok"
                if status < 400
                else "transient"
                if status == 429 or status >= 500
                else "business_error"
            )
            self._observe(span, method, route, status, started, outcome)
        if status < 400:
            return _loads(response.content) if response.content else None
        raise self._error(method, route, response)

    def _error(self, method: str, route: str, response: httpx.Response) -> Exception:
        status = response.status_code
        error_code, message = f"http_{status}", response.reason_phrase
        try:
            error = response.json().get("error") or {}
            error_code = str(error.get("code") or error_code)
            message = str(error.get("message") or message)
        except (ValueError, AttributeError):
            pass
        if status == 401:
            return _Unauthorized()
        if status == 412:
            return Conflict(message)
        if status == 429 or status >= 500:
            retry = response.headers.get("Retry-After")
            return TransientError(
                self.system,
                f"{method} {route} answered {status} {error_code}",
                status=status,
                retry_after_s=float(retry) if retry and retry.isdigit() else None,
            )
        rejection = Rejection(system=self.system, code=error_code, message=message, status=status)
        if status == 404:
            return NotFound(rejection)
        return BusinessError(rejection)

    def _unmapped(self, field: str, message: str) -> BusinessError:
        return BusinessError(
            Rejection(system=self.system, code=MAPPING_MISSING, message=message, field=field)
        )

    # --- records --------------------------------------------------------------------------

    async def _read(
        self,
        entity: str,
        ref: str,
        entity_set: str,
        *,
        api: str = STANDARD,
        expand: str | None = None,
    ) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self.call(
                "GET",
                entity,
                f"/{entity_set}({ref})",
                api=api,
                params={"$expand": expand} if expand else None,
            )
        except NotFound:
            return None
        return found

    async def _filter(
        self,
        entity: str,
        entity_set: str,
        expression: str,
        *,
        api: str = STANDARD,
        expand: str | None = None,
    ) -> list[dict[str, Any]]:
        params = {"$filter": expression, **({"$expand": expand} if expand else {})}
        page = await self.call("GET", entity, f"/{entity_set}", api=api, params=params)
        return list(page.get("value") or [])

    async def _lookup(
        self,
        entity: str,
        entity_set: str,
        field: str,
        key: str,
        *,
        api: str = STANDARD,
        expand: str | None = None,
    ) -> dict[str, Any] | None:
        found = await self._filter(
            entity, entity_set, f"{field} eq '{_quote(key)}'", api=api, expand=expand
        )
        return found[0] if found else None

    async def _create_once(
        self,
        entity: str,
        entity_set: str,
        field: str,
        key: str,
        body: dict[str, Any],
        *,
        api: str = STANDARD,
        tail: str | None = None,
        expand: str | None = None,
    ) -> dict[str, Any]:
        """The record whose ``field`` is ``key``, created only if none is found."""
        existing = await self._lookup(entity, entity_set, field, key, api=api, expand=expand)
        if existing is not None:
            return existing
        try:
            await self.call(
                "POST",
                entity,
                tail or f"/{entity_set}",
                api=api,
                json={field: key, **body},
                repeatable=False,
            )
        except TransientError:
            # The answer may be lost after Business Central committed: look before failing.
            found = await self._lookup(entity, entity_set, field, key, api=api, expand=expand)
            if found is None:
                raise
            return found
        except BusinessError as exc:
            if exc.rejection.code != DUPLICATE:
                raise
        record = await self._lookup(entity, entity_set, field, key, api=api, expand=expand)
        if record is None:
            raise TransientError(self.system, f"{entity_set} {key} not readable after create")
        return record

    async def _change(
        self,
        entity: str,
        entity_set: str,
        ref: str,
        change: Any,
        *,
        api: str = STANDARD,
        action: str | None = None,
    ) -> dict[str, Any]:
        """Read the record, then PATCH ``change(record)`` (or run the bound ``action``) with
        ``If-Match``; a ``412`` reads it again and retries. ``change`` may answer ``None``:
        nothing to do."""
        for _ in range(self.conflict_retries + 1):
            record = await self._read(entity, ref, entity_set, api=api)
            if record is None:
                raise NotFound(
                    Rejection(
                        system=self.system,
                        code="BadRequest_NotFound",
                        message=f"{entity_set} {ref} does not exist in Business Central",
                    )
                )
            body = change(record)
            if body is None:
                return record
            try:
                if action is not None:
                    await self.call(
                        "POST",
                        entity,
                        f"/{entity_set}({ref})/{action}",
                        api=api,
                        if_match=record["@odata.etag"],
                    )
                else:
                    await self.call(
                        "PATCH",
                        entity,
                        f"/{entity_set}({ref})",
                        api=api,
                        json=body,
                        if_match=record["@odata.etag"],
                    )
            except Conflict:
                continue
            found = await self._read(entity, ref, entity_set, api=api)
            if found is None:
                raise TransientError(self.system, f"{entity_set} {ref} not readable after a change")
            return found
        raise TransientError(
            self.system,
            f"{entity_set} {ref} kept changing under c2c ({self.conflict_retries} tries)",
        )

    async def _lcy(self, entity: str) -> str:
        found = self._lcys.get(entity)
        if found is None:
            page = await self.call("GET", entity, "/companyInformation")
            info = (page.get("value") or [{}])[0]
            found = self._lcys[entity] = str(info.get("currencyCode") or "")
        return found

    async def _currency(self, entity: str, currency: str) -> str:
        """Business Central's currency code: blank for the company's local currency."""
        return "" if currency == await self._lcy(entity) else currency

    async def _code_of(self, entity: str, record: dict[str, Any]) -> str:
        return str(record.get("currencyCode") or await self._lcy(entity))

    # --- ids ------------------------------------------------------------------------------

    @staticmethod
    def _id(entity: str, guid: str) -> str:
        return f"{entity}:{guid}"

    def _split(self, value: str) -> tuple[str, str]:
        entity, sep, guid = value.partition(":")
        if not sep or entity not in self.companies:
            raise NotFound(
                Rejection(
                    system=self.system,
                    code="BadRequest_NotFound",
                    message=f"{value!r} is not a Business Central id c2c made",
                )
            )
        return entity, guid

    async def _contract_record(self, contract_id: str) -> tuple[str, dict[str, Any]] | None:
        """The contract page record of a contract, in whichever company holds it."""
        for entity in self.companies:
            found = await self._lookup(
                entity, "contracts", "number", project_number(contract_id), api=C2C_PAGES
            )
            if found is not None:
                return entity, found
        return None

    # --- ErpPort: set-up ------------------------------------------------------------------

    async def get_legal_entity(self, code_: str) -> LegalEntity | None:
        """The company the legal entity maps to, from its ``companyInformation``."""
        self._company(code_)
        try:
            page = await self.call("GET", code_, "/companyInformation")
        except NotFound:
            return None
        info = (page.get("value") or [None])[0]
        if info is None:
            return None
        self._lcys[code_] = str(info.get("currencyCode") or "")
        return LegalEntity(
            code=code_,
            name=str(info.get("displayName") or code_),
            country=str(info.get("country") or ""),
            functional_currency=self._lcys[code_],
        )

    async def ensure_customer(
        self, customer: CustomerDraft, *, idempotency_key: str
    ) -> ErpCustomer:
        entity = customer.legal_entity
        crm_id = customer.crm_account_id
        # One customer per CRM account and company: one found is the answer, never rewritten.
        record = await self._create_once(
            entity,
            "customers",
            "number",
            code("C2C", crm_id),
            {
                "displayName": customer.name[:100],
                "type": "Company",
                "email": customer.billing_email,
                "currencyCode": await self._currency(entity, customer.currency),
                "taxRegistrationNumber": customer.tax_id,
            },
        )
        return ErpCustomer(
            customer_id=self._id(entity, record["id"]),
            crm_account_id=crm_id,
            name=record["displayName"],
        )

    async def ensure_project(self, project: ProjectDraft, *, idempotency_key: str) -> ErpProject:
        entity = project.legal_entity
        contract_id = project.contract_id
        record = await self._create_once(
            entity, "projects", "number", project_number(contract_id), {"displayName": contract_id}
        )
        status = "active"
        found = await self._lookup(
            entity, "contracts", "number", project_number(contract_id), api=C2C_PAGES
        )
        if found is not None and found.get("projectStatus") == "Completed":
            status = "closed"
        return ErpProject(
            project_id=self._id(entity, record["id"]), contract_id=contract_id, status=status
        )

    async def close_project(self, project_id: str, *, idempotency_key: str) -> ErpProject:
        """Set the project's status to Completed, through c2c's contract page (API v2.0's
        ``projects`` has no status)."""
        entity, guid = self._split(project_id)
        project = await self._read(entity, guid, "projects")
        if project is None:
            raise NotFound(
                Rejection(
                    system=self.system, code="BadRequest_NotFound", message=f"project {project_id}"
                )
            )
        contract = await self._lookup(
            entity, "contracts", "number", project["number"], api=C2C_PAGES
        )
        if contract is not None:
            await self._change(
                entity,
                "contracts",
                contract["id"],
                lambda r: (
                    None
                    if r.get("projectStatus") == "Completed"
                    else {"projectStatus": "Completed"}
                ),
                api=C2C_PAGES,
            )
        return ErpProject(
            project_id=project_id, contract_id=project["displayName"], status="closed"
        )

    def _contract(self, entity: str, record: dict[str, Any]) -> ErpContract:
        amendments = json.loads(record.get("amendments") or "[]")
        nte = record.get("notToExceed")
        end = record.get("endDate")
        return ErpContract(
            erp_contract_id=self._id(entity, record["id"]),
            contract_id=record["contractId"],
            status="closed" if record.get("projectStatus") == "Completed" else "active",
            end_date=date.fromisoformat(end) if end else None,
            not_to_exceed=_dec(nte) if nte not in (None, "", 0) else None,
            amendments=[ErpAmendment.model_validate(a) for a in amendments],
            document_url=record.get("documentUrl") or None,
            document_sha256=record.get("documentSha256") or None,
        )

    async def ensure_contract(
        self, contract: ContractDraft, *, idempotency_key: str
    ) -> ErpContract:
        """c2c's contract as a record of c2c's ``contracts`` page, numbered as its project."""
        entity = contract.legal_entity
        contract_id = contract.contract_id
        record = await self._create_once(
            entity,
            "contracts",
            "number",
            project_number(contract_id),
            {
                "contractId": contract_id,
                "projectId": self._split(contract.project_id)[1],
                "customerId": self._split(contract.customer_id)[1],
                "currencyCode": contract.currency,
                "billingModel": contract.billing_model,
                "startDate": contract.start_date,
                "endDate": contract.end_date,
                "paymentTermsDays": contract.payment_terms_days,
                "notToExceed": contract.not_to_exceed or None,
                "contractValue": contract.contract_value,
                "rateCard": rate_card_text(contract.rate_card),
                "amendments": "[]",
                "projectStatus": "Open",
            },
            api=C2C_PAGES,
        )
        return self._contract(entity, record)

    async def _patch_contract(self, erp_contract_id: str, fields: Any) -> dict[str, Any]:
        entity, guid = self._split(erp_contract_id)
        return await self._change(entity, "contracts", guid, fields, api=C2C_PAGES)

    async def _put_text(self, erp_contract_id: str, field: str, text: str) -> None:
        """Write ``text`` in a field of the contract page, if it differs."""
        await self._patch_contract(
            erp_contract_id, lambda r: None if r.get(field) == text else {field: text}
        )

    async def put_billing_schedule(
        self, erp_contract_id: str, schedule: BillingSchedule, *, idempotency_key: str
    ) -> None:
        await self._put_text(erp_contract_id, "billingSchedule", schedule_text(schedule))

    async def put_revenue_schedule(
        self, erp_contract_id: str, schedule: RevenueSchedule, *, idempotency_key: str
    ) -> None:
        await self._put_text(erp_contract_id, "revenueSchedule", schedule_text(schedule))

    async def amend_contract(
        self, erp_contract_id: str, amendment: AmendmentDraft, *, idempotency_key: str
    ) -> ErpContract:
        """Record the amendment once (its ``amendment_id`` keys it), re-read on a conflict."""

        def change(record: dict[str, Any]) -> dict[str, Any] | None:
            amendments = json.loads(record.get("amendments") or "[]")
            if any(a["amendment_id"] == amendment.amendment_id for a in amendments):
                return None
            amendments.append(amendment_entry(amendment))
            body: dict[str, Any] = {"amendments": json.dumps(amendments)}
            if amendment.end_date:
                body["endDate"] = amendment.end_date.isoformat()
            if amendment.not_to_exceed:
                body["notToExceed"] = amendment.not_to_exceed
            return body

        entity, _ = self._split(erp_contract_id)
        return self._contract(entity, await self._patch_contract(erp_contract_id, change))

    async def link_contract_document(
        self, erp_contract_id: str, document_url: str, sha256: str
    ) -> ErpContract:
        entity, _ = self._split(erp_contract_id)

        def change(record: dict[str, Any]) -> dict[str, Any] | None:
            if record.get("documentUrl") == document_url and record.get("documentSha256") == sha256:
                return None
            return {"documentUrl": document_url, "documentSha256": sha256}

        return self._contract(entity, await self._patch_contract(erp_contract_id, change))

    async def get_exchange_rate(self, from_currency: str, to_currency: str, on: date) -> Decimal:
        """Units of ``to_currency`` per ``from_currency``, from the ``currencyExchangeRates`` of
        a company whose local currency is one of the two (the latest on or before ``on``)."""
        if from_currency == to_currency:
            return Decimal(1)
        for entity in self.companies:
            lcy = await self._lcy(entity)
            if lcy not in (from_currency, to_currency):
                continue
            other = from_currency if lcy == to_currency else to_currency
            rates = [
                r
                for r in await self._filter(
                    entity, "currencyExchangeRates", f"currencyCode eq '{other}'"
                )
                if str(r.get("startingDate")) <= on.isoformat()
                and not r.get("relationalCurrencyCode")
            ]
            if not rates:
                continue
            latest = max(rates, key=lambda r: str(r.get("startingDate")))
            per_unit = _dec(latest["relationalExchangeRateAmount"]) / _dec(
                latest["exchangeRateAmount"]
            )
            return per_unit if lcy == to_currency else Decimal(1) / per_unit
        raise NotFound(
            Rejection(
                system=self.system,
                code="no_exchange_rate",
                message=f"Business Central has no {from_currency}/{to_currency} rate on {on}",
            )
        )

    # --- invoices -------------------------------------------------------------------------

    def _line_mapping(self, line: InvoiceLineDraft) -> BcLine:
        found, what = line_mapping(self.dimensions, line)
        if found is None:
            raise self._unmapped(
                "lines", f"no Business Central account mapped for {what} (C2C_BC_DIMENSIONS)"
            )
        return found

    def _posting(self, entity: str) -> tuple[str, dict[str, str]]:
        setup = self.dimensions.entities.get(entity)
        if setup is None:
            raise self._unmapped(
                "legal_entity",
                f"no Business Central posting setup for legal entity {entity} (C2C_BC_DIMENSIONS)",
            )
        return setup.tax_account, dict(setup.dimensions)

    def _lines(
        self, entity: str, lines: Sequence[InvoiceLineDraft], comments: list[str], tax: Decimal
    ) -> list[dict[str, Any]]:
        """Document lines: the c2c keys as comments, each line on its account with its
        dimensions, and the tax c2c's engine computed on the tax account."""
        tax_account, entity_dims = self._posting(entity)
        out: list[dict[str, Any]] = [
            {"lineType": "Comment", "description": text[:100]} for text in comments
        ]
        for line in lines:
            mapping = self._line_mapping(line)
            amount = line.amount
            quantity = line.quantity or Decimal(1)
            price = line.unit_price or amount
            if (quantity * price).quantize(CENT, ROUND_HALF_UP) != amount:
                quantity, price = Decimal(1), amount
            dims = {**entity_dims, **mapping.dimensions}
            out.append(
                {
                    "lineType": "Account",
                    "lineObjectNumber": mapping.account,
                    "description": (line.description or line.kind)[:100],
                    "quantity": quantity,
                    "unitPrice": price,
                    "dimensionSetLines": [
                        {"code": k, "valueCode": v} for k, v in sorted(dims.items())
                    ],
                }
            )
        if tax:
            out.append(
                {
                    "lineType": "Account",
                    "lineObjectNumber": tax_account,
                    "description": "Tax",
                    "quantity": Decimal(1),
                    "unitPrice": tax,
                    "dimensionSetLines": [
                        {"code": k, "valueCode": v} for k, v in sorted(entity_dims.items())
                    ],
                }
            )
        return out

    @staticmethod
    def _comment(lines: list[dict[str, Any]], prefix: str) -> str | None:
        for line in lines:
            text = str(line.get("description") or "")
            if line.get("lineType") == "Comment" and text.startswith(prefix):
                return text[len(prefix) :]
        return None

    def _split_amounts(
        self, entity: str, lines: list[dict[str, Any]]
    ) -> tuple[Decimal, Decimal, list[ErpInvoiceLine]]:
        tax_account, _ = self._posting(entity)
        subtotal = tax = ZERO
        out: list[ErpInvoiceLine] = []
        for line in lines:
            if line.get("lineType") == "Comment":
                continue
            amount = _dec(line.get("amountExcludingTax"))
            if line.get("lineObjectNumber") == tax_account:
                tax += amount
                continue
            subtotal += amount
            out.append(
                ErpInvoiceLine(
                    line_id=str(len(out) + 1),
                    kind=self.dimensions.kind_of(str(line.get("lineObjectNumber"))),
                    amount=amount,
                )
            )
        return subtotal, tax, out

    async def _invoice(self, entity: str, record: dict[str, Any]) -> ErpInvoice:
        lines = list(record.get("salesInvoiceLines") or [])
        subtotal, tax, items = self._split_amounts(entity, lines)
        total = _dec(record.get("totalAmountIncludingTax"))
        remaining = _dec(record.get("remainingAmount"))
        bc_status = record.get("status")
        credited = ZERO
        if bc_status != "Draft" and remaining < total:
            notes = await self._filter(entity, "salesCreditMemos", f"invoiceId eq '{record['id']}'")
            credited = min(
                total - remaining,
                sum(
                    (
                        _dec(n.get("totalAmountIncludingTax"))
                        for n in notes
                        if n.get("status") != "Draft"
                    ),
                    ZERO,
                ),
            )
        paid = total - remaining - credited
        status = (
            "draft"
            if bc_status == "Draft"
            else invoice_status(remaining=remaining, paid=paid, credited=credited)
        )
        reference = self._comment(lines, REFERENCE_LINE)
        period = reference if reference and re.fullmatch(r"\d{4}-\d{2}", reference) else None
        milestone = (
            reference.removeprefix("milestone:")
            if reference and reference.startswith("milestone:")
            else None
        )
        return ErpInvoice(
            invoice_id=self._id(entity, record["id"]),
            contract_id=self._comment(lines, CONTRACT_LINE) or "",
            customer_id=self._id(entity, record["customerId"]),
            po_number=record.get("customerPurchaseOrderReference") or None,
            bill_to=_bill_to_of(record),
            number=record.get("number"),
            period=period,
            milestone_id=milestone,
            reference=reference,
            status=status,
            currency=await self._code_of(entity, record),
            subtotal=subtotal,
            tax=tax,
            total=total,
            amount_paid=paid,
            credited_amount=credited,
            credit_applied=credited,
            balance=remaining,
            invoice_date=date.fromisoformat(record["invoiceDate"]),
            due_on=date.fromisoformat(record.get("dueDate") or record["invoiceDate"]),
            lines=items,
        )

    async def find_invoice(
        self,
        contract_id: str,
        *,
        period: str | None = None,
        milestone_id: str | None = None,
        reference: str | None = None,
    ) -> ErpInvoice | None:
        """The invoice of a business key, by its external document number."""
        reference = invoice_business_key(reference, milestone_id, period)
        if reference is None:
            return None
        key = invoice_key(contract_id, reference)
        for entity in self.companies:
            found = await self._lookup(
                entity, "salesInvoices", "externalDocumentNumber", key, expand="salesInvoiceLines"
            )
            if found is not None:
                return await self._invoice(entity, found)
        return None

    async def create_invoice(self, invoice: InvoiceDraft, *, idempotency_key: str) -> ErpInvoice:
        """A draft sales invoice; ``issue_invoice`` posts it."""
        entity = invoice.legal_entity
        reference = invoice.business_key
        lines = self._lines(
            entity,
            invoice.lines,
            [f"{CONTRACT_LINE}{invoice.contract_id}", f"{REFERENCE_LINE}{reference}"],
            sum((line.tax_amount for line in invoice.lines), ZERO),
        )
        record = await self._create_once(
            entity,
            "salesInvoices",
            "externalDocumentNumber",
            invoice_key(invoice.contract_id, reference),
            {
                "customerId": self._split(invoice.customer_id)[1],
                "invoiceDate": invoice.invoice_date,
                "postingDate": invoice.invoice_date,
                "dueDate": invoice.due_on,
                "currencyCode": await self._currency(entity, invoice.currency),
                "salesInvoiceLines": lines,
                **_bill_to_fields(invoice),
            },
            expand="salesInvoiceLines",
        )
        return await self._invoice(entity, record)

    async def issue_invoice(self, invoice_id: str, *, idempotency_key: str) -> ErpInvoice:
        """Post the draft (``Microsoft.NAV.post`` with its ETag); a posted one is the answer."""
        entity, guid = self._split(invoice_id)
        await self._change(
            entity,
            "salesInvoices",
            guid,
            lambda r: None if r.get("status") != "Draft" else {},
            action="Microsoft.NAV.post",
        )
        found = await self.get_invoice(invoice_id)
        if found is None:
            raise TransientError(self.system, f"invoice {invoice_id} not readable after posting")
        return found

    async def get_invoice(self, invoice_id: str) -> ErpInvoice | None:
        entity, guid = self._split(invoice_id)
        record = await self._read(entity, guid, "salesInvoices", expand="salesInvoiceLines")
        return await self._invoice(entity, record) if record else None

    async def list_invoices(self, contract_id: str) -> list[ErpInvoice]:
        prefix = _quote(project_number(contract_id) + "-")
        invoices: list[ErpInvoice] = []
        for entity in self.companies:
            records = await self._filter(
                entity,
                "salesInvoices",
                f"startswith(externalDocumentNumber,'{prefix}')",
                expand="salesInvoiceLines",
            )
            invoices += [await self._invoice(entity, r) for r in records]
        return invoices

    # --- credit memos ---------------------------------------------------------------------

    async def _credit_note(self, entity: str, record: dict[str, Any]) -> ErpCreditNote:
        lines = list(record.get("salesCreditMemoLines") or [])
        subtotal, tax, _ = self._split_amounts(entity, lines)
        total = _dec(record.get("totalAmountIncludingTax"))
        posted = record.get("status") != "Draft"
        applied = total if posted and record.get("invoiceId") else ZERO
        invoice_id = self._id(entity, str(record.get("invoiceId")))
        contract_id = self._comment(lines, CONTRACT_LINE) or ""
        credit_id = self._comment(lines, CREDIT_LINE) or str(record["id"])
        currency = await self._code_of(entity, record)
        return ErpCreditNote(
            credit_note_id=credit_id,
            number=str(record.get("number") or record["id"]),
            invoice_id=invoice_id,
            contract_id=contract_id,
            currency=currency,
            subtotal=subtotal,
            tax=tax,
            total=total,
            applied_amount=applied,
            unapplied_amount=total - applied,
            reason=self._comment(lines, "Reason ") or "",
            created_at=datetime.fromisoformat(
                str(record.get("creditMemoDate") or date.today()) + "T00:00:00+00:00"
            ),
            applications=[
                CashApplication(
                    application_id=credit_id,
                    source="credit_note",
                    credit_note_id=credit_id,
                    invoice_id=invoice_id,
                    contract_id=contract_id,
                    amount=applied,
                    currency=currency,
                )
            ]
            if applied
            else [],
        )

    async def create_credit_note(
        self, invoice_id: str, note: CreditNoteDraft, *, idempotency_key: str
    ) -> ErpCreditNote:
        """A credit memo against the invoice, posted, so it applies to what remains on it."""
        entity, guid = self._split(invoice_id)
        invoice = await self.get_invoice(invoice_id)
        if invoice is None:
            raise NotFound(
                Rejection(
                    system=self.system, code="BadRequest_NotFound", message=f"invoice {invoice_id}"
                )
            )
        credit_id = note.credit_note_id
        # A note's lines are booked as the invoice's first line is.
        lines = [
            InvoiceLineDraft(
                line_id=line.line_id,
                kind=invoice.lines[0].kind if invoice.lines else "time",
                role=next(iter(self.dimensions.roles), None),
                description=line.description,
                amount=line.amount,
                unit_price=line.amount,
                tax_amount=line.tax_amount,
            )
            for line in note.lines
        ]
        comments = [
            f"{CONTRACT_LINE}{invoice.contract_id}",
            f"{CREDIT_LINE}{credit_id}",
            f"Reason {note.reason}",
        ]
        record = await self._create_once(
            entity,
            "salesCreditMemos",
            "externalDocumentNumber",
            code("CN", credit_id, length=35),
            {
                "customerId": self._split(invoice.customer_id or "")[1],
                "invoiceId": guid,
                "creditMemoDate": date.today().isoformat(),
                "currencyCode": await self._currency(entity, invoice.currency),
                "salesCreditMemoLines": self._lines(
                    entity, lines, comments, sum((line.tax_amount for line in lines), ZERO)
                ),
            },
        )
        await self._change(
            entity,
            "salesCreditMemos",
            record["id"],
            lambda r: None if r.get("status") != "Draft" else {},
            action="Microsoft.NAV.post",
        )
        posted = await self._read(
            entity, record["id"], "salesCreditMemos", expand="salesCreditMemoLines"
        )
        assert posted is not None
        return await self._credit_note(entity, posted)

    async def list_credit_notes(
        self, contract_id: str, *, invoice_id: str | None = None
    ) -> list[ErpCreditNote]:
        notes: list[ErpCreditNote] = []
        for invoice in await self.list_invoices(contract_id):
            if invoice_id is not None and invoice.invoice_id != invoice_id:
                continue
            entity, guid = self._split(invoice.invoice_id)
            for record in await self._filter(
                entity, "salesCreditMemos", f"invoiceId eq '{guid}'", expand="salesCreditMemoLines"
            ):
                notes.append(await self._credit_note(entity, record))
        return notes

    # --- payments -------------------------------------------------------------------------

    async def _payment(
        self, entity: str, record: dict[str, Any], invoice: ErpInvoice | None
    ) -> ErpPayment:
        payment_id = str(record.get("description") or "").removeprefix("Payment ")
        contract_id = str(record.get("comment") or "").removeprefix("Contract ") or None
        amount = _dec(record.get("amount"))
        applied = ZERO
        invoice_id = None
        if record.get("appliesToInvoiceId"):
            invoice_id = self._id(entity, str(record["appliesToInvoiceId"]))
            if record.get("posted", True) and invoice is not None:
                # Applied up to what the invoice had left when the journal was posted.
                applied = min(amount, invoice.amount_paid) if invoice.amount_paid else ZERO
        currency = (
            await self._code_of(entity, record)
            if record.get("currencyCode")
            else (invoice.currency if invoice else await self._lcy(entity))
        )
        return ErpPayment(
            payment_id=payment_id,
            invoice_id=invoice_id,
            contract_id=contract_id,
            amount=amount,
            applied_amount=applied,
            unapplied_amount=amount - applied,
            currency=currency,
            applications=[
                CashApplication(
                    application_id=payment_id,
                    source="payment",
                    payment_id=payment_id,
                    invoice_id=invoice_id,
                    contract_id=contract_id or "",
                    amount=applied,
                    currency=currency,
                )
            ]
            if applied and invoice_id
            else [],
        )

    async def record_payment(self, payment: PaymentDraft, *, idempotency_key: str) -> ErpPayment:
        """A line of the company's c2c payment journal, applied to the invoice, then posted."""
        payment_id = payment.payment_id
        key = code("PAY", payment_id, length=35)
        invoice: ErpInvoice | None = None
        if payment.invoice_id:
            entity, invoice_guid = self._split(payment.invoice_id)
            invoice = await self.get_invoice(payment.invoice_id)
            if invoice is None:
                raise NotFound(
                    Rejection(
                        system=self.system,
                        code="BadRequest_NotFound",
                        message=f"invoice {payment.invoice_id}",
                        field="invoice_id",
                    )
                )
            customer_guid = self._split(invoice.customer_id or "")[1]
        else:
            found = await self._contract_record(payment.contract_id)
            if found is None:
                raise NotFound(
                    Rejection(
                        system=self.system,
                        code="BadRequest_NotFound",
                        message=f"no Business Central contract for {payment.contract_id}",
                        field="contract_id",
                    )
                )
            entity, contract = found
            invoice_guid, customer_guid = None, contract["customerId"]
        journal_code = self._company(entity).payment_journal
        journal = await self._lookup(entity, "customerPaymentJournals", "code", journal_code)
        if journal is None:
            raise self._unmapped(
                "payment_journal",
                f"Business Central company of {entity} has no payment journal {journal_code}",
            )
        line = await self._create_once(
            entity,
            "customerPayments",
            "externalDocumentNumber",
            key,
            {
                "journalId": journal["id"],
                "customerId": customer_guid,
                "postingDate": payment.received_on,
                "amount": payment.amount,
                "appliesToInvoiceId": invoice_guid,
                "description": f"Payment {payment_id}"[:100],
                "comment": f"Contract {payment.contract_id}"[:250],
            },
            tail=f"/customerPaymentJournals({journal['id']})/customerPayments",
        )
        if not line.get("posted"):
            await self._change(
                entity,
                "customerPaymentJournals",
                journal["id"],
                lambda r: {},
                action="Microsoft.NAV.post",
            )
            line = (
                await self._lookup(entity, "customerPayments", "externalDocumentNumber", key)
                or line
            )
        if invoice is not None:
            invoice = await self.get_invoice(invoice.invoice_id)
        return await self._payment(entity, line, invoice)

    async def list_payments(
        self, *, contract_id: str | None = None, invoice_id: str | None = None
    ) -> list[ErpPayment]:
        if contract_id is None and invoice_id is not None:
            found = await self.get_invoice(invoice_id)
            contract_id = found.contract_id if found else None
        if contract_id is None:
            return []
        payments: list[ErpPayment] = []
        for entity in self.companies:
            records = await self._filter(
                entity, "customerPayments", f"comment eq '{_quote('Contract ' + contract_id)}'"
            )
            for record in records:
                target = (
                    await self.get_invoice(self._id(entity, record["appliesToInvoiceId"]))
                    if record.get("appliesToInvoiceId")
                    else None
                )
                payments.append(await self._payment(entity, record, target))
        if invoice_id is None:
            return payments
        return [p for p in payments if p.invoice_id == invoice_id]

    async def apply_payment(
        self, payment_id: str, application: CashApplicationDraft, *, idempotency_key: str
    ) -> CashApplication:
        raise self._unsupported("applying posted cash to another invoice")

    async def apply_credit(
        self, credit_note_id: str, application: CashApplicationDraft, *, idempotency_key: str
    ) -> CashApplication:
        raise self._unsupported("applying a posted credit memo to another invoice")

    def _unsupported(self, what: str) -> BusinessError:
        return BusinessError(
            Rejection(
                system=self.system,
                code="bc_application_unsupported",
                message=f"Business Central's API v2.0 has no call for {what}: apply the open "
                "entries in Business Central (Apply Entries on the customer's ledger)",
            )
        )

    # --- revenue and balances ---------------------------------------------------------------

    def _revenue(self, entity: str, record: dict[str, Any]) -> RevenueEntry:
        return RevenueEntry(
            entry_id=record["entryId"],
            erp_contract_id=self._id(entity, record["contractRecordId"]),
            period=record["period"],
            amount=_dec(record["amount"]),
            currency=record["currencyCode"],
            method=record["method"],
            description=record.get("description") or "",
            recognised_on=date.fromisoformat(record["recognisedOn"]),
        )

    async def post_revenue(
        self, erp_contract_id: str, entry: RevenueEntryDraft, *, idempotency_key: str
    ) -> RevenueEntry:
        """A record of c2c's ``revenueEntries`` page, numbered by its entry id."""
        entity, guid = self._split(erp_contract_id)
        contract = await self._read(entity, guid, "contracts", api=C2C_PAGES)
        if contract is None:
            raise NotFound(
                Rejection(
                    system=self.system,
                    code="BadRequest_NotFound",
                    message=f"contract {erp_contract_id}",
                )
            )
        record = await self._create_once(
            entity,
            "revenueEntries",
            "number",
            code("REV", entry.entry_id),
            {
                "entryId": entry.entry_id,
                "contractRecordId": guid,
                "contractNumber": contract["number"],
                "period": entry.period,
                "amount": entry.amount,
                "currencyCode": contract["currencyCode"],
                "method": entry.method,
                "description": entry.description,
                "recognisedOn": entry.recognised_on,
            },
            api=C2C_PAGES,
        )
        return self._revenue(entity, record)

    async def list_revenue(self, erp_contract_id: str) -> list[RevenueEntry]:
        entity, guid = self._split(erp_contract_id)
        records = await self._filter(
            entity, "revenueEntries", f"contractRecordId eq '{guid}'", api=C2C_PAGES
        )
        return [self._revenue(entity, r) for r in records]

    async def get_balances(self, erp_contract_id: str) -> ErpContractBalances:
        """The contract's position, summed from its invoices, credit memos, payments and
        revenue entries in Business Central."""
        entity, guid = self._split(erp_contract_id)
        contract = await self._read(entity, guid, "contracts", api=C2C_PAGES)
        if contract is None:
            raise NotFound(
                Rejection(
                    system=self.system,
                    code="BadRequest_NotFound",
                    message=f"contract {erp_contract_id}",
                )
            )
        contract_id = contract["contractId"]
        invoices = [i for i in await self.list_invoices(contract_id) if i.status != "draft"]
        notes = await self.list_credit_notes(contract_id)
        payments = await self.list_payments(contract_id=contract_id)
        revenue = await self.list_revenue(erp_contract_id)
        return balances(contract_id, contract["currencyCode"], invoices, notes, payments, revenue)

    # --- write-offs and documents -----------------------------------------------------------

    async def record_write_off(
        self, write_off: WriteOffDraft, *, idempotency_key: str
    ) -> ErpWriteOff:
        """A line of the company's c2c write-off journal (the write-off account, balanced on
        the unbilled-work account), for finance to review and post. Found first by its
        document number among the journal's lines, then among posted general ledger entries
        (posted lines leave the journal), so a retry after posting makes none."""
        del idempotency_key  # The document number makes it once.
        entity = write_off.legal_entity
        setup = self.dimensions.entities.get(entity)
        if setup is None or not setup.write_off_account or not setup.unbilled_account:
            raise self._unmapped(
                "write_off_account",
                f"no write-off and unbilled-work accounts mapped for legal entity {entity}",
            )
        journal_code = self._company(entity).write_off_journal
        journal = await self._lookup(entity, "journals", "code", journal_code)
        if journal is None:
            raise self._unmapped(
                "write_off_journal",
                f"Business Central company of {entity} has no general journal {journal_code}",
            )
        number = code("WO", write_off.write_off_id)
        answer = ErpWriteOff(
            write_off_id=write_off.write_off_id,
            erp_ref=self._id(entity, number),
            contract_id=write_off.contract_id,
            period=write_off.period,
            amount=write_off.amount,
            currency=write_off.currency,
        )
        if await self._lookup(entity, "generalLedgerEntries", "documentNumber", number):
            return answer
        lcy = await self._lcy(entity)
        amount = write_off.amount
        if write_off.currency != lcy:
            # Journal lines of API v2.0 carry no currency: the amount is in local currency.
            rate = await self.get_exchange_rate(write_off.currency, lcy, write_off.written_off_on)
            amount = (amount * rate).quantize(CENT, ROUND_HALF_UP)
        await self._create_once(
            entity,
            f"journals({journal['id']})/journalLines",
            "documentNumber",
            number,
            {
                "accountType": "G/L Account",
                "accountNumber": setup.write_off_account,
                "balanceAccountType": "G/L Account",
                "balanceAccountNumber": setup.unbilled_account,
                "postingDate": write_off.written_off_on,
                "externalDocumentNumber": number,
                "amount": amount,
                "description": f"Write-off {write_off.period} {write_off.contract_id}"[:100],
                "comment": (
                    f"Contract {write_off.contract_id}: {write_off.amount} {write_off.currency} "
                    f"above the cap written off by {write_off.operator}: {write_off.reason}"
                )[:250],
            },
        )
        return answer

    async def _credit_memo(self, credit_note_id: str) -> tuple[str, str]:
        """The company and id of the credit memo of c2c's credit note (its external document
        number), in whichever company holds it."""
        key = code("CN", credit_note_id, length=35)
        for entity in self.companies:
            found = await self._lookup(entity, "salesCreditMemos", "externalDocumentNumber", key)
            if found is not None:
                return entity, str(found["id"])
        raise NotFound(
            Rejection(
                system=self.system,
                code="BadRequest_NotFound",
                message=f"no Business Central credit memo for credit note {credit_note_id}",
            )
        )

    async def attach_documents(
        self,
        document_type: Literal["invoice", "credit_note"],
        document_id: str,
        documents: Sequence[DocumentFile],
    ) -> None:
        """Attach each document to the sales invoice or credit memo (``documentAttachments``:
        the attachment, then its content). An attachment of the same file name already there
        with its content is left as it is; one whose content upload was lost gets it."""
        if document_type == "invoice":
            entity, guid = self._split(document_id)
        else:
            entity, guid = await self._credit_memo(document_id)
        parent_type = "Sales Invoice" if document_type == "invoice" else "Sales Credit Memo"
        for doc in documents:
            where = f"parentId eq '{_quote(guid)}' and fileName eq '{_quote(doc.file_name)}'"
            found = await self._filter(entity, "documentAttachments", where)
            attachment = found[0] if found else None
            if attachment is None:
                try:
                    attachment = await self.call(
                        "POST",
                        entity,
                        "/documentAttachments",
                        json={
                            "fileName": doc.file_name,
                            "parentType": parent_type,
                            "parentId": guid,
                        },
                        repeatable=False,
                    )
                except TransientError:
                    # The answer may be lost after Business Central committed: look again.
                    again = await self._filter(entity, "documentAttachments", where)
                    if not again:
                        raise
                    attachment = again[0]
            if int(_dec(attachment.get("byteSize"))) == len(doc.data):
                continue
            await self.call(
                "PATCH",
                entity,
                f"/documentAttachments({attachment['id']})/attachmentContent",
                content=doc.data,
                if_match="*",
            )


class _Unauthorized(Exception):
    """A ``401``: the token was refused (expired, or the tenant's keys rolled)."""


def _bill_to_fields(invoice: InvoiceDraft) -> dict[str, Any]:
    """The purchase order and bill-to contact on a Business Central sales invoice:
    ``customerPurchaseOrderReference`` (``externalDocumentNumber`` is c2c's own key for the
    invoice), ``billToName``, ``billToAddressLine1`` and ``email``."""
    fields: dict[str, Any] = {}
    if invoice.po_number:
        fields["customerPurchaseOrderReference"] = invoice.po_number[:35]
    bill_to = invoice.bill_to
    if bill_to is not None:
        fields["billToName"] = bill_to.name[:100]
        if bill_to.address:
            fields["billToAddressLine1"] = bill_to.address[:100]
        if bill_to.email:
            fields["email"] = bill_to.email
    return fields


def _bill_to_of(record: dict[str, Any]) -> dict[str, str] | None:
    """Who the invoice is billed to, as Business Central has it (the customer's name unless
    c2c sent a contact)."""
    if not record.get("billToName"):
        return None
    bill_to = {"name": str(record["billToName"])}
    if record.get("billToAddressLine1"):
        bill_to["address"] = str(record["billToAddressLine1"])
    if record.get("email"):
        bill_to["email"] = str(record["email"])
    return bill_to
