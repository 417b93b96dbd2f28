"""Tax engine stand-in (``/tax/v1``): jurisdictions by address, and per-line tax calculation.

Rates are decimal fractions (``"0.0725"`` for 7.25 %), effective from a date: a jurisdiction's
rate applies until a rate change (``POST /jurisdictions/{code}/rates``) takes effect. Each
line's tax is rounded half-up to the currency's minor unit; the total is the sum of the rounded
lines. The engine rounds by its own rules (``round_tax``), never by c2c's: it stands in for
another company's system, and where both compute they must be able to disagree.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BeforeValidator, StringConstraints
from pydantic import Field as PydanticField
from sqlmodel import Field, Session, col, select

from sandbox.db import Db, DecimalText, Row, get_or_404
from sandbox.errors import duplicate, invalid
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import Body, Country, Key, day, dec

router = APIRouter(tags=["tax"])

#: Countries whose addresses must name a region (a state or province).
REGION_REQUIRED = frozenset({"US", "CA"})


#: Decimal places of each currency's minor unit (ISO 4217), as the engine rounds tax.
CURRENCY_DECIMALS: dict[str, int] = {"JPY": 0, "KRW": 0}
DEFAULT_DECIMALS = 2


#: An ISO 4217 currency code; the engine taxes in any, at its minor unit.
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


def round_tax(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up (away from zero) to ``currency``'s minor unit."""
    places = CURRENCY_DECIMALS.get(currency, DEFAULT_DECIMALS)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def check_amount(amount: Decimal, currency: str, field: str, *, signed: bool = False) -> Decimal:
    """``amount`` as given, or ``422 invalid_amount`` naming ``field`` when it has more
    decimals than ``currency``'s minor unit, is not finite, or (unless ``signed``) negative."""
    if not amount.is_finite() or round_tax(amount, currency) != amount:
        places = CURRENCY_DECIMALS.get(currency, DEFAULT_DECIMALS)
        raise invalid(
            "invalid_amount", f"{amount} has more decimal places than {currency} ({places})", field
        )
    if amount < 0 and not signed:
        raise invalid("invalid_amount", "must not be negative", field)
    return round_tax(amount, currency)


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError('must be a decimal string such as "1250.00", not a float')
    return value


#: An amount on the engine's own calculation API: a decimal string, never a float.
Amount = Annotated[Decimal, BeforeValidator(_no_float)]


class TaxJurisdiction(Row, table=True):
    __tablename__ = "tax_jurisdiction"

    code: str = Field(unique=True)
    country: str = Field(index=True)
    region: str | None = None
    rate: Decimal = Field(sa_type=DecimalText)
    name: str


class TaxRateChange(Row, table=True):
    """A jurisdiction's rate from ``effective_from`` on (until a later change)."""

    __tablename__ = "tax_rate_change"

    jurisdiction_code: str = Field(index=True)
    effective_from: date
    rate: Decimal = Field(sa_type=DecimalText)


class RateChangeIn(Body):
    effective_from: date
    rate: Decimal = PydanticField(ge=0, lt=1)


class AddressIn(Body):
    country: Country
    region: str | None = PydanticField(default=None, min_length=1, max_length=10)
    postal_code: str | None = PydanticField(default=None, max_length=20)


class TaxCustomerIn(Body):
    country: Country
    region: str | None = PydanticField(default=None, min_length=1, max_length=10)
    tax_id: str | None = PydanticField(default=None, max_length=40)


class TaxLineIn(Body):
    line_id: Key
    amount: Amount


class CalculateIn(Body):
    document_id: str | None = PydanticField(default=None, max_length=64)
    customer: TaxCustomerIn
    legal_entity: str
    currency: Currency
    date: date
    lines: list[TaxLineIn] = PydanticField(min_length=1, max_length=1000)


def jurisdiction_out(jurisdiction: TaxJurisdiction) -> dict[str, Any]:
    return {
        "code": jurisdiction.code,
        "country": jurisdiction.country,
        "region": jurisdiction.region,
        "rate": dec(jurisdiction.rate),
        "name": jurisdiction.name,
    }


def resolve(
    session: Session, country: str, region: str | None, *, field_prefix: str = ""
) -> TaxJurisdiction:
    """The jurisdiction of an address: its region's if it has one, else its country's.

    Raises:
        ApiError: ``422 unknown_jurisdiction`` naming ``country`` or ``region``.
    """
    candidates = session.exec(
        select(TaxJurisdiction).where(col(TaxJurisdiction.country) == country)
    ).all()
    if not candidates:
        raise invalid(
            "unknown_jurisdiction", f"no tax jurisdiction in {country}", f"{field_prefix}country"
        )
    if country in REGION_REQUIRED and not region:
        raise invalid(
            "unknown_jurisdiction",
            f"an address in {country} needs a region",
            f"{field_prefix}region",
        )
    by_region = {j.region: j for j in candidates}
    found = by_region.get(region) or by_region.get(None)
    if found is None:
        raise invalid(
            "unknown_jurisdiction",
            f"no tax jurisdiction for region {region!r} of {country}",
            f"{field_prefix}region",
        )
    return found


def rate_on(session: Session, jurisdiction: TaxJurisdiction, on: date) -> Decimal:
    """The jurisdiction's rate on day ``on``: its latest change in effect, else its own."""
    change = session.exec(
        select(TaxRateChange)
        .where(col(TaxRateChange.jurisdiction_code) == jurisdiction.code)
        .where(col(TaxRateChange.effective_from) <= on)
        .order_by(col(TaxRateChange.effective_from).desc())
    ).first()
    return change.rate if change is not None else jurisdiction.rate


@router.get("/jurisdictions")
def list_jurisdictions(db: Db, page: PageQuery, country: str | None = None) -> dict[str, Any]:
    where = equal_to((TaxJurisdiction.country, country))
    with db.read() as session:
        return paginate(session, TaxJurisdiction, page, jurisdiction_out, *where)


@router.post("/jurisdictions/{code}/rates", status_code=201)
def add_rate_change(code: str, body: RateChangeIn, db: Db) -> dict[str, Any]:
    """A new rate for a jurisdiction from a day on (test and demo data: a rate change)."""
    with db.write() as session:
        get_or_404(session, TaxJurisdiction, TaxJurisdiction.code, code, "jurisdiction")
        clash = session.exec(
            select(TaxRateChange)
            .where(col(TaxRateChange.jurisdiction_code) == code)
            .where(col(TaxRateChange.effective_from) == body.effective_from)
        ).first()
        if clash is not None:
            raise duplicate(
                f"jurisdiction {code} already changes rate on {day(body.effective_from)}", code
            )
        change = TaxRateChange(
            jurisdiction_code=code, effective_from=body.effective_from, rate=body.rate
        )
        session.add(change)
    return {"code": code, "effective_from": day(body.effective_from), "rate": dec(body.rate)}


@router.post("/addresses/validate")
def validate_address(body: AddressIn, db: Db) -> dict[str, Any]:
    with db.read() as session:
        jurisdiction = resolve(session, body.country, body.region)
    return {"valid": True, "jurisdiction_code": jurisdiction.code}


@router.post("/calculate")
def calculate(body: CalculateIn, db: Db) -> dict[str, Any]:
    with db.read() as session:
        jurisdiction = resolve(
            session, body.customer.country, body.customer.region, field_prefix="customer."
        )
        rate = rate_on(session, jurisdiction, body.date)
    ccy = body.currency
    lines = []
    for i, line in enumerate(body.lines):
        amount = check_amount(line.amount, ccy, f"lines.{i}.amount")
        lines.append((line.line_id, amount, round_tax(amount * rate, ccy)))
    return {
        "jurisdiction_code": jurisdiction.code,
        "rate": dec(rate),
        "lines": [
            {
                "line_id": lid,
                "taxable_amount": dec(amount),
                "rate": dec(rate),
                "tax_amount": dec(tax),
            }
            for lid, amount, tax in lines
        ],
        "total_tax": dec(sum((tax for _, _, tax in lines), Decimal(0))),
    }
