"""The customer master kept in sync: an account's change in the CRM, and its names.

A change to a CRM account (its name, billing address, billing contact, parent or tax number)
reaches the ERP customer of every running contract of the account. The change arrives by
webhook (c2c's ``account.updated``, or Salesforce's Change Data Capture translated to it), is
recorded in the ledger, and is applied by one ``AccountSync`` workflow per account, in the
order the changes arrived, once per event id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: The workflow type that applies an account's changes, one workflow per account.
ACCOUNT_SYNC_WORKFLOW = "AccountSync"
#: The prefix of its workflow id: ``account-<crm_account_id>``.
ACCOUNT_WORKFLOW_PREFIX = "account-"
#: The signal that hands the workflow one change.
SIGNAL_ACCOUNT_CHANGED = "account_changed"
#: The update that takes an operator's decision on a change the ERP refused.
UPDATE_RESOLVE_ACCOUNT_EXCEPTION = "resolve_exception"
#: The webhook event type of c2c's CRM dialect.
ACCOUNT_UPDATED = "account.updated"

#: Steps (activity names) of the account sync.
SYNC_ERP_CUSTOMERS = "sync_erp_customers"
OPEN_ACCOUNT_EXCEPTION = "open_account_exception"
RESOLVE_ACCOUNT_EXCEPTION = "resolve_account_exception"

#: The account fields a change may carry, as c2c names them.
SYNCED_FIELDS = (
    "name",
    "billing_address",
    "country",
    "region",
    "billing_email",
    "parent_crm_account_id",
    "tax_id",
)


def account_workflow_id(crm_account_id: str) -> str:
    """The workflow id of an account's sync: one per account."""
    return f"{ACCOUNT_WORKFLOW_PREFIX}{crm_account_id}"


class BillingAddress(BaseModel):
    """The street part of a billing address; country and region are fields of their own."""

    model_config = ConfigDict(extra="forbid")

    street: str | None = Field(default=None, max_length=255)
    city: str | None = Field(default=None, max_length=40)
    postal_code: str | None = Field(default=None, max_length=20)


class AccountFields(BaseModel):
    """New values of an account's fields; a field left out is unchanged, ``null`` clears it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    billing_address: BillingAddress | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    region: str | None = Field(default=None, min_length=1, max_length=10)
    billing_email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    parent_crm_account_id: str | None = Field(default=None, min_length=1, max_length=64)
    tax_id: str | None = Field(default=None, max_length=40)


class AccountUpdated(BaseModel):
    """The data of an ``account.updated`` event."""

    model_config = ConfigDict(extra="forbid")

    crm_account_id: str = Field(min_length=1, max_length=64)
    changes: AccountFields
    changed_at: datetime | None = None

    @field_validator("changes")
    @classmethod
    def _some_change(cls, value: AccountFields) -> AccountFields:
        if not value.model_fields_set:
            raise ValueError(f"name at least one of {', '.join(SYNCED_FIELDS)}")
        return value


class AccountChange(BaseModel):
    """One change as the ``AccountSync`` workflow receives it.

    ``changes`` holds only the fields that changed (``null`` clears one); ``event_id`` is the
    id its sender gave the event (for Salesforce, the change event's replay id), by which the
    change is applied once.
    """

    event_id: str
    source: str
    crm_account_id: str
    changes: dict[str, Any]
    changed_at: datetime | None = None


class AccountSyncInput(BaseModel):
    """The workflow's input: the account, and what it carries over a continue-as-new."""

    crm_account_id: str
    #: The latest event ids applied, so that a change delivered again is not applied twice.
    seen: list[str] = Field(default_factory=list)
    pending: list[AccountChange] = Field(default_factory=list)


class CustomerSynced(BaseModel):
    """One ERP customer updated for one change."""

    erp_customer_id: str
    contract_ids: list[str]


class SyncResult(BaseModel):
    """What ``sync_erp_customers`` did: the customers updated (none when the account has no
    running contract), or the ERP's refusal."""

    updated: list[CustomerSynced] = Field(default_factory=list)
    refused: str | None = None
    refused_code: str | None = None
    #: The running contracts of the account, for an exception's record.
    contract_ids: list[str] = Field(default_factory=list)


class AccountExceptionInput(BaseModel):
    """An ERP refusal to put in the ``finance`` queue, on each running contract."""

    crm_account_id: str
    event_id: str
    code: str
    message: str
    contract_ids: list[str]
    opened_at: datetime


class AccountExceptionDecision(BaseModel):
    """An operator's decision recorded on the refusal's exceptions."""

    exception_ids: list[str]
    action: str
    operator: str
    note: str
    at: datetime


def account_exception_id(crm_account_id: str, event_id: str, contract_id: str) -> str:
    """The exception id of a refused change, per contract: stable across retries."""
    return f"acct:{crm_account_id}:{event_id}:{contract_id}"[:120]
