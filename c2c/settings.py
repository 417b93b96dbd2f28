"""Configuration from the environment (and an optional ``.env``), read once per process."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from c2c import bc_mapping, netsuite_auth
from c2c.loops import EventLoop
from c2c.netsuite_segments import NetSuiteSegments
from c2c.vendor_limits import VENDORS, CallLimit, resolve_limits
from domain.billing_runs import OTHER_ENTITIES, BillingDay
from domain.names import DEFAULT_TASK_QUEUE, ExceptionQueue
from domain.steps import STEP_SYSTEM_QUEUE

SYSTEMS = ("crm", "erp", "psa", "tax", "payments")
#: The CLMs whose approvals c2c takes (``C2C_CLM_SOURCES``).
CLM_SOURCES = ("c2c", "docusign", "ironclad")
#: The ERPs a legal entity may route to (``C2C_ERP_ROUTES``).
ERPS = ("reference", "netsuite", "business-central")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")
#: The queue of the contract workflows (and c2c's own ledger steps), as ``--queues`` names it.
WORKFLOWS_QUEUE = "workflows"
#: Systems with a task queue of their own: those some step runs under.
QUEUED_SYSTEMS = tuple(sorted({system.value for system in STEP_SYSTEM_QUEUE.values()}))

_V = TypeVar("_V")


def per_entity(settings: Mapping[str, _V], legal_entity: str, default: _V) -> _V:
    """A per-legal-entity setting's value for ``legal_entity``: its own entry, else the
    ``"*"`` entry for every other entity, else ``default``."""
    if legal_entity in settings:
        return settings[legal_entity]
    return settings.get(OTHER_ENTITIES, default)


class LegalEntityDetails(BaseModel):
    """What a legal entity's invoice documents print beyond what the ERP knows of it: its
    address, tax id, contact and how it is paid (``C2C_LEGAL_ENTITY_DETAILS``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address_lines: list[str] = Field(default_factory=list, max_length=4)
    postcode: str | None = None
    city: str | None = None
    tax_id: str | None = None
    email: str | None = None
    payment_instructions: str | None = None
    iban: str | None = None
    bic: str | None = None


class Settings(BaseSettings):
    """Every setting c2c reads. Names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    temporal_address: str = Field(default="localhost:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE")
    task_queue: str = Field(default=DEFAULT_TASK_QUEUE, alias="C2C_TASK_QUEUE")

    state_dir: Path = Field(default=Path(".c2c"), alias="C2C_STATE_DIR")
    database_url: str | None = Field(default=None, alias="C2C_DATABASE_URL")
    sandbox_database_url: str | None = Field(default=None, alias="C2C_SANDBOX_DATABASE_URL")
    ledger_auto_upgrade: bool = Field(
        default=False,
        alias="C2C_LEDGER_AUTO_UPGRADE",
        description="upgrade the ledger's schema when a process starts on an older one, as "
        "`c2c ledger upgrade` does (false: refuse to start and say to run it)",
    )

    sandbox_url: str = Field(default="http://127.0.0.1:8100", alias="C2C_SANDBOX_URL")
    crm_url: str | None = Field(default=None, alias="C2C_CRM_URL")
    erp_url: str | None = Field(default=None, alias="C2C_ERP_URL")
    psa_url: str | None = Field(default=None, alias="C2C_PSA_URL")
    tax_url: str | None = Field(default=None, alias="C2C_TAX_URL")
    payments_url: str | None = Field(default=None, alias="C2C_PAYMENTS_URL")
    crm: Literal["c2c", "salesforce"] = Field(
        default="c2c",
        alias="C2C_CRM",
        description="the CRM that validates accounts and records collection activities",
    )
    salesforce_url: str | None = Field(
        default=None,
        alias="C2C_SALESFORCE_URL",
        description="Salesforce's login URL (the OAuth token endpoint's base), e.g. "
        "https://mycompany.my.salesforce.com; default: the sandbox's /vendors/salesforce",
    )
    salesforce_client_id: str = Field(default="c2c", alias="C2C_SALESFORCE_CLIENT_ID")
    salesforce_client_secret: SecretStr = Field(
        default=SecretStr("sandbox"), alias="C2C_SALESFORCE_CLIENT_SECRET"
    )
    salesforce_api_version: str = Field(
        default="62.0", pattern=r"^\d+\.\d$", alias="C2C_SALESFORCE_API_VERSION"
    )
    salesforce_api_reserve: int = Field(
        default=1000,
        ge=0,
        alias="C2C_SALESFORCE_API_RESERVE",
        description="daily API requests left to other integrations: with fewer remaining, "
        "c2c's Salesforce calls wait (a transient error) until the budget grows again",
    )
    salesforce_fields: dict[str, str] = Field(
        default_factory=lambda: {
            "status": "Active__c",
            "tax_id": "Tax_Number__c",
            "billing_email": "Billing_Email__c",
        },
        alias="C2C_SALESFORCE_FIELDS",
        description="custom Account fields c2c reads: status, tax_id, billing_email (JSON); "
        "an empty name means the org has none",
    )
    connector_timeout_s: float = Field(default=10.0, alias="C2C_CONNECTOR_TIMEOUT_S")
    reference_cache_seconds: float = Field(
        default=60.0,
        ge=0,
        alias="C2C_REFERENCE_CACHE_SECONDS",
        description="how long a worker process reuses a legal entity read from the ERP and a "
        "tax jurisdiction read from the tax engine; 0 reads them on every step",
    )
    connector_quick_retries: int = Field(
        default=2,
        ge=0,
        le=5,
        alias="C2C_CONNECTOR_QUICK_RETRIES",
        description="immediate retries of a repeatable request after a transient failure",
    )

    # ERPs by legal entity, and NetSuite.
    erp_routes: dict[str, str] = Field(
        default_factory=lambda: {"*": "reference"},
        alias="C2C_ERP_ROUTES",
        description='legal entity → ERP (reference, netsuite or business-central), "*" for the '
        "rest (JSON); a contract stays on the ERP its entity routed to when it started",
    )
    netsuite_url: str | None = Field(
        default=None,
        alias="C2C_NETSUITE_URL",
        description="NetSuite's REST web services root (https://<account>.suitetalk.api."
        "netsuite.com); default the sandbox's /vendors/netsuite",
    )
    netsuite_account: str = Field(
        default=netsuite_auth.SANDBOX_ACCOUNT,
        alias="C2C_NETSUITE_ACCOUNT",
        description="NetSuite account id: the OAuth realm (e.g. 1234567_SB1)",
    )
    netsuite_consumer_key: str = Field(
        default=netsuite_auth.SANDBOX_CONSUMER_KEY, alias="C2C_NETSUITE_CONSUMER_KEY"
    )
    netsuite_consumer_secret: SecretStr = Field(
        default=SecretStr(netsuite_auth.SANDBOX_CONSUMER_SECRET),
        alias="C2C_NETSUITE_CONSUMER_SECRET",
    )
    netsuite_token_id: str = Field(
        default=netsuite_auth.SANDBOX_TOKEN_ID, alias="C2C_NETSUITE_TOKEN_ID"
    )
    netsuite_token_secret: SecretStr = Field(
        default=SecretStr(netsuite_auth.SANDBOX_TOKEN_SECRET), alias="C2C_NETSUITE_TOKEN_SECRET"
    )
    netsuite_concurrency: int = Field(
        default=5,
        ge=1,
        le=1000,
        alias="C2C_NETSUITE_CONCURRENCY",
        description="NetSuite requests one worker process has in flight at once (at most the "
        "account's concurrency limit, shared with its other integrations)",
    )
    netsuite_document_field: str | None = Field(
        default=None,
        pattern=r"^custbody[a-z0-9_]+$",
        alias="C2C_NETSUITE_DOCUMENT_FIELD",
        description="the custom body field (a hyperlink) of NetSuite invoices and credit memos "
        "that links the PDF in c2c's archive; unset, documents stay unlinked in NetSuite",
    )
    netsuite_einvoice_field: str | None = Field(
        default=None,
        pattern=r"^custbody[a-z0-9_]+$",
        alias="C2C_NETSUITE_EINVOICE_FIELD",
        description="the custom body field that links the UBL e-invoice (EU entities)",
    )
    netsuite_segments: NetSuiteSegments = Field(
        default_factory=NetSuiteSegments,
        alias="C2C_NETSUITE_SEGMENTS",
        description="legal entity → subsidiary, currency → id, item, department, class "
        "and location per role, expense category and charge, and write-off accounts (JSON)",
    )

    bc_url: str | None = Field(
        default=None,
        alias="C2C_BC_URL",
        description="Business Central's API host (https://api.businesscentral.dynamics.com); "
        "default the sandbox's /vendors/bc",
    )
    bc_authority: str | None = Field(
        default=None,
        alias="C2C_BC_AUTHORITY",
        description="Microsoft Entra ID's host (https://login.microsoftonline.com); the tenant "
        "is appended; default the sandbox's token endpoint",
    )
    bc_client_id: str = Field(default=bc_mapping.SANDBOX_CLIENT_ID, alias="C2C_BC_CLIENT_ID")
    bc_client_secret: SecretStr = Field(
        default=SecretStr(bc_mapping.SANDBOX_CLIENT_SECRET), alias="C2C_BC_CLIENT_SECRET"
    )
    bc_companies: dict[str, bc_mapping.BcCompany] = Field(
        default_factory=bc_mapping.sandbox_companies,
        alias="C2C_BC_COMPANIES",
        description="legal entity → Business Central tenant, environment, company_id, "
        "payment_journal and write_off_journal (JSON); default the sandbox's UK01 and US01",
    )
    bc_dimensions: bc_mapping.BcDimensions = Field(
        default_factory=bc_mapping.BcDimensions,
        alias="C2C_BC_DIMENSIONS",
        description="legal entity → tax account, dimensions and write-off accounts, and G/L "
        "account and dimensions per role, expense category and charge (JSON)",
    )

    def bc_base_url(self) -> str:
        return (self.bc_url or f"{self.sandbox_url.rstrip('/')}/vendors/bc").rstrip("/")

    def bc_authority_url(self) -> str:
        return (self.bc_authority or f"{self.bc_base_url()}/login").rstrip("/")

    @field_validator("erp_routes")
    @classmethod
    def _known_erps(cls, value: dict[str, str]) -> dict[str, str]:
        for entity, erp in value.items():
            if erp not in ERPS:
                raise ValueError(f"{entity}: {erp!r} is not an ERP c2c has; use {', '.join(ERPS)}")
        return value

    def erp_for(self, legal_entity: str) -> str:
        """The ERP a new contract of ``legal_entity`` goes to."""
        return per_entity(self.erp_routes, legal_entity, "reference")

    def netsuite_credentials(self) -> netsuite_auth.TokenCredentials:
        return netsuite_auth.TokenCredentials(
            account=self.netsuite_account,
            consumer_key=self.netsuite_consumer_key,
            consumer_secret=self.netsuite_consumer_secret.get_secret_value(),
            token_id=self.netsuite_token_id,
            token_secret=self.netsuite_token_secret.get_secret_value(),
        )

    def netsuite_base_url(self) -> str:
        return (self.netsuite_url or f"{self.sandbox_url.rstrip('/')}/vendors/netsuite").rstrip("/")

    api_url: str = Field(default="http://127.0.0.1:8000", alias="C2C_API_URL")
    webhook_target_url: str | None = Field(default=None, alias="C2C_WEBHOOK_TARGET_URL")
    webhook_secret: SecretStr | None = Field(default=None, alias="C2C_WEBHOOK_SECRET")
    webhook_queue: bool = Field(
        default=True,
        alias="C2C_WEBHOOK_QUEUE",
        description="answer every valid webhook event once it is recorded, and deliver it to "
        "its contract from the API's event queue, retrying through outages (false: process "
        "each while its sender waits, and answer 503 for the sender to retry)",
    )
    webhook_queue_concurrency: int = Field(
        default=16,
        ge=1,
        le=1000,
        alias="C2C_WEBHOOK_QUEUE_CONCURRENCY",
        description="queued events one API process processes at once",
    )
    outbound_events: bool = Field(
        default=True,
        alias="C2C_OUTBOUND_EVENTS",
        description="deliver outbound events to subscribers from the API process "
        "(docs/events.md); false: they are recorded and wait",
    )
    outbound_max_attempts: int = Field(
        default=12,
        ge=1,
        le=100,
        alias="C2C_OUTBOUND_MAX_ATTEMPTS",
        description="attempts to deliver one event to one subscriber before it is failed",
    )
    outbound_max_age_s: float = Field(
        default=86400.0,
        gt=0,
        alias="C2C_OUTBOUND_MAX_AGE_S",
        description="seconds after which a delivery not yet made is failed",
    )
    outbound_backoff_s: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        alias="C2C_OUTBOUND_BACKOFF_S",
        description="the pause before the second attempt; it doubles per attempt (with "
        "jitter), up to an hour",
    )
    outbound_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        alias="C2C_OUTBOUND_TIMEOUT_S",
        description="seconds a subscriber has to answer one delivery",
    )
    api_tokens: SecretStr | None = Field(default=None, alias="C2C_API_TOKENS")
    api_token: SecretStr | None = Field(
        default=None,
        alias="C2C_API_TOKEN",
        description="the operator's own API token, which `c2c ops retry|skip|abort` present to "
        "the API (C2C_API_URL), so a decision records the token's name",
    )
    encryption_key: SecretStr | None = Field(default=None, alias="C2C_ENCRYPTION_KEY")
    secrets_key: SecretStr | None = Field(
        default=None,
        alias="C2C_SECRETS_KEY",
        description="comma list of Fernet keys sealing the subscriptions' signing secrets in "
        "the ledger: the first seals, any opens (unset: a key file made in C2C_STATE_DIR)",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        alias="C2C_SESSION_SECRET",
        description="signs the dashboard's sessions and CSRF tokens; the same on every API replica",
    )
    # Single sign-on for the dashboard (OpenID Connect, authorization code flow with PKCE).
    oidc_issuer: str | None = Field(
        default=None,
        alias="C2C_OIDC_ISSUER",
        description="the identity provider's issuer URL (its /.well-known/openid-configuration "
        "is read); set, the dashboard offers single sign-on",
    )
    oidc_client_id: str | None = Field(default=None, alias="C2C_OIDC_CLIENT_ID")
    oidc_client_secret: SecretStr | None = Field(default=None, alias="C2C_OIDC_CLIENT_SECRET")
    oidc_groups_claim: str = Field(
        default="groups",
        alias="C2C_OIDC_GROUPS_CLAIM",
        description="the ID token's claim that lists the person's groups",
    )
    oidc_roles: SecretStr | None = Field(
        default=None,
        alias="C2C_OIDC_ROLES",
        description='JSON: group -> "viewer" | "operator" | {"role": ..., "entities": [...]}',
    )
    oidc_name_claim: str = Field(
        default="email",
        alias="C2C_OIDC_NAME_CLAIM",
        description="the ID token's claim recorded as the person's name on decisions "
        "(sub when absent)",
    )
    oidc_scopes: str = Field(default="openid email profile", alias="C2C_OIDC_SCOPES")
    oidc_redirect_url: str | None = Field(
        default=None,
        alias="C2C_OIDC_REDIRECT_URL",
        description="the dashboard's /auth/callback as the browser reaches it (default: from "
        "the request)",
    )

    log_format: str = Field(default="console", alias="C2C_LOG_FORMAT")
    log_level: str = Field(default="INFO", alias="C2C_LOG_LEVEL")

    exception_queues: dict[str, ExceptionQueue] = Field(
        default_factory=lambda: {
            "crm": ExceptionQueue.INTEGRATION,
            "crm.account_not_found": ExceptionQueue.FINANCE,
            "crm.account_inactive": ExceptionQueue.FINANCE,
            "crm.hierarchy_mismatch": ExceptionQueue.FINANCE,
            "erp": ExceptionQueue.FINANCE,
            "erp.unknown_legal_entity": ExceptionQueue.LEGAL,
            "erp.currency_not_allowed": ExceptionQueue.LEGAL,
            # NetSuite refused c2c's credentials: the integration's to fix, not finance's.
            "erp.INVALID_LOGIN": ExceptionQueue.INTEGRATION,
            "erp.Authentication_InvalidCredentials": ExceptionQueue.INTEGRATION,
            "psa": ExceptionQueue.DELIVERY,
            "tax": ExceptionQueue.FINANCE,
            "payments": ExceptionQueue.FINANCE,
            "ledger": ExceptionQueue.INTEGRATION,
            "c2c.not_to_exceed_reached": ExceptionQueue.DELIVERY,
            "c2c.payment_currency_mismatch": ExceptionQueue.FINANCE,
            "c2c.unapplied_cash_at_close": ExceptionQueue.FINANCE,
            "c2c.payment_after_close": ExceptionQueue.FINANCE,
            "c2c.dunning_exhausted": ExceptionQueue.FINANCE,
            "c2c.invoice_review": ExceptionQueue.FINANCE,
            "c2c.invoice_rejected": ExceptionQueue.FINANCE,
            "c2c.purchase_order_required": ExceptionQueue.FINANCE,
        },
        alias="C2C_EXCEPTION_QUEUES",
        description="system or system.code → queue that owns the fix (JSON)",
    )

    step_max_attempts: int = Field(
        default=14,
        ge=1,
        le=100,
        alias="C2C_STEP_MAX_ATTEMPTS",
        description="attempts of a step failing transiently before it becomes an exception",
    )

    step_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        alias="C2C_STEP_TIMEOUT_S",
        description="how long one attempt of a step (one system call sequence) may take",
    )

    exception_sla_hours: dict[ExceptionQueue, float] = Field(
        default_factory=lambda: {
            ExceptionQueue.FINANCE: 48.0,
            ExceptionQueue.LEGAL: 72.0,
            ExceptionQueue.DELIVERY: 48.0,
            ExceptionQueue.INTEGRATION: 4.0,
        },
        alias="C2C_EXCEPTION_SLA_HOURS",
        description="hours an exception may stay open in each queue before it is escalated (JSON)",
    )

    def sla_for(self, queue: ExceptionQueue) -> float | None:
        """Hours an open exception of ``queue`` may wait; ``None`` when the queue has no SLA."""
        hours = self.exception_sla_hours.get(queue)
        return hours if hours and hours > 0 else None

    dunning_offsets_days: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [7, 14, 30],
        alias="C2C_DUNNING_OFFSETS_DAYS",
        description="days after the due date on which reminders go out (JSON list or 7,14,30)",
    )

    @field_validator("dunning_offsets_days", mode="before")
    @classmethod
    def _offsets(cls, value: object) -> object:
        if isinstance(value, str):
            parts = value.strip().removeprefix("[").removesuffix("]").split(",")
            return [int(part) for part in parts if part.strip()]
        return value

    @field_validator("dunning_offsets_days")
    @classmethod
    def _positive_offsets(cls, value: list[int]) -> list[int]:
        if not value or any(days <= 0 for days in value) or len(set(value)) != len(value):
            raise ValueError("must be distinct positive numbers of days, e.g. 7,14,30")
        return sorted(value)

    legal_entity_time_zones: dict[str, str] = Field(
        default_factory=dict,
        alias="C2C_LEGAL_ENTITY_TIME_ZONES",
        description=(
            'legal entity → IANA time zone in which its periods end (JSON, "*" for the rest; '
            "default UTC)"
        ),
    )

    @field_validator("legal_entity_time_zones")
    @classmethod
    def _known_zones(cls, value: dict[str, str]) -> dict[str, str]:
        for entity, zone in value.items():
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{entity}: {zone!r} is not an IANA time zone") from None
        return value

    billing_schedules: dict[str, BillingDay] = Field(
        default_factory=lambda: {OTHER_ENTITIES: BillingDay()},
        alias="C2C_BILLING_SCHEDULES",
        description='legal entity → its billing day, e.g. {"US01": {"day": "first-working-day", '
        '"at": "06:00"}, "UK01": {"day": 1, "at": "07:00"}}; "*" for every other entity. Each '
        "runs the period close on a Temporal Schedule, in the entity's time zone",
    )

    @field_validator("billing_schedules")
    @classmethod
    def _schedule_entities(cls, value: dict[str, BillingDay]) -> dict[str, BillingDay]:
        for entity in value:
            if entity != OTHER_ENTITIES and not re.fullmatch(r"[A-Z0-9]{2,10}", entity):
                raise ValueError(f"{entity!r} is not a legal entity code (or *)")
        return value

    invoice_review: dict[str, Literal["none", "required"]] = Field(
        default_factory=dict,
        alias="C2C_INVOICE_REVIEW",
        description="legal entity → none | required: whether its invoices wait as drafts for "
        'an operator\'s approval (JSON, "*" for the rest; default none)',
    )
    consolidated_invoicing: dict[str, Literal["none", "customer", "customer_po"]] = Field(
        default_factory=dict,
        alias="C2C_CONSOLIDATED_INVOICING",
        description="legal entity → none | customer | customer_po: whether its period closes "
        "go on one invoice per customer (and currency, and purchase order with customer_po) "
        'across the customer\'s contracts (JSON, "*" for the rest; default none)',
    )
    consolidation_cutoff_s: float = Field(
        default=3600.0,
        gt=0,
        alias="C2C_CONSOLIDATION_CUTOFF_S",
        description="seconds a customer's consolidated invoice waits, after the period's first "
        "section, for the sections of its other contracts before it is made without them",
    )
    purchase_order_required: dict[str, bool] = Field(
        default_factory=dict,
        alias="C2C_PURCHASE_ORDER_REQUIRED",
        description="legal entity → true | false: whether its contracts need a purchase order "
        'number before they go on (JSON, "*" for the rest; default false)',
    )

    def invoice_review_for(self, legal_entity: str) -> Literal["none", "required"]:
        """Whether a legal entity's invoices wait as drafts for review."""
        return per_entity(self.invoice_review, legal_entity, "none")

    def consolidated_invoicing_for(
        self, legal_entity: str
    ) -> Literal["none", "customer", "customer_po"]:
        """Whether a legal entity's period closes go on one invoice per customer."""
        return per_entity(self.consolidated_invoicing, legal_entity, "none")

    def purchase_order_required_for(self, legal_entity: str) -> bool:
        """Whether a legal entity's contracts need a purchase order number."""
        return per_entity(self.purchase_order_required, legal_entity, False)

    legal_entity_details: dict[str, LegalEntityDetails] = Field(
        default_factory=dict,
        alias="C2C_LEGAL_ENTITY_DETAILS",
        description=(
            "legal entity → what its invoice documents print: address_lines, postcode, city, "
            'tax_id, email, payment_instructions, iban, bic (JSON, "*" for the rest)'
        ),
    )

    def details_for(self, legal_entity: str) -> LegalEntityDetails:
        """A legal entity's address, tax id and payment instructions for its documents."""
        return per_entity(self.legal_entity_details, legal_entity, LegalEntityDetails())

    def time_zone_for(self, legal_entity: str) -> str:
        """The time zone in which a legal entity's billing periods end."""
        return per_entity(self.legal_entity_time_zones, legal_entity, "UTC")

    def system_url(self, system: str) -> str:
        """Base URL of one system: its own setting, or the sandbox router for it."""
        own: str | None = getattr(self, f"{system}_url")
        return (own or f"{self.sandbox_url.rstrip('/')}/{system}/v1").rstrip("/")

    def salesforce_login_url(self) -> str:
        """Salesforce's login URL: its own setting, or the sandbox's Salesforce."""
        url = self.salesforce_url or f"{self.sandbox_url.rstrip('/')}/vendors/salesforce"
        return url.rstrip("/")

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'ledger.db'}"

    @property
    def sandbox_db_url(self) -> str:
        return self.sandbox_database_url or f"sqlite:///{self.state_dir / 'sandbox.db'}"

    @property
    def webhook_target(self) -> str:
        return (self.webhook_target_url or self.api_url).rstrip("/")

    def webhook_secrets(self) -> list[str]:
        """Secrets accepted for webhooks; several, comma-separated, while one is rotated."""
        if self.webhook_secret is None:
            return []
        return [s.strip() for s in self.webhook_secret.get_secret_value().split(",") if s.strip()]

    def queue_for(self, system: str, code: str) -> ExceptionQueue:
        """The queue that owns an exception: ``system.code``, else the system's queue.

        A step that kept failing transiently (``retries_exhausted``) is the integration
        team's, whatever system it talked to, unless ``system.retries_exhausted`` says else.
        """
        exact = self.exception_queues.get(f"{system}.{code}")
        if exact is not None:
            return exact
        if code == "retries_exhausted":
            return ExceptionQueue.INTEGRATION
        return self.exception_queues.get(system) or ExceptionQueue.INTEGRATION

    # Contract sources (CLMs), DocuSign and the signed document archive (docs/vendors.md).
    clm_sources: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["c2c"],
        alias="C2C_CLM_SOURCES",
        description="CLMs whose approvals start contracts, comma-separated: c2c, docusign, "
        "ironclad",
    )
    docusign_connect_keys: SecretStr | None = Field(
        default=None,
        alias="C2C_DOCUSIGN_CONNECT_KEYS",
        description="DocuSign Connect HMAC keys, a JSON list or comma-separated; any one "
        "verifies a message (several while a key is rotated)",
    )
    docusign_url: str | None = Field(
        default=None,
        alias="C2C_DOCUSIGN_URL",
        description="base URL of DocuSign's eSignature REST API, e.g. https://demo.docusign.net "
        "(default: the sandbox's /vendors/docusign)",
    )
    docusign_access_token: SecretStr | None = Field(
        default=None,
        alias="C2C_DOCUSIGN_ACCESS_TOKEN",
        description="a bearer token for the eSignature API (the sandbox's); production uses "
        "the JWT grant settings instead",
    )
    docusign_integration_key: str | None = Field(
        default=None,
        alias="C2C_DOCUSIGN_INTEGRATION_KEY",
        description="the OAuth client id (integration key) of c2c's DocuSign app (JWT grant)",
    )
    docusign_user_id: str | None = Field(
        default=None,
        alias="C2C_DOCUSIGN_USER_ID",
        description="the DocuSign user c2c acts as (JWT grant; consent given once)",
    )
    docusign_private_key_file: Path | None = Field(
        default=None,
        alias="C2C_DOCUSIGN_PRIVATE_KEY_FILE",
        description="the RSA private key of the integration key, PEM (JWT grant)",
    )
    docusign_oauth_host: str = Field(
        default="account-d.docusign.com",
        alias="C2C_DOCUSIGN_OAUTH_HOST",
        description="DocuSign's OAuth host: account-d.docusign.com (demo) or "
        "account.docusign.com (production)",
    )
    docusign_mapping_file: Path | None = Field(
        default=None,
        alias="C2C_DOCUSIGN_MAPPING_FILE",
        description="JSON file mapping envelope custom fields to contract terms (default: "
        "c2c/docusign_mapping.json)",
    )
    ironclad_url: str | None = Field(
        default=None,
        alias="C2C_IRONCLAD_URL",
        description="base URL of Ironclad, e.g. https://na1.ironcladapp.com (default: the "
        "sandbox's /vendors/ironclad); the client adds /public/api/v1",
    )
    ironclad_access_token: SecretStr | None = Field(
        default=None,
        alias="C2C_IRONCLAD_ACCESS_TOKEN",
        description="bearer token of c2c's Ironclad API client (scopes: read workflows, "
        "read workflow documents, read the webhook verification key)",
    )
    ironclad_mapping_file: Path | None = Field(
        default=None,
        alias="C2C_IRONCLAD_MAPPING_FILE",
        description="JSON file mapping Ironclad workflow attributes to contract terms "
        "(default: c2c/ironclad_mapping.json)",
    )
    ironclad_key_refresh_s: float = Field(
        default=60.0,
        ge=0.0,
        le=86400.0,
        alias="C2C_IRONCLAD_KEY_REFRESH_S",
        description="least seconds between two fetches of Ironclad's webhook verification "
        "key after a signature fails to verify (a rotation); bounds what forged webhooks cost",
    )
    ironclad_intake_wait_s: float = Field(
        default=60.0,
        ge=1.0,
        le=600.0,
        alias="C2C_IRONCLAD_INTAKE_WAIT_S",
        description="seconds the API waits for a completed workflow's terms to be read from "
        "Ironclad before answering 503 for a retry",
    )
    archive_url: str | None = Field(
        default=None,
        alias="C2C_ARCHIVE_URL",
        description="where signed documents are kept: a directory, file:///path or "
        "s3://bucket/prefix (default: the archive folder of C2C_STATE_DIR)",
    )
    archive_s3_endpoint_url: str | None = Field(
        default=None,
        alias="C2C_ARCHIVE_S3_ENDPOINT_URL",
        description="endpoint of an S3-compatible store (MinIO, Ceph...); AWS when unset",
    )
    archive_retention_days: int = Field(
        default=3650,
        ge=1,
        le=36500,
        alias="C2C_ARCHIVE_RETENTION_DAYS",
        description="days a signed document must be kept; recorded with it, and set as its "
        "S3 Object Lock retention when C2C_ARCHIVE_S3_OBJECT_LOCK is on",
    )
    archive_s3_object_lock: bool = Field(
        default=False,
        alias="C2C_ARCHIVE_S3_OBJECT_LOCK",
        description="write documents with S3 Object Lock (compliance mode) until their "
        "retention ends; the bucket must have Object Lock enabled",
    )

    @field_validator("clm_sources", mode="before")
    @classmethod
    def _source_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("clm_sources")
    @classmethod
    def _known_sources(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CLM_SOURCES))
        if unknown:
            raise ValueError(f"unknown CLM source(s) {unknown}: use {', '.join(CLM_SOURCES)}")
        return value

    def docusign_keys(self) -> list[str]:
        """DocuSign Connect HMAC keys: a JSON list, or comma-separated."""
        if self.docusign_connect_keys is None:
            return []
        text = self.docusign_connect_keys.get_secret_value().strip()
        if text.startswith("["):
            try:
                keys = json.loads(text)
            except ValueError:
                raise ValueError("C2C_DOCUSIGN_CONNECT_KEYS is not a JSON list") from None
            return [str(k).strip() for k in keys if str(k).strip()]
        return [k.strip() for k in text.split(",") if k.strip()]

    @property
    def docusign_base_url(self) -> str:
        """DocuSign's eSignature base URL (``/restapi`` is added by the client)."""
        own = self.docusign_url or f"{self.sandbox_url.rstrip('/')}/vendors/docusign"
        return own.rstrip("/")

    @property
    def ironclad_base_url(self) -> str:
        """Ironclad's base URL (``/public/api/v1`` is added by the clients)."""
        own = self.ironclad_url or f"{self.sandbox_url.rstrip('/')}/vendors/ironclad"
        return own.rstrip("/")

    @property
    def archive_location(self) -> str:
        return self.archive_url or str(self.state_dir / "archive")

    # Tax engine and payment gateway vendors (docs/vendors.md).
    tax: Literal["reference", "avatax"] = Field(
        default="reference",
        alias="C2C_TAX",
        description="the tax engine: reference (the sandbox's /tax/v1 format) or avatax",
    )
    payments: Literal["reference", "stripe"] = Field(
        default="reference",
        alias="C2C_PAYMENTS",
        description="the payment gateway: reference (the sandbox's /payments/v1 format) or stripe",
    )
    avatax_url: str | None = Field(
        default=None,
        alias="C2C_AVATAX_URL",
        description="AvaTax's base URL, e.g. https://rest.avatax.com (default: the sandbox's "
        "/vendors/avatax)",
    )
    avatax_account_id: str = Field(
        default="1100000000",
        alias="C2C_AVATAX_ACCOUNT_ID",
        description="the AvaTax account id (basic auth user name)",
    )
    avatax_license_key: SecretStr = Field(
        default=SecretStr("sandbox-license-key"),
        alias="C2C_AVATAX_LICENSE_KEY",
        description="the AvaTax license key of that account (basic auth password)",
    )
    stripe_url: str | None = Field(
        default=None,
        alias="C2C_STRIPE_URL",
        description="Stripe's API base URL, e.g. https://api.stripe.com (default: the "
        "sandbox's /vendors/stripe)",
    )
    stripe_api_key: SecretStr = Field(
        default=SecretStr("sk_test_sandbox"),
        alias="C2C_STRIPE_API_KEY",
        description="Stripe secret or restricted API key c2c creates PaymentIntents with",
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        alias="C2C_STRIPE_WEBHOOK_SECRET",
        description="Stripe's endpoint signing secret (whsec_...) of /webhooks/stripe; several "
        "comma-separated while one is rolled",
    )

    @property
    def avatax_base_url(self) -> str:
        own = self.avatax_url or f"{self.sandbox_url.rstrip('/')}/vendors/avatax"
        return own.rstrip("/")

    @property
    def stripe_base_url(self) -> str:
        own = self.stripe_url or f"{self.sandbox_url.rstrip('/')}/vendors/stripe"
        return own.rstrip("/")

    def stripe_webhook_secrets(self) -> list[str]:
        """Stripe endpoint secrets; any one verifies (several while a secret is rolled)."""
        if self.stripe_webhook_secret is None:
            return []
        text = self.stripe_webhook_secret.get_secret_value()
        return [s.strip() for s in text.split(",") if s.strip()]

    # The operations dashboard.
    dashboard_refresh_s: int = Field(
        default=10,
        ge=0,
        le=3600,
        alias="C2C_DASHBOARD_REFRESH_S",
        description="seconds between the dashboard's refreshes of itself; 0 turns them off",
    )

    # Data protection.
    codec_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:8233", "http://127.0.0.1:8233"],
        alias="C2C_CODEC_CORS_ORIGINS",
        description="browser origins (the Temporal UI's) that may call /codec, comma-separated",
    )

    @field_validator("codec_cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("codec_cors_origins")
    @classmethod
    def _exact_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            # A wildcard would let any web page a logged-in operator opens decrypt payloads.
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin like https://temporal.example.com[:port] "
                    "(no path, no wildcard)"
                )
        return value

    # Telemetry.
    worker_metrics_address: str = Field(
        default="127.0.0.1:9464",
        alias="C2C_WORKER_METRICS_ADDRESS",
        description="host:port where the worker serves Prometheus metrics; empty turns them off",
    )
    otel_enabled: bool = Field(
        default=False,
        alias="C2C_OTEL_ENABLED",
        description="trace with OpenTelemetry (needs the otel extra); exported over OTLP/HTTP",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="the OTLP collector; setting it turns tracing on as C2C_OTEL_ENABLED does",
    )

    # Workers and task queues.
    continue_as_new_events: int = Field(
        default=10_000,
        ge=100,
        le=50_000,
        alias="C2C_CONTINUE_AS_NEW_EVENTS",
        description="history events after which a contract or a customer's billing workflow "
        "continues as new at its next quiet moment (the server may suggest it earlier)",
    )
    worker_queues: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        alias="C2C_WORKER_QUEUES",
        description=f"queues this worker polls, e.g. erp,psa (default all: {WORKFLOWS_QUEUE}, "
        f"{', '.join(QUEUED_SYSTEMS)})",
    )
    rate_limits: dict[str, float] = Field(
        default_factory=dict,
        alias="C2C_RATE_LIMITS",
        description="activities per second on each system's task queue, across all workers "
        '(JSON, e.g. {"erp": 20})',
    )
    call_limits: dict[str, CallLimit] = Field(
        default_factory=dict,
        alias="C2C_CALL_LIMITS",
        description="each vendor's limits on c2c's calls, held by all workers together (JSON, "
        'e.g. {"netsuite": {"in_flight": 5}, "stripe": {"per_second": 25}}); an entry replaces '
        "the vendor's published default (docs/operations.md, Vendor call limits)",
    )
    concurrency_limits: dict[str, int] = Field(
        default_factory=dict,
        alias="C2C_CONCURRENCY_LIMITS",
        description="activities of each system one worker runs at once (JSON, e.g. "
        '{"erp": 4}); C2C_WORKER_MAX_CONCURRENT_ACTIVITIES for the others',
    )
    worker_max_concurrent_activities: int = Field(
        default=100,
        ge=1,
        le=10_000,
        alias="C2C_WORKER_MAX_CONCURRENT_ACTIVITIES",
        description="activities one worker runs at once on each of its task queues",
    )
    worker_max_concurrent_workflow_tasks: int = Field(
        default=100,
        ge=2,
        le=10_000,
        alias="C2C_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS",
        description="workflow tasks one worker runs at once",
    )
    worker_max_cached_workflows: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        alias="C2C_WORKER_MAX_CACHED_WORKFLOWS",
        description="contracts a worker keeps in memory between tasks (0: replay every task)",
    )
    worker_pollers: int = Field(
        default=5,
        ge=2,
        le=100,
        alias="C2C_WORKER_POLLERS",
        description="concurrent long polls per task queue (the most, when autoscaling)",
    )
    worker_poller_autoscaling: bool = Field(
        default=False,
        alias="C2C_WORKER_POLLER_AUTOSCALING",
        description="let the SDK scale the pollers between 1 and C2C_WORKER_POLLERS",
    )

    event_loop: EventLoop = Field(
        default="auto",
        alias="C2C_EVENT_LOOP",
        description="event loop of the worker, the API and the sandbox: auto (uvloop where "
        "installed), uvloop or asyncio",
    )

    @field_validator("worker_queues", mode="before")
    @classmethod
    def _queue_list(cls, value: object) -> object:
        return parse_queues(value) if isinstance(value, str) else value

    @field_validator("worker_queues")
    @classmethod
    def _known_queues(cls, value: list[str]) -> list[str]:
        return parse_queues(",".join(value))

    @field_validator("rate_limits", "concurrency_limits")
    @classmethod
    def _known_systems(cls, value: dict[str, float]) -> dict[str, float]:
        # Tax and payment calls run inside ERP steps: a limit for them would never apply.
        unknown = sorted(set(value) - set(QUEUED_SYSTEMS))
        if unknown:
            raise ValueError(
                f"no task queue for {unknown}: limits apply to {', '.join(QUEUED_SYSTEMS)} "
                "(tax calls are part of ERP steps)"
            )
        if any(limit <= 0 for limit in value.values()):
            raise ValueError("limits must be positive")
        return value

    @field_validator("call_limits")
    @classmethod
    def _known_vendors(cls, value: dict[str, CallLimit]) -> dict[str, CallLimit]:
        unknown = sorted(set(value) - set(VENDORS))
        if unknown:
            raise ValueError(f"no vendor {unknown}: call limits apply to {', '.join(VENDORS)}")
        return value

    def vendor_call_limits(self) -> dict[str, CallLimit]:
        """Each vendor's call limits in force: the defaults with ``C2C_CALL_LIMITS`` over them."""
        return resolve_limits(self.call_limits)

    def polled_queues(self) -> set[str]:
        """The queues this worker polls: ``C2C_WORKER_QUEUES``, or all of them."""
        return set(self.worker_queues or (WORKFLOWS_QUEUE, *QUEUED_SYSTEMS))

    def queued_systems(self) -> list[str]:
        """The systems whose steps run on their own task queue rather than the workflows'.

        A system's queue is what holds its ``C2C_RATE_LIMITS`` and ``C2C_CONCURRENCY_LIMITS``
        (vendors' call limits, ``C2C_CALL_LIMITS``, hold on any queue). A system with neither
        runs its steps on the workflows' queue, where the server hands a step to the worker
        that scheduled it in the same round trip (eager dispatch). A fleet split by queue
        (``C2C_WORKER_QUEUES`` set) keeps every system on its own queue.
        """
        if self.worker_queues:
            return list(QUEUED_SYSTEMS)
        limited = set(self.rate_limits) | set(self.concurrency_limits)
        return [system for system in QUEUED_SYSTEMS if system in limited]


def parse_queues(text: str) -> list[str]:
    """``erp,psa`` → ``["erp", "psa"]``; raises ``ValueError`` naming an unknown queue."""
    queues = [part.strip() for part in text.split(",") if part.strip()]
    known = (WORKFLOWS_QUEUE, *QUEUED_SYSTEMS)
    unknown = sorted(set(queues) - set(known))
    if unknown:
        raise ValueError(f"unknown queue(s) {unknown}: use {', '.join(known)}")
    return queues


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
