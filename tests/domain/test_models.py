"""The canonical models: what an approval, a payment or a close accepts, and the fields
they name when refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.models import ClosePeriod, ContractApproved, ContractStatus, PaymentReceived
from tests.support import approval_payload as approval


def fields(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {".".join(map(str, e["loc"])): e["msg"] for e in exc.value.errors()}


def test_a_valid_approval_parses_money_exactly() -> None:
    c = ContractApproved.model_validate(approval())
    assert str(c.rate_card[0].hourly_rate) == "200.00"
    assert c.model_dump(mode="json")["rate_card"][0]["hourly_rate"] == "200.00"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"end_date": "2026-09-01"}, "end_date", "must not be before start_date"),
        ({"currency": "XYZ"}, "currency", "unsupported currency"),
        (
            {"rate_card": [{"role": "A", "hourly_rate": 200.0}]},
            "rate_card.0.hourly_rate",
            "not a float",
        ),
        (
            {"rate_card": [{"role": "A", "hourly_rate": "0"}]},
            "rate_card.0.hourly_rate",
            "greater than zero",
        ),
        (
            {"currency": "JPY", "rate_card": [{"role": "A", "hourly_rate": "100.5"}]},
            "rate_card.0.hourly_rate",
            "more decimal places than JPY allows",
        ),
        (
            {"rate_card": [{"role": "A", "hourly_rate": "1"}, {"role": "A", "hourly_rate": "2"}]},
            "rate_card.1.role",
            "appears twice",
        ),
        ({"rate_card": []}, "rate_card", "at least one role"),
        ({"billing_model": "fixed_fee"}, "milestones", "at least one milestone"),
        ({"payment_terms_days": -1}, "payment_terms_days", "greater than or equal to 0"),
        ({"unexpected": 1}, "unexpected", "Extra inputs are not permitted"),
    ],
)
def test_invalid_approvals_name_the_field(
    overrides: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        ContractApproved.model_validate(approval(**overrides))
    errors = fields(exc)
    assert field in errors, errors
    assert message in errors[field]


def test_missing_nested_field_is_named() -> None:
    data = approval()
    del data["customer"]["country"]
    with pytest.raises(ValidationError) as exc:
        ContractApproved.model_validate(data)
    assert "customer.country" in fields(exc)


def test_payment_amount_scale_follows_its_currency() -> None:
    with pytest.raises(ValidationError) as exc:
        PaymentReceived.model_validate(
            {"payment_id": "p1", "amount": "10.5", "currency": "JPY", "received_on": "2026-10-01"}
        )
    assert "amount" in fields(exc)


def test_close_period_validates_the_period() -> None:
    with pytest.raises(ValidationError, match="YYYY-MM"):
        ClosePeriod(period="2026-13")


def test_a_status_answer_from_a_newer_worker_is_read_without_its_new_fields() -> None:
    answer = {
        "contract_id": "C-1",
        "stage": "active",
        "billing_model": "time_and_materials",
        "currency": "USD",
        "a_field_of_a_later_release": {"anything": 1},
    }
    status = ContractStatus.model_validate(answer)
    assert status.contract_id == "C-1"
    assert "a_field_of_a_later_release" not in status.model_dump()
