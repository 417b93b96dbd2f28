"""Each contract's ERP, pinned in the ledger, and the ERP's own checks at validation.

The pin is a cross-reference of the contract: system ``erp``, kind ``erp_system``, external id
the ERP's name (``reference``, ``netsuite``, ``business-central``). Every other ``erp``
cross-reference of the contract (customer, project, contract, invoices, payments) is a record
of that ERP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from c2c.settings import Settings
from connectors.routing import RoutedErp
from domain.errors import BusinessError, Rejection
from domain.models import ContractApproved

if TYPE_CHECKING:
    from ledger import Ledger

#: The cross-reference kind of a contract's ERP.
ERP_PIN_KIND = "erp_system"


class LedgerPins:
    """``PinStore`` on the ledger's cross-references."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def pinned_erp(self, contract_id: str) -> str | None:
        refs = [r for r in self.ledger.list_xrefs(contract_id) if r.system == "erp"]
        for ref in refs:
            if ref.kind == ERP_PIN_KIND:
                return ref.external_id
        # A contract with ERP records but no pin started before routing: the reference ERP.
        return "reference" if refs else None

    def legal_entity_of(self, contract_id: str) -> str | None:
        record = self.ledger.get_contract(contract_id)
        return record.legal_entity if record is not None else None

    def pin_erp(self, contract_id: str, erp: str) -> None:
        self.ledger.record_xref(contract_id, "erp", ERP_PIN_KIND, erp)


async def check_erp_mapping(erp: object, contract: ContractApproved, settings: Settings) -> None:
    """Refuse, as a business error naming the field, a contract its ERP could not invoice:
    on NetSuite, one whose entity, currency, roles or charges have no segments mapped; on
    Business Central, one whose entity has no company or posting setup, or whose roles or
    charges have no account mapped."""
    if not isinstance(erp, RoutedErp):
        return
    name = await erp.erp_name(contract.legal_entity)
    roles = [entry.role for entry in contract.rate_card]
    if name == "netsuite":
        problems = settings.netsuite_segments.missing(
            legal_entity=contract.legal_entity,
            currency=contract.currency,
            billing_model=contract.billing_model.value,
            roles=roles,
            expenses_billable=contract.expenses_billable,
        )
        code, where = "netsuite_mapping_missing", "C2C_NETSUITE_SEGMENTS"
    elif name == "business-central":
        problems = settings.bc_dimensions.missing(
            legal_entity=contract.legal_entity,
            companies=settings.bc_companies,
            billing_model=contract.billing_model.value,
            roles=roles,
            expenses_billable=contract.expenses_billable,
        )
        code, where = "bc_mapping_missing", "C2C_BC_DIMENSIONS"
    else:
        return
    if problems:
        field, _ = problems[0]
        raise BusinessError(
            Rejection(
                system="erp",
                code=code,
                message="; ".join(message for _, message in problems) + f" ({where})",
                field=field,
            )
        )
