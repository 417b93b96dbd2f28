"""The NetSuite connector and segment mapping that NetSuite tests use against the sandbox."""

from __future__ import annotations

from typing import Any

import httpx

from c2c.netsuite_auth import (
    SANDBOX_ACCOUNT,
    SANDBOX_CONSUMER_KEY,
    SANDBOX_CONSUMER_SECRET,
    SANDBOX_TOKEN_ID,
    SANDBOX_TOKEN_SECRET,
    TokenCredentials,
)
from c2c.netsuite_segments import NetSuiteSegments
from connectors.netsuite import NetSuiteErp

#: The custom body fields that link an invoice's documents in the NetSuite tests.
DOCUMENT_FIELD = "custbody_c2c_document_url"
EINVOICE_FIELD = "custbody_c2c_einvoice_url"


def segments(**changes: Any) -> NetSuiteSegments:
    """US01 on subsidiary 1 in USD, and the demo rate card's roles."""
    line = {"item": "101", "department": "3", "class": "7", "location": "1"}
    mapping: dict[str, Any] = {
        "entities": {"US01": {"subsidiary": "1"}, "UK01": {"subsidiary": "2"}},
        "currencies": {"USD": "1", "GBP": "2"},
        "roles": {"Senior Consultant": line, "Analyst": {**line, "item": "102"}},
        "expense_categories": {"*": {**line, "item": "201"}},
        "charges": {kind: {**line, "item": "301"} for kind in ("milestone", "retainer")},
        "write_off": {"write_off_account": "612", "unbilled_account": "118", "department": "3"},
    }
    mapping.update(changes)
    return NetSuiteSegments.model_validate(mapping)


def credentials(**changes: str) -> TokenCredentials:
    values = {
        "account": SANDBOX_ACCOUNT,
        "consumer_key": SANDBOX_CONSUMER_KEY,
        "consumer_secret": SANDBOX_CONSUMER_SECRET,
        "token_id": SANDBOX_TOKEN_ID,
        "token_secret": SANDBOX_TOKEN_SECRET,
    }
    return TokenCredentials(**(values | changes))


def netsuite(
    sandbox_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    concurrency: int = 5,
    **creds: str,
) -> NetSuiteErp:
    return NetSuiteErp(
        f"{sandbox_url}/vendors/netsuite",
        credentials=credentials(**creds),
        segments=segments(),
        concurrency=concurrency,
        transport=transport,
        document_field=DOCUMENT_FIELD,
        einvoice_field=EINVOICE_FIELD,
    )
