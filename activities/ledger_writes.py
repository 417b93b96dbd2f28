"""Synchronous ledger writes that activities run in a thread."""

from __future__ import annotations

from domain.models import ContractApproved
from domain.names import Stage
from domain.steps import AuditEntry
from ledger import AuditEventIn, ContractRecordIn, Ledger


def write_audit(
    ledger: Ledger,
    contract_id: str,
    workflow_id: str,
    run_id: str,
    entries: list[AuditEntry],
    open_exceptions: list[str] | None = None,
) -> None:
    """Record audit entries and bring the contract's read model to the latest stage, in one
    transaction (the caller's ``unit_of_work``, if one is open).

    With ``open_exceptions`` (the exceptions the workflow has open), any other exception still
    open in the ledger for the contract is superseded: a reset's new run decided without it.
    """
    last = entries[-1]
    with ledger.unit_of_work():
        ledger.record_audit(
            [
                AuditEventIn(
                    event_key=entry.key,
                    contract_id=contract_id,
                    workflow_id=workflow_id,
                    run_id=run_id,
                    stage=entry.stage,
                    event=entry.event,
                    detail=entry.detail or None,
                    at=entry.at,
                )
                for entry in entries
            ]
        )
        ledger.upsert_contract(
            ContractRecordIn(
                contract_id=contract_id,
                workflow_id=workflow_id,
                stage=last.stage,
                updated_at=last.at,
                active_at=next((e.at for e in entries if e.stage is Stage.ACTIVE), None),
                closed_at=next((e.at for e in entries if e.stage is Stage.CLOSED), None),
            )
        )
        if open_exceptions is not None:
            ledger.supersede_exceptions(contract_id, open_exceptions, last.at)


def register_contract(ledger: Ledger, workflow_id: str, contract: ContractApproved) -> None:
    """The contract's first row in the read model: who, where, what and when approved."""
    ledger.upsert_contract(
        ContractRecordIn(
            contract_id=contract.contract_id,
            workflow_id=workflow_id,
            stage=Stage.VALIDATING,
            updated_at=contract.approved_at,
            customer_id=contract.customer.crm_account_id,
            legal_entity=contract.legal_entity,
            billing_model=contract.billing_model,
            currency=contract.currency,
            contract_value=contract.contract_value,
            approved_at=contract.approved_at,
        )
    )
