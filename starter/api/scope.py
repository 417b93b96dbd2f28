"""What an identity limited to some legal entities may see, and who made a decision.

A contract's legal entity comes from the ledger's contracts read model, or, for a contract the
ledger has no entity for yet, from its workflow's ``LegalEntity`` search attribute. A scoped
identity is answered about another entity's contract, exception or event exactly as about one
that does not exist (``404``), so it learns nothing of what it may not see. The API records
who asked for every operator decision in the contract's audit trail (``record_request``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol, Self, TypeVar

from fastapi import Request
from temporalio.service import RPCError

from c2c.logs import get_logger
from domain.consolidation import is_customer_billing
from domain.names import SA_LEGAL_ENTITY, Stage, contract_workflow_id
from ledger import Ledger
from ledger.models import AuditEventIn
from starter.api.auth import ANONYMOUS, Identity
from starter.api.context import ApiContext
from starter.api.contracts import contract_handle, customer_billing_status

log = get_logger("c2c.api")


class _Requested(Protocol):
    requested_by: str | None

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self: ...


Signed = TypeVar("Signed", bound=_Requested)


def identity_of(request: Request) -> Identity:
    """The identity the request's authentication left on it (anonymous on an open API)."""
    identity: Identity = getattr(request.state, "identity", ANONYMOUS)
    return identity


async def entity_of(context: ApiContext, contract_id: str) -> str | None:
    """The contract's legal entity: the ledger's, else its workflow's search attribute;
    ``None`` when neither knows the contract. For a customer's billing workflow (the owner
    of a consolidated invoice), the legal entity of its billing key."""
    if is_customer_billing(contract_id):
        try:
            status = await customer_billing_status(await context.temporal(), contract_id)
        except RPCError:
            return None
        return status.key.legal_entity
    ledger = await context.ledger()
    row = await asyncio.to_thread(ledger.get_contract, contract_id)
    if row is not None and row.legal_entity:
        return row.legal_entity
    try:
        client = await context.temporal()
        described = await contract_handle(client, contract_id).describe()
    except RPCError:
        return None
    entity = described.typed_search_attributes.get(SA_LEGAL_ENTITY)
    return str(entity) if entity else None


async def may_see(context: ApiContext, identity: Identity, contract_id: str | None) -> bool:
    """Whether ``identity`` may see the contract (any identity of every entity may)."""
    if not identity.scoped:
        return True
    if not contract_id:
        return False
    return identity.sees(await entity_of(context, contract_id))


async def contracts_of(ledger: Ledger, identity: Identity) -> set[str] | None:
    """The ids of the contracts of the identity's entities in the ledger; ``None`` for an
    identity of every entity."""
    if identity.entities is None:
        return None
    rows = await asyncio.gather(
        *(
            asyncio.to_thread(ledger.list_contracts, legal_entity=e)
            for e in sorted(identity.entities)
        )
    )
    return {r.contract_id for found in rows for r in found}


def decided_by(identity: Identity, given: str | None, *, channel: str) -> str:
    """The name recorded on a decision: the identity's; on an open API (no tokens, no single
    sign-on) the name the client gave, else ``<channel>:anonymous``."""
    if identity.role is not None:
        return identity.name
    return given or f"{channel}:anonymous"


def signed(message: Signed, identity: Identity) -> Signed:
    """The message with ``requested_by`` set to who asks (see ``decided_by``)."""
    by = decided_by(identity, message.requested_by, channel="api")
    return message.model_copy(update={"requested_by": by})


async def record_request(
    context: ApiContext,
    identity: Identity,
    contract_ids: str | Iterable[str],
    what: str,
    *,
    key: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write ``<what> requested by <name>`` into the audit trail of the contract (or of each
    contract, in one transaction: a period close).

    ``key`` identifies the request, so the same request sent again is recorded once. A ledger
    that cannot be written does not refuse a decision already sent to its contract: it is
    logged, and the workflow's history still names the identity.
    """
    ids = [contract_ids] if isinstance(contract_ids, str) else list(contract_ids)
    if not ids:
        return
    name = identity.name if identity.role is not None else "anonymous"
    try:
        ledger = await context.ledger()
        rows = await asyncio.to_thread(lambda: [ledger.get_contract(c) for c in ids])
        now = datetime.now(UTC)
        digest = hashlib.sha256(f"{key}\0{name}".encode()).hexdigest()[:16]
        events = [
            AuditEventIn(
                event_key=f"request:{contract_id}:{digest}",
                contract_id=contract_id,
                workflow_id=contract_workflow_id(contract_id),
                stage=_stage_of(row.stage if row is not None else None),
                event=f"{what} requested by {name}",
                detail={
                    "requested_by": name,
                    "role": str(identity.role or "open"),
                    **(detail or {}),
                },
                at=now,
            )
            for contract_id, row in zip(ids, rows, strict=True)
        ]
        await asyncio.to_thread(ledger.record_audit, events)
    except Exception as exc:
        log.error("audit of a request not recorded", contracts=len(ids), error=str(exc))


def _stage_of(stage: str | None) -> Stage:
    """The stage a request is recorded at: the contract's, as the ledger has it."""
    try:
        return Stage(stage) if stage else Stage.RECEIVED
    except ValueError:
        return Stage.RECEIVED
