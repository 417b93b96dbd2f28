"""Salesforce as c2c's CRM (``C2C_CRM=salesforce``), through the ``simple-salesforce`` client.

Accounts are read through the REST API's sObject rows resource
(``GET /services/data/vXX.X/sobjects/Account/{id}``), their parents through SOQL
(``GET /services/data/vXX.X/query?q=``). Collection activities (dunning reminders) become
``Task`` records on the account (``WhatId``), made once: the task's ``Subject`` ends with a key
built from the activity's id (``[c2c:<activity id>]``), and a task with that subject on the
account is looked up before one is created.

c2c authenticates with OAuth 2.0's client credentials flow against the login URL
(``C2C_SALESFORCE_URL``), and uses the ``instance_url`` the token answer names. The client is
synchronous: each call runs in a thread. Salesforce's daily API budget is shared by every
integration of the org, so the connector reads what is left (the ``Sforce-Limit-Info`` header
of each answer, and the limits resource's ``DailyApiRequests``), reports it as a metric, and
refuses to spend the last ``C2C_SALESFORCE_API_RESERVE`` requests: the call fails as a
transient error and Temporal retries it later.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as day_time
from typing import Any, TypeVar, cast
from urllib.parse import urlparse

import requests
from simple_salesforce import Salesforce, SFType, format_soql
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceResourceNotFound,
)
from simple_salesforce.login import token_login

from c2c.call_limits import call_slot
from c2c.logs import get_logger
from c2c.settings import Settings
from c2c.telemetry import record_api_budget, record_connector_call
from connectors.records import CrmAccount, CrmActivity
from domain.errors import BusinessError, NotFound, Rejection, TransientError
from domain.write_models import CrmActivityDraft

log = get_logger("c2c.connectors.salesforce")

T = TypeVar("T")

#: The vendor label of the API budget metric.
VENDOR = "salesforce"
#: How long a call waits when the daily budget is down to the reserve: the budget is a
#: rolling 24-hour window, so some of it comes back within the hour.
BUDGET_RETRY_S = 900.0
#: Ancestors followed at most (Salesforce's hierarchies are shallow; this stops a cycle).
MAX_DEPTH = 10
#: The standard Account fields c2c reads.
ACCOUNT_FIELDS = (
    "Id",
    "Name",
    "ParentId",
    "BillingCountry",
    "BillingCountryCode",
    "BillingState",
    "BillingStateCode",
)
TASK_FIELDS = ("Id", "WhatId", "Subject", "Description", "ActivityDate", "Status", "CreatedDate")
#: Values of an account's status field that mean it is not active.
INACTIVE_VALUES = frozenset({"no", "false", "inactive", "0"})
#: The line of a task's description that says what c2c's activity is about.
RELATED_PREFIX = "c2c related:"


def subject_key(activity_id: str) -> str:
    """The tag that ends the subject of the task made for activity ``activity_id``."""
    return f"[c2c:{activity_id}]"


class _InstanceSession(requests.Session):
    """Sends the client's requests to the instance URL the token answer named.

    ``simple-salesforce`` builds every URL as ``https://<instance>/services/...``. A real
    org's instance URL is HTTPS and this changes nothing; the sandbox's is plain HTTP on a
    loopback port, with a path prefix (``/vendors/salesforce``).
    """

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.instance_url = ""
        self.timeout_s = timeout_s
        #: ``(used, total)`` of the org's daily API requests, from the last answer's
        #: ``Sforce-Limit-Info`` header (every call's, including the client's sObject calls).
        self.usage: tuple[int, int] | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        # The client sets no timeout of its own: a call must not hang an activity's thread.
        kwargs.setdefault("timeout", self.timeout_s)
        if self.instance_url and isinstance(url, str):
            host = self.instance_url.split("://", 1)[-1]
            if url.startswith(f"https://{host}"):
                url = self.instance_url + url[len(f"https://{host}") :]
        verb = method.decode() if isinstance(method, bytes) else method
        response = super().request(verb, url, *args, **kwargs)
        header = response.headers.get("Sforce-Limit-Info")
        if header:
            usage = Salesforce.parse_api_usage(header).get("api-usage")
            if usage is not None:
                self.usage = (usage.used, usage.total)
        return response


class SalesforceCrm:
    """``CrmPort`` over Salesforce's REST API.

    Args:
        login_url: Where the OAuth token is asked for (``{login_url}/services/oauth2/token``).
        settings: Client id and secret, API version, reserve and custom field names.
    """

    system = "crm"

    def __init__(self, login_url: str, settings: Settings) -> None:
        self.login_url = login_url.rstrip("/")
        self.client_id = settings.salesforce_client_id
        self._secret = settings.salesforce_client_secret
        self.version = settings.salesforce_api_version
        self.reserve = settings.salesforce_api_reserve
        self.timeout_s = settings.connector_timeout_s
        fields = settings.salesforce_fields
        self.status_field = fields.get("status") or None
        self.tax_field = fields.get("tax_id") or None
        self.email_field = fields.get("billing_email") or None
        self._lock = threading.Lock()
        self._client: Salesforce | None = None
        #: Daily API requests left and the day's maximum, as last seen; ``None`` until read.
        self.remaining: int | None = None
        self.maximum: int | None = None

    async def aclose(self) -> None:
        client = self._client
        if client is not None:
            await asyncio.to_thread(client.session.close)

    # --- CrmPort -----------------------------------------------------------------------

    async def get_account(self, crm_account_id: str) -> CrmAccount:
        record = await self._call(
            "GET /sobjects/Account/{id}",
            lambda sf: _sobject(sf, "Account").get(
                crm_account_id, params={"fields": self._account_fields()}
            ),
        )
        return self._account(record)

    async def get_ancestors(self, crm_account_id: str) -> list[CrmAccount]:
        account = await self.get_account(crm_account_id)
        ancestors: list[CrmAccount] = []
        seen = {account.crm_account_id}
        parent_id = account.parent_crm_account_id
        while parent_id and parent_id not in seen and len(ancestors) < MAX_DEPTH:
            soql = format_soql(
                f"SELECT {self._account_fields()} FROM Account WHERE Id = {{}}", parent_id
            )
            found = await self._call("GET /query", _query(soql))
            records = found.get("records") or []
            if not records:
                break
            parent = self._account(records[0])
            ancestors.append(parent)
            seen.add(parent.crm_account_id)
            parent_id = parent.parent_crm_account_id
        return ancestors

    async def add_activity(
        self, crm_account_id: str, activity: CrmActivityDraft, *, idempotency_key: str
    ) -> CrmActivity:
        """Make the activity a ``Task`` on the account, once per activity id (or key)."""
        activity_id = activity.activity_id or idempotency_key
        subject = f"{activity.subject} {subject_key(activity_id)}"
        if len(subject) > 255:
            raise BusinessError(
                Rejection(
                    system=self.system,
                    code="subject_too_long",
                    message="a task's subject has at most 255 characters",
                    field="subject",
                )
            )
        existing = await self._find_task(crm_account_id, subject)
        if existing is None:
            on = _activity_date(activity)
            task = {
                "WhatId": crm_account_id,
                "Subject": subject,
                "Description": _description(activity),
                "ActivityDate": on.isoformat(),
                "Status": "Completed",
            }
            await self._call("POST /sobjects/Task", lambda sf: _sobject(sf, "Task").create(task))
            existing = await self._find_task(crm_account_id, subject)
            if existing is None:
                raise TransientError(self.system, "the task made is not found yet")
        return self._activity(existing, activity_type=activity.type)

    async def list_activities(
        self,
        crm_account_id: str,
        *,
        activity_type: str | None = None,
        invoice_id: str | None = None,
    ) -> list[CrmActivity]:
        soql = format_soql(
            f"SELECT {', '.join(TASK_FIELDS)} FROM Task WHERE WhatId = {{}} "
            "AND Subject LIKE '%[c2c:%' ORDER BY CreatedDate",
            crm_account_id,
        )
        found = await self._call("GET /query", lambda sf: sf.query_all(soql))
        out = []
        for record in found.get("records") or []:
            activity = self._activity(record, activity_type=None)
            if activity_type is not None and activity.type != activity_type:
                continue
            if invoice_id is not None and (activity.related_to or {}).get("invoice_id") != (
                invoice_id
            ):
                continue
            out.append(activity)
        return out

    # --- The API budget ---------------------------------------------------------------

    async def api_budget(self) -> tuple[int, int]:
        """Daily API requests remaining and the day's maximum, from the limits resource."""
        limits = await self._call("GET /limits", lambda sf: sf.limits(), spend=False)
        daily = limits.get("DailyApiRequests") or {}
        self._observe_budget(int(daily["Remaining"]), int(daily["Max"]))
        assert self.remaining is not None and self.maximum is not None
        return self.remaining, self.maximum

    def _observe_budget(self, remaining: int, maximum: int) -> None:
        self.remaining, self.maximum = remaining, maximum
        record_api_budget(vendor=VENDOR, remaining=remaining, maximum=maximum)

    async def _check_budget(self) -> None:
        if self.remaining is None or self.remaining <= self.reserve:
            # Unknown, or down to the reserve as last seen: ask what is left now.
            remaining, _ = await self.api_budget()
            if remaining <= self.reserve:
                log.warning("salesforce API budget at its reserve", remaining=remaining)
                raise TransientError(
                    self.system,
                    f"Salesforce's daily API budget is down to {remaining} requests "
                    f"(reserve {self.reserve})",
                    status=429,
                    retry_after_s=BUDGET_RETRY_S,
                )

    # --- Calls ---------------------------------------------------------------------------

    async def _call(
        self, operation: str, call: Callable[[Salesforce], T], *, spend: bool = True
    ) -> T:
        if spend:
            await self._check_budget()
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with call_slot(VENDOR):
                return await asyncio.to_thread(self._run, call)
        except TransientError:
            outcome = "transient"
            raise
        except BusinessError:
            outcome = "business_error"
            raise
        finally:
            record_connector_call(
                system=self.system,
                operation=operation,
                outcome=outcome,
                seconds=time.perf_counter() - started,
            )

    def _run(self, call: Callable[[Salesforce], T]) -> T:
        """One call in this thread; a session that expired is renewed once."""
        try:
            for attempt in (1, 2):
                client = self._session(renew=attempt == 2)
                try:
                    result = call(client)
                except SalesforceExpiredSession:
                    if attempt == 2:
                        raise
                    continue
                usage = getattr(client.session, "usage", None)
                if usage is not None:
                    self._observe_budget(usage[1] - usage[0], usage[1])
                return result
            raise AssertionError("unreachable")
        except SalesforceAuthenticationFailed as exc:
            raise BusinessError(
                Rejection(
                    system=self.system, code="authentication_failed", message=str(exc.message)
                )
            ) from None
        except SalesforceResourceNotFound as exc:
            raise NotFound(_rejection(exc, "not_found")) from None
        except SalesforceError as exc:
            if exc.status == 429 or exc.status >= 500 or _code(exc) == "REQUEST_LIMIT_EXCEEDED":
                raise TransientError(
                    self.system, f"Salesforce answered {exc.status}", status=exc.status
                ) from None
            raise BusinessError(_rejection(exc, "rejected")) from None
        except requests.RequestException as exc:
            raise TransientError(self.system, f"Salesforce: {type(exc).__name__}") from None

    def _session(self, *, renew: bool) -> Salesforce:
        with self._lock:
            if self._client is None or renew:
                self._client = self._login()
            return self._client

    def _login(self) -> Salesforce:
        """OAuth 2.0 client credentials: a token and the org's instance URL."""
        session = _InstanceSession(self.timeout_s)
        credentials = f"{self.client_id}:{self._secret.get_secret_value()}"
        encoded = base64.b64encode(credentials.encode()).decode()
        domain = urlparse(self.login_url).hostname or "login"
        token, instance = token_login(
            f"{self.login_url}/services/oauth2/token",
            {"grant_type": "client_credentials"},
            domain,
            self.client_id,
            {"Authorization": f"Basic {encoded}"},
            None,
            session,
        )
        # token_login keeps the host and path of instance_url; the scheme is the login URL's.
        session.instance_url = f"{urlparse(self.login_url).scheme}://{instance}".rstrip("/")
        return Salesforce(
            instance=instance, session_id=token, version=self.version, session=session
        )

    # --- Records -----------------------------------------------------------------------

    def _account_fields(self) -> str:
        custom = (self.status_field, self.tax_field, self.email_field)
        return ", ".join([*ACCOUNT_FIELDS, *(name for name in custom if name)])

    def _account(self, record: dict[str, Any]) -> CrmAccount:
        status = "active"
        if self.status_field:
            value = record.get(self.status_field)
            if value is not None and str(value).strip().lower() in INACTIVE_VALUES:
                status = "inactive"
        country = record.get("BillingCountryCode") or record.get("BillingCountry") or ""
        return CrmAccount(
            crm_account_id=record["Id"],
            name=record["Name"],
            parent_crm_account_id=record.get("ParentId"),
            country=country,
            region=record.get("BillingStateCode") or record.get("BillingState"),
            tax_id=record.get(self.tax_field) if self.tax_field else None,
            status=status,
        )

    async def _find_task(self, crm_account_id: str, subject: str) -> dict[str, Any] | None:
        soql = format_soql(
            f"SELECT {', '.join(TASK_FIELDS)} FROM Task WHERE WhatId = {{}} AND Subject = {{}} "
            "LIMIT 1",
            crm_account_id,
            subject,
        )
        found = await self._call("GET /query", lambda sf: sf.query(soql))
        records = found.get("records") or []
        return records[0] if records else None

    def _activity(self, record: dict[str, Any], *, activity_type: str | None) -> CrmActivity:
        subject = str(record.get("Subject") or "")
        activity_id = record["Id"]
        tag_at = subject.rfind(" [c2c:")
        if tag_at >= 0 and subject.endswith("]"):
            activity_id = subject[tag_at + len(" [c2c:") : -1]
            subject = subject[:tag_at]
        body, related, kind = _split_description(record.get("Description"))
        on = record.get("ActivityDate")
        occurred_at = (
            datetime.combine(date.fromisoformat(on), day_time(), tzinfo=UTC)
            if on
            else datetime.now(UTC)
        )
        return CrmActivity(
            activity_id=activity_id,
            crm_account_id=record["WhatId"],
            type=activity_type or kind or "task",
            subject=subject,
            body=body,
            related_to=related or None,
            occurred_at=occurred_at,
        )


def _sobject(sf: Salesforce, name: str) -> SFType:
    """The client's resource for one sObject type (``sf.Account``)."""
    return cast(SFType, getattr(sf, name))


def _query(soql: str) -> Callable[[Salesforce], Any]:
    def run(sf: Salesforce) -> Any:
        return sf.query(soql)

    return run


def _activity_date(activity: CrmActivityDraft) -> date:
    if activity.occurred_on:
        return activity.occurred_on
    if activity.occurred_at:
        return activity.occurred_at.date()
    return datetime.now(UTC).date()


def _description(activity: CrmActivityDraft) -> str:
    """The task's description: the activity's body, then a line saying what it is about."""
    related = activity.related_to or {}
    tags = [f"type={activity.type}"]
    tags += [f"{key}={value}" for key, value in sorted(related.items())]
    body = activity.body or ""
    return f"{body}\n\n{RELATED_PREFIX} {'; '.join(tags)}".strip()


def _split_description(text: str | None) -> tuple[str | None, dict[str, str], str | None]:
    """The body, the records it is about and the activity type, from a task's description."""
    if not text:
        return None, {}, None
    body, _, tail = text.rpartition(RELATED_PREFIX)
    if not _:
        return text, {}, None
    pairs = dict(part.strip().split("=", 1) for part in tail.split(";") if "=" in part)
    kind = pairs.pop("type", None)
    return body.strip() or None, pairs, kind


def _code(exc: SalesforceError) -> str | None:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        code = content[0].get("errorCode")
        return str(code) if code else None
    return None


def _rejection(exc: SalesforceError, default: str) -> Rejection:
    content = exc.content
    message = f"Salesforce answered {exc.status}"
    field = None
    if isinstance(content, list) and content and isinstance(content[0], dict):
        message = str(content[0].get("message") or message)
        fields = content[0].get("fields") or []
        field = str(fields[0]) if fields else None
    return Rejection(
        system="crm", code=(_code(exc) or default).lower(), message=message, field=field
    )


def connect(url: str, settings: Settings) -> SalesforceCrm:
    """The factory ``connectors.registry`` calls for ``C2C_CRM=salesforce``."""
    return SalesforceCrm(url, settings)
