"""What c2c reads back from the systems of record: the fields orchestration needs, no more.

Unknown fields are ignored so a system can add to its answers without breaking c2c.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from domain.money import Money, Quantity


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CrmAccount(Record):
    crm_account_id: str
    name: str
    parent_crm_account_id: str | None = None
    country: str
    region: str | None = None
    status: str = "active"


class LegalEntity(Record):
    code: str
    name: str
    country: str
    functional_currency: str
    #: Currencies the entity may invoice in; empty when the ERP does not say.
    billing_currencies: list[str] = []


class ErpCustomer(Record):
    customer_id: str
    crm_account_id: str
    name: str


class ErpProject(Record):
    project_id: str
    contract_id: str
    status: str


class ErpContract(Record):
    erp_contract_id: str
    contract_id: str
    status: str = "active"


class ErpInvoice(Record):
    invoice_id: str
    contract_id: str
    number: str | None = None
    period: str | None = None
    milestone_id: str | None = None
    status: str
    currency: str
    subtotal: Money
    tax: Money
    total: Money
    amount_paid: Money = Decimal(0)
    balance: Money = Decimal(0)
    invoice_date: date
    due_on: date


class ErpPayment(Record):
    payment_id: str
    invoice_id: str
    amount: Money
    applied_amount: Money
    unapplied_amount: Money
    currency: str


class PsaProject(Record):
    project_id: str
    contract_id: str
    status: str


class BillingBatch(Record):
    batch_id: str
    project_id: str
    through_date: date
    time_entry_count: int
    expense_count: int = 0
    hours: Quantity = Decimal(0)
    status: str
    invoice_id: str | None = None


class TimeEntry(Record):
    entry_id: str
    role: str
    work_date: date
    hours: Quantity


class Expense(Record):
    expense_id: str
    category: str
    amount: Money
    currency: str


class TaxLine(Record):
    line_id: str
    taxable_amount: Money
    rate: Decimal
    tax_amount: Money


class TaxQuote(Record):
    jurisdiction_code: str
    rate: Decimal
    lines: list[TaxLine]
    total_tax: Money


class GatewayPayment(Record):
    payment_id: str
    invoice_id: str
    amount: Money
    currency: str
    status: str
