"""A run carried over by an earlier version of c2c is taken up unchanged: the ``CarriedState``
of every committed history that starts from one becomes the contract's ``ContractState`` and,
carried again, the same payload (folded, for runs carried before settled invoices were)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from domain.contract_state import ContractState
from domain.models import PaymentReceived
from domain.names import ExceptionAction
from domain.periods import Period
from tests.workflows.deciders.support import Systems, contract
from tests.workflows.test_replay_histories import HISTORY_FILES, run_of
from workflows import billing, collections
from workflows.state import carried_billing, carried_collections

pytestmark = pytest.mark.unit

CARRIED = [p for p in HISTORY_FILES if run_of(p.read_text()).carried is not None]


def test_some_committed_histories_start_from_carried_state() -> None:
    assert CARRIED


@pytest.mark.parametrize("path", CARRIED, ids=[p.stem for p in CARRIED])
def test_a_carried_run_becomes_the_same_state_and_carries_the_same_payload(path: Path) -> None:
    run = run_of(path.read_text())
    carried = run.carried
    assert carried is not None
    s = ContractState.approved(run.approved())
    s.billing = carried.billing.model_copy(deep=True)
    s.collections = carried.collections.model_copy(deep=True)

    assert carried_billing(s).model_dump(mode="json") == carried.billing.model_dump(mode="json")
    kept = {i.invoice_id for i in carried.collections.invoices}
    again = carried_collections(s, kept)
    # Runs carried before settled invoices were folded are folded at their next hand-over.
    expected = carried.collections.folded(kept)
    assert again.model_dump(mode="json") == expected.model_dump(mode="json")


def test_the_decided_state_is_one_serializable_model() -> None:
    s = contract(end_date="2026-12-31", not_to_exceed="1500.00")
    systems = Systems(hours={"2026-10": Decimal("20")}, actions=[ExceptionAction.SKIP])
    systems.run(billing.bill_period(s, systems, Period.parse("2026-10")))
    systems.run(collections.receive(s, systems, _payment()))
    s.blocking.add("EXC-1")

    again = ContractState.model_validate_json(s.model_dump_json())
    assert again == s
    assert again.billing.closed_periods == ["2026-10"]
    assert again.billing.written_off == Decimal("500")


def _payment() -> PaymentReceived:
    return PaymentReceived(
        payment_id="P1", amount=Decimal("100.00"), currency="USD", received_on=date(2026, 11, 20)
    )
