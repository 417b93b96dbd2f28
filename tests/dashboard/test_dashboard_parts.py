"""The dashboard's parts on their own: sessions, CSRF tokens, chart geometry, formatting."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pydantic import SecretStr

from c2c.settings import Settings
from starter.api.auth import Role, TokenTable
from starter.dashboard.charts import bar_chart, sparkline, stacked_bar
from starter.dashboard.pages import safe_next
from starter.dashboard.session import (
    SESSION_TTL_S,
    Session,
    csrf_token,
    csrf_valid,
    has_signing_secret,
    issue_session,
    read_session,
    signing_key,
)
from starter.dashboard.views import Filters, age, hours, money, share

TOKENS = TokenTable.parse("view-1:viewer,op-1:operator")
NOW = 1_800_000_000.0


def key_for(tokens: TokenTable, **settings: str) -> bytes:
    secrets = {k: SecretStr(v) for k, v in settings.items()}
    return signing_key(Settings(_env_file=None, **secrets), tokens)  # type: ignore[call-arg]


def test_a_session_names_its_role_and_not_its_token() -> None:
    key = key_for(TOKENS)
    value = issue_session(key, "op-1", Role.OPERATOR, "Olga", now=NOW)
    assert "op-1" not in value
    session = read_session(key, TOKENS, value, now=NOW + 60)
    assert session is not None
    assert (session.role, session.name, session.operator) == (Role.OPERATOR, "Olga", "Olga")
    assert session.allows(Role.OPERATOR)


def test_forged_expired_and_revoked_sessions_are_no_sessions() -> None:
    key = key_for(TOKENS)
    value = issue_session(key, "view-1", Role.VIEWER, "", now=NOW)
    payload, mac = value.split(".")
    assert read_session(key, TOKENS, f"{payload}x.{mac}", now=NOW) is None
    assert read_session(key, TOKENS, "garbage", now=NOW) is None
    assert read_session(key, TOKENS, None, now=NOW) is None
    assert read_session(key, TOKENS, value, now=NOW + SESSION_TTL_S + 1) is None
    # Signed with another deployment's key.
    assert read_session(key_for(TOKENS, C2C_WEBHOOK_SECRET="s"), TOKENS, value, now=NOW) is None
    # The token was removed from the configuration (the key alone would not notice if the
    # same key were kept, so the fingerprint is checked too).
    assert read_session(key, TokenTable.parse("op-1:operator"), value, now=NOW) is None


def test_csrf_tokens_bind_the_browser_and_the_session() -> None:
    key = key_for(TOKENS)
    one = Session(role=Role.OPERATOR, session_id="s1")
    other = Session(role=Role.OPERATOR, session_id="s2")
    token = csrf_token(key, "nonce-a", one)
    assert csrf_valid(key, "nonce-a", one, token)
    assert not csrf_valid(key, "nonce-b", one, token)
    assert not csrf_valid(key, "nonce-a", other, token)
    assert not csrf_valid(key, None, one, token)
    assert not csrf_valid(key, "nonce-a", one, None)


def test_redirects_stay_on_the_dashboard() -> None:
    assert safe_next("/?stage=active") == "/?stage=active"
    assert safe_next("/contracts/C-1") == "/contracts/C-1"
    for outside in ("https://evil.example/", "//evil.example", "/\\evil.example", "", None):
        assert safe_next(outside) == "/"


def test_filters_round_trip_through_the_query_string() -> None:
    filters, problems = Filters.parse({"stage": "on_hold", "legal_entity": "gb01", "period": ""})
    assert problems == []
    assert filters == Filters(stage="on_hold", legal_entity="GB01")
    assert filters.url(stage="active") == "/?stage=active&legal_entity=GB01"
    assert filters.url(stage=None, legal_entity=None) == "/"


def test_a_sparkline_spans_its_box_and_skips_gaps() -> None:
    line = sparkline(["a", "b", "c", "d"], [10, None, "30", 20.0], width=100, height=40)
    assert line is not None
    assert [p.label for p in line.points] == ["a", "c", "d"]
    # The lowest value sits at the bottom of the box and the highest at the top.
    assert line.polyline == "4.0,36.0 65.3,4.0 96.0,20.0"
    assert (line.minimum, line.maximum, line.latest.value) == (10, 30, 20)
    flat = sparkline(["a", "b"], [5, 5], width=100, height=40)
    assert flat is not None and {p.y for p in flat.points} == {"20.0"}
    assert sparkline(["a"], [None]) is None


def test_bars_scale_to_the_largest_and_show_zero_as_a_hairline() -> None:
    bars = bar_chart(["a", "b", "c"], ["0", "1250.50", "2501.00"], width=90, height=41)
    assert [b.height for b in bars] == ["1.0", "20.0", "40.0"]
    assert bars[2].value == Decimal("2501.00")
    assert bar_chart([], []) == []


def test_the_age_bar_splits_by_bucket() -> None:
    segments = stacked_bar({"<4h": 1, "4-24h": 0, "1-3d": 1, ">3d": 2}, width=100)
    assert [(s.bucket, s.x, s.width) for s in segments] == [
        ("<4h", "0.0", "25.0"),
        ("1-3d", "25.0", "25.0"),
        (">3d", "50.0", "50.0"),
    ]
    assert stacked_bar({}) == []


def test_values_read_as_people_read_them() -> None:
    assert [hours(v) for v in (None, 0.25, 5, 47.96, 72)] == [
        "—",
        "15 min",
        "5.0 h",
        "48.0 h",
        "3.0 d",
    ]
    assert share(0.125) == "12.5 %"
    # Money keeps every digit it was given; it never goes through float.
    assert money("12345678901234.01", "USD") == "12,345,678,901,234.01 USD"
    now = datetime(2026, 10, 5, 12, tzinfo=UTC)
    assert age(now - timedelta(days=2, hours=3), now) == "2d 3h"
    assert age(now - timedelta(minutes=75), now) == "1h 15m"


def test_the_session_secret_signs_sessions_and_its_rotation_ends_them() -> None:
    key = key_for(TOKENS, C2C_SESSION_SECRET="first")
    assert key != key_for(TOKENS)
    value = issue_session(key, "op-1", Role.OPERATOR, "Olga", now=NOW)
    assert read_session(key_for(TOKENS, C2C_SESSION_SECRET="first"), TOKENS, value, now=NOW)
    rotated = key_for(TOKENS, C2C_SESSION_SECRET="second")
    assert read_session(rotated, TOKENS, value, now=NOW) is None
    # A blank value is no secret: the key is the one without it.
    assert key_for(TOKENS, C2C_SESSION_SECRET="") == key_for(TOKENS)
    # The webhook secret's part of the key is what it was before the session secret existed,
    # so upgrading does not end the sessions of a deployment that does not set one.
    legacy = hashlib.sha256(b"c2c dashboard v1")
    for entry in sorted(TOKENS.entries, key=lambda e: (e.digest, e.role.value)):
        legacy.update(b"\0token\0" + entry.digest + b"\0" + entry.role.value.encode())
    legacy.update(b"\0secret\0" + b"w")
    assert key_for(TOKENS, C2C_WEBHOOK_SECRET="w") == legacy.digest()


def test_has_signing_secret_needs_a_secret_beside_the_tokens() -> None:
    bare = Settings(_env_file=None)  # type: ignore[call-arg]
    assert not has_signing_secret(bare)
    given = Settings(_env_file=None, C2C_SESSION_SECRET=SecretStr("s"))  # type: ignore[call-arg]
    assert has_signing_secret(given)


def test_the_contract_page_of_a_contract_that_continued_as_new() -> None:
    """The page's branches for a contract whose earlier runs left history lines and settled
    invoices behind: the whole timeline is given (from the ledger), the settled invoices are
    summed and listed from the ledger's billing facts."""
    from datetime import date

    from domain.models import ContractStatus, HistoryEntry, SettledInvoices
    from ledger.models import BillingFact
    from starter.dashboard.pages import templates

    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    status = ContractStatus(
        contract_id="C-LONG",
        stage="active",
        billing_model="time_and_materials",
        currency="USD",
        history=[HistoryEntry(at=at, stage="active", event="history continued in run 14")],
        history_omitted=120,
        settled_invoices=SettledInvoices(
            count=2,
            subtotal=Decimal("2000.00"),
            total=Decimal("2200.00"),
            tax=Decimal("200.00"),
            amount_paid=Decimal("2200.00"),
        ),
    )
    fact = BillingFact(
        fact_key="C-LONG:2022-01",
        contract_id="C-LONG",
        reference="2022-01",
        period="2022-01",
        period_close=True,
        legal_entity="US01",
        currency="USD",
        requested_at=at,
        invoice_id="INV-000001",
        invoice_date=date(2022, 2, 1),
        due_on=date(2022, 3, 3),
        total=Decimal("1100.00"),
    )
    page = {
        "id": "contract-C-LONG",
        "run_id": "r",
        "status": "running",
        "started_at": at,
        "closed_at": None,
        "customer_id": "ACME",
        "legal_entity": "US01",
        "billing_model": "time_and_materials",
    }
    values = {
        "session": Session(role=Role.OPERATOR, session_id="s"),
        "auth_enabled": False,
        "can_act": True,
        "csrf_field": "csrf",
        "csrf": "t",
        "here": "/contracts/C-LONG",
        "refresh_s": 0,
        "flash": None,
        "stages": [],
        "actions": [],
        "workflow": page,
        "decided": [],
    }
    template = templates.get_template("contract.html")
    listed = template.render(contract=status, settled=[fact], **values)
    assert "120 earlier ones are in the ledger" in listed
    assert "Settled in earlier runs" in listed and "2 invoices" in listed
    assert 'data-invoice="INV-000001"' in listed and "No invoice yet" not in listed
    # Without the ledger's facts, the page says where the invoices are.
    summed = template.render(contract=status, settled=[], **values)
    assert "listed in the ERP" in summed and "settled-invoices" not in summed


def test_the_contract_page_lists_write_offs_with_their_erp_reference() -> None:
    from datetime import date

    from domain.models import ContractStatus, WriteOffSummary
    from starter.dashboard.pages import templates

    def write_off(n: int, erp_ref: str | None) -> WriteOffSummary:
        return WriteOffSummary(
            write_off_id=f"C-CAP:write-off-{n}",
            reference="2026-10",
            period="2026-10",
            amount=Decimal("1100.00"),
            operator="finance@example.com",
            written_off_on=date(2026, 11, 4),
            erp_ref=erp_ref,
        )

    status = ContractStatus(
        contract_id="C-CAP",
        stage="active",
        billing_model="time_and_materials",
        currency="USD",
        written_off=Decimal("2200.00"),
        write_offs=[write_off(1, "JE-118"), write_off(2, None)],
    )
    page = {
        "id": "contract-C-CAP",
        "run_id": "r",
        "status": "running",
        "started_at": datetime(2026, 11, 2, tzinfo=UTC),
        "closed_at": None,
        "customer_id": "ACME",
        "legal_entity": "US01",
        "billing_model": "time_and_materials",
    }
    listed = templates.get_template("contract.html").render(
        contract=status,
        settled=[],
        session=Session(role=Role.VIEWER, session_id="s"),
        auth_enabled=False,
        can_act=False,
        csrf_field="csrf",
        csrf="t",
        here="/contracts/C-CAP",
        refresh_s=0,
        flash=None,
        stages=[],
        actions=[],
        workflow=page,
        decided=[],
    )
    assert 'data-write-off="C-CAP:write-off-1"' in listed and "<code>JE-118</code>" in listed
    assert "not in the ERP" in listed and "finance@example.com" in listed
