"""Tax engine connector: address validation, and tax documents taxed line by line.

Tax documents follow Avalara AvaTax REST v2 (CreateOrAdjustTransaction, CommitTransaction):
the fields c2c sends and where each comes from are in docs/vendors.md.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from connectors.http import HttpConnector
from connectors.records import TaxDocument, TaxDocumentLine
from domain.errors import NotFound
from domain.write_models import TaxRequest

#: AvaTax limits a document's code to 50 characters.
CODE_MAX = 50


def document_code(key: str) -> str:
    """The engine's code for the document of c2c's idempotency key ``key``: the key itself, or
    when too long its start and a digest of all of it (the same key, the same code)."""
    if len(key) <= CODE_MAX:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{key[: CODE_MAX - len(digest) - 1]}~{digest}"


def tax_document(body: dict[str, Any]) -> TaxDocument:
    return TaxDocument(
        code=body["code"],
        type=body["type"],
        status=body["status"],
        on=body["date"],
        tax_date=body.get("taxDate") or body["date"],
        total_amount=body["totalAmount"],
        total_tax=body["totalTax"],
        lines=[
            TaxDocumentLine(
                number=line["lineNumber"],
                amount=line["lineAmount"],
                tax=line["tax"],
                tax_calculated=line.get("taxCalculated", line["tax"]),
                rate=(line.get("details") or [{"rate": "0"}])[0]["rate"],
            )
            for line in body.get("lines", [])
        ],
        messages=[m["content"] for m in body.get("invoiceMessages") or []],
    )


def transaction_model(document: TaxRequest) -> dict[str, Any]:
    """AvaTax's ``CreateTransactionModel`` of ``document``: the fields in docs/vendors.md."""
    ship_from = (
        {"shipFrom": {"country": document.ship_from_country}} if document.ship_from_country else {}
    )
    model: dict[str, Any] = {
        "code": document_code(document.code),
        "type": document.type,
        "companyCode": document.company,
        "date": document.on.isoformat(),
        "customerCode": document.customer_code,
        "businessIdentificationNo": document.customer_tax_id,
        "addresses": {
            **ship_from,
            "shipTo": {"country": document.ship_to_country, "region": document.ship_to_region},
        },
        "lines": [
            {
                "number": line.number,
                "amount": format(line.amount, "f"),
                "taxCode": line.tax_code,
                "description": line.description,
                "taxOverride": None
                if line.tax_amount is None
                else {
                    "type": "TaxAmount",
                    "taxAmount": format(line.tax_amount, "f"),
                    "reason": "tax left on the original invoice",
                },
            }
            for line in document.lines
        ],
        "commit": document.commit,
        "currencyCode": document.currency,
        "referenceCode": document.reference_code and document_code(document.reference_code),
        "taxOverride": None
        if document.tax_date is None
        else {
            "type": "TaxDate",
            "taxDate": document.tax_date.isoformat(),
            "reason": "credit note taxed as its invoice",
        },
    }
    return model


class HttpTax(HttpConnector):
    system = "tax"

    async def validate_address(self, country: str, region: str | None) -> str:
        body = await self.request(
            "POST", "/addresses/validate", json={"country": country, "region": region}
        )
        return str(body["jurisdiction_code"])

    async def create_or_adjust(self, document: TaxRequest) -> TaxDocument:
        """CreateOrAdjustTransaction: the document with ``document.code``, made or adjusted.

        An upsert keyed by the code, as AvaTax's is: the same document again changes nothing,
        and a step that prices again after a refusal adjusts the one document.
        """
        model = transaction_model(document)
        body = await self.request(
            "POST",
            "/transactions/createoradjust",
            json={"createTransactionModel": model},
        )
        return tax_document(body)

    async def get_document(self, company: str, code: str) -> TaxDocument | None:
        """GetTransactionByCode, or ``None`` when the engine has no document of that code."""
        try:
            body = await self.request(
                "GET",
                f"/companies/{quote(company, safe='')}/transactions/"
                f"{quote(document_code(code), safe='')}",
            )
        except NotFound:
            return None
        return tax_document(body)

    async def commit_document(
        self, company: str, code: str, *, idempotency_key: str
    ) -> TaxDocument:
        """CommitTransaction: the document becomes ``Committed`` (reported for filing)."""
        body = await self.request(
            "POST",
            f"/companies/{quote(company, safe='')}/transactions/"
            f"{quote(document_code(code), safe='')}/commit",
            json={"commit": True},
            idempotency_key=idempotency_key,
        )
        return tax_document(body)
