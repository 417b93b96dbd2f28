"""The demo data of ``docs/sandbox.md``: loaded into a new database and by ``/_admin/reset``."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from sandbox.crm import AccountIn, new_account
from sandbox.erp import ErpExchangeRate, ErpLegalEntity
from sandbox.tax import TaxJurisdiction

ACCOUNTS: list[dict[str, Any]] = [
    {"crm_account_id": "ACME-HOLD", "name": "Acme Holdings", "country": "US", "region": "NY",
     "billing_email": "ap@acme-holdings.example"},
    {"crm_account_id": "ACME-US", "name": "Acme Corp", "country": "US", "region": "CA",
     "parent_crm_account_id": "ACME-HOLD", "billing_email": "ap@acme.example",
     "tax_id": "US-94-1234567"},
    {"crm_account_id": "GLOBEX-UK", "name": "Globex Ltd", "country": "GB",
     "billing_email": "accounts@globex.example", "tax_id": "GB123456789"},
    {"crm_account_id": "INITECH-DE", "name": "Initech GmbH", "country": "DE",
     "billing_email": "buchhaltung@initech.example", "tax_id": "DE123456789"},
    {"crm_account_id": "UMBRELLA-JP", "name": "Umbrella KK", "country": "JP",
     "billing_email": "keiri@umbrella.example", "tax_id": "T1234567890123"},
]  # fmt: skip
DORMANT = {"crm_account_id": "DORMANT-CO", "name": "Dormant Co", "country": "US", "region": "TX"}

#: (code, name, country, functional currency)
LEGAL_ENTITIES: list[tuple[str, str, str, str]] = [
    ("US01", "c2c Consulting Inc.", "US", "USD"),
    ("UK01", "c2c Consulting Ltd", "GB", "GBP"),
    ("DE01", "c2c Beratung GmbH", "DE", "EUR"),
]

#: (code, country, region, rate as a fraction, name)
JURISDICTIONS: list[tuple[str, str, str | None, str, str]] = [
    ("US-CA", "US", "CA", "0.0725", "California sales tax"),
    ("US-NY", "US", "NY", "0.08875", "New York sales tax"),
    ("US-TX", "US", "TX", "0.0625", "Texas sales tax"),
    ("US", "US", None, "0", "United States, other states"),
    ("GB", "GB", None, "0.20", "United Kingdom VAT"),
    ("DE", "DE", None, "0.19", "Germany VAT"),
    ("FR", "FR", None, "0.20", "France VAT"),
    ("NL", "NL", None, "0.21", "Netherlands VAT"),
    ("JP", "JP", None, "0.10", "Japan consumption tax"),
    ("CH", "CH", None, "0.081", "Switzerland VAT"),
    ("CA-ON", "CA", "ON", "0.13", "Ontario HST"),
]

#: Units per US dollar around which the demo's daily rates move.
RATE_BASES = {"EUR": Decimal("0.92"), "GBP": Decimal("0.79"), "JPY": Decimal("150")}
RATES_FROM = date(2024, 1, 1)
RATES_TO = date(2028, 12, 31)
SATURDAY = 5


@cache
def daily_rates() -> list[dict[str, Any]]:
    """A deterministic rate per currency and business day: each swings ±3 % on a 240-day
    cycle. Like published reference rates there are none on weekends; the ERP answers the
    Friday rate for a Saturday or Sunday."""
    rows: list[dict[str, Any]] = []
    for phase, (currency, base) in enumerate(RATE_BASES.items()):
        for offset in range((RATES_TO - RATES_FROM).days + 1):
            current = RATES_FROM + timedelta(days=offset)
            if current.weekday() >= SATURDAY:
                continue
            swing = abs((current.toordinal() + 80 * phase) % 240 - 120) - 60
            per_usd = (base * (1 + Decimal(swing) / 2000)).quantize(Decimal("0.000001"))
            rows.append({"currency": currency, "rate_date": current, "per_usd": per_usd})
    return rows


def load(session: Session) -> None:
    """Add the demo records to an empty database, in ``session``'s transaction."""
    accounts = [new_account(AccountIn(**a)) for a in ACCOUNTS]
    accounts.append(new_account(AccountIn(**DORMANT), status="inactive"))
    session.add_all(accounts)
    session.add_all(
        ErpLegalEntity(code=code, name=name, country=country, functional_currency=currency)
        for code, name, country, currency in LEGAL_ENTITIES
    )
    session.add_all(
        TaxJurisdiction(code=code, country=country, region=region, rate=Decimal(rate), name=name)
        for code, country, region, rate, name in JURISDICTIONS
    )
    # A core insert: the ORM would take several times as long for these thousands of rows.
    session.connection().execute(insert(ErpExchangeRate), daily_rates())
