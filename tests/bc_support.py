"""The Business Central connector and mapping that Business Central tests use against the
sandbox."""

from __future__ import annotations

from typing import Any

import httpx

from c2c.bc_mapping import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    BcDimensions,
    sandbox_companies,
)
from connectors.business_central import BusinessCentralErp, EntraTokens


def dimensions(**changes: Any) -> BcDimensions:
    """UK01 and US01 posting tax to 22100, and the demo rate card's roles."""
    line = {"account": "40100", "dimensions": {"DEPARTMENT": "CONSULTING"}}
    entity = {
        "tax_account": "22100",
        "dimensions": {"BUSINESSGROUP": "SERVICES"},
        "write_off_account": "69100",
        "unbilled_account": "13100",
    }
    mapping: dict[str, Any] = {
        "entities": {"UK01": entity, "US01": entity},
        "roles": {
            "Senior Consultant": {**line, "dimensions": {"PRACTICE": "DATA"}},
            "Analyst": line,
        },
        "expense_categories": {"*": {"account": "40200"}},
        "charges": {kind: {"account": "40300"} for kind in ("milestone", "retainer")},
    }
    mapping.update(changes)
    return BcDimensions.model_validate(mapping)


def business_central(
    sandbox_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    client_secret: str = SANDBOX_CLIENT_SECRET,
    quick_retries: int = 2,
) -> BusinessCentralErp:
    base = f"{sandbox_url}/vendors/bc"
    return BusinessCentralErp(
        base,
        companies=sandbox_companies(),
        dimensions=dimensions(),
        tokens=EntraTokens(f"{base}/login", SANDBOX_CLIENT_ID, client_secret, timeout_s=5),
        quick_retries=quick_retries,
        transport=transport,
    )
