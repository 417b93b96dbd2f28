"""Avalara AvaTax as c2c's tax engine (``C2C_TAX=avatax``), through Avalara's own ``avalara``
client (``AvataxClient``) pointed at ``C2C_AVATAX_URL``.

The documents are the ones c2c makes on the reference engine (``connectors.tax``): a
``SalesInvoice`` per invoice and a ``ReturnInvoice`` per credit note, made or adjusted by a
code built from c2c's idempotency key (CreateOrAdjustTransaction), committed once the ERP
holds the record (CommitTransaction). Refunds (RefundTransaction) and voids
(VoidTransaction) are here for the operations that need them. Addresses are checked during
validation with ResolveAddress.

AvaTax takes no ``Idempotency-Key``: every write is made safe by the code. Before a refund
makes a new document, the document of its code is looked up (GetTransactionByCode), so a
retry long after the first attempt, whatever AvaTax remembers, finds the one it made.

The client is synchronous (``requests``); each call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from importlib import metadata
from typing import Any
from urllib.parse import quote

import requests
from avalara import AvataxClient

from c2c.call_limits import call_slot
from c2c.settings import Settings
from connectors.records import TaxDocument
from connectors.tax import document_code, tax_document, transaction_model
from domain.errors import BusinessError, NotFound, Rejection, TransientError
from domain.write_models import TaxRequest

SYSTEM = "tax"
#: AvaTax as ``C2C_CALL_LIMITS`` names it.
VENDOR = "avatax"
APP_NAME = "c2c"


def _path(value: str) -> str:
    # The client puts codes into the URL as they are; AvaTax asks for them URL-encoded.
    return quote(value, safe="")


def _rejection(response: requests.Response) -> Rejection:
    code, message, field = f"http_{response.status_code}", response.reason or "", None
    try:
        error = response.json().get("error") or {}
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        details = error.get("details") or []
        if details and isinstance(details[0], dict):
            field = details[0].get("refersTo")
    except (ValueError, AttributeError):
        pass
    return Rejection(
        system=SYSTEM, code=code, message=message, field=field, status=response.status_code
    )


def _version() -> str:
    try:
        return metadata.version("c2c")
    except metadata.PackageNotFoundError:
        return "dev"


class AvataxTax:
    """``TaxPort`` on AvaTax REST v2."""

    system = SYSTEM

    def __init__(
        self,
        base_url: str,
        *,
        account_id: str,
        license_key: str,
        timeout_s: float = 10.0,
        machine_name: str = "c2c-worker",
    ) -> None:
        # The client logs each call (URL, status, correlation id; never bodies unless asked)
        # to the logger it is given, else to the root logger.
        self.client = AvataxClient(
            APP_NAME,
            _version(),
            machine_name,
            base_url.rstrip("/"),
            logger=logging.getLogger("avalara"),
        )
        self.client.add_credentials(account_id, license_key)
        self.client.timeout_limit = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> AvataxTax:
        return cls(
            settings.avatax_base_url,
            account_id=settings.avatax_account_id,
            license_key=settings.avatax_license_key.get_secret_value(),
            timeout_s=settings.connector_timeout_s,
        )

    async def aclose(self) -> None:
        """Nothing to close: the client opens a connection per call."""

    async def _call(self, what: str, method: Any, *args: Any) -> Any:
        """``method(*args)`` in a thread; the answer's JSON, or c2c's class of its failure."""
        try:
            async with call_slot(VENDOR):
                response: requests.Response = await asyncio.to_thread(method, *args)
        except requests.Timeout as exc:
            raise TransientError(SYSTEM, f"AvaTax {what} timed out") from exc
        except requests.RequestException as exc:
            raise TransientError(SYSTEM, f"AvaTax {what}: {type(exc).__name__}") from exc
        status = response.status_code
        if status < 400:
            return response.json() if response.content else None
        if status == 429 or status >= 500:
            retry_after = response.headers.get("Retry-After")
            raise TransientError(
                SYSTEM,
                f"AvaTax {what} answered {status}",
                status=status,
                retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        rejection = _rejection(response)
        if status == 404:
            raise NotFound(rejection)
        raise BusinessError(rejection)

    async def validate_address(self, country: str, region: str | None) -> str:
        """ResolveAddress: the tax authority of the address, or a rejection naming the part
        of it that AvaTax could not resolve."""
        address = {"country": country, **({"region": region} if region else {})}
        body = await self._call("ResolveAddress", self.client.resolve_address_post, address)
        errors = [m for m in body.get("messages") or [] if m.get("severity") == "Error"]
        authorities = body.get("taxAuthorities") or []
        if errors or not authorities:
            first = errors[0] if errors else {}
            refers_to = str(first.get("refersTo") or "Address")
            field = "region" if refers_to.lower().endswith("region") else "country"
            raise BusinessError(
                Rejection(
                    system=SYSTEM,
                    code="address_unresolved",
                    message=str(first.get("summary") or "AvaTax could not resolve the address"),
                    field=field,
                )
            )
        return str(authorities[0]["avalaraId"])

    async def create_or_adjust(self, document: TaxRequest) -> TaxDocument:
        """CreateOrAdjustTransaction: an upsert keyed by the document's code."""
        body = await self._call(
            "CreateOrAdjustTransaction",
            self.client.create_or_adjust_transaction,
            {"createTransactionModel": transaction_model(document)},
        )
        return tax_document(body)

    async def get_document(self, company: str, code: str) -> TaxDocument | None:
        """GetTransactionByCode, or ``None`` when AvaTax has no document of that code."""
        try:
            body = await self._call(
                "GetTransactionByCode",
                self.client.get_transaction_by_code,
                _path(company),
                _path(document_code(code)),
            )
        except NotFound:
            return None
        return tax_document(body)

    async def commit_document(
        self, company: str, code: str, *, idempotency_key: str
    ) -> TaxDocument:
        """CommitTransaction (a state, so repeating it is safe; AvaTax takes no key)."""
        body = await self._call(
            "CommitTransaction",
            self.client.commit_transaction,
            _path(company),
            _path(document_code(code)),
            {"commit": True},
        )
        return tax_document(body)

    async def void_document(self, company: str, code: str) -> TaxDocument:
        """VoidTransaction (``DocVoided``): the document is ``Cancelled``, reported nowhere."""
        body = await self._call(
            "VoidTransaction",
            self.client.void_transaction,
            _path(company),
            _path(document_code(code)),
            {"code": "DocVoided"},
        )
        return tax_document(body)

    async def refund_document(
        self,
        company: str,
        code: str,
        *,
        refund_code: str,
        on: date,
        percentage: str | None = None,
    ) -> TaxDocument:
        """RefundTransaction: a committed ``ReturnInvoice`` named ``refund_code`` for all of the
        sale ``code`` (or ``percentage`` of each line), at the sale's tax date.

        The return's code is looked up first, so a retry after AvaTax answered (and the
        answer was lost) finds the return rather than asking for a second one.
        """
        existing = await self.get_document(company, refund_code)
        if existing is not None:
            return existing
        model: dict[str, Any] = {
            "refundTransactionCode": document_code(refund_code),
            "refundDate": on.isoformat(),
            "refundType": "Full" if percentage is None else "Percentage",
            "referenceCode": document_code(code),
        }
        if percentage is not None:
            model["refundPercentage"] = percentage
        body = await self._call(
            "RefundTransaction",
            self.client.refund_transaction,
            _path(company),
            _path(document_code(code)),
            model,
        )
        return tax_document(body)
