"""Cross-references: which id each system gave to the records made for a contract."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from domain.names import System
from ledger.base import LedgerBase, count_returned
from ledger.errors import LedgerConflict
from ledger.models import CrossReference, utc_now

#: Kinds of record of which a contract has one per system; ``xrefs_for`` names them.
SINGLE_VALUED_KINDS = frozenset({"customer", "project", "contract", "psa_project"})

#: Kinds of record that several contracts share: every contract of a CRM account bills the
#: same ERP customer; every contract of an entity names the same ERP (``erp_system``, the ERP
#: that holds the contract's ``erp`` records). Every other kind (projects, invoices, payments)
#: belongs to one contract.
SHARED_KINDS = frozenset({"customer", "erp_system"})


def ref_name(system: str, kind: str) -> str:
    """The name of a reference in a contract's status, e.g. ``erp_customer_id``.

    A kind that already names its system (``psa_project`` in the PSA) is not prefixed twice.
    """
    return f"{kind}_id" if kind.startswith(f"{system}_") else f"{system}_{kind}_id"


class XrefLedger(LedgerBase):
    """The cross-reference part of the ledger."""

    def record_xref(self, contract_id: str, system: str, kind: str, external_id: str) -> None:
        """Remember that ``system`` gave ``external_id`` to the contract's record of ``kind``.

        Recording the same reference again does nothing.

        Raises:
            LedgerConflict: That id is already bound to another contract (for a kind that is
                not shared between contracts).
            ValueError: ``system`` is not one of c2c's systems.
        """
        system = System(system).value
        row = {
            "claim": _claim(contract_id, system, kind, external_id),
            "contract_id": contract_id,
            "system": system,
            "kind": kind,
            "external_id": external_id,
            "created_at": utc_now(),
        }
        stmt = self._insert_new(CrossReference, ["claim"], returning=["id"])
        with self._transaction() as session:
            if count_returned(session, stmt, row) or kind in SHARED_KINDS:
                return
            owner = session.exec(_owner(system, kind, external_id)).one()
        if owner != contract_id:
            raise LedgerConflict(
                f"{system} {kind} {external_id!r} belongs to contract {owner!r}, "
                f"not {contract_id!r}"
            )

    def find_contract_by_xref(self, system: str, kind: str, external_id: str) -> str | None:
        """The contract that ``system``'s record ``external_id`` of ``kind`` was made for.

        For a shared kind (a customer) this is the first contract it was recorded for.
        """
        with self._session() as session:
            return session.exec(_owner(system, kind, external_id)).first()

    def owners_starting_with(self, prefix: str, system: str, kind: str) -> list[str]:
        """The owners (contracts, or workflows that own records of their own, such as a
        customer's billing) whose id starts with ``prefix`` and that hold a record of
        ``kind`` in ``system``; sorted."""
        query = (
            select(CrossReference.contract_id)
            .where(
                col(CrossReference.contract_id).startswith(prefix, autoescape=True),
                CrossReference.system == System(system).value,
                CrossReference.kind == kind,
            )
            .distinct()
            .order_by(col(CrossReference.contract_id))
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def list_xrefs(self, contract_id: str) -> list[CrossReference]:
        """Every id recorded for the contract, oldest first."""
        query = (
            select(CrossReference)
            .where(CrossReference.contract_id == contract_id)
            .order_by(col(CrossReference.created_at), col(CrossReference.id))
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def xrefs_for(self, contract_id: str) -> dict[str, str]:
        """The contract's single-valued references, e.g. ``{"erp_customer_id": "C-1"}``.

        Invoices and payments, of which a contract has many, are left out; if a single-valued
        kind was recorded twice, the latest wins.
        """
        return {
            ref_name(ref.system, ref.kind): ref.external_id
            for ref in self.list_xrefs(contract_id)
            if ref.kind in SINGLE_VALUED_KINDS
        }


def _claim(contract_id: str, system: str, kind: str, external_id: str) -> str:
    claim = f"{system}:{kind}:{external_id}"
    return f"{claim}:{contract_id}" if kind in SHARED_KINDS else claim


def _owner(system: str, kind: str, external_id: str) -> SelectOfScalar[str]:
    return (
        select(CrossReference.contract_id)
        .where(
            CrossReference.system == str(system),
            CrossReference.kind == kind,
            CrossReference.external_id == external_id,
        )
        .order_by(col(CrossReference.id))
    )
