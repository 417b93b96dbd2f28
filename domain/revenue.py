"""Revenue recognition (ASC 606 / IFRS 15) as professional services firms apply it.

- Time and materials: the right-to-invoice practical expedient, revenue as invoiced.
- Fixed fee: over time by an output method, the share of milestone value completed; each
  period posts the cumulative catch-up between the new target and what is already recognised.
- Retainer: a stand-ready obligation, recognised ratably over each month of the term.

The difference between what was billed and what was recognised is a contract asset (work
done, not yet billed) or a contract liability (billed in advance).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel

from domain.billing import RetainerTerms, prorate, round_fraction
from domain.money import ZERO, Money
from domain.names import BillingModel
from domain.periods import Period

RevenueMethod = Literal["as_invoiced", "milestone_output", "ratable"]

_METHODS: dict[BillingModel, RevenueMethod] = {
    BillingModel.TIME_AND_MATERIALS: "as_invoiced",
    BillingModel.FIXED_FEE: "milestone_output",
    BillingModel.RETAINER: "ratable",
}


def revenue_method(model: BillingModel) -> RevenueMethod:
    """How revenue of a contract billed under ``model`` is recognised."""
    return _METHODS[model]


def fixed_fee_recognised_to_date(
    price: Decimal, completed_value: Decimal, total_value: Decimal, currency: str
) -> Decimal:
    """Revenue recognised to date on a fixed fee by the output method.

    Args:
        price: the fee of the performance obligation.
        completed_value: the value of the milestones completed so far.
        total_value: the value of all milestones; 0 recognises nothing.
        currency: the contract currency, for the single half-up rounding.

    Returns:
        ``price * completed_value / total_value``, between 0 and ``price``.
    """
    if total_value == 0:
        return round_fraction(Fraction(0), currency)
    # The share is clamped so that a completed value above the total (milestones added by an
    # amendment before the price was raised) never recognises more than the price.
    share = min(Fraction(1), max(Fraction(0), Fraction(completed_value) / Fraction(total_value)))
    return min(price, round_fraction(Fraction(price) * share, currency))


def catch_up(target_to_date: Decimal, recognised_to_date: Decimal) -> Decimal:
    """The cumulative catch-up to post: negative when an estimate fell and revenue reverses."""
    return target_to_date - recognised_to_date


def retainer_revenue(terms: RetainerTerms, period: Period, currency: str) -> Decimal:
    """The revenue of ``period`` on a retainer: that month's (prorated) fee.

    It equals the amount of the period's fee line, so revenue recognised to date is the sum of
    the fees of the months elapsed, and billing monthly in arrears leaves no balance behind.
    """
    return prorate(terms.monthly_amount, period, terms.start_date, terms.end_date, currency)


class ContractBalances(BaseModel):
    """What was billed and what was recognised on a contract, to date."""

    billed: Money
    recognised: Money

    @property
    def contract_asset(self) -> Decimal:
        """Revenue recognised ahead of billing (unbilled receivable); 0 if none."""
        return max(ZERO, self.recognised - self.billed)

    @property
    def contract_liability(self) -> Decimal:
        """Billing ahead of revenue (deferred revenue); 0 if none."""
        return max(ZERO, self.billed - self.recognised)
