"""Validating an approved contract against the systems of record before anything is created."""

from __future__ import annotations

from functools import partial

from temporalio import activity

from activities.base import StepActivities, business_error, error_classes, workflow_run
from activities.erp_routing import check_erp_mapping
from activities.ledger_writes import register_contract
from domain.errors import NotFound, Rejection
from domain.steps import VALIDATE_CONTRACT, ContractStep, Validated


class ValidationActivities(StepActivities):
    @activity.defn(name=VALIDATE_CONTRACT)
    async def validate_contract(self, step: ContractStep) -> Validated:
        """Check customer (CRM account and hierarchy), legal entity, currency and tax address.

        The rate card, dates and amounts were checked when the approval was parsed; here each
        system confirms what it owns. A refusal is a business error for the queue that owns it.
        """
        contract = step.contract
        customer = contract.customer
        # Before any call, so that a contract held here is listed with what it is.
        await self.write_together(
            partial(register_contract, self.ledger, workflow_run()[0], contract),
            self.audit_write(step.contract_id, step.audit),
        )
        crm, erp = self.connectors.crm, self.connectors.erp
        async with error_classes(VALIDATE_CONTRACT):
            try:
                account = await crm.get_account(customer.crm_account_id)
            except NotFound:
                raise business_error(
                    Rejection(
                        system="crm",
                        code="account_not_found",
                        message=f"CRM account {customer.crm_account_id} does not exist",
                        field="customer.crm_account_id",
                    )
                ) from None
            if account.status != "active":
                raise business_error(
                    Rejection(
                        system="crm",
                        code="account_inactive",
                        message=f"CRM account {account.crm_account_id} is {account.status}",
                        field="customer.crm_account_id",
                    )
                )
            ancestors = await crm.get_ancestors(account.crm_account_id)
            if (customer.parent_crm_account_id or None) != (account.parent_crm_account_id or None):
                raise business_error(
                    Rejection(
                        system="crm",
                        code="hierarchy_mismatch",
                        message=(
                            f"the contract names parent {customer.parent_crm_account_id!r}, "
                            f"the CRM has {account.parent_crm_account_id!r}"
                        ),
                        field="customer.parent_crm_account_id",
                    )
                )
            entity = await self.reference.legal_entity(contract.legal_entity)
            if entity is None:
                raise business_error(
                    Rejection(
                        system="erp",
                        code="unknown_legal_entity",
                        message=f"legal entity {contract.legal_entity} is not set up in the ERP",
                        field="legal_entity",
                    )
                )
            if entity.billing_currencies and contract.currency not in entity.billing_currencies:
                raise business_error(
                    Rejection(
                        system="erp",
                        code="currency_not_allowed",
                        message=(
                            f"legal entity {entity.code} does not bill in {contract.currency}; "
                            f"it bills in {', '.join(entity.billing_currencies)}"
                        ),
                        field="currency",
                    )
                )
            await check_erp_mapping(erp, contract, self.settings)
            if self.settings.purchase_order_required_for(contract.legal_entity) and not (
                contract.po_number
            ):
                raise business_error(
                    Rejection(
                        system="c2c",
                        code="purchase_order_required",
                        message=(
                            f"legal entity {contract.legal_entity} invoices only against a "
                            "purchase order and the contract has none: amend its po_number "
                            "in, then retry"
                        ),
                        field="po_number",
                    )
                )
            jurisdiction = await self.reference.jurisdiction(customer.country, customer.region)
        return Validated(
            jurisdiction_code=jurisdiction,
            functional_currency=entity.functional_currency,
            dunning_offsets_days=list(self.settings.dunning_offsets_days),
            step_max_attempts=self.settings.step_max_attempts,
            step_timeout_s=self.settings.step_timeout_s,
            continue_as_new_events=self.settings.continue_as_new_events,
            ancestors=[a.crm_account_id for a in ancestors],
            time_zone=self.settings.time_zone_for(contract.legal_entity),
            legal_entity_country=entity.country,
            # The CRM owns the account; the approval's number stands in where it has none.
            customer_tax_id=account.tax_id or customer.tax_id,
            invoice_review=self.settings.invoice_review_for(contract.legal_entity),
            consolidated_invoicing=self.settings.consolidated_invoicing_for(contract.legal_entity),
            queued_systems=self.settings.queued_systems(),
        )
