"""The account sync's steps: a CRM account's change applied to the ERP customers of its
running contracts, recorded in the audit trail, and a refusal put in the exception queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from temporalio import activity

from activities.base import StepActivities, error_classes, workflow_run
from connectors.ports import CustomerMasterPort
from domain.account_sync import (
    OPEN_ACCOUNT_EXCEPTION,
    RESOLVE_ACCOUNT_EXCEPTION,
    SYNC_ERP_CUSTOMERS,
    AccountChange,
    AccountExceptionDecision,
    AccountExceptionInput,
    CustomerSynced,
    SyncResult,
    account_exception_id,
)
from domain.errors import BusinessError
from domain.names import Stage
from domain.write_models import CustomerChanges
from ledger.models import AuditEventIn, ExceptionIn, ExceptionStatus
from ledger.xrefs import ref_name

#: Stages of a contract whose ERP customer no longer follows its account.
FINISHED = frozenset({Stage.CLOSED.value, Stage.CANCELLED.value})
#: The ERP's customer fields that take an account's fields as they are.
DIRECT_FIELDS = ("name", "country", "region", "tax_id", "billing_email", "billing_address")
REFUSED = "customer_update_refused"


class AccountSyncActivities(StepActivities):
    @activity.defn(name=SYNC_ERP_CUSTOMERS)
    async def sync_erp_customers(self, change: AccountChange) -> SyncResult:
        """Apply one account change to the ERP customer of each running contract of the
        account, once per customer and event (the ERP write's idempotency key), and record it
        in each contract's audit trail. The ERP's refusal is returned, not raised: the
        workflow turns it into an exception."""
        contracts = await asyncio.to_thread(self._running_contracts, change.crm_account_id)
        if not contracts:
            return SyncResult()
        erp = self.connectors.erp
        if not isinstance(erp, CustomerMasterPort):
            return SyncResult(
                refused=f"the ERP connector {type(erp).__name__} cannot update customers",
                refused_code="customer_update_unsupported",
                contract_ids=sorted(contracts),
            )
        by_customer: dict[str, list[str]] = {}
        for contract_id, (customer_id, _) in sorted(contracts.items()):
            if customer_id is not None:
                by_customer.setdefault(customer_id, []).append(contract_id)
        workflow_id = workflow_run()[0]
        updated: list[CustomerSynced] = []
        async with error_classes(SYNC_ERP_CUSTOMERS):
            try:
                changes = await self._erp_changes(erp, change.changes)
                for customer_id, contract_ids in sorted(by_customer.items()):
                    await erp.update_customer(
                        customer_id,
                        changes,
                        idempotency_key=f"{workflow_id}:{change.event_id}:{customer_id}",
                    )
                    updated.append(
                        CustomerSynced(erp_customer_id=customer_id, contract_ids=contract_ids)
                    )
            except BusinessError as exc:
                return SyncResult(
                    refused=f"the ERP refused the change of CRM account {change.crm_account_id}"
                    f" ({exc.rejection.code}: {exc.rejection.message})",
                    refused_code=REFUSED,
                    contract_ids=sorted(contracts),
                )
        await asyncio.to_thread(self._audit, change, contracts, updated)
        return SyncResult(updated=updated, contract_ids=sorted(contracts))

    async def _erp_changes(
        self, erp: CustomerMasterPort, changes: dict[str, Any]
    ) -> CustomerChanges:
        out = {field: changes[field] for field in DIRECT_FIELDS if field in changes}
        if "parent_crm_account_id" in changes:
            parent = changes["parent_crm_account_id"]
            if parent is None:
                out["parent_customer_id"] = None
            else:
                # A parent that no contract bills has no ERP customer: the link waits until
                # one does (the ERP's hierarchy holds only its own customers).
                customer = await erp.find_customer(parent)
                if customer is not None:
                    out["parent_customer_id"] = customer.customer_id
        return CustomerChanges.model_validate(out)

    def _running_contracts(self, crm_account_id: str) -> dict[str, tuple[str | None, str]]:
        """Each running contract of the account: its ERP customer (if made yet) and stage."""
        erp_customer = ref_name("erp", "customer")
        return {
            record.contract_id: (
                self.ledger.xrefs_for(record.contract_id).get(erp_customer),
                record.stage,
            )
            for record in self.ledger.list_contracts(customer_id=crm_account_id)
            if record.stage not in FINISHED
        }

    def _audit(
        self,
        change: AccountChange,
        contracts: dict[str, tuple[str | None, str]],
        updated: list[CustomerSynced],
    ) -> None:
        workflow_id, run_id = workflow_run()
        customer_of = {c: s.erp_customer_id for s in updated for c in s.contract_ids}
        now = datetime.now(UTC)
        self.ledger.record_audit(
            [
                AuditEventIn(
                    event_key=f"account-sync:{change.source}:{change.event_id}:{contract_id}",
                    contract_id=contract_id,
                    workflow_id=workflow_id,
                    run_id=run_id,
                    stage=Stage(stage),
                    event="customer master updated from the CRM"
                    if contract_id in customer_of
                    else "customer master change before the ERP customer was made",
                    detail={
                        "crm_account_id": change.crm_account_id,
                        "event_id": change.event_id,
                        "source": change.source,
                        "fields": sorted(change.changes),
                        "erp_customer_id": customer_of.get(contract_id),
                    },
                    at=now,
                )
                for contract_id, (_, stage) in sorted(contracts.items())
            ]
        )

    @activity.defn(name=OPEN_ACCOUNT_EXCEPTION)
    async def open_account_exception(self, step: AccountExceptionInput) -> list[str]:
        """Open the refusal's exception on each running contract; returns their ids."""
        queue = self.settings.queue_for("erp", step.code)
        workflow_id = workflow_run()[0]

        def run() -> list[str]:
            ids = []
            for contract_id in step.contract_ids:
                record = self.ledger.get_contract(contract_id)
                opened = self.ledger.open_exception(
                    ExceptionIn(
                        exception_id=account_exception_id(
                            step.crm_account_id, step.event_id, contract_id
                        ),
                        contract_id=contract_id,
                        workflow_id=workflow_id,
                        stage=Stage(record.stage) if record else Stage.ACTIVE,
                        system="erp",
                        code=step.code,
                        message=step.message,
                        queue=queue,
                        step=SYNC_ERP_CUSTOMERS,
                        retryable=True,
                        opened_at=step.opened_at,
                    )
                )
                ids.append(opened.exception_id)
            return ids

        return await asyncio.to_thread(run)

    @activity.defn(name=RESOLVE_ACCOUNT_EXCEPTION)
    async def resolve_account_exception(self, step: AccountExceptionDecision) -> None:
        """Record the operator's decision on each of the refusal's exceptions."""

        def run() -> None:
            for exception_id in step.exception_ids:
                self.ledger.resolve_exception(
                    exception_id,
                    ExceptionStatus.after(step.action),
                    step.operator,
                    step.note,
                    step.at,
                )

        await asyncio.to_thread(run)
