"""What the demo approves and enters, and where it finds the stack it drives."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from c2c.settings import Settings
from domain.models import ContractApproved
from domain.periods import Period
from starter.api.auth import Role, TokenTable
from starter.api.state import read_webhook_secret

DEFAULT_UI_URL = "http://localhost:8233"

#: The approved time the demo's consultants enter: (consultant, role, day of the month, hours).
TIME_ENTRIES = (
    ("C-ALICE", "Senior Consultant", 3, "8"),
    ("C-BOB", "Analyst", 4, "6"),
    ("C-ALICE", "Senior Consultant", 5, "4"),
)


class DemoFailed(RuntimeError):
    """The demo could not go on; the message says why and where to look."""


@dataclass(frozen=True)
class DemoConfig:
    """Where the running stack is, and how the demo authenticates to it."""

    api_url: str
    sandbox_url: str
    webhook_secret: str
    api_token: str | None = None
    ui_url: str = DEFAULT_UI_URL
    namespace: str = "default"
    timeout_s: float = 60.0

    @classmethod
    def from_settings(
        cls, settings: Settings, *, ui_url: str = DEFAULT_UI_URL, timeout_s: float = 60.0
    ) -> DemoConfig:
        """The stack of the current configuration (as ``c2c up`` sets it up).

        Raises:
            DemoFailed: no webhook secret is configured or kept in the state directory.
        """
        secret = next(iter(settings.webhook_secrets()), None) or read_webhook_secret(
            settings.state_dir
        )
        if not secret:
            raise DemoFailed(
                f"no webhook secret: set C2C_WEBHOOK_SECRET or run `c2c up` "
                f"(which keeps one in {settings.state_dir}/)"
            )
        token = TokenTable.from_settings(settings).first_with(Role.OPERATOR)
        return cls(
            api_url=settings.api_url.rstrip("/"),
            sandbox_url=settings.sandbox_url.rstrip("/"),
            webhook_secret=secret,
            api_token=token,
            ui_url=ui_url.rstrip("/"),
            namespace=settings.temporal_namespace,
            timeout_s=timeout_s,
        )


def demo_contract(today: date, now: datetime) -> ContractApproved:
    """A time-and-materials SOW for Acme Corp covering last month."""
    period = Period.of(today.replace(day=1) - timedelta(days=1))
    return ContractApproved.model_validate(
        {
            "event_id": f"evt-{uuid.uuid4().hex}",
            "contract_id": f"DEMO-{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z",
            "version": 1,
            "title": "Data platform build-out",
            "customer": {
                "crm_account_id": "ACME-US",
                "name": "Acme Corp",
                "parent_crm_account_id": "ACME-HOLD",
                "country": "US",
                "region": "CA",
                "billing_email": "ap@acme.example",
            },
            "legal_entity": "US01",
            "currency": "USD",
            "billing_model": "time_and_materials",
            "start_date": period.first_day.isoformat(),
            "end_date": period.last_day.isoformat(),
            "payment_terms_days": 30,
            "rate_card": [
                {"role": "Senior Consultant", "hourly_rate": "200.00"},
                {"role": "Analyst", "hourly_rate": "120.00"},
            ],
            "not_to_exceed": "50000.00",
            "project_template": "standard",
            "approved_at": now.isoformat(),
            "approved_by": "demo@c2c.example",
        }
    )
