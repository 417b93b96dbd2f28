"""ERP stand-in (``/erp/v1``), master data: legal entities, customers, projects, exchange rates.

The ERP's tables all live here; on the same root, contracts and their amendments are served by
``sandbox.erp_contracts``, invoices and payments by ``sandbox.erp_billing``, credit notes and
cash applications by ``sandbox.erp_credit``, revenue and balances by ``sandbox.erp_revenue``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field as PydanticField
from pydantic import StringConstraints
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, Session, col, select

from sandbox.db import (
    Db,
    DecimalText,
    Row,
    UtcDateTime,
    find,
    get_or_404,
    get_referenced,
    next_id,
    utcnow,
)
from sandbox.errors import duplicate, invalid, not_found
from sandbox.paging import PageQuery, equal_to, paginate
from sandbox.schemas import Body, Country, Currency, Email, Key, Text, day, dec, timestamp

router = APIRouter(tags=["erp"])

#: Besides its functional currency, every legal entity bills in these.
BILLING_CURRENCIES = frozenset({"USD", "EUR", "GBP", "JPY"})
RATE_PLACES = Decimal("0.00000001")


class ErpLegalEntity(Row, table=True):
    __tablename__ = "erp_legal_entity"

    code: str = Field(unique=True)
    name: str
    country: str
    functional_currency: str


class ErpCustomer(Row, table=True):
    __tablename__ = "erp_customer"

    customer_id: str = Field(unique=True)
    crm_account_id: str = Field(unique=True)
    name: str
    country: str
    region: str | None = None
    tax_id: str | None = None
    billing_email: str | None = None
    legal_entity: str
    currency: str
    parent_customer_id: str | None = None
    #: Street, city and postal code: ``{"street", "city", "postal_code"}``.
    billing_address: dict[str, str] | None = Field(default=None, sa_type=JSON)
    status: str = "active"
    created_at: datetime = Field(sa_type=UtcDateTime)


class ErpProject(Row, table=True):
    __tablename__ = "erp_project"

    project_id: str = Field(unique=True)
    contract_id: str = Field(unique=True)
    customer_id: str
    legal_entity: str
    name: str
    currency: str
    start_date: date
    end_date: date
    project_template: str
    status: str = "open"
    created_at: datetime = Field(sa_type=UtcDateTime)


class ErpContract(Row, table=True):
    __tablename__ = "erp_contract"

    erp_contract_id: str = Field(unique=True)
    contract_id: str = Field(unique=True)
    project_id: str
    customer_id: str
    legal_entity: str
    currency: str
    billing_model: str
    start_date: date
    end_date: date
    payment_terms_days: int
    not_to_exceed: Decimal | None = Field(default=None, sa_type=DecimalText)
    contract_value: Decimal = Field(sa_type=DecimalText)
    rate_card: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    milestones: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    retainer_monthly_amount: Decimal | None = Field(default=None, sa_type=DecimalText)
    retainer_included_hours: Decimal | None = Field(default=None, sa_type=DecimalText)
    billing_schedule: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    revenue_schedule: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    #: ``{amendment_id, effective_date, reason, applied_at, request_hash}`` in applied order.
    amendments: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    status: str = "active"
    created_at: datetime = Field(sa_type=UtcDateTime)
    #: The signed contract document the orchestrator archived: its link and SHA-256.
    document_url: str | None = None
    document_sha256: str | None = None


class ErpInvoice(Row, table=True):
    """An invoice; ``balance`` is always ``total - amount_paid - credit_applied``."""

    __tablename__ = "erp_invoice"

    invoice_id: str = Field(unique=True)
    number: str | None = Field(default=None, unique=True)
    status: str = Field(default="draft", index=True)
    contract_id: str = Field(index=True)
    erp_contract_id: str
    customer_id: str
    project_id: str
    legal_entity: str
    currency: str
    period: str | None = Field(default=None, index=True)
    milestone_id: str | None = None
    #: The business key, unique per contract among invoices that are not void.
    reference: str | None = Field(default=None, index=True)
    invoice_date: date
    due_on: date
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    subtotal: Decimal = Field(sa_type=DecimalText)
    tax: Decimal = Field(sa_type=DecimalText)
    total: Decimal = Field(sa_type=DecimalText)
    amount_paid: Decimal = Field(sa_type=DecimalText)
    #: Total of the credit notes against this invoice.
    credited_amount: Decimal = Field(sa_type=DecimalText)
    #: Credit (from its own credit notes or applied customer credit) that settled it.
    credit_applied: Decimal = Field(sa_type=DecimalText)
    balance: Decimal = Field(sa_type=DecimalText)
    functional_currency: str | None = None
    exchange_rate: Decimal | None = Field(default=None, sa_type=DecimalText)
    functional_subtotal: Decimal | None = Field(default=None, sa_type=DecimalText)
    functional_tax: Decimal | None = Field(default=None, sa_type=DecimalText)
    functional_total: Decimal | None = Field(default=None, sa_type=DecimalText)
    #: Mentions the invoice must carry (a reverse charge's legal text).
    notes: list[str] | None = Field(default=None, sa_type=JSON)
    po_number: str | None = None
    bill_to: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    issued_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)
    #: The invoice's document (its PDF in c2c's archive) and that PDF's SHA-256; the
    #: e-invoice's, for a legal entity that sends one.
    document_url: str | None = None
    document_sha256: str | None = None
    einvoice_url: str | None = None
    einvoice_sha256: str | None = None
    #: A consolidated invoice's sections: ``{section_id, contract_id, erp_contract_id,
    #: subtotal, tax, total}`` each; ``None`` for a contract's own invoice.
    sections: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)


class ErpPayment(Row, table=True):
    """Cash received; what is not applied to an invoice is the customer's unapplied cash."""

    __tablename__ = "erp_payment"

    payment_id: str = Field(unique=True)
    invoice_id: str | None = Field(default=None, index=True)
    contract_id: str = Field(index=True)
    amount: Decimal = Field(sa_type=DecimalText)
    applied_amount: Decimal = Field(sa_type=DecimalText)
    unapplied_amount: Decimal = Field(sa_type=DecimalText)
    currency: str
    received_on: date
    reference: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)


class ErpCreditNote(Row, table=True):
    """A credit against an issued invoice: what the invoice's balance cannot absorb is
    customer credit (``unapplied_amount``) until applied to another invoice."""

    __tablename__ = "erp_credit_note"

    credit_note_id: str = Field(unique=True)
    number: str = Field(unique=True)
    invoice_id: str = Field(index=True)
    contract_id: str = Field(index=True)
    currency: str
    reason: str
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    subtotal: Decimal = Field(sa_type=DecimalText)
    tax: Decimal = Field(sa_type=DecimalText)
    total: Decimal = Field(sa_type=DecimalText)
    applied_amount: Decimal = Field(sa_type=DecimalText)
    unapplied_amount: Decimal = Field(sa_type=DecimalText)
    request_hash: str
    created_at: datetime = Field(sa_type=UtcDateTime)
    #: The credit note's documents in c2c's archive, as an invoice's.
    document_url: str | None = None
    document_sha256: str | None = None
    einvoice_url: str | None = None
    einvoice_sha256: str | None = None


class ErpCashApplication(Row, table=True):
    """Unapplied cash of a payment, or customer credit of a credit note, applied to an invoice."""

    __tablename__ = "erp_cash_application"

    application_id: str = Field(unique=True)
    #: ``payment`` or ``credit_note``.
    source: str
    source_id: str = Field(index=True)
    invoice_id: str = Field(index=True)
    contract_id: str
    amount: Decimal = Field(sa_type=DecimalText)
    currency: str
    created_at: datetime = Field(sa_type=UtcDateTime)


class ErpRevenueEntry(Row, table=True):
    """Revenue recognised on a contract in a period; a negative amount is a catch-up."""

    __tablename__ = "erp_revenue_entry"

    entry_id: str = Field(unique=True)
    erp_contract_id: str = Field(index=True)
    contract_id: str
    period: str
    amount: Decimal = Field(sa_type=DecimalText)
    currency: str
    method: str
    description: str
    recognised_on: date
    request_hash: str
    created_at: datetime = Field(sa_type=UtcDateTime)


class ErpWriteOff(Row, table=True):
    """Work of a contract above its not-to-exceed cap that the firm wrote off (never billed)."""

    __tablename__ = "erp_write_off"

    write_off_id: str = Field(unique=True)
    contract_id: str = Field(index=True)
    erp_contract_id: str
    period: str
    amount: Decimal = Field(sa_type=DecimalText)
    currency: str
    reason: str
    operator: str
    written_off_on: date
    request_hash: str
    created_at: datetime = Field(sa_type=UtcDateTime)


class ErpExchangeRate(Row, table=True):
    """Units of ``currency`` per US dollar from ``rate_date``; cross rates go through USD.

    As in a real ERP's rate table, a rate holds until the next one: the rate of a day without
    one (a weekend, a holiday) is the latest before it.
    """

    __tablename__ = "erp_exchange_rate"
    __table_args__ = (UniqueConstraint("currency", "rate_date"),)

    currency: str
    rate_date: date
    per_usd: Decimal = Field(sa_type=DecimalText)


EntityCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,10}$")]


class LegalEntityIn(Body):
    code: EntityCode
    name: Text
    country: Country
    functional_currency: Currency


class CustomerIn(Body):
    crm_account_id: Key
    name: Text
    country: Country
    region: str | None = PydanticField(default=None, min_length=1, max_length=10)
    tax_id: str | None = PydanticField(default=None, max_length=40)
    billing_email: Email | None = None
    legal_entity: EntityCode
    currency: Currency
    parent_customer_id: str | None = None


class BillingAddressIn(Body):
    street: str | None = PydanticField(default=None, min_length=1, max_length=200)
    city: str | None = PydanticField(default=None, min_length=1, max_length=40)
    postal_code: str | None = PydanticField(default=None, min_length=1, max_length=20)


class CustomerChangeIn(Body):
    """A change to a customer's master data; a field left out is unchanged, ``null`` clears
    an optional one."""

    name: Text | None = None
    country: Country | None = None
    region: str | None = PydanticField(default=None, min_length=1, max_length=10)
    tax_id: str | None = PydanticField(default=None, max_length=40)
    billing_email: Email | None = None
    billing_address: BillingAddressIn | None = None
    parent_customer_id: str | None = None


class ProjectIn(Body):
    contract_id: Key
    customer_id: str
    legal_entity: EntityCode
    name: Text
    currency: Currency
    start_date: date
    end_date: date
    project_template: Text


def legal_entity_out(entity: ErpLegalEntity) -> dict[str, Any]:
    return {
        "code": entity.code,
        "name": entity.name,
        "country": entity.country,
        "functional_currency": entity.functional_currency,
        "billing_currencies": sorted(BILLING_CURRENCIES | {entity.functional_currency}),
    }


def customer_out(customer: ErpCustomer) -> dict[str, Any]:
    return {
        "customer_id": customer.customer_id,
        "crm_account_id": customer.crm_account_id,
        "name": customer.name,
        "country": customer.country,
        "region": customer.region,
        "tax_id": customer.tax_id,
        "billing_email": customer.billing_email,
        "legal_entity": customer.legal_entity,
        "currency": customer.currency,
        "parent_customer_id": customer.parent_customer_id,
        "billing_address": customer.billing_address,
        "status": customer.status,
        "created_at": timestamp(customer.created_at),
    }


def project_out(project: ErpProject) -> dict[str, Any]:
    return {
        "project_id": project.project_id,
        "contract_id": project.contract_id,
        "customer_id": project.customer_id,
        "legal_entity": project.legal_entity,
        "name": project.name,
        "currency": project.currency,
        "start_date": day(project.start_date),
        "end_date": day(project.end_date),
        "project_template": project.project_template,
        "status": project.status,
        "created_at": timestamp(project.created_at),
    }


def check_entity_currency(session: Session, legal_entity: str, currency: str) -> None:
    """``422`` unless ``legal_entity`` exists and bills in ``currency``."""
    entity = find(session, ErpLegalEntity, ErpLegalEntity.code, legal_entity)
    if entity is None:
        raise invalid(
            "unknown_legal_entity", f"legal entity {legal_entity!r} does not exist", "legal_entity"
        )
    if currency not in BILLING_CURRENCIES | {entity.functional_currency}:
        raise invalid(
            "currency_not_allowed",
            f"legal entity {legal_entity} does not bill in {currency}",
            "currency",
        )


@router.post("/legal-entities", status_code=201)
def create_legal_entity(body: LegalEntityIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        if find(session, ErpLegalEntity, ErpLegalEntity.code, body.code):
            raise duplicate(f"legal entity {body.code!r} exists", body.code)
        entity = ErpLegalEntity(**body.model_dump())
        session.add(entity)
        return legal_entity_out(entity)


@router.get("/legal-entities")
def list_legal_entities(db: Db, page: PageQuery) -> dict[str, Any]:
    with db.read() as session:
        return paginate(session, ErpLegalEntity, page, legal_entity_out)


@router.get("/legal-entities/{code}")
def get_legal_entity(code: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        entity = get_or_404(session, ErpLegalEntity, ErpLegalEntity.code, code, "legal entity")
        return legal_entity_out(entity)


@router.post("/customers", status_code=201)
def create_customer(body: CustomerIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        existing = find(session, ErpCustomer, ErpCustomer.crm_account_id, body.crm_account_id)
        if existing is not None:
            raise duplicate(
                f"CRM account {body.crm_account_id!r} already has customer {existing.customer_id}",
                existing.customer_id,
            )
        check_entity_currency(session, body.legal_entity, body.currency)
        if body.parent_customer_id is not None:
            get_referenced(
                session,
                ErpCustomer,
                ErpCustomer.customer_id,
                body.parent_customer_id,
                field="parent_customer_id",
                kind="customer",
            )
        customer = ErpCustomer(
            **body.model_dump(), customer_id=next_id(session, "CUST"), created_at=utcnow()
        )
        session.add(customer)
        return customer_out(customer)


@router.get("/customers")
def list_customers(db: Db, page: PageQuery, crm_account_id: str | None = None) -> dict[str, Any]:
    where = equal_to((ErpCustomer.crm_account_id, crm_account_id))
    with db.read() as session:
        return paginate(session, ErpCustomer, page, customer_out, *where)


@router.get("/customers/{customer_id}")
def get_customer(customer_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        customer = get_or_404(
            session, ErpCustomer, ErpCustomer.customer_id, customer_id, "customer"
        )
        return customer_out(customer)


@router.patch("/customers/{customer_id}")
def update_customer(customer_id: str, body: CustomerChangeIn, db: Db) -> dict[str, Any]:
    """Change a customer's master data (name, address, billing contact, parent, tax number)."""
    changes = body.model_dump(exclude_unset=True)
    for required in ("name", "country"):
        if required in changes and changes[required] is None:
            raise invalid("required", f"{required} cannot be cleared", required)
    with db.write() as session:
        customer = get_or_404(
            session, ErpCustomer, ErpCustomer.customer_id, customer_id, "customer"
        )
        parent_id = changes.get("parent_customer_id")
        if parent_id is not None:
            if parent_id == customer_id:
                raise invalid(
                    "invalid_parent", "a customer cannot be its own parent", "parent_customer_id"
                )
            get_referenced(
                session,
                ErpCustomer,
                ErpCustomer.customer_id,
                parent_id,
                field="parent_customer_id",
                kind="customer",
            )
        for field, value in changes.items():
            setattr(customer, field, value)
        session.add(customer)
        return customer_out(customer)


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, db: Db) -> dict[str, Any]:
    with db.write() as session:
        existing = find(session, ErpProject, ErpProject.contract_id, body.contract_id)
        if existing is not None:
            raise duplicate(
                f"contract {body.contract_id!r} already has project {existing.project_id}",
                existing.project_id,
            )
        get_referenced(
            session,
            ErpCustomer,
            ErpCustomer.customer_id,
            body.customer_id,
            field="customer_id",
            kind="customer",
        )
        check_entity_currency(session, body.legal_entity, body.currency)
        if body.end_date < body.start_date:
            raise invalid("invalid_dates", "end_date must not be before start_date", "end_date")
        project = ErpProject(
            **body.model_dump(), project_id=next_id(session, "PRJ"), created_at=utcnow()
        )
        session.add(project)
        return project_out(project)


@router.get("/projects")
def list_projects(db: Db, page: PageQuery, contract_id: str | None = None) -> dict[str, Any]:
    where = equal_to((ErpProject.contract_id, contract_id))
    with db.read() as session:
        return paginate(session, ErpProject, page, project_out, *where)


@router.get("/projects/{project_id}")
def get_project(project_id: str, db: Db) -> dict[str, Any]:
    with db.read() as session:
        return project_out(_project(session, project_id))


@router.post("/projects/{project_id}/close")
def close_project(project_id: str, db: Db) -> dict[str, Any]:
    with db.write() as session:
        project = _project(session, project_id)
        if project.status != "closed":
            project.status = "closed"
            session.add(project)
        return project_out(project)


@router.get("/exchange-rates")
def get_exchange_rate(
    db: Db,
    from_currency: Annotated[str, Query(alias="from")],
    to_currency: Annotated[str, Query(alias="to")],
    on: Annotated[date, Query(alias="date")],
) -> dict[str, Any]:
    """The rate in force on ``date``: the latest on or before it. ``rate_date`` is the day of
    the oldest rate used, so a caller can see how stale the answer is."""
    per_usd: dict[str, Decimal] = {"USD": Decimal(1)}
    rate_date = on
    with db.read() as session:
        for currency in {from_currency, to_currency} - {"USD"}:
            found = _rate_on(session, currency, on)
            if found is None:
                pair = f"{from_currency}/{to_currency} on {on.isoformat()}"
                raise not_found("exchange rate", pair)
            per_usd[currency] = found.per_usd
            rate_date = min(rate_date, found.rate_date)
    rate = (per_usd[to_currency] / per_usd[from_currency]).quantize(RATE_PLACES)
    return {
        "from": from_currency,
        "to": to_currency,
        "date": day(on),
        "rate_date": day(rate_date),
        "rate": dec(rate),
    }


def _rate_on(session: Session, currency: str, on: date) -> ErpExchangeRate | None:
    return session.exec(
        select(ErpExchangeRate)
        .where(col(ErpExchangeRate.currency) == currency, col(ErpExchangeRate.rate_date) <= on)
        .order_by(col(ErpExchangeRate.rate_date).desc())
        .limit(1)
    ).first()


def _project(session: Session, project_id: str) -> ErpProject:
    return get_or_404(session, ErpProject, ErpProject.project_id, project_id, "project")
