"""What the Ironclad tests share: a workflow's attributes for a valid contract, as c2c's
default mapping reads them."""

from __future__ import annotations

from typing import Any


def contract_attributes(contract_id: str, **changes: Any) -> dict[str, Any]:
    """Attributes of a time-and-materials SOW for the demo account ACME-US (``changes``
    replace or add attributes; ``None`` removes one)."""
    attributes: dict[str, Any] = {
        "contractId": contract_id,
        "contractTitle": "Data platform build-out",
        "crmAccountId": "ACME-US",
        "counterpartyName": "Acme Corp",
        "parentCrmAccountId": "ACME-HOLD",
        "customerCountry": "US",
        "customerRegion": "CA",
        "legalEntity": "US01",
        "currency": "USD",
        "billingModel": "time_and_materials",
        "startDate": "2026-10-01T00:00:00.000Z",
        "endDate": "2026-10-31",
        "paymentTermsDays": 30,
        "rateCard": "Senior Consultant=200.00; Analyst=120.00",
        "notToExceed": {"currency": "USD", "amount": 50000.0},
        "expensesBillable": True,
        "approvedBy": "legal@example.com",
    }
    for name, value in changes.items():
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
    return attributes
