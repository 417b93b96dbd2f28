"""``c2c ops subscriptions`` and ``c2c ops events`` on a ledger, as a user runs them: bad input
exits 2 and changes nothing; an event's deliveries are listed and replayed."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ledger import BillingStartIn, InvoiceIssuedIn, Ledger

NOW = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}
    return {
        **clean,
        "C2C_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "C2C_STATE_DIR": str(tmp_path / "state"),
    }


def c2c(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starter.cli", "ops", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def issue(url: str) -> None:
    ledger = Ledger(url)
    ledger.create_all()
    ledger.record_billing_started(
        BillingStartIn(
            contract_id="C-1",
            reference="2026-10",
            period="2026-10",
            period_close=True,
            legal_entity="US01",
            currency="USD",
            requested_at=NOW,
        )
    )
    ledger.record_invoice_issued(
        InvoiceIssuedIn(
            contract_id="C-1",
            reference="2026-10",
            invoice_id="INV-1",
            invoice_date=date(2026, 10, 31),
            due_on=date(2026, 11, 30),
            total=Decimal("1200.00"),
            issued_at=NOW,
        )
    )
    ledger.dispose()


def test_subscriptions_are_added_listed_and_removed_and_events_replayed(
    env: dict[str, str],
) -> None:
    bad = c2c(env, "subscriptions", "add", "ftp://example.com/x", "--event", "invoice.issued")
    assert bad.returncode == 2 and "url: must be an http:// or https:// URL" in bad.stderr
    unknown = c2c(env, "subscriptions", "add", "https://example.com/x", "--event", "invoice.x")
    assert unknown.returncode == 2 and "--event: invoice.x" in unknown.stderr
    assert "No subscriptions." in c2c(env, "subscriptions", "list").stdout

    added = c2c(env, "subscriptions", "add", "https://example.com/x", "--event", "invoice.issued")
    assert added.returncode == 0, added.stderr
    subscription_id = added.stdout.split()[1].rstrip(":")
    assert "Signing secret (shown once): whsec_" in added.stdout
    assert subscription_id in c2c(env, "subscriptions", "list").stdout

    issue(env["C2C_DATABASE_URL"])
    listed = c2c(env, "events", "list", "--status", "pending")
    assert listed.returncode == 0, listed.stderr
    [line] = [x for x in listed.stdout.splitlines() if "invoice.issued" in x]
    event_id = line.split()[0]
    assert subscription_id in line and "pending" in line

    replayed = c2c(env, "events", "replay", event_id, "--subscription", subscription_id)
    assert replayed.returncode == 0, replayed.stderr
    assert f"delivered again to {subscription_id}" in replayed.stdout
    assert c2c(env, "events", "replay", "evt_nope").returncode == 1

    assert c2c(env, "subscriptions", "remove", subscription_id).returncode == 0
    assert "No subscriptions." in c2c(env, "subscriptions", "list").stdout
    assert "failed" in c2c(env, "events", "list").stdout
    assert c2c(env, "subscriptions", "remove", "sub_nope").returncode == 1


def test_secrets_are_sealed_reencrypted_with_a_new_key_and_subscriptions_paused(
    env: dict[str, str], tmp_path: Path
) -> None:
    added = c2c(env, "subscriptions", "add", "https://example.com/x", "--event", "invoice.issued")
    assert added.returncode == 0, added.stderr
    subscription_id = added.stdout.split()[1].rstrip(":")
    secret = added.stdout.split("(shown once): ")[1].strip()
    key_file = tmp_path / "state" / "secrets.key"
    assert key_file.stat().st_mode & 0o777 == 0o600  # made on first use, no key configured
    listed = c2c(env, "subscriptions", "list").stdout
    assert secret not in listed and secret.encode() not in (tmp_path / "ledger.db").read_bytes()

    # Rotation: the new key first, the generated one after it; reencrypt seals with the new.
    new = c2c(env, "subscriptions", "new-key").stdout.strip()
    rotated = {**env, "C2C_SECRETS_KEY": f"{new},{key_file.read_text().strip()}"}
    assert "Re-encrypted 1 " in c2c(rotated, "subscriptions", "reencrypt").stdout
    assert "Re-encrypted 0 " in c2c(rotated, "subscriptions", "reencrypt").stdout
    only_new = {**env, "C2C_SECRETS_KEY": new}
    assert "Re-encrypted 0 " in c2c(only_new, "subscriptions", "reencrypt").stdout
    lost = c2c(
        {**env, "C2C_SECRETS_KEY": key_file.read_text().strip()}, "subscriptions", "reencrypt"
    )
    assert lost.returncode == 1 and subscription_id in lost.stderr
    assert "nothing was changed" in lost.stderr
    bad = c2c({**env, "C2C_SECRETS_KEY": "short"}, "subscriptions", "reencrypt")
    assert bad.returncode == 2 and "C2C_SECRETS_KEY: key 1 is not a Fernet key" in bad.stderr

    paused = c2c(env, "subscriptions", "pause", subscription_id)
    assert paused.returncode == 0 and "Paused" in paused.stdout
    assert "20" in c2c(env, "subscriptions", "list").stdout.splitlines()[-1].split()[-1]
    assert c2c(env, "subscriptions", "resume", subscription_id).returncode == 0
    assert c2c(env, "subscriptions", "pause", "sub_nope").returncode == 1
