"""Each contract's ERP, pinned in the ledger, and the ERP's own checks at validation.

The pin is a cross-reference of the contract: system ``erp``, kind ``erp_system``, external id
the ERP's name (``reference``, ``netsuite``). Every other ``erp`` cross-reference of the
contract (customer, project, contract, invoices, payments) is a record of that ERP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from c2c.netsuite_segments import NetSuiteSegments
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


async def check_erp_mapping(
    erp: object, contract: ContractApproved, segments: NetSuiteSegments
) -> None:
    """Refuse, as a business error naming the field, a contract its ERP could not invoice:
    on NetSuite, one whose entity, currency, roles or charges have no segments mapped."""
    if not isinstance(erp, RoutedErp) or await erp.erp_name(contract.legal_entity) != "netsuite":
        return
    problems = segments.missing(
        legal_entity=contract.legal_entity,
        currency=contract.currency,
        billing_model=contract.billing_model.value,
        roles=[entry.role for entry in contract.rate_card],
        expenses_billable=contract.expenses_billable,
    )
    if problems:
        field, _ = problems[0]
        raise BusinessError(
            Rejection(
                system="erp",
                code="netsuite_mapping_missing",
                message="; ".join(message for _, message in problems) + " (C2C_NETSUITE_SEGMENTS)",
                field=field,
            )
        )
