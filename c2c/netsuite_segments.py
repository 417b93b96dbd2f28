"""The NetSuite accounting segments c2c writes, from ``C2C_NETSUITE_SEGMENTS``.

A NetSuite invoice needs a subsidiary and currency on its body, and an item, department,
class and location on every line. c2c knows legal entities, currencies, rate-card roles,
expense categories and kinds of charge; this mapping turns each into NetSuite internal ids. It
is checked when a contract is validated, so a gap is a ``finance`` exception then, never a
failed invoice at month end.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: Kinds of invoice line other than time and expenses, by billing model.
CHARGE_KINDS = {
    "time_and_materials": (),
    "fixed_fee": ("milestone",),
    "retainer": ("retainer", "overage", "release"),
}


class LineSegments(BaseModel):
    """The classification of one kind of invoice line: NetSuite internal ids."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    item: str = Field(min_length=1)
    department: str = Field(min_length=1)
    class_: str = Field(min_length=1, alias="class")
    location: str = Field(min_length=1)

    def wire(self) -> dict[str, dict[str, str]]:
        return {
            "item": {"id": self.item},
            "department": {"id": self.department},
            "class": {"id": self.class_},
            "location": {"id": self.location},
        }


class WriteOffAccounts(BaseModel):
    """The accounts of a write-off's journal entry (NetSuite internal ids): the account the
    written-off work is charged to (debit) and the account the firm carries unbilled work in
    (credit), with the line's department, class and location if the account needs them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    write_off_account: str = Field(min_length=1)
    unbilled_account: str = Field(min_length=1)
    department: str | None = None
    class_: str | None = Field(default=None, alias="class")
    location: str | None = None

    def segments(self) -> dict[str, dict[str, str]]:
        values = {"department": self.department, "class": self.class_, "location": self.location}
        return {name: {"id": value} for name, value in values.items() if value}


class EntitySegments(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subsidiary: str = Field(min_length=1)


class NetSuiteSegments(BaseModel):
    """Legal entity → subsidiary, ISO currency → currency id, and line classifications.

    ``expense_categories`` may have ``"*"`` for every category not named; ``charges`` maps
    ``milestone``, ``retainer``, ``overage`` and ``release`` lines.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: dict[str, EntitySegments] = {}
    currencies: dict[str, str] = {}
    roles: dict[str, LineSegments] = {}
    expense_categories: dict[str, LineSegments] = {}
    charges: dict[str, LineSegments] = {}
    #: The journal entry of a write-off above a cap; needed only when one is written off.
    write_off: WriteOffAccounts | None = None
    #: ``entityStatus`` ids of a project (job) that is in progress and one that is closed.
    job_status_active: str = "2"
    job_status_closed: str = "1"

    def expense(self, category: str) -> LineSegments | None:
        return self.expense_categories.get(category) or self.expense_categories.get("*")

    def missing(
        self,
        *,
        legal_entity: str,
        currency: str,
        billing_model: str,
        roles: list[str],
        expenses_billable: bool,
    ) -> list[tuple[str, str]]:
        """Every ``(field, problem)`` that would stop a contract's invoice; empty if none."""
        problems: list[tuple[str, str]] = []
        if legal_entity not in self.entities:
            problems.append(
                ("legal_entity", f"no NetSuite subsidiary mapped for legal entity {legal_entity}")
            )
        if currency not in self.currencies:
            problems.append(("currency", f"no NetSuite currency mapped for {currency}"))
        for index, role in enumerate(roles):
            if role not in self.roles:
                problems.append(
                    (f"rate_card[{index}].role", f"no NetSuite segments mapped for role {role!r}")
                )
        if expenses_billable and "*" not in self.expense_categories:
            problems.append(
                (
                    "expenses_billable",
                    'no NetSuite segments for expense categories (map "*" for the rest)',
                )
            )
        for kind in CHARGE_KINDS.get(billing_model, ()):
            if kind not in self.charges:
                problems.append(("billing_model", f"no NetSuite segments mapped for {kind} lines"))
        return problems
