"""Secrets, tokens, bank details and tax ids never reach a log line, in any component.

Every component (``c2c api``, ``worker``, ``sandbox``, the CLI, and ``c2c up``, which runs
those as processes) logs through ``c2c.logs.configure_logging``; these tests configure it as
the components do, with JSON on a captured stream, drive each component for real with values
that are known strings, and look for them in everything captured.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, SecretStr
from temporalio.client import Client
from temporalio.worker import Worker

from c2c.logs import REDACTED, configure_logging, get_logger, is_sensitive, redact, scrub_text
from c2c.settings import Settings
from c2c.signing import sign
from domain.models import ContractApproved
from domain.names import SIGNATURE_HEADER
from starter.api.contracts import get_status, start_contract
from tests.starter.helpers import reset_logging
from tests.support import WEBHOOK_SECRET, approval_payload, serve

TAX_ID = "DE-TAXID-4471902"
IBAN = "DE89370400440532013000"
BIC = "COBADEFFXXX"
ACCOUNT = "ACCT-000123456789"
ROUTING = "ROUTING-021000021"
SORT_CODE = "SORT-40-47-84"
TOKEN = "tok-operator-5c1d9e"
API_KEY = "key-live-8e0b7a"
PASSWORD = "pw-hunter2-0f3c"
SECRET = "whsec-log-test-2ab4"
#: Values no log line may carry.
KNOWN = (TAX_ID, IBAN, BIC, ACCOUNT, ROUTING, SORT_CODE, TOKEN, API_KEY, PASSWORD, SECRET)

Lines = Callable[[], list[dict[str, Any]]]


@dataclass
class Captured:
    """A component's log output, as text and as JSON lines."""

    stream: io.StringIO

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def assert_clean(self) -> None:
        leaked = [value for value in KNOWN if value in self.text]
        assert not leaked, f"{leaked} logged in:\n{self.text}"


def capture(component: str, level: str = "INFO") -> Captured:
    out = io.StringIO()
    configure_logging(component, fmt="json", level=level, stream=out)
    # configure_logging quiets httpx; here it logs every request, URL included.
    logging.getLogger("httpx").setLevel(logging.INFO)
    return Captured(out)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    reset_logging()


def sensitive_payload() -> dict[str, Any]:
    """A logged payload that carries every kind of protected value, nested."""
    return {
        "contract_id": "C-9",
        "idempotency_key": "contract-C-9:create_erp_customer",
        "customer": {"name": "Initech", "tax_id": TAX_ID, "vat-number": TAX_ID},
        "bank_accounts": [
            {"iban": IBAN, "bic": BIC, "currency": "EUR"},
            {"account_number": ACCOUNT, "routing_number": ROUTING, "sort_code": SORT_CODE},
        ],
        "headers": {
            "Authorization": f"Bearer {TOKEN}",
            "Cookie": f"session={TOKEN}",
            "X-Api-Key": API_KEY,
            "X-C2C-Signature": f"t=1,v1={SECRET}",
            "Idempotency-Key": "contract-C-9:create_erp_customer",
        },
        "settings": {"webhook_secret": SECRET, "database_password": PASSWORD},
    }


class Customer(BaseModel):
    name: str
    tax_id: str


@dataclass
class BankAccount:
    holder: str
    iban: str


def test_keys_are_redacted_at_any_depth_and_the_rest_is_kept() -> None:
    out = capture("worker")
    payload = sensitive_payload()
    before = json.dumps(payload)

    get_logger("t").info("payload", payload=payload, token=TOKEN, rows=[(1, {"iban": IBAN})])
    logging.getLogger("some.library").warning("sent", extra={"request": payload})

    out.assert_clean()
    [structured, stdlib] = out.lines()
    logged = structured["payload"]
    assert logged["customer"] == {"name": "Initech", "tax_id": REDACTED, "vat-number": REDACTED}
    assert logged["bank_accounts"][0] == {"iban": REDACTED, "bic": REDACTED, "currency": "EUR"}
    assert set(logged["bank_accounts"][1].values()) == {REDACTED}
    assert logged["headers"]["Authorization"] == REDACTED
    assert logged["headers"]["Idempotency-Key"] == "contract-C-9:create_erp_customer"
    assert logged["idempotency_key"] == "contract-C-9:create_erp_customer"
    assert structured["token"] == REDACTED and structured["rows"] == [[1, {"iban": REDACTED}]]
    assert stdlib["request"]["settings"] == {
        "webhook_secret": REDACTED,
        "database_password": REDACTED,
    }
    # The caller's objects are left as they were.
    assert json.dumps(payload) == before


def test_models_and_dataclasses_are_redacted_by_their_fields() -> None:
    out = capture("api")
    get_logger("t").info(
        "records",
        customer=Customer(name="Initech", tax_id=TAX_ID),
        account=BankAccount(holder="Initech", iban=IBAN),
        secret=SecretStr(SECRET),
    )
    out.assert_clean()
    [line] = out.lines()
    assert line["customer"] == {"name": "Initech", "tax_id": REDACTED}
    assert line["account"] == {"holder": "Initech", "iban": REDACTED}


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("authorization", True),
        ("Set-Cookie", True),
        ("api_key", True),
        ("client_secret", True),
        ("refresh_token", True),
        ("C2C_API_TOKENS", True),
        ("signing_key", True),
        ("swift", True),
        ("customer.tax_id", True),
        ("vat_id", True),
        ("idempotency_key", False),
        ("sort_key", False),
        ("key", False),
        ("event_id", False),
        ("crm_account_id", False),
        ("invoice_number", False),
        ("approved_by", True),
        ("billing_email", True),
        ("operator", True),
        ("contact_person", True),
        ("address", False),
        ("customer_id", False),
    ],
)
def test_which_keys_are_sensitive(key: str, sensitive: bool) -> None:
    assert is_sensitive(key) is sensitive


def test_credentials_in_urls_and_messages_are_scrubbed() -> None:
    text = scrub_text(
        f"GET https://erp.example/v1/invoices?api_key={API_KEY}&page=2&access_token={TOKEN} "
        f"postgresql://c2c:{PASSWORD}@db:5432/c2c Authorization: Bearer {TOKEN}"
    )
    assert all(value not in text for value in KNOWN)
    assert "page=2" in text and "postgresql://c2c:[redacted]@db:5432/c2c" in text
    assert redact({"nested": [f"?token={TOKEN}"]}) == {"nested": [f"?token={REDACTED}"]}


#: An e-mail address as it may appear in any log line.
EMAIL_ADDRESS = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,}")


@pytest.mark.parametrize(
    "text",
    [
        "approved in CLM by cfo@c2c.example (version 1)",
        "send to Jane.O'Neil+billing@sub.acme-holdings.example, cc ap@acme.example",
        "operator <ops.lead@firm.co.uk> retried EXC-1",
    ],
)
def test_e_mail_addresses_in_messages_are_scrubbed(text: str) -> None:
    scrubbed = scrub_text(text)
    assert not EMAIL_ADDRESS.search(scrubbed), scrubbed
    assert REDACTED in scrubbed


def test_a_url_host_is_not_taken_for_an_address() -> None:
    kept = "postgresql://c2c@127.0.0.1:5432/c2c and http://localhost:8233"
    assert scrub_text(kept) == kept


async def test_a_contract_run_logs_no_e_mail_address_or_approver(
    worker: Worker, temporal_client: Client, settings: Settings
) -> None:
    """The worker logs each history line of a contract, the approval included; the
    approver's and the billing contact's addresses appear in no line, at DEBUG."""
    out = capture("worker", level="DEBUG")
    customer = {**approval_payload()["customer"], "billing_email": "ap.person@acme.example"}
    data = approval_payload(customer=customer, approved_by="jane.approver@c2c.example")
    approved = ContractApproved.model_validate(data)
    await start_contract(temporal_client, approved, task_queue=settings.task_queue)

    async def active() -> None:
        while (await get_status(temporal_client, approved.contract_id)).stage != "active":
            await asyncio.sleep(0.2)

    await asyncio.wait_for(active(), timeout=120)
    lines = out.lines()
    assert any("approved in CLM" in x["event"] for x in lines), out.text
    found = EMAIL_ADDRESS.findall(out.text)
    assert not found, f"{found} logged in:\n{out.text}"


def test_a_traceback_carries_no_local_variables_and_is_scrubbed() -> None:
    for fmt in ("json", "console"):
        out = io.StringIO()
        configure_logging("worker", fmt=fmt, level="INFO", stream=out)

        def fail(tax_id: str = TAX_ID, password: str = PASSWORD) -> None:
            raise RuntimeError(f"refused https://tax.example/v1/quote?api_key={API_KEY}")

        try:
            fail()
        except RuntimeError:
            get_logger("t").exception("quote failed")
        text = out.getvalue()
        assert "RuntimeError" in text and "quote failed" in text
        assert all(value not in text for value in KNOWN), text


async def test_httpx_request_lines_carry_no_query_secret_or_header(sandbox_url: str) -> None:
    out = capture("worker")
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": API_KEY}
    async with httpx.AsyncClient(base_url=sandbox_url, headers=headers, timeout=10) as client:
        response = await client.get("/crm/v1/accounts", params={"api_key": API_KEY, "limit": 1})
    assert response.status_code < 500
    out.assert_clean()
    [line] = [x for x in out.lines() if "HTTP Request" in x["event"]]
    assert "/crm/v1/accounts?api_key=[redacted]&limit=1" in line["event"]


async def test_the_api_logs_no_token_tax_id_or_signature(
    settings: Settings, state_dir: Path, temporal_client: Client
) -> None:
    api_settings = settings.model_copy(
        update={
            "task_queue": f"c2c-redaction-{uuid.uuid4().hex[:8]}",
            "database_url": f"sqlite:///{state_dir / 'redaction-ledger.db'}",
            "api_tokens": SecretStr(f"{TOKEN}:operator"),
        }
    )
    out = capture("api", level="DEBUG")
    data = approval_payload(customer={**approval_payload()["customer"], "tax_id": TAX_ID})
    with serve(api_settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            body = json.dumps({"id": "evt-1", "type": "contract.approved", "data": data}).encode()
            started = await api.post(
                "/webhooks/clm",
                content=body,
                headers={SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET)},
            )
            # Bank details c2c does not take: refused, naming the field, echoing no value.
            bad = {**data, "customer": {**data["customer"], "iban": IBAN}}
            body = json.dumps({"id": "evt-2", "type": "contract.approved", "data": bad}).encode()
            refused = await api.post(
                "/webhooks/clm",
                content=body,
                headers={SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET)},
            )
            listed = await api.get("/api/contracts", headers={"Authorization": f"Bearer {TOKEN}"})
            unauthorized = await api.get(
                "/api/contracts", headers={"Authorization": f"Bearer {API_KEY}"}
            )
    assert started.status_code == 202, started.text
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "data.customer.iban"
    assert IBAN not in refused.text
    assert (listed.status_code, unauthorized.status_code) == (200, 401)
    out.assert_clean()
    requests = [x for x in out.lines() if x["event"] == "request"]
    assert [x["status"] for x in requests] == [202, 422, 200, 401]


async def test_a_worker_and_the_sandbox_log_no_tax_id(
    worker: Worker, temporal_client: Client, settings: Settings
) -> None:
    """A contract whose customer has a tax id runs through the worker's activities, which send
    it to the sandbox ERP over HTTP; neither side logs it."""
    out = capture("worker", level="DEBUG")
    data = approval_payload(customer={**approval_payload()["customer"], "tax_id": TAX_ID})
    approved = ContractApproved.model_validate(data)
    await start_contract(temporal_client, approved, task_queue=settings.task_queue)

    async def provisioned() -> str:
        while True:
            status = await get_status(temporal_client, approved.contract_id)
            if status.refs.get("erp_customer_id"):
                return status.stage
            await asyncio.sleep(0.2)

    await asyncio.wait_for(provisioned(), timeout=120)
    out.assert_clean()
    lines = out.lines()
    assert any(x.get("contract_id") == approved.contract_id for x in lines)
    assert any("/erp/v1/customers" in x["event"] for x in lines if "HTTP Request" in x["event"])


def test_the_cli_logs_no_secret_from_its_environment(
    temporal_client: Client, tmp_path: Path
) -> None:
    """``c2c contracts start`` in its own process, configured with secrets and DEBUG logs."""
    file = tmp_path / "contract.json"
    file.write_text(
        json.dumps(approval_payload(customer={**approval_payload()["customer"], "tax_id": TAX_ID}))
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}
    env = {
        **clean,
        "TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": temporal_client.namespace,
        "C2C_TASK_QUEUE": f"c2c-redaction-cli-{uuid.uuid4().hex[:8]}",
        "C2C_STATE_DIR": str(tmp_path / "state"),
        "C2C_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "C2C_WEBHOOK_SECRET": SECRET,
        "C2C_API_TOKENS": f"{TOKEN}:operator",
        "C2C_LOG_FORMAT": "json",
        "C2C_LOG_LEVEL": "DEBUG",
    }
    done = subprocess.run(
        [sys.executable, "-m", "starter.cli", "contracts", "start", str(file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Started workflow" in done.stdout
    leaked = [value for value in KNOWN if value in done.stdout + done.stderr]
    assert not leaked, done.stderr
