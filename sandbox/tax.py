"""Tax engine stand-in (``/tax/v1``): jurisdictions by address, and per-line tax calculation.

Rates are decimal fractions (``"0.0725"`` for 7.25 %). Each line's tax is rounded half-up to the
currency's minor unit; the total is the sum of the rounded lines.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from pydantic import Field as PydanticField
from sqlmodel import Field, Session, col, select

from domain.money import Money, money_sum, round_money
from sandbox.db import Db, DecimalText, Row
from sandbox.errors import invalid
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import Body, Country, Currency, Key, check_amount, dec

router = APIRouter(tags=["tax"])

#: Countries whose addresses must name a region (a state or province).
REGION_REQUIRED = frozenset({"US", "CA"})


class TaxJurisdiction(Row, table=True):
    __tablename__ = "tax_jurisdiction"

    code: str = Field(unique=True)
    country: str = Field(index=True)
    region: str | None = None
    rate: Decimal = Field(sa_type=DecimalText)
    name: str


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
    amount: Money


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


@router.get("/jurisdictions")
def list_jurisdictions(db: Db, page: PageQuery, country: str | None = None) -> dict[str, Any]:
    where = equal_to((TaxJurisdiction.country, country))
    with db.read() as session:
        return paginate(session, TaxJurisdiction, page, jurisdiction_out, *where)


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
    ccy, rate = body.currency, jurisdiction.rate
    lines = []
    for i, line in enumerate(body.lines):
        amount = check_amount(line.amount, ccy, f"lines.{i}.amount")
        lines.append((line.line_id, amount, round_money(amount * rate, ccy)))
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
        "total_tax": dec(money_sum([tax for _, _, tax in lines], ccy)),
    }
