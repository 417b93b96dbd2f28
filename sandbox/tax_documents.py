"""Tax engine stand-in (``/tax/v1``), tax documents shaped after Avalara AvaTax REST v2.

A document (AvaTax's *transaction*) is keyed by its company and its ``code``. Paths, bodies
and field names follow AvaTax's reference:

- ``POST /transactions/createoradjust`` (CreateOrAdjustTransaction): the body's
  ``createTransactionModel`` creates the document, or adjusts the one with its code (a new
  ``version``, the ``adjustmentReason`` kept); the same content again changes nothing.
  ``commit`` makes it ``Committed`` at once, else it is ``Saved``.
- ``POST /companies/{companyCode}/transactions/{code}/commit`` (CommitTransaction).
- ``POST /companies/{companyCode}/transactions/{code}/refund`` (RefundTransaction): a
  ``ReturnInvoice`` for all of a committed sale (``Full``), some of its lines (``Partial``),
  a percentage of each line (``Percentage``) or its tax only (``TaxOnly``), taxed at the
  sale's tax date and rates.
- ``POST /companies/{companyCode}/transactions/{code}/void`` (VoidTransaction): ``Cancelled``.
- ``GET /companies/{companyCode}/transactions/{code}`` and ``GET
  /companies/{companyCode}/transactions`` (paged).

Tax is computed per line at the rate of the ship-to address's jurisdiction on the document's
tax date: ``taxOverride.taxDate`` (``type: "TaxDate"``) when given, else its ``date``. A line's
``taxOverride`` of ``type: "TaxAmount"`` sets its tax (``taxCalculated`` keeps the engine's).
Tax code ``NT`` is not taxable. A sale from another country to a customer in an EU member
state whose ``businessIdentificationNo`` is a valid VAT number of that state is reverse-charged:
0 %, with the legal mention in ``invoiceMessages``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, Session, col, select

from sandbox.db import Db, Row, UtcDateTime, utcnow
from sandbox.errors import duplicate, invalid, not_found
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import Body, Country, dec, fingerprint, timestamp
from sandbox.tax import Currency, check_amount, rate_on, resolve, round_tax

router = APIRouter(tags=["tax"])

#: EU member states (ISO country codes), whose B2B buyers account for VAT on services bought
#: from abroad (Art. 196 Council Directive 2006/112/EC).
EU_MEMBER_STATES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})  # fmt: skip
#: The VAT number prefix where it is not the ISO country code.
VAT_PREFIX = {"GR": "EL"}
REVERSE_CHARGE_MESSAGE = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Art. 196 Council Directive 2006/112/EC)"
)
#: AvaTax's tax code of a non-taxable line.
NON_TAXABLE = "NT"
#: AvaTax limits a document's code to 50 characters.
CODE_MAX = 50

DocumentType = Literal["SalesInvoice", "ReturnInvoice"]
DocumentStatus = Literal["Saved", "Committed", "Cancelled", "Adjusted"]
AdjustmentReason = Literal[
    "NotAdjusted",
    "SourcingIssue",
    "ReconciledWithGeneralLedger",
    "ExemptCertApplied",
    "PriceAdjusted",
    "ProductReturned",
    "ProductExchanged",
    "BadDebt",
    "Other",
    "Offline",
]
VoidReasonCode = Literal[
    "Unspecified", "PostFailed", "DocDeleted", "DocVoided", "AdjustmentCancelled"
]
RefundType = Literal["Full", "Partial", "TaxOnly", "Percentage"]


def _number(value: Any) -> Any:
    # AvaTax's JSON carries amounts as numbers; read one through its shortest decimal form
    # (3291.11, not the binary float's expansion). Decimal strings are taken as they are.
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


Number = Annotated[Decimal, BeforeValidator(_number)]


class TaxDocument(Row, table=True):
    __tablename__ = "tax_document"
    __table_args__ = (UniqueConstraint("company_code", "code"),)

    company_code: str = Field(index=True)
    code: str
    type: str
    status: str
    version: int = 1
    #: The computed document as the API shows it, without status, version and dates of change.
    content: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    request_hash: str
    created_at: datetime = Field(sa_type=UtcDateTime)
    modified_at: datetime = Field(sa_type=UtcDateTime)


class AddressIn(Body):
    line1: str | None = PydanticField(default=None, max_length=100)
    city: str | None = PydanticField(default=None, max_length=50)
    region: str | None = PydanticField(default=None, min_length=1, max_length=10)
    country: Country
    postalCode: str | None = PydanticField(default=None, max_length=20)


class AddressesIn(Body):
    shipFrom: AddressIn | None = None
    shipTo: AddressIn


class TaxOverrideIn(Body):
    type: Literal["None", "TaxAmount", "TaxDate"]
    taxAmount: Number | None = None
    taxDate: date | None = None
    reason: str = PydanticField(min_length=1, max_length=255)


class LineIn(Body):
    number: str = PydanticField(min_length=1, max_length=50)
    quantity: Number = Decimal(1)
    amount: Number
    taxCode: str | None = PydanticField(default=None, max_length=25)
    itemCode: str | None = PydanticField(default=None, max_length=50)
    description: str | None = PydanticField(default=None, max_length=2096)
    taxOverride: TaxOverrideIn | None = None


class CreateTransactionIn(Body):
    code: str = PydanticField(min_length=1, max_length=CODE_MAX)
    type: DocumentType
    companyCode: str = PydanticField(min_length=1, max_length=25)
    date: date
    customerCode: str = PydanticField(min_length=1, max_length=50)
    businessIdentificationNo: str | None = PydanticField(default=None, max_length=25)
    addresses: AddressesIn
    lines: list[LineIn] = PydanticField(min_length=1, max_length=1000)
    commit: bool = False
    currencyCode: Currency
    referenceCode: str | None = PydanticField(default=None, max_length=1024)
    description: str | None = PydanticField(default=None, max_length=2048)
    taxOverride: TaxOverrideIn | None = None


class CreateOrAdjustIn(Body):
    adjustmentReason: AdjustmentReason = "NotAdjusted"
    adjustmentDescription: str | None = PydanticField(default=None, max_length=255)
    createTransactionModel: CreateTransactionIn


class CommitIn(Body):
    commit: bool


class VoidIn(Body):
    code: VoidReasonCode


class RefundIn(Body):
    refundTransactionCode: str = PydanticField(min_length=1, max_length=CODE_MAX)
    refundDate: date
    refundType: RefundType
    refundPercentage: Number | None = PydanticField(default=None, gt=0, le=100)
    refundLines: list[str] | None = None
    referenceCode: str | None = PydanticField(default=None, max_length=1024)


def valid_vat_number(number: str | None, country: str) -> bool:
    """Whether ``number`` has the form of a VAT number of ``country``: its prefix, then 8 to
    12 letters or digits (the sandbox checks the form; a real engine asks VIES)."""
    if not number:
        return False
    prefix = VAT_PREFIX.get(country, country)
    return re.fullmatch(rf"{prefix}[0-9A-Z]{{8,12}}", number.replace(" ", "").upper()) is not None


def reverse_charged(body: CreateTransactionIn) -> bool:
    """A cross-border B2B sale to a buyer in an EU member state with a valid VAT number."""
    ship_to, ship_from = body.addresses.shipTo, body.addresses.shipFrom
    return (
        ship_to.country in EU_MEMBER_STATES
        and ship_from is not None
        and ship_from.country != ship_to.country
        and valid_vat_number(body.businessIdentificationNo, ship_to.country)
    )


def compute(session: Session, body: CreateTransactionIn) -> dict[str, Any]:
    """The document ``body`` describes, taxed line by line: its content as the API shows it."""
    ccy = body.currencyCode
    override = body.taxOverride
    tax_date: date = body.date
    if override is not None and override.type == "TaxDate":
        if override.taxDate is None:
            raise invalid(
                "missing_tax_date", "a TaxDate override needs its taxDate", "taxOverride.taxDate"
            )
        tax_date = override.taxDate
    ship_to = body.addresses.shipTo
    jurisdiction = resolve(
        session, ship_to.country, ship_to.region, field_prefix="addresses.shipTo."
    )
    reverse = reverse_charged(body)
    rate = Decimal(0) if reverse else rate_on(session, jurisdiction, tax_date)
    numbers = [line.number for line in body.lines]
    if len(set(numbers)) != len(numbers):
        raise invalid("duplicate_line_number", "line numbers must be unique", "lines")
    zero = round_tax(Decimal(0), ccy)
    lines: list[dict[str, Any]] = []
    for i, line in enumerate(body.lines):
        amount = check_amount(line.amount, ccy, f"lines.{i}.amount", signed=True)
        taxable = line.taxCode != NON_TAXABLE
        line_rate = rate if taxable else Decimal(0)
        calculated = round_tax(amount * line_rate, ccy)
        tax = calculated
        line_override = line.taxOverride
        if line_override is not None and line_override.type == "TaxAmount":
            if line_override.taxAmount is None:
                raise invalid(
                    "missing_tax_amount",
                    "a TaxAmount override needs its taxAmount",
                    f"lines.{i}.taxOverride.taxAmount",
                )
            tax = check_amount(
                line_override.taxAmount, ccy, f"lines.{i}.taxOverride.taxAmount", signed=True
            )
        lines.append(
            {
                "lineNumber": line.number,
                "quantity": dec(line.quantity),
                "lineAmount": dec(amount),
                "taxCode": line.taxCode,
                "itemCode": line.itemCode,
                "description": line.description,
                "taxDate": tax_date.isoformat(),
                "taxableAmount": dec(amount if taxable and not reverse else zero),
                "exemptAmount": dec(zero if taxable and not reverse else amount),
                "tax": dec(tax),
                "taxCalculated": dec(calculated),
                "taxOverrideType": line_override.type if line_override else "None",
                "taxOverrideAmount": dec(tax) if line_override else None,
                "taxOverrideReason": line_override.reason if line_override else None,
                "details": [
                    {
                        "jurisCode": jurisdiction.code,
                        "jurisName": jurisdiction.name,
                        "country": jurisdiction.country,
                        "region": jurisdiction.region,
                        "rate": dec(line_rate),
                        "taxableAmount": dec(amount),
                        "tax": dec(tax),
                        "taxName": "Reverse charge" if reverse else jurisdiction.name,
                    }
                ],
            }
        )
    total = sum((Decimal(line["lineAmount"]) for line in lines), zero)
    return {
        "code": body.code,
        "companyCode": body.companyCode,
        "type": body.type,
        "date": body.date.isoformat(),
        "taxDate": tax_date.isoformat(),
        "currencyCode": ccy,
        "customerCode": body.customerCode,
        "businessIdentificationNo": body.businessIdentificationNo,
        "referenceCode": body.referenceCode,
        "description": body.description,
        "addresses": body.addresses.model_dump(mode="json", exclude_none=True),
        "country": ship_to.country,
        "region": ship_to.region,
        "taxOverrideType": override.type if override else "None",
        "taxOverrideReason": override.reason if override else None,
        "totalAmount": dec(total),
        "totalTaxable": dec(sum((Decimal(x["taxableAmount"]) for x in lines), zero)),
        "totalExempt": dec(sum((Decimal(x["exemptAmount"]) for x in lines), zero)),
        "totalTax": dec(sum((Decimal(x["tax"]) for x in lines), zero)),
        "totalTaxCalculated": dec(sum((Decimal(x["taxCalculated"]) for x in lines), zero)),
        "lines": lines,
        "invoiceMessages": (
            [{"content": REVERSE_CHARGE_MESSAGE, "lineNumbers": numbers}] if reverse else []
        ),
    }


def document_out(document: TaxDocument) -> dict[str, Any]:
    return {
        "id": document.id,
        **document.content,
        "status": document.status,
        "version": document.version,
        "locked": False,
        "modifiedDate": timestamp(document.modified_at),
    }


def _find(session: Session, company: str, code: str) -> TaxDocument | None:
    return session.exec(
        select(TaxDocument)
        .where(col(TaxDocument.company_code) == company)
        .where(col(TaxDocument.code) == code)
    ).first()


def _get(session: Session, company: str, code: str) -> TaxDocument:
    found = _find(session, company, code)
    if found is None:
        raise not_found("transaction", f"{company}/{code}")
    return found


def _refuse_cancelled(document: TaxDocument, what: str) -> None:
    if document.status == "Cancelled":
        raise invalid(
            "transaction_cancelled",
            f"transaction {document.code} is voided: it cannot be {what}",
            "code",
        )


@router.post("/transactions/createoradjust", status_code=201, response_model=None)
def create_or_adjust(body: CreateOrAdjustIn, db: Db) -> dict[str, Any] | JSONResponse:
    model = body.createTransactionModel
    request_hash = fingerprint(model.model_dump(mode="json", exclude={"commit"}))
    status = "Committed" if model.commit else "Saved"
    now = utcnow()
    with db.write() as session:
        content = compute(session, model)
        existing = _find(session, model.companyCode, model.code)
        if existing is None:
            return _add(session, model, content, status, request_hash)
        _refuse_cancelled(existing, "adjusted")
        if existing.type != model.type:
            raise invalid(
                "document_type_mismatch",
                f"transaction {model.code} is a {existing.type}, not a {model.type}",
                "createTransactionModel.type",
            )
        if existing.request_hash == request_hash and existing.status == status:
            return JSONResponse(document_out(existing), status_code=200)
        existing.content = {
            **content,
            "adjustmentReason": body.adjustmentReason,
            "adjustmentDescription": body.adjustmentDescription,
        }
        existing.request_hash = request_hash
        existing.status = status
        existing.version += 1
        existing.modified_at = now
        session.add(existing)
        return JSONResponse(document_out(existing), status_code=200)


@router.get("/companies/{company_code}/transactions")
def list_documents(company_code: str, db: Db, page: PageQuery) -> dict[str, Any]:
    with db.read() as session:
        where = equal_to((TaxDocument.company_code, company_code))
        return paginate(session, TaxDocument, page, document_out, *where)


@router.get("/companies/{company_code}/transactions/{code}")
def read_document(company_code: str, code: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        return document_out(_get(session, company_code, code))


@router.post("/companies/{company_code}/transactions/{code}/commit")
def commit_document(company_code: str, code: str, body: CommitIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        document = _get(session, company_code, code)
        _refuse_cancelled(document, "committed")
        status = "Committed" if body.commit else "Saved"
        if document.status != status:
            document.status = status
            document.modified_at = utcnow()
            session.add(document)
        return document_out(document)


@router.post("/companies/{company_code}/transactions/{code}/void")
def void_document(company_code: str, code: str, body: VoidIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        document = _get(session, company_code, code)
        if document.status != "Cancelled":
            document.status = "Cancelled"
            document.content = {**document.content, "voidReason": body.code}
            document.modified_at = utcnow()
            session.add(document)
        return document_out(document)


@router.post(
    "/companies/{company_code}/transactions/{code}/refund", status_code=201, response_model=None
)
def refund_document(
    company_code: str, code: str, body: RefundIn, db: Db
) -> dict[str, Any] | JSONResponse:
    with db.write() as session:
        sale = _get(session, company_code, code)
        if sale.type != "SalesInvoice" or sale.status != "Committed":
            raise invalid(
                "not_refundable",
                f"transaction {code} is a {sale.status} {sale.type}; only a committed "
                "SalesInvoice is refunded",
                "code",
            )
        model = CreateTransactionIn.model_validate(
            {
                "code": body.refundTransactionCode,
                "type": "ReturnInvoice",
                "companyCode": company_code,
                "date": body.refundDate,
                "customerCode": sale.content["customerCode"],
                "businessIdentificationNo": sale.content["businessIdentificationNo"],
                "addresses": sale.content["addresses"],
                "lines": _refund_lines(sale, body),
                "commit": True,
                "currencyCode": sale.content["currencyCode"],
                "referenceCode": body.referenceCode or code,
                "taxOverride": {
                    "type": "TaxDate",
                    "taxDate": sale.content["taxDate"],
                    "reason": f"refund of {code}",
                },
            }
        )
        request_hash = fingerprint(model.model_dump(mode="json", exclude={"commit"}))
        existing = _find(session, company_code, body.refundTransactionCode)
        if existing is not None:
            if existing.request_hash != request_hash:
                raise duplicate(
                    f"transaction {body.refundTransactionCode!r} exists with other content",
                    body.refundTransactionCode,
                )
            return JSONResponse(document_out(existing), status_code=200)
        return _add(session, model, compute(session, model), "Committed", request_hash)


def _add(
    session: Session,
    model: CreateTransactionIn,
    content: dict[str, Any],
    status: str,
    request_hash: str,
) -> dict[str, Any]:
    """A new document of ``model``, as the API shows it."""
    now = utcnow()
    document = TaxDocument(
        company_code=model.companyCode,
        code=model.code,
        type=model.type,
        status=status,
        content={**content, "adjustmentReason": "NotAdjusted"},
        request_hash=request_hash,
        created_at=now,
        modified_at=now,
    )
    session.add(document)
    session.flush()
    return document_out(document)


def _refund_lines(sale: TaxDocument, body: RefundIn) -> list[dict[str, Any]]:
    """The return's lines: the sale's, negated, as ``refundType`` asks."""
    ccy = sale.content["currencyCode"]
    lines = sale.content["lines"]
    if body.refundType == "Partial":
        wanted = set(body.refundLines or ())
        unknown = wanted - {line["lineNumber"] for line in lines}
        if not wanted or unknown:
            raise invalid(
                "invalid_refund_lines",
                f"refundLines must name lines of {sale.code}"
                + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""),
                "refundLines",
            )
        lines = [line for line in lines if line["lineNumber"] in wanted]
    if body.refundType == "Percentage" and body.refundPercentage is None:
        raise invalid("missing_percentage", "a Percentage refund needs it", "refundPercentage")
    out = []
    for line in lines:
        amount = -Decimal(line["lineAmount"])
        override = None
        if body.refundType == "Percentage":
            assert body.refundPercentage is not None
            amount = round_tax(amount * body.refundPercentage / 100, ccy)
        elif body.refundType == "TaxOnly":
            amount = Decimal(0)
            override = {
                "type": "TaxAmount",
                "taxAmount": dec(-Decimal(line["tax"])),
                "reason": "tax-only refund",
            }
        out.append(
            {
                "number": line["lineNumber"],
                "amount": dec(amount),
                "taxCode": line["taxCode"],
                "description": line["description"],
                "taxOverride": override,
            }
        )
    return out
