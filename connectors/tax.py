"""Tax engine connector: address validation and tax calculation per invoice line."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connectors.http import HttpConnector
from connectors.records import TaxQuote


class HttpTax(HttpConnector):
    system = "tax"

    async def validate_address(self, country: str, region: str | None) -> str:
        body = await self.request(
            "POST", "/addresses/validate", json={"country": country, "region": region}
        )
        return str(body["jurisdiction_code"])

    async def calculate(
        self,
        *,
        country: str,
        region: str | None,
        legal_entity: str,
        currency: str,
        on: date,
        lines: list[tuple[str, Decimal]],
        document_id: str,
    ) -> TaxQuote:
        return await self.send(
            TaxQuote,
            "POST",
            "/calculate",
            json={
                "document_id": document_id,
                "customer": {"country": country, "region": region},
                "legal_entity": legal_entity,
                "currency": currency,
                "date": on.isoformat(),
                "lines": [{"line_id": lid, "amount": format(amt, "f")} for lid, amt in lines],
            },
        )
