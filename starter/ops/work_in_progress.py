"""Work in progress: the work a contract's not-to-exceed cap holds back (billed when the cap
rises) and the work written off above it, per contract and per legal entity.

Both are the workflow's own state (``ContractStatus.held_back``, ``written_off`` and each of
its ``write_offs`` with the ERP's reference of it), asked of each contract's workflow with the
``status`` query; the ledger says which contracts belong to
the entity. A contract whose workflow cannot answer is listed as unavailable, not counted.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal

from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.service import RPCError

from domain.models import ContractStatus, WriteOffSummary
from ledger import Ledger
from starter.api.contracts import get_status

#: Queries in flight at once: enough to be quick, few enough not to crowd the workers.
CONCURRENT_QUERIES = 8


class ContractWork(BaseModel):
    """One contract's held-back and written-off work, in its currency."""

    contract_id: str
    stage: str
    currency: str
    held_back: Decimal
    written_off: Decimal
    #: Each write-off, with the ERP's reference once the ERP has it.
    write_offs: list[WriteOffSummary] = Field(default_factory=list)


class CurrencyWork(BaseModel):
    """The entity's totals in one contract currency."""

    currency: str
    held_back: Decimal = Decimal(0)
    written_off: Decimal = Decimal(0)


class WorkInProgress(BaseModel):
    """Held-back and written-off work of a legal entity's contracts (or all)."""

    legal_entity: str | None
    contracts: list[ContractWork] = Field(default_factory=list)
    totals: list[CurrencyWork] = Field(default_factory=list)
    #: Contracts whose workflow did not answer the ``status`` query.
    unavailable: list[str] = Field(default_factory=list)


async def work_in_progress(
    client: Client, ledger: Ledger, *, legal_entity: str | None = None
) -> WorkInProgress:
    """The work held back or written off on the entity's contracts (only those with some)."""
    records = await asyncio.to_thread(ledger.list_contracts, legal_entity=legal_entity)
    gate = asyncio.Semaphore(CONCURRENT_QUERIES)

    async def ask(contract_id: str) -> ContractStatus | str:
        async with gate:
            try:
                return await get_status(client, contract_id)
            except RPCError:
                return contract_id

    answers = await asyncio.gather(*(ask(r.contract_id) for r in records))
    report = WorkInProgress(legal_entity=legal_entity)
    totals: dict[str, CurrencyWork] = defaultdict(lambda: CurrencyWork(currency=""))
    for answer in answers:
        if isinstance(answer, str):
            report.unavailable.append(answer)
            continue
        if not answer.held_back and not answer.written_off:
            continue
        report.contracts.append(
            ContractWork(
                contract_id=answer.contract_id,
                stage=answer.stage,
                currency=answer.currency,
                held_back=answer.held_back,
                written_off=answer.written_off,
                write_offs=answer.write_offs,
            )
        )
        total = totals[answer.currency]
        total.currency = answer.currency
        total.held_back += answer.held_back
        total.written_off += answer.written_off
    report.totals = [totals[c] for c in sorted(totals)]
    return report
