"""Business Central companies, G/L accounts and dimensions c2c writes, from configuration.

``C2C_BC_COMPANIES`` names each legal entity's company (Entra tenant, environment, company id)
and the company's customer payment journal; ``C2C_BC_DIMENSIONS`` turns c2c's rate-card roles,
expense categories and kinds of charge into the G/L account and dimension values of a sales
invoice line, with each entity's tax liability account and default dimension values.
The mapping is checked when a contract is validated, so a gap is a ``finance`` exception
then, never a failed invoice at month end.

The sandbox's tenant, client and company ids are here too: the sandbox's Business Central
accepts them, and c2c defaults to them, so a demo needs no configuration.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from c2c.netsuite_segments import CHARGE_KINDS

#: The sandbox's Entra tenant, environment and app registration (sandbox values only).
SANDBOX_TENANT = "c2c-sandbox.onmicrosoft.com"
SANDBOX_ENVIRONMENT = "production"
SANDBOX_CLIENT_ID = "5e0c2c00-0000-4000-8000-00000000b0c2"
SANDBOX_CLIENT_SECRET = "sandbox-bc-client-secret"
#: The scope of Business Central's API for an app's own permissions.
BC_SCOPE = "https://api.businesscentral.dynamics.com/.default"
#: The sandbox tenant's companies: id → (name, country, local currency).
SANDBOX_COMPANIES: dict[str, tuple[str, str, str]] = {
    "7c2a0e51-0000-4000-8000-0000000000b1": ("c2c Consulting Ltd", "GB", "GBP"),
    "7c2a0e51-0000-4000-8000-0000000000b2": ("c2c Consulting Inc.", "US", "USD"),
}
#: The sandbox's G/L accounts (number → name) and dimensions (code → value codes).
SANDBOX_ACCOUNTS: dict[str, str] = {
    "40100": "Consulting revenue",
    "40200": "Reimbursed expenses",
    "40300": "Fixed-fee revenue",
    "22100": "Sales tax payable",
    "13100": "Unbilled work in progress",
    "69100": "Written-off work",
}
SANDBOX_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "DEPARTMENT": ("CONSULTING", "DELIVERY"),
    "BUSINESSGROUP": ("SERVICES",),
    "PRACTICE": ("DATA", "STRATEGY"),
}


class BcCompany(BaseModel):
    """Where a legal entity's books are: Business Central's tenant, environment and company."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(min_length=1)
    environment: str = Field(min_length=1)
    company_id: str = Field(min_length=1)
    #: The customer payment journal (its ``code``) c2c writes payment lines to.
    payment_journal: str = Field(default="C2C", min_length=1, max_length=10)
    #: The general journal (its ``code``) c2c writes write-off lines to, for finance to post.
    write_off_journal: str = Field(default="C2CWO", min_length=1, max_length=10)


class BcLine(BaseModel):
    """How one kind of invoice line posts: G/L account number and dimension values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str = Field(min_length=1, max_length=20)
    #: Dimension code → dimension value code (``{"DEPARTMENT": "CONSULTING"}``).
    dimensions: dict[str, str] = {}


class BcEntity(BaseModel):
    """A legal entity's posting setup in its company."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The G/L account c2c's tax engine's amounts post to (a separate invoice line).
    tax_account: str = Field(min_length=1, max_length=20)
    #: Dimension values every line of the entity carries (a line's own win).
    dimensions: dict[str, str] = {}
    #: A write-off's journal line: the account charged (debit) and the account the firm
    #: carries unbilled work in (its balancing account, credited). Needed only to write off.
    write_off_account: str | None = Field(default=None, min_length=1, max_length=20)
    unbilled_account: str | None = Field(default=None, min_length=1, max_length=20)


class BcDimensions(BaseModel):
    """Legal entity → posting setup, and each kind of line → G/L account and dimensions.

    ``expense_categories`` may have ``"*"`` for every category not named; ``charges`` maps
    ``milestone``, ``retainer``, ``overage`` and ``release`` lines.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: dict[str, BcEntity] = {}
    roles: dict[str, BcLine] = {}
    expense_categories: dict[str, BcLine] = {}
    charges: dict[str, BcLine] = {}

    def expense(self, category: str) -> BcLine | None:
        return self.expense_categories.get(category) or self.expense_categories.get("*")

    def kind_of(self, account: str) -> str:
        """The kind of c2c line an account was mapped from (``time`` when none names it)."""
        if any(line.account == account for line in self.roles.values()):
            return "time"
        if any(line.account == account for line in self.expense_categories.values()):
            return "expense"
        for kind, line in self.charges.items():
            if line.account == account:
                return kind
        return "time"

    def missing(
        self,
        *,
        legal_entity: str,
        companies: dict[str, BcCompany],
        billing_model: str,
        roles: list[str],
        expenses_billable: bool,
    ) -> list[tuple[str, str]]:
        """Every ``(field, problem)`` that would stop a contract's invoice; empty if none."""
        problems: list[tuple[str, str]] = []
        if legal_entity not in companies:
            problems.append(
                (
                    "legal_entity",
                    f"no Business Central company for legal entity {legal_entity} "
                    "(C2C_BC_COMPANIES)",
                )
            )
        if legal_entity not in self.entities:
            problems.append(
                (
                    "legal_entity",
                    f"no Business Central posting setup for legal entity {legal_entity}",
                )
            )
        for index, role in enumerate(roles):
            if role not in self.roles:
                problems.append(
                    (
                        f"rate_card[{index}].role",
                        f"no Business Central account and dimensions mapped for role {role!r}",
                    )
                )
        if expenses_billable and "*" not in self.expense_categories:
            problems.append(
                (
                    "expenses_billable",
                    'no Business Central account for expense categories (map "*" for the rest)',
                )
            )
        for kind in CHARGE_KINDS.get(billing_model, ()):
            if kind not in self.charges:
                problems.append(
                    ("billing_model", f"no Business Central account mapped for {kind} lines")
                )
        return problems


def sandbox_companies() -> dict[str, BcCompany]:
    """The sandbox tenant's companies for UK01 and US01."""
    uk, us = SANDBOX_COMPANIES
    return {
        "UK01": BcCompany(tenant=SANDBOX_TENANT, environment=SANDBOX_ENVIRONMENT, company_id=uk),
        "US01": BcCompany(tenant=SANDBOX_TENANT, environment=SANDBOX_ENVIRONMENT, company_id=us),
    }
