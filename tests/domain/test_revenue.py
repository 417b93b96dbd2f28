"""Revenue recognition: the method of each billing model and the amounts it recognises."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.billing import RetainerTerms, retainer_fee_line
from domain.names import BillingModel
from domain.periods import Period
from domain.revenue import (
    ContractBalances,
    catch_up,
    fixed_fee_recognised_to_date,
    retainer_revenue,
    revenue_method,
)


@pytest.mark.parametrize(
    ("model", "method"),
    [
        (BillingModel.TIME_AND_MATERIALS, "as_invoiced"),
        (BillingModel.FIXED_FEE, "milestone_output"),
        (BillingModel.RETAINER, "ratable"),
    ],
)
def test_each_billing_model_has_its_revenue_method(model: BillingModel, method: str) -> None:
    assert revenue_method(model) == method


def test_fixed_fee_recognises_the_share_of_milestone_value_completed() -> None:
    assert fixed_fee_recognised_to_date(
        Decimal("90000.00"), Decimal("30000.00"), Decimal("90000.00"), "USD"
    ) == Decimal("30000.00")
    # A price that differs from the milestone values (a discount): 100,000 x 1/3.
    recognised = fixed_fee_recognised_to_date(
        Decimal("100000.00"), Decimal("30000.00"), Decimal("90000.00"), "EUR"
    )
    assert str(recognised) == "33333.33"
    # 2/3 of 100,000 is 66,666.666...: half-up to the cent.
    assert fixed_fee_recognised_to_date(
        Decimal("100000.00"), Decimal("60000.00"), Decimal("90000.00"), "EUR"
    ) == Decimal("66666.67")


def test_fixed_fee_in_jpy_rounds_to_whole_yen() -> None:
    recognised = fixed_fee_recognised_to_date(Decimal("1000000"), Decimal("1"), Decimal("3"), "JPY")
    assert str(recognised) == "333333"


def test_fixed_fee_never_recognises_more_than_the_price_or_less_than_zero() -> None:
    price = Decimal("50000.00")
    assert fixed_fee_recognised_to_date(price, Decimal("120"), Decimal("100"), "USD") == price
    assert fixed_fee_recognised_to_date(price, Decimal("-5"), Decimal("100"), "USD") == 0
    nothing = fixed_fee_recognised_to_date(price, Decimal("10"), Decimal("0"), "USD")
    assert str(nothing) == "0.00"


def test_catch_up_posts_the_difference_and_may_reverse() -> None:
    assert catch_up(Decimal("33333.33"), Decimal("0")) == Decimal("33333.33")
    assert catch_up(Decimal("66666.67"), Decimal("33333.33")) == Decimal("33333.34")
    # The estimate of total value went up: part of what was recognised reverses.
    assert catch_up(Decimal("25000.00"), Decimal("33333.33")) == Decimal("-8333.33")


def test_retainer_revenue_is_the_months_fee() -> None:
    terms = RetainerTerms(
        monthly_amount=Decimal("10000.00"),
        start_date=date(2026, 11, 13),
        end_date=date(2027, 2, 12),
    )
    months = [Period(2026, 10), Period(2026, 11), Period(2026, 12), Period(2027, 1)]
    months += [Period(2027, 2), Period(2027, 3)]
    revenue = [retainer_revenue(terms, p, "USD") for p in months]
    assert revenue == [
        Decimal("0"),
        Decimal("6000.00"),
        Decimal("10000.00"),
        Decimal("10000.00"),
        Decimal("4285.71"),  # 12/28 days
        Decimal("0"),
    ]
    for period, amount in zip(months, revenue, strict=True):
        fee = retainer_fee_line(terms, period, "USD")
        assert (fee.amount if fee else Decimal(0)) == amount


def test_contract_balances() -> None:
    unbilled = ContractBalances(billed=Decimal("30000.00"), recognised=Decimal("33333.33"))
    assert (unbilled.contract_asset, unbilled.contract_liability) == (
        Decimal("3333.33"),
        Decimal(0),
    )
    deferred = ContractBalances(billed=Decimal("10000.00"), recognised=Decimal("6000.00"))
    assert (deferred.contract_asset, deferred.contract_liability) == (
        Decimal(0),
        Decimal("4000.00"),
    )
    even = ContractBalances(billed=Decimal("5.00"), recognised=Decimal("5.00"))
    assert (even.contract_asset, even.contract_liability) == (Decimal(0), Decimal(0))
    assert even.model_dump(mode="json") == {"billed": "5.00", "recognised": "5.00"}
