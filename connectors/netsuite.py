"""NetSuite as c2c's ERP, through SuiteTalk REST web services (``/services/rest/record/v1``).

Exactly once by external id: every record c2c makes carries an ``externalId`` built from its
business key (the CRM account, the contract, the invoice's reference, the payment's id), so a
retry days later finds the record instead of making a second. Records NetSuite upserts and c2c
may overwrite (customer, project, c2c's contract and revenue custom records) are written with
``PUT /<type>/eid:<externalId>``; transactions (invoice, credit memo, customer payment) are
looked up by external id first and created with ``POST`` only when absent, since an upsert
would rewrite an invoice that was already sent; a create refused with ``DUP_RCRD`` (a lost
answer, then a retry) reads the record that holds the external id.

Errors map to c2c's two classes: ``429`` and ``CONCURRENCY_LIMIT_EXCEEDED``, ``5xx``, timeouts
are transient; ``401``/``INVALID_LOGIN`` is a configuration error for the integration queue;
other ``4xx`` are business rejections carrying NetSuite's ``o:errorCode``, detail and path.
NetSuite governs requests in flight per account: every call waits for one of
``concurrency`` slots shared by the whole worker process, and for one of the account's
``in_flight`` slots that every worker shares (``C2C_CALL_LIMITS``, ``netsuite``).
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
import structlog

from c2c.netsuite_auth import TokenCredentials, authorization
from c2c.netsuite_segments import LineSegments, NetSuiteSegments
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
from connectors.http import HttpConnector
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

RECORDS = "/services/rest/record/v1"
CONTRACT_RECORD = "customrecord_c2c_contract"
REVENUE_RECORD = "customrecord_c2c_revenue"
#: The record of a write-off: a journal entry (REST record id ``journalEntry``).
JOURNAL_ENTRY = "journalEntry"
#: NetSuite's answer to a create whose external id a record of the type holds already.
DUPLICATE = "DUP_RCRD"
TRANSIENT_CODES = frozenset({"CONCURRENCY_LIMIT_EXCEEDED", "WS_REQUEST_BLOCKED"})
LOGIN_CODES = frozenset({"INVALID_LOGIN", "INVALID_LOGIN_ATTEMPT", "INVALID_LOGIN_CREDENTIALS"})
ZERO = Decimal(0)


def external_id(kind: str, *key: str) -> str:
    """c2c's external id of a record of ``kind`` by business key: ``c2c-invoice-K-1-2026-10``."""
    return "-".join(("c2c", kind, *key))


def _eid(value: str) -> str:
    return "eid:" + quote(value, safe="")


def _ref(value: str | None) -> dict[str, str] | None:
    return {"id": value} if value is not None else None


def _id_of(value: Any) -> str | None:
    return str(value["id"]) if isinstance(value, dict) and value.get("id") is not None else None


def _route(path: str) -> str:
    """``/services/rest/record/v1/invoice/eid:x`` → ``/record/v1/invoice/{id}`` for metrics."""
    parts = path.split("?")[0].strip("/").split("/")
    if len(parts) >= 6 and parts[:4] == ["services", "rest", "record", "v1"]:
        return "/record/v1/" + parts[4] + "/{id}" + ("/" + "/".join(parts[6:]) if parts[6:] else "")
    return "/" + "/".join(parts[2:])


class NetSuiteErp(HttpConnector):
    """``ErpPort`` on one NetSuite account."""

    system = "erp"
    vendor = "netsuite"
    #: Slots per event loop, account and limit: the worker process's requests in flight.
    _slots: ClassVar[
        weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, int], asyncio.Semaphore]
        ]
    ] = weakref.WeakKeyDictionary()

    def __init__(
        self,
        base_url: str,
        *,
        credentials: TokenCredentials,
        segments: NetSuiteSegments,
        concurrency: int = 5,
        timeout_s: float = 10.0,
        quick_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        document_field: str | None = None,
        einvoice_field: str | None = None,
    ) -> None:
        super().__init__(
            base_url, timeout_s=timeout_s, quick_retries=quick_retries, transport=transport
        )
        self.credentials = credentials
        self.segments = segments
        #: The custom body fields of invoices and credit memos that link the PDF and the
        #: e-invoice (none: documents stay unlinked in NetSuite).
        self.document_fields = {"pdf": document_field, "einvoice": einvoice_field}
        self.concurrency = concurrency

    # --- transport ------------------------------------------------------------------------

    def _slot(self) -> asyncio.Semaphore:
        slots = self._slots.setdefault(asyncio.get_running_loop(), {})
        key = (self.credentials.account, self.concurrency)
        slot = slots.get(key)
        if slot is None:
            slot = slots[key] = asyncio.Semaphore(self.concurrency)
        return slot

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """One signed request under the account's concurrency limit; its JSON body, or for a
        ``204`` with ``Location`` the new record's ``{"id"}``."""
        del idempotency_key  # NetSuite keys writes by external id, not by a header.
        url = self._client.build_request(method, path, params=params).url
        route = _route(path)
        started = time.perf_counter()
        body = None if json is None else _dumps(_wire(json))
        headers: dict[str, str] = {}
        with (
            structlog.contextvars.bound_contextvars(system=self.system),
            client_span(self.system, method, route, headers) as span,
        ):
            async with self._slot():
                # Signed once a slot is free: the timestamp is that of the request as sent.
                headers["Authorization"] = authorization(self.credentials, method, url)
                if body is not None:
                    headers["Content-Type"] = "application/json"
                try:
                    response = await self._client.request(
                        method, url, content=body, headers=headers
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
            self._observe(span, method, route, status, started, _outcome(response))
        if status < 400:
            if status == 204 or not response.content:
                location = response.headers.get("Location")
                return {"id": location.rstrip("/").rsplit("/", 1)[-1]} if location else None
            return _loads(response.content)
        raise self._error(method, route, response)

    def _error(self, method: str, route: str, response: httpx.Response) -> Exception:
        status = response.status_code
        code, detail, path = f"http_{status}", response.reason_phrase, None
        try:
            details = (response.json().get("o:errorDetails") or [{}])[0]
            code = str(details.get("o:errorCode") or code)
            detail = str(details.get("detail") or detail)
            path = details.get("o:errorPath")
        except (ValueError, AttributeError, IndexError):
            pass
        if status == 429 or status >= 500 or code in TRANSIENT_CODES:
            retry = response.headers.get("Retry-After")
            return TransientError(
                self.system,
                f"{method} {route} answered {status} {code}",
                status=status,
                retry_after_s=float(retry) if retry and retry.isdigit() else None,
            )
        if status == 401 or code in LOGIN_CODES:
            code = "INVALID_LOGIN"
            detail = f"NetSuite refused c2c's token-based authentication: {detail}"
        rejection = Rejection(
            system=self.system, code=code, message=detail, field=path, status=status
        )
        if status == 404:
            return NotFound(rejection)
        return BusinessError(rejection)

    # --- records --------------------------------------------------------------------------

    async def _read(self, record_type: str, ref: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = await self.request("GET", f"{RECORDS}/{record_type}/{ref}")
        except NotFound:
            return None
        return body

    async def _read_eid(self, record_type: str, eid: str) -> dict[str, Any] | None:
        return await self._read(record_type, _eid(eid))

    async def _upsert(self, record_type: str, eid: str, body: dict[str, Any]) -> dict[str, Any]:
        """``PUT /<type>/eid:<eid>`` and the record as NetSuite now holds it."""
        await self.request("PUT", f"{RECORDS}/{record_type}/{_eid(eid)}", json=body)
        record = await self._read_eid(record_type, eid)
        if record is None:
            raise TransientError(self.system, f"{record_type} {eid} not readable after upsert")
        return record

    async def _create_once(
        self, record_type: str, eid: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """The record holding ``eid``, created with ``POST`` only if none does."""
        existing = await self._read_eid(record_type, eid)
        if existing is not None:
            return existing
        try:
            await self.request(
                "POST",
                f"{RECORDS}/{record_type}",
                json={"externalId": eid, **body},
                idempotency_key=eid,
            )
        except BusinessError as exc:
            if exc.rejection.code != DUPLICATE:
                raise
        record = await self._read_eid(record_type, eid)
        if record is None:
            raise TransientError(self.system, f"{record_type} {eid} not readable after create")
        return record

    async def _patch(self, record_type: str, ref: str, body: dict[str, Any]) -> None:
        await self.request("PATCH", f"{RECORDS}/{record_type}/{ref}", json=body)

    async def _list(self, record_type: str, q: str) -> list[dict[str, Any]]:
        """Every record of ``record_type`` matching the query ``q``, read one by one."""
        records: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self.request(
                "GET",
                f"{RECORDS}/{record_type}",
                params={"q": q, "limit": 1000, "offset": offset},
            )
            for item in page.get("items") or []:
                record = await self._read(record_type, str(item["id"]))
                if record is not None:
                    records.append(record)
            if not page.get("hasMore"):
                return records
            offset += int(page.get("count") or 0)

    def _currency_id(self, currency: str) -> str:
        found = self.segments.currencies.get(currency)
        if found is None:
            raise self._unmapped("currency", f"no NetSuite currency mapped for {currency}")
        return found

    def _currency_code(self, record: dict[str, Any]) -> str:
        currency = record.get("currency") or {}
        if isinstance(currency, dict) and currency.get("refName"):
            return str(currency["refName"])
        by_id = {v: k for k, v in self.segments.currencies.items()}
        return by_id.get(_id_of(currency) or "", "")

    def _subsidiary(self, legal_entity: str) -> str:
        found = self.segments.entities.get(legal_entity)
        if found is None:
            raise self._unmapped(
                "legal_entity", f"no NetSuite subsidiary mapped for legal entity {legal_entity}"
            )
        return found.subsidiary

    def _unmapped(self, field: str, message: str) -> BusinessError:
        return BusinessError(
            Rejection(
                system=self.system, code="netsuite_mapping_missing", message=message, field=field
            )
        )

    # --- ErpPort --------------------------------------------------------------------------

    async def get_legal_entity(self, code: str) -> LegalEntity | None:
        """The subsidiary the legal entity maps to; ``None`` when NetSuite has no such active
        subsidiary. An entity with no subsidiary mapped is a gap in c2c's configuration,
        refused as ``netsuite_mapping_missing`` (finance's to fix, not legal's)."""
        sub = await self._read("subsidiary", self._subsidiary(code))
        if sub is None or sub.get("isInactive"):
            return None
        country = sub.get("country") or {}
        return LegalEntity(
            code=code,
            name=str(sub.get("name") or code),
            country=str(_id_of(country) or country.get("refName") or ""),
            functional_currency=self._currency_code(sub),
        )

    async def ensure_customer(
        self, customer: CustomerDraft, *, idempotency_key: str
    ) -> ErpCustomer:
        crm_id = customer.crm_account_id
        eid = external_id("customer", crm_id)
        # A customer is shared by every contract of its CRM account: one found is the answer,
        # never rewritten (its subsidiary and currency are those of its first contract).
        record = await self._read_eid("customer", eid) or await self._upsert(
            "customer",
            eid,
            {
                "companyName": customer.name,
                "email": customer.billing_email,
                "subsidiary": _ref(self._subsidiary(customer.legal_entity)),
                "currency": _ref(self._currency_id(customer.currency)),
                "custentity_c2c_crm_account_id": crm_id,
                "defaultTaxReg": customer.tax_id,
            },
        )
        return ErpCustomer(
            customer_id=record["id"], crm_account_id=crm_id, name=record["companyName"]
        )

    def _project(self, record: dict[str, Any]) -> ErpProject:
        closed = _id_of(record.get("entityStatus")) == self.segments.job_status_closed
        return ErpProject(
            project_id=record["id"],
            contract_id=record["custentity_c2c_contract_id"],
            status="closed" if closed else "active",
        )

    async def ensure_project(self, project: ProjectDraft, *, idempotency_key: str) -> ErpProject:
        eid = external_id("project", project.contract_id)
        existing = await self._read_eid("job", eid)
        if existing is not None:
            # An upsert would reopen a closed project: the one there is the answer.
            return self._project(existing)
        record = await self._upsert(
            "job",
            eid,
            {
                "companyName": project.name,
                "parent": _ref(project.customer_id),
                "subsidiary": _ref(self._subsidiary(project.legal_entity)),
                "currency": _ref(self._currency_id(project.currency)),
                "startDate": project.start_date,
                "projectedEndDate": project.end_date,
                "entityStatus": _ref(self.segments.job_status_active),
                "custentity_c2c_contract_id": project.contract_id,
            },
        )
        return self._project(record)

    async def close_project(self, project_id: str, *, idempotency_key: str) -> ErpProject:
        await self._patch(
            "job", project_id, {"entityStatus": _ref(self.segments.job_status_closed)}
        )
        record = await self._read("job", project_id)
        if record is None:
            raise TransientError(self.system, f"job {project_id} not readable after closing")
        return self._project(record)

    def _contract(self, record: dict[str, Any]) -> ErpContract:
        amendments = json.loads(record.get("custrecord_c2c_amendments") or "[]")
        nte = record.get("custrecord_c2c_not_to_exceed")
        end = record.get("custrecord_c2c_end_date")
        return ErpContract(
            erp_contract_id=record["id"],
            contract_id=record["custrecord_c2c_contract_id"],
            end_date=date.fromisoformat(end) if end else None,
            not_to_exceed=_dec(nte) if nte not in (None, "") else None,
            amendments=[ErpAmendment.model_validate(a) for a in amendments],
            document_url=record.get("custrecord_c2c_document_url") or None,
            document_sha256=record.get("custrecord_c2c_document_sha256") or None,
        )

    async def ensure_contract(
        self, contract: ContractDraft, *, idempotency_key: str
    ) -> ErpContract:
        """c2c's contract as a ``customrecord_c2c_contract`` on the project (see vendors.md)."""
        eid = external_id("contract", contract.contract_id)
        existing = await self._read_eid(CONTRACT_RECORD, eid)
        if existing is not None:
            return self._contract(existing)
        record = await self._upsert(
            CONTRACT_RECORD,
            eid,
            {
                "name": contract.contract_id,
                "custrecord_c2c_contract_id": contract.contract_id,
                "custrecord_c2c_project": _ref(contract.project_id),
                "custrecord_c2c_customer": _ref(contract.customer_id),
                "custrecord_c2c_currency": contract.currency,
                "custrecord_c2c_billing_model": contract.billing_model,
                "custrecord_c2c_start_date": contract.start_date,
                "custrecord_c2c_end_date": contract.end_date,
                "custrecord_c2c_payment_terms_days": contract.payment_terms_days,
                "custrecord_c2c_not_to_exceed": _text(contract.not_to_exceed),
                "custrecord_c2c_contract_value": _text(contract.contract_value),
                "custrecord_c2c_rate_card": rate_card_text(contract.rate_card),
                "custrecord_c2c_amendments": "[]",
            },
        )
        return self._contract(record)

    async def put_billing_schedule(
        self, erp_contract_id: str, schedule: BillingSchedule, *, idempotency_key: str
    ) -> None:
        await self._patch(
            CONTRACT_RECORD,
            erp_contract_id,
            {"custrecord_c2c_billing_schedule": schedule_text(schedule)},
        )

    async def put_revenue_schedule(
        self, erp_contract_id: str, schedule: RevenueSchedule, *, idempotency_key: str
    ) -> None:
        await self._patch(
            CONTRACT_RECORD,
            erp_contract_id,
            {"custrecord_c2c_revenue_schedule": schedule_text(schedule)},
        )

    async def link_contract_document(
        self, erp_contract_id: str, document_url: str, sha256: str
    ) -> ErpContract:
        """Link the contract record to its signed document (a PATCH of two fields: repeating
        it changes nothing)."""
        await self._patch(
            CONTRACT_RECORD,
            erp_contract_id,
            {"custrecord_c2c_document_url": document_url, "custrecord_c2c_document_sha256": sha256},
        )
        record = await self._read(CONTRACT_RECORD, erp_contract_id)
        if record is None:
            raise NotFound(
                Rejection(
                    system=self.system,
                    code="NONEXISTENT_ID",
                    message=f"contract record {erp_contract_id} does not exist",
                )
            )
        return self._contract(record)

    async def amend_contract(
        self, erp_contract_id: str, amendment: AmendmentDraft, *, idempotency_key: str
    ) -> ErpContract:
        """Record the amendment on the contract record once (its ``amendment_id`` keys it)."""
        record = await self._read(CONTRACT_RECORD, erp_contract_id)
        if record is None:
            raise NotFound(
                Rejection(
                    system=self.system,
                    code="NONEXISTENT_ID",
                    message=f"contract record {erp_contract_id} does not exist",
                )
            )
        amendments = json.loads(record.get("custrecord_c2c_amendments") or "[]")
        if any(a["amendment_id"] == amendment.amendment_id for a in amendments):
            return self._contract(record)
        amendments.append(amendment_entry(amendment))
        change: dict[str, Any] = {"custrecord_c2c_amendments": json.dumps(amendments)}
        if amendment.end_date:
            change["custrecord_c2c_end_date"] = amendment.end_date.isoformat()
        if amendment.not_to_exceed:
            change["custrecord_c2c_not_to_exceed"] = _text(amendment.not_to_exceed)
        await self._patch(CONTRACT_RECORD, erp_contract_id, change)
        record = await self._read(CONTRACT_RECORD, erp_contract_id)
        assert record is not None
        return self._contract(record)

    async def get_exchange_rate(self, from_currency: str, to_currency: str, on: date) -> Decimal:
        """Units of ``to_currency`` per ``from_currency``: NetSuite's latest ``currencyRate``
        on or before ``on`` (base currency = ``to``, transaction currency = ``from``)."""
        if from_currency == to_currency:
            return Decimal(1)
        q = (
            f'baseCurrency IS "{self._currency_id(to_currency)}" AND '
            f'transactionCurrency IS "{self._currency_id(from_currency)}" AND '
            f'effectiveDate ON_OR_BEFORE "{on.isoformat()}"'
        )
        rates = await self._list("currencyRate", q)
        if not rates:
            raise NotFound(
                Rejection(
                    system=self.system,
                    code="no_exchange_rate",
                    message=f"NetSuite has no {from_currency}/{to_currency} rate on {on}",
                )
            )
        latest = max(rates, key=lambda r: str(r.get("effectiveDate")))
        return _dec(latest["exchangeRate"])

    # --- invoices -------------------------------------------------------------------------

    def _invoice(self, record: dict[str, Any]) -> ErpInvoice:
        total = _dec(record.get("total"))
        paid = _dec(record.get("amountPaid"))
        remaining = _dec(record.get("amountRemaining"))
        credit = total - paid - remaining
        status = invoice_status(remaining=remaining, paid=paid, credited=credit)
        lines = [
            ErpInvoiceLine(
                line_id=str(line.get("custcol_c2c_line_id") or index),
                kind=str(line.get("custcol_c2c_line_kind") or "time"),
                amount=_dec(line.get("amount")),
            )
            for index, line in enumerate((record.get("item") or {}).get("items") or [])
        ]
        functional = record.get("custbody_c2c_functional_currency")
        return ErpInvoice(
            invoice_id=record["id"],
            contract_id=record["custbody_c2c_contract_id"],
            number=record.get("tranId"),
            period=record.get("custbody_c2c_period"),
            milestone_id=record.get("custbody_c2c_milestone_id"),
            reference=record.get("custbody_c2c_reference"),
            status=status,
            currency=self._currency_code(record),
            subtotal=_dec(record.get("subtotal")),
            tax=_dec(record.get("taxTotal")),
            total=total,
            amount_paid=paid,
            credited_amount=credit,
            credit_applied=credit,
            balance=remaining,
            invoice_date=date.fromisoformat(record["tranDate"]),
            due_on=date.fromisoformat(record.get("dueDate") or record["tranDate"]),
            po_number=record.get("otherRefNum") or None,
            bill_to=_bill_to_of(record),
            functional_currency=functional,
            exchange_rate=_dec(record["exchangeRate"]) if record.get("exchangeRate") else None,
            functional_subtotal=_opt(record.get("custbody_c2c_functional_subtotal")),
            functional_tax=_opt(record.get("custbody_c2c_functional_tax")),
            functional_total=_opt(record.get("custbody_c2c_functional_total")),
            lines=lines,
        )

    async def find_invoice(
        self,
        contract_id: str,
        *,
        period: str | None = None,
        milestone_id: str | None = None,
        reference: str | None = None,
    ) -> ErpInvoice | None:
        """The invoice of a business key, by its external id (one read, no search)."""
        reference = invoice_business_key(reference, milestone_id, period)
        if reference is None:
            return None
        record = await self._read_eid("invoice", external_id("invoice", contract_id, reference))
        return self._invoice(record) if record else None

    def _line_segments(self, line: InvoiceLineDraft) -> LineSegments:
        found, what = line_mapping(self.segments, line)
        if found is None:
            raise self._unmapped("lines", f"no NetSuite segments mapped for {what}")
        return found

    async def create_invoice(self, invoice: InvoiceDraft, *, idempotency_key: str) -> ErpInvoice:
        """An open invoice (NetSuite has no drafts: c2c's review happens before this step)."""
        reference = invoice.business_key
        eid = external_id("invoice", invoice.contract_id, reference)
        lines = [
            {
                **self._line_segments(line).wire(),
                "description": line.description,
                "quantity": line.quantity or Decimal(1),
                "rate": line.unit_price or line.amount,
                "amount": line.amount,
                "custcol_c2c_line_id": line.line_id,
                "custcol_c2c_line_kind": line.kind,
                "custcol_c2c_tax_amount": line.tax_amount,
            }
            for line in invoice.lines
        ]
        record = await self._create_once(
            "invoice",
            eid,
            {
                "entity": _ref(invoice.customer_id),
                "job": _ref(invoice.project_id),
                "subsidiary": _ref(self._subsidiary(invoice.legal_entity)),
                "currency": _ref(self._currency_id(invoice.currency)),
                "tranDate": invoice.invoice_date,
                "dueDate": invoice.due_on,
                "memo": f"{invoice.contract_id} {reference}",
                "exchangeRate": invoice.exchange_rate or None,
                "custbody_c2c_contract_id": invoice.contract_id,
                "custbody_c2c_erp_contract": _ref(invoice.erp_contract_id),
                "custbody_c2c_reference": reference,
                "custbody_c2c_period": invoice.period,
                "custbody_c2c_milestone_id": invoice.milestone_id,
                "custbody_c2c_functional_currency": invoice.functional_currency,
                "custbody_c2c_functional_subtotal": _text(invoice.functional_subtotal),
                "custbody_c2c_functional_tax": _text(invoice.functional_tax),
                "custbody_c2c_functional_total": _text(invoice.functional_total),
                "item": {"items": lines},
                **_bill_to_fields(invoice),
            },
        )
        return self._invoice(record)

    async def issue_invoice(self, invoice_id: str, *, idempotency_key: str) -> ErpInvoice:
        """A NetSuite invoice is open from creation: issuing reads it."""
        found = await self.get_invoice(invoice_id)
        if found is None:
            raise NotFound(
                Rejection(
                    system=self.system, code="NONEXISTENT_ID", message=f"invoice {invoice_id}"
                )
            )
        return found

    async def get_invoice(self, invoice_id: str) -> ErpInvoice | None:
        record = await self._read("invoice", invoice_id)
        return self._invoice(record) if record else None

    async def list_invoices(self, contract_id: str) -> list[ErpInvoice]:
        records = await self._list("invoice", f'custbody_c2c_contract_id IS "{contract_id}"')
        return [self._invoice(r) for r in records]

    # --- credit memos ---------------------------------------------------------------------

    def _credit_note(self, record: dict[str, Any]) -> ErpCreditNote:
        applications = [
            CashApplication(
                application_id=str(a.get("custcol_c2c_application_id") or a["doc"]["id"]),
                source="credit_note",
                credit_note_id=record["custbody_c2c_credit_note_id"],
                invoice_id=str(a["doc"]["id"]),
                contract_id=record["custbody_c2c_contract_id"],
                amount=_dec(a.get("amount")),
                currency=self._currency_code(record),
            )
            for a in (record.get("apply") or {}).get("items") or []
        ]
        return ErpCreditNote(
            credit_note_id=record["custbody_c2c_credit_note_id"],
            number=str(record.get("tranId") or record["id"]),
            invoice_id=str(_id_of(record.get("createdFrom"))),
            contract_id=record["custbody_c2c_contract_id"],
            currency=self._currency_code(record),
            subtotal=_dec(record.get("subtotal")),
            tax=_dec(record.get("taxTotal")),
            total=_dec(record.get("total")),
            applied_amount=_dec(record.get("applied")),
            unapplied_amount=_dec(record.get("unapplied")),
            reason=str(record.get("memo") or ""),
            created_at=datetime.fromisoformat(record["custbody_c2c_created_at"]),
            applications=applications,
        )

    async def create_credit_note(
        self, invoice_id: str, note: CreditNoteDraft, *, idempotency_key: str
    ) -> ErpCreditNote:
        """A credit memo from the invoice, applied to it up to its remaining balance."""
        invoice = await self._read("invoice", invoice_id)
        if invoice is None:
            raise NotFound(
                Rejection(
                    system=self.system, code="NONEXISTENT_ID", message=f"invoice {invoice_id}"
                )
            )
        credit_id = note.credit_note_id
        by_line = {str(x.get("custcol_c2c_line_id")): x for x in invoice["item"]["items"]}
        lines = []
        for line in note.lines:
            source = by_line.get(line.line_id) or next(iter(by_line.values()))
            lines.append(
                {
                    **{k: source[k] for k in ("item", "department", "class", "location")},
                    "description": line.description or source.get("description"),
                    "amount": line.amount,
                    "custcol_c2c_line_id": line.line_id,
                    "custcol_c2c_tax_amount": line.tax_amount,
                }
            )
        total = sum((_dec(x["amount"]) + _dec(x["custcol_c2c_tax_amount"]) for x in lines), ZERO)
        apply = min(total, _dec(invoice.get("amountRemaining")))
        record = await self._create_once(
            "creditMemo",
            external_id("credit", credit_id),
            {
                "entity": invoice["entity"],
                "createdFrom": {"id": invoice_id},
                "subsidiary": invoice.get("subsidiary"),
                "currency": invoice.get("currency"),
                "tranDate": date.today().isoformat(),
                "memo": note.reason,
                "custbody_c2c_credit_note_id": credit_id,
                "custbody_c2c_contract_id": invoice["custbody_c2c_contract_id"],
                "custbody_c2c_created_at": datetime.now(UTC).isoformat(),
                "item": {"items": lines},
                "apply": {"items": [{"doc": {"id": invoice_id}, "apply": True, "amount": apply}]}
                if apply > 0
                else None,
            },
        )
        return self._credit_note(record)

    async def list_credit_notes(
        self, contract_id: str, *, invoice_id: str | None = None
    ) -> list[ErpCreditNote]:
        records = await self._list("creditMemo", f'custbody_c2c_contract_id IS "{contract_id}"')
        notes = [self._credit_note(r) for r in records]
        return [n for n in notes if invoice_id is None or n.invoice_id == invoice_id]

    # --- payments -------------------------------------------------------------------------

    def _payment(self, record: dict[str, Any]) -> ErpPayment:
        payment_id = record["custbody_c2c_payment_id"]
        applications = [
            CashApplication(
                application_id=str(a.get("custcol_c2c_application_id") or payment_id),
                source="payment",
                payment_id=payment_id,
                invoice_id=str(a["doc"]["id"]),
                contract_id=record["custbody_c2c_contract_id"],
                amount=_dec(a.get("amount")),
                currency=self._currency_code(record),
            )
            for a in (record.get("apply") or {}).get("items") or []
        ]
        return ErpPayment(
            payment_id=payment_id,
            invoice_id=record.get("custbody_c2c_invoice_id"),
            contract_id=record["custbody_c2c_contract_id"],
            amount=_dec(record.get("payment")),
            applied_amount=_dec(record.get("applied")),
            unapplied_amount=_dec(record.get("unapplied")),
            currency=self._currency_code(record),
            applications=applications,
        )

    async def record_payment(self, payment: PaymentDraft, *, idempotency_key: str) -> ErpPayment:
        """A customer payment, applied to ``invoice_id`` up to what remains on it."""
        payment_id = payment.payment_id
        eid = external_id("payment", payment_id)
        existing = await self._read_eid("customerPayment", eid)
        if existing is not None:
            return self._payment(existing)
        amount = payment.amount
        apply: list[dict[str, Any]] = []
        customer: Any = None
        subsidiary: Any = None
        if payment.invoice_id:
            invoice = await self._read("invoice", payment.invoice_id)
            if invoice is None:
                raise NotFound(
                    Rejection(
                        system=self.system,
                        code="NONEXISTENT_ID",
                        message=f"invoice {payment.invoice_id}",
                        field="invoice_id",
                    )
                )
            customer, subsidiary = invoice["entity"], invoice.get("subsidiary")
            applied = min(amount, _dec(invoice.get("amountRemaining")))
            if applied > 0:
                apply.append(
                    {
                        "doc": {"id": payment.invoice_id},
                        "apply": True,
                        "amount": applied,
                        "custcol_c2c_application_id": payment_id,
                    }
                )
        else:
            contract = await self._read_eid(
                CONTRACT_RECORD, external_id("contract", payment.contract_id)
            )
            if contract is None:
                raise NotFound(
                    Rejection(
                        system=self.system,
                        code="NONEXISTENT_ID",
                        message=f"no NetSuite contract for {payment.contract_id}",
                        field="contract_id",
                    )
                )
            customer = contract["custrecord_c2c_customer"]
        record = await self._create_once(
            "customerPayment",
            eid,
            {
                "customer": customer,
                "subsidiary": subsidiary,
                "currency": _ref(self._currency_id(payment.currency)),
                "payment": amount,
                "tranDate": payment.received_on,
                "custbody_c2c_payment_id": payment_id,
                "custbody_c2c_contract_id": payment.contract_id,
                "custbody_c2c_invoice_id": payment.invoice_id,
                "apply": {"items": apply},
            },
        )
        return self._payment(record)

    async def list_payments(
        self, *, contract_id: str | None = None, invoice_id: str | None = None
    ) -> list[ErpPayment]:
        if contract_id is not None:
            q = f'custbody_c2c_contract_id IS "{contract_id}"'
        elif invoice_id is not None:
            invoice = await self._read("invoice", invoice_id)
            if invoice is None:
                return []
            q = f'custbody_c2c_contract_id IS "{invoice["custbody_c2c_contract_id"]}"'
        else:
            return []
        payments = [self._payment(r) for r in await self._list("customerPayment", q)]
        if invoice_id is None:
            return payments
        return [
            p
            for p in payments
            if p.invoice_id == invoice_id or any(a.invoice_id == invoice_id for a in p.applications)
        ]

    async def _apply(
        self, record_type: str, eid: str, application: CashApplicationDraft
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Add an application line to a payment or credit memo once (by application id)."""
        record = await self._read_eid(record_type, eid)
        if record is None:
            raise NotFound(
                Rejection(system=self.system, code="NONEXISTENT_ID", message=f"{record_type} {eid}")
            )
        items = list((record.get("apply") or {}).get("items") or [])
        app_id = application.application_id
        if not any(a.get("custcol_c2c_application_id") == app_id for a in items):
            items.append(
                {
                    "doc": {"id": application.invoice_id},
                    "apply": True,
                    "amount": application.amount,
                    "custcol_c2c_application_id": app_id,
                }
            )
            await self._patch(record_type, record["id"], {"apply": {"items": items}})
            record = await self._read(record_type, record["id"]) or record
        line = next(
            a
            for a in (record.get("apply") or {}).get("items") or []
            if a.get("custcol_c2c_application_id") == app_id
        )
        return record, line

    async def apply_payment(
        self, payment_id: str, application: CashApplicationDraft, *, idempotency_key: str
    ) -> CashApplication:
        record, line = await self._apply(
            "customerPayment", external_id("payment", payment_id), application
        )
        return CashApplication(
            application_id=application.application_id,
            source="payment",
            payment_id=payment_id,
            invoice_id=str(line["doc"]["id"]),
            contract_id=record["custbody_c2c_contract_id"],
            amount=_dec(line["amount"]),
            currency=self._currency_code(record),
        )

    async def apply_credit(
        self, credit_note_id: str, application: CashApplicationDraft, *, idempotency_key: str
    ) -> CashApplication:
        record, line = await self._apply(
            "creditMemo", external_id("credit", credit_note_id), application
        )
        return CashApplication(
            application_id=application.application_id,
            source="credit_note",
            credit_note_id=credit_note_id,
            invoice_id=str(line["doc"]["id"]),
            contract_id=record["custbody_c2c_contract_id"],
            amount=_dec(line["amount"]),
            currency=self._currency_code(record),
        )

    # --- revenue and balances ---------------------------------------------------------------

    def _revenue(self, record: dict[str, Any]) -> RevenueEntry:
        return RevenueEntry(
            entry_id=record["custrecord_c2c_entry_id"],
            erp_contract_id=str(_id_of(record.get("custrecord_c2c_contract"))),
            period=record["custrecord_c2c_period"],
            amount=_dec(record["custrecord_c2c_amount"]),
            currency=record["custrecord_c2c_currency"],
            method=record["custrecord_c2c_method"],
            description=record.get("custrecord_c2c_description") or "",
            recognised_on=date.fromisoformat(record["custrecord_c2c_recognised_on"]),
        )

    async def post_revenue(
        self, erp_contract_id: str, entry: RevenueEntryDraft, *, idempotency_key: str
    ) -> RevenueEntry:
        """A ``customrecord_c2c_revenue`` line of the contract, upserted by its entry id."""
        contract = await self._read(CONTRACT_RECORD, erp_contract_id)
        if contract is None:
            raise NotFound(
                Rejection(
                    system=self.system, code="NONEXISTENT_ID", message=f"contract {erp_contract_id}"
                )
            )
        eid = external_id("revenue", entry.entry_id)
        existing = await self._read_eid(REVENUE_RECORD, eid)
        if existing is not None:
            return self._revenue(existing)
        record = await self._upsert(
            REVENUE_RECORD,
            eid,
            {
                "name": entry.entry_id,
                "custrecord_c2c_entry_id": entry.entry_id,
                "custrecord_c2c_contract": {"id": erp_contract_id},
                "custrecord_c2c_period": entry.period,
                "custrecord_c2c_amount": _text(entry.amount),
                "custrecord_c2c_currency": contract["custrecord_c2c_currency"],
                "custrecord_c2c_method": entry.method,
                "custrecord_c2c_description": entry.description,
                "custrecord_c2c_recognised_on": entry.recognised_on.isoformat(),
            },
        )
        return self._revenue(record)

    async def list_revenue(self, erp_contract_id: str) -> list[RevenueEntry]:
        records = await self._list(
            REVENUE_RECORD, f'custrecord_c2c_contract IS "{erp_contract_id}"'
        )
        return [self._revenue(r) for r in records]

    async def get_balances(self, erp_contract_id: str) -> ErpContractBalances:
        """The contract's position, summed from its invoices, credit memos, payments and
        revenue lines in NetSuite."""
        contract = await self._read(CONTRACT_RECORD, erp_contract_id)
        if contract is None:
            raise NotFound(
                Rejection(
                    system=self.system, code="NONEXISTENT_ID", message=f"contract {erp_contract_id}"
                )
            )
        contract_id = contract["custrecord_c2c_contract_id"]
        invoices = await self.list_invoices(contract_id)
        notes = await self.list_credit_notes(contract_id)
        payments = await self.list_payments(contract_id=contract_id)
        revenue = await self.list_revenue(erp_contract_id)
        currency = contract["custrecord_c2c_currency"]
        return balances(contract_id, currency, invoices, notes, payments, revenue)

    # --- write-offs and documents -------------------------------------------------------------

    async def record_write_off(
        self, write_off: WriteOffDraft, *, idempotency_key: str
    ) -> ErpWriteOff:
        """A journal entry for work written off above a cap: the write-off account debited,
        the unbilled-work account credited, created once by its external id."""
        del idempotency_key  # The external id makes it once.
        accounts = self.segments.write_off
        if accounts is None:
            raise self._unmapped(
                "write_off", "no NetSuite accounts mapped for write-offs (write_off)"
            )
        memo = f"{write_off.contract_id} {write_off.period}: {write_off.reason}"
        common = {"memo": memo, **accounts.segments()}
        if write_off.erp_project_id:
            common["entity"] = {"id": write_off.erp_project_id}
        record = await self._create_once(
            JOURNAL_ENTRY,
            external_id("writeoff", write_off.write_off_id),
            {
                "subsidiary": {"id": self._subsidiary(write_off.legal_entity)},
                "currency": {"id": self._currency_id(write_off.currency)},
                "tranDate": write_off.written_off_on.isoformat(),
                "memo": memo,
                "custbody_c2c_contract_id": write_off.contract_id,
                "custbody_c2c_write_off_id": write_off.write_off_id,
                "custbody_c2c_period": write_off.period,
                "custbody_c2c_operator": write_off.operator,
                "line": {
                    "items": [
                        {
                            "account": {"id": accounts.write_off_account},
                            "debit": write_off.amount,
                            **common,
                        },
                        {
                            "account": {"id": accounts.unbilled_account},
                            "credit": write_off.amount,
                            **common,
                        },
                    ]
                },
            },
        )
        debit = sum(
            (_dec(line.get("debit")) for line in (record.get("line") or {}).get("items") or []),
            ZERO,
        )
        return ErpWriteOff(
            write_off_id=str(record.get("custbody_c2c_write_off_id")),
            erp_ref=str(record["id"]),
            contract_id=str(record.get("custbody_c2c_contract_id")),
            period=str(record.get("custbody_c2c_period")),
            amount=debit,
            currency=self._currency_code(record),
        )

    async def attach_documents(
        self,
        document_type: Literal["invoice", "credit_note"],
        document_id: str,
        documents: Sequence[DocumentFile],
    ) -> None:
        """Link the invoice or credit memo to its documents in c2c's archive: a PATCH of the
        custom body fields the firm configured (repeating it changes nothing; none
        configured, nothing is sent). REST web services cannot put a file in the File
        Cabinet, and the archive is where the documents are kept, checked on every read."""
        fields = {
            field: doc.url for doc in documents if (field := self.document_fields.get(doc.kind))
        }
        if not fields:
            return
        if document_type == "invoice":
            await self._patch("invoice", document_id, fields)
        else:
            # c2c knows a credit memo by its credit note's id: its external id.
            await self._patch("creditMemo", _eid(external_id("credit", document_id)), fields)


def _text(amount: Decimal | None) -> str | None:
    """An amount as a c2c text field keeps it (``None`` stays empty)."""
    return None if amount is None else format(amount, "f")


def _opt(value: Any) -> Decimal | None:
    return None if value in (None, "") else _dec(value)


def _outcome(response: httpx.Response) -> str:
    status = response.status_code
    if status < 400:
        return "ok"
    if status == 429 or status >= 500:
        return "transient"
    return "business_error"


def _bill_to_fields(invoice: InvoiceDraft) -> dict[str, Any]:
    """The purchase order and bill-to contact on a NetSuite invoice: ``otherRefNum`` (the
    "PO/Check Number" field), the ``billingAddress`` subrecord's addressee and first line, and
    the ``email`` the invoice is sent to."""
    fields: dict[str, Any] = {}
    if invoice.po_number:
        fields["otherRefNum"] = invoice.po_number
    bill_to = invoice.bill_to
    if bill_to is not None:
        address = {"addressee": bill_to.name}
        if bill_to.address:
            address["addr1"] = bill_to.address
        fields["billingAddress"] = address
        if bill_to.email:
            fields["email"] = bill_to.email
    return fields


def _bill_to_of(record: dict[str, Any]) -> dict[str, str] | None:
    address = record.get("billingAddress")
    if not isinstance(address, dict) or not address.get("addressee"):
        return None
    bill_to = {"name": str(address["addressee"])}
    if address.get("addr1"):
        bill_to["address"] = str(address["addr1"])
    if record.get("email"):
        bill_to["email"] = str(record["email"])
    return bill_to
