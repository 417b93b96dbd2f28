"""Payloads and requests shared by the starter tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

from c2c.signing import sign
from domain.names import SIGNATURE_HEADER
from tests.support import approval_payload

VIEWER_TOKEN = "viewer-token-123"
OPERATOR_TOKEN = "operator-token-456"


def approval(contract_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """A ``ContractApproved`` payload for a new contract, with ``changes`` applied."""
    return approval_payload(contract_id, **changes)


def event(kind: str, data: dict[str, Any]) -> bytes:
    """A webhook body."""
    return json.dumps({"id": f"evt_{uuid.uuid4().hex[:8]}", "type": kind, "data": data}).encode()


def signed(body: bytes, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a webhook signed with ``secret``."""
    return {
        SIGNATURE_HEADER: sign(body, secret, timestamp=timestamp),
        "Content-Type": "application/json",
    }
