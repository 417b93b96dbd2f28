"""Reconciliation: c2c's ledger compared with the ERP, contract by contract, and each
difference put in the ``integration`` queue once.

The ledger side is what c2c recorded (``ledger.facts``: issued invoices, credit notes, payments,
revenue postings); the ERP side is read through the ``ErpPort`` list methods. A record on one
side only, a voided invoice or an amount that differs is a difference; a balance (billed to
date) is compared only where no record differs, so one cause is reported once. Revenue
entries the ERP holds and c2c has no fact of are not reported: c2c has recorded revenue
postings only since its ledger revision 0004.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from temporalio import activity

from activities.base import StepActivities, error_classes, workflow_run
from activities.erp_routing import LedgerPins
from activities.reconcile_consolidated import ConsolidatedComparison, compare_consolidated
from connectors.ports import ErpPort
from connectors.records import ErpCreditNote, ErpInvoice, ErpPayment
from connectors.routing import RoutedErp
from domain.consolidation import CustomerBillingKey, customer_billing_workflow_id, is_section
from domain.names import ExceptionQueue, Stage
from domain.reconcile import (
    COMPARE_WITH_ERP,
    CONTRACTS_TO_RECONCILE,
    OPEN_RECONCILE_EXCEPTIONS,
    RECONCILE_STEP,
    ContractsToCompare,
    Difference,
    ReconcileBatch,
    ReconcileRequest,
)
from ledger import (
    BillingFact,
    ContractRecord,
    CreditNoteFact,
    ExceptionIn,
    PaymentFact,
    RevenueFact,
)

ZERO = Decimal(0)
#: ERP invoice statuses that are not (or no longer) an issued invoice.
NOT_ISSUED = frozenset({"draft", "void"})


class _Facts:
    """The ledger's facts of a batch of contracts, by contract."""

    def __init__(
        self,
        invoices: Sequence[BillingFact],
        notes: Sequence[CreditNoteFact],
        payments: Sequence[PaymentFact],
        revenue: Sequence[RevenueFact],
    ) -> None:
        issued = [i for i in invoices if i.invoice_id and i.issued_at is not None]
        # A contract's sections of consolidated invoices, and its parts of their payments,
        # are not the ERP's records of that contract: the ERP holds the customer's invoice
        # and payment (docs/operations.md, Consolidated invoicing), compared apart.
        self.sections = [i for i in issued if is_section(i.invoice_id)]
        self.invoices = [i for i in issued if not is_section(i.invoice_id)]
        self.notes = notes
        self.parts = [p for p in payments if is_section(p.invoice_id)]
        self.payments = [p for p in payments if not is_section(p.invoice_id)]
        self.revenue = revenue

    def of(self, contract_id: str) -> _Facts:
        return _Facts(
            [i for i in self.invoices + self.sections if i.contract_id == contract_id],
            [n for n in self.notes if n.contract_id == contract_id],
            [p for p in self.payments + self.parts if p.contract_id == contract_id],
            [r for r in self.revenue if r.contract_id == contract_id],
        )


def _compare_amounts(
    contract_id: str,
    kind: str,
    ours: dict[str, Decimal],
    theirs: dict[str, Decimal],
    *,
    unknown: bool = True,
) -> list[Difference]:
    """Records by id and amount: missing in the ERP, unknown to c2c, or of another amount."""
    found: list[Difference] = []
    for record_id, amount in sorted(ours.items()):
        if record_id not in theirs:
            found.append(
                Difference(
                    contract_id=contract_id,
                    kind=kind,
                    record_id=record_id,
                    code=f"{kind}_missing_in_erp",
                    message=f"{kind} {record_id} of contract {contract_id} is in c2c's ledger "
                    f"({amount}) and not in the ERP",
                )
            )
        elif theirs[record_id] != amount:
            found.append(
                Difference(
                    contract_id=contract_id,
                    kind=kind,
                    record_id=record_id,
                    code=f"{kind}_amount_differs",
                    message=f"{kind} {record_id} of contract {contract_id} is {theirs[record_id]} "
                    f"in the ERP and {amount} in c2c's ledger",
                )
            )
    if unknown:
        found.extend(
            Difference(
                contract_id=contract_id,
                kind=kind,
                record_id=record_id,
                code=f"{kind}_unknown_to_c2c",
                message=f"the ERP has {kind} {record_id} ({amount}) for contract {contract_id}; "
                "c2c did not make it",
            )
            for record_id, amount in sorted(theirs.items())
            if record_id not in ours
        )
    return found


class ReconcileActivities(StepActivities):
    @activity.defn(name=CONTRACTS_TO_RECONCILE)
    async def contracts_to_reconcile(self, request: ReconcileRequest) -> ContractsToCompare:
        """The ledger's contracts of the entity (all, without one), those with activity in
        c2c since ``request.since`` if given."""
        contracts: list[ContractRecord] = await asyncio.to_thread(
            self.ledger.list_contracts, legal_entity=request.legal_entity
        )
        since = request.since
        return ContractsToCompare(
            contract_ids=[
                c.contract_id for c in contracts if since is None or c.updated_at.date() >= since
            ]
        )

    @activity.defn(name=COMPARE_WITH_ERP)
    async def compare_ledger_with_erp(self, batch: ReconcileBatch) -> list[Difference]:
        """Every difference between the ledger and the ERP for the batch's contracts."""
        ids = batch.contract_ids
        facts = _Facts(
            *await asyncio.gather(
                asyncio.to_thread(self.ledger.rows_of_contracts, BillingFact, ids),
                asyncio.to_thread(self.ledger.rows_of_contracts, CreditNoteFact, ids),
                asyncio.to_thread(self.ledger.rows_of_contracts, PaymentFact, ids),
                asyncio.to_thread(self.ledger.rows_of_contracts, RevenueFact, ids),
            )
        )
        found: list[Difference] = []
        async with error_classes(COMPARE_WITH_ERP):
            consolidated = await self._compare_consolidated(ids, facts)
            found += consolidated.differences
            for contract_id in ids:
                found += await self._compare(contract_id, facts.of(contract_id), consolidated)
                activity.heartbeat(contract_id)
        return found

    async def _compare_consolidated(
        self, ids: Sequence[str], facts: _Facts
    ) -> ConsolidatedComparison:
        """The consolidated invoices that hold the batch's sections, read from the ERP with
        their payments, against the ledger's sections and payment parts of every contract on
        them (a customer's contracts may be in other batches)."""
        if not facts.sections:
            return ConsolidatedComparison()
        owners: dict[str, str] = {}
        for contract_id in sorted({s.contract_id for s in facts.sections}):
            for owner in await asyncio.to_thread(self._customer_billings_of, contract_id):
                owners.setdefault(owner, contract_id)
        invoices: list[ErpInvoice] = []
        payments: list[tuple[ErpInvoice, ErpPayment]] = []
        notes: list[tuple[ErpInvoice, list[ErpCreditNote]]] = []
        for owner, contract_id in sorted(owners.items()):
            erp = await self._erp_of(contract_id)
            theirs = [i for i in await erp.list_invoices(owner) if i.status != "draft"]
            credited = await erp.list_credit_notes(owner)
            for invoice in theirs:
                paid = await erp.list_payments(invoice_id=invoice.invoice_id)
                payments += [(invoice, p) for p in paid]
                notes.append((invoice, [n for n in credited if n.invoice_id == invoice.invoice_id]))
            invoices += theirs
            activity.heartbeat(owner)
        on_them = {s.contract_id for i in invoices for s in i.sections or []}
        contracts = sorted(set(ids) | on_them)
        sections, parts = await asyncio.gather(
            asyncio.to_thread(self.ledger.rows_of_contracts, BillingFact, contracts),
            asyncio.to_thread(self.ledger.rows_of_contracts, PaymentFact, contracts),
        )
        found = compare_consolidated(
            set(ids),
            invoices,
            payments,
            [s for s in sections if s.issued_at is not None],
            [p for p in parts if is_section(p.invoice_id)],
        )
        for invoice, on_it in notes:
            found.take_notes(invoice, on_it)
        return found

    def _customer_billings_of(self, contract_id: str) -> list[str]:
        """The customer billing workflows that made consolidated invoices for the contract's
        customer, legal entity and currency (one per purchase order in ``customer_po``
        mode): those the ledger holds an ERP invoice of."""
        contract = self.ledger.get_contract(contract_id)
        if contract is None or not (
            contract.legal_entity and contract.customer_id and contract.currency
        ):
            return []
        base = customer_billing_workflow_id(
            CustomerBillingKey(
                legal_entity=contract.legal_entity,
                crm_account_id=contract.customer_id,
                currency=contract.currency,
            )
        )
        owners = self.ledger.owners_starting_with(base, "erp", "invoice")
        return [o for o in owners if o == base or o.startswith(f"{base}-po-")]

    async def _erp_of(self, contract_id: str) -> ErpPort:
        """The ERP that holds the contract's records: the one it is pinned to when ERPs are
        routed by legal entity (this workflow is no contract's, so routing cannot tell)."""
        erp = self.connectors.erp
        if not isinstance(erp, RoutedErp):
            return erp
        name = await asyncio.to_thread(LedgerPins(self.ledger).pinned_erp, contract_id)
        if name is None:
            contract = await asyncio.to_thread(self.ledger.get_contract, contract_id)
            name = erp.route(contract.legal_entity if contract else None)
        backend = erp.backends.get(name)
        if backend is None:
            raise RuntimeError(f"ERP {name!r} of contract {contract_id} is not configured")
        return backend

    async def _compare(
        self, contract_id: str, facts: _Facts, consolidated: ConsolidatedComparison
    ) -> list[Difference]:
        sections_billed = consolidated.sections_billed.get(contract_id)
        erp = await self._erp_of(contract_id)
        refs = await asyncio.to_thread(self.ledger.xrefs_for, contract_id)
        invoices = await erp.list_invoices(contract_id)
        notes = await erp.list_credit_notes(contract_id)
        payments = await erp.list_payments(contract_id=contract_id)
        found: list[Difference] = []
        erp_invoices = {i.invoice_id: i for i in invoices}
        for invoice in facts.invoices:
            assert invoice.invoice_id is not None
            theirs = erp_invoices.get(invoice.invoice_id)
            if theirs is not None and theirs.status == "void":
                found.append(
                    Difference(
                        contract_id=contract_id,
                        kind="invoice",
                        record_id=invoice.invoice_id,
                        code="invoice_voided_in_erp",
                        message=f"invoice {invoice.invoice_id} of contract {contract_id} is void "
                        "in the ERP; c2c issued it and holds it open",
                    )
                )
        voided = {i for i, inv in erp_invoices.items() if inv.status == "void"}
        found += _compare_amounts(
            contract_id,
            "invoice",
            {
                i.invoice_id: i.total
                for i in facts.invoices
                if i.invoice_id and i.total is not None and i.invoice_id not in voided
            },
            {i.invoice_id: i.total for i in invoices if i.status not in NOT_ISSUED},
        )
        # A credit note on a section is on the customer's consolidated invoice in the ERP.
        found += _compare_amounts(
            contract_id,
            "credit_note",
            {n.credit_note_id: n.total for n in facts.notes},
            {n.credit_note_id: n.total for n in notes}
            | consolidated.section_notes.get(contract_id, {}),
        )
        found += _compare_amounts(
            contract_id,
            "payment",
            {p.payment_id: p.amount for p in facts.payments},
            {p.payment_id: p.amount for p in payments},
        )
        erp_contract_id = refs.get("erp_contract_id")
        if erp_contract_id is None:
            return found
        revenue = await erp.list_revenue(erp_contract_id)
        found += _compare_amounts(
            contract_id,
            "revenue",
            {r.entry_id: r.amount for r in facts.revenue},
            {r.entry_id: r.amount for r in revenue},
            unknown=False,
        )
        billed_invoices = facts.invoices + facts.sections
        subtotals = [i.subtotal for i in billed_invoices] + [n.subtotal for n in facts.notes]
        # What a contract billed on its customer's consolidated invoices is not on its ERP
        # contract's balance: the ERP's figures of its sections are added, where every section
        # is accounted for (``sections_billed``); otherwise the section's difference says it.
        if facts.sections and sections_billed is None:
            return found
        if found or any(s is None for s in subtotals):
            return found
        billed = sum((i.subtotal or ZERO for i in billed_invoices), ZERO) - sum(
            (n.subtotal or ZERO for n in facts.notes), ZERO
        )
        balances = await erp.get_balances(erp_contract_id)
        erp_billed = (
            balances.billed_to_date
            + (sections_billed or ZERO)
            - consolidated.sections_credited.get(contract_id, ZERO)
        )
        if erp_billed != billed:
            included = " (its sections of consolidated invoices included)" * bool(facts.sections)
            found.append(
                Difference(
                    contract_id=contract_id,
                    kind="balance",
                    record_id="billed_to_date",
                    code="billed_to_date_differs",
                    message=f"contract {contract_id} has {erp_billed} billed to date in the "
                    f"ERP and {billed} in c2c's ledger{included}",
                )
            )
        return found

    @activity.defn(name=OPEN_RECONCILE_EXCEPTIONS)
    async def open_reconcile_exceptions(self, differences: list[Difference]) -> int:
        """Open one ``integration`` exception per difference; one already opened (by an
        earlier run, or an earlier attempt of this one) is kept as it is, unless an operator
        retried it: then the difference is back and it opens again.

        Returns:
            How many were opened now.
        """
        workflow_id = workflow_run()[0]
        opened_at = datetime.now(UTC)
        opened = 0
        for difference in differences:
            exception_id = difference.exception_id
            if await asyncio.to_thread(self.ledger.get_exception, exception_id) is not None:
                # Retried by an operator and still there: open again. Skipped or aborted:
                # accepted as it is, never raised again.
                opened += await asyncio.to_thread(self.ledger.reopen_retried, exception_id)
                continue
            contract = await asyncio.to_thread(self.ledger.get_contract, difference.contract_id)
            await asyncio.to_thread(
                self.ledger.open_exception,
                ExceptionIn(
                    exception_id=exception_id,
                    contract_id=difference.contract_id,
                    workflow_id=workflow_id,
                    stage=Stage(contract.stage) if contract else Stage.ACTIVE,
                    system="erp",
                    code=difference.code,
                    message=difference.message,
                    queue=ExceptionQueue.INTEGRATION,
                    step=RECONCILE_STEP,
                    retryable=False,
                    opened_at=opened_at,
                ),
            )
            opened += 1
        return opened
