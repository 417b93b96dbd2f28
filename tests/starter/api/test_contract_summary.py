"""How the Temporal UI summarises a contract beside its history."""

from __future__ import annotations

from starter.api.contracts import start_details, start_summary
from tests.workflows.helpers import approval


def test_time_and_materials_without_a_cap_has_no_value_not_zero() -> None:
    event = approval(not_to_exceed=None)
    assert start_summary(event).endswith("time and materials in USD, no cap")
    assert "**Value:** time and materials in USD, no cap" in start_details(event)
    assert "0 USD" not in start_summary(event)


def test_a_capped_or_fixed_contract_shows_its_value() -> None:
    assert start_summary(approval(not_to_exceed="50000.00")).endswith("50000.00 USD")
    fixed = approval(
        billing_model="fixed_fee",
        milestones=[{"milestone_id": "M1", "name": "Design", "amount": "3000.00"}],
        not_to_exceed=None,
    )
    assert start_summary(fixed).endswith("3000.00 USD")
