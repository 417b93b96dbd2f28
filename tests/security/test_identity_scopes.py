"""Tokens with a name and legal entities: parsing, and the API over real HTTP as a scoped
operator sees it (lists, reads, decisions, exceptions, KPIs, the codec), with every decision
recording the token's name in the audit trail and the workflow's history."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ContractApproved
from domain.names import Stage
from ledger import Ledger, get_ledger
from ledger.models import ContractRecordIn, ExceptionIn
from starter.api.auth import Identity, Role, TokenTable, hashed_entry
from starter.api.contracts import contract_handle, start_contract
from tests.support import approval_payload, serve

UK = f"K{uuid.uuid4().hex[:6].upper()}"
DE = f"D{uuid.uuid4().hex[:6].upper()}"
UK_OPERATOR = "uk-operator-7c1e52aa90"
DE_VIEWER = "de-viewer-2b8f61d3c4"
BOTH_OPERATOR = "both-operator-a41f9e07"
ALL_OPERATOR = "all-operator-e5d3b2c1"
TOKENS = ",".join(
    [
        f"{UK_OPERATOR}:operator:{UK}@olga",
        f"{DE_VIEWER}:viewer:{DE}@dieter",
        f"{BOTH_OPERATOR}:operator:{UK}+{DE}@max",
        f"{ALL_OPERATOR}:operator@ada",
    ]
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Parsing.


def test_an_entry_names_its_holder_and_its_legal_entities() -> None:
    table = TokenTable.parse(TOKENS)
    olga = table.entry_of(UK_OPERATOR)
    assert olga is not None
    assert olga.identity == Identity("olga", Role.OPERATOR, frozenset({UK}))
    max_ = table.entry_of(BOTH_OPERATOR)
    assert max_ is not None and max_.identity.entities == frozenset({UK, DE})
    ada = table.entry_of(ALL_OPERATOR)
    assert ada is not None and ada.identity.entities is None and not ada.identity.scoped
    # A digest entry takes entities and a name the same way.
    hashed = TokenTable.parse(f"{hashed_entry('t0k', Role.OPERATOR)}:UK01@ci-bot")
    assert hashed.entry_of("t0k") == hashed.entries[0]
    assert hashed.entries[0].identity == Identity("ci-bot", Role.OPERATOR, frozenset({"UK01"}))
    # Without a name, the token is named by its digest (never by the token itself).
    [unnamed] = TokenTable.parse("plain-token:viewer").entries
    assert unnamed.identity.name == f"token-{unnamed.digest.hex()[:8]}"
    assert "plain-token" not in unnamed.identity.name
    # An @ inside a token stays part of the token when no name follows it.
    assert TokenTable.parse("a@b:operator").role_of("a@b") is Role.OPERATOR
    # A token limited to some entities is never handed to the local tools (the demo).
    assert TokenTable.parse(f"{UK_OPERATOR}:operator:UK01").first_with(Role.OPERATOR) is None


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (
            "tok:operator:uk01",
            "joined by +, e.g. UK01+DE01; got 'uk01'",
        ),
        ("tok:operator:UK01+x@olga", "legal entities are codes of 2-10 capitals"),
        ("tok:operator@ol ga", "the name after @ must be"),
        ("a:operator@olga,b:viewer@olga", "entry 2: the name 'olga' is entry 1's too"),
        ("tok:UK01", "unknown role 'UK01'"),
    ],
)
def test_malformed_names_and_entities_are_named(spec: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        TokenTable.parse(spec)
    assert problem in str(caught.value)


def test_an_identity_of_some_entities_sees_only_theirs() -> None:
    olga = Identity("olga", Role.OPERATOR, frozenset({"UK01"}))
    assert olga.sees("UK01") and not olga.sees("DE01")
    # A contract whose entity is not known is not shown to a scoped identity.
    assert not olga.sees(None)
    assert Identity("ada", Role.OPERATOR).sees(None)


# The API over HTTP.


@pytest.fixture(scope="module")
def scope_settings(settings: Settings, state_dir: Path) -> Settings:
    return settings.model_copy(
        update={
            # No worker polls this queue: the contracts stay as they were started.
            "task_queue": f"c2c-scope-test-{uuid.uuid4().hex[:8]}",
            "database_url": f"sqlite:///{state_dir / f'scope-{uuid.uuid4().hex[:6]}.db'}",
            "api_tokens": SecretStr(TOKENS),
        }
    )


@pytest.fixture(scope="module")
def scope_ledger(scope_settings: Settings) -> Ledger:
    return get_ledger(scope_settings.ledger_url)


@pytest.fixture(scope="module")
def scoped_url(scope_settings: Settings) -> Iterator[str]:
    with serve(scope_settings) as url:
        yield url


@pytest_asyncio.fixture
async def http(scoped_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=scoped_url, timeout=30) as client:
        yield client


class Contracts:
    """One contract in each entity, each with an open exception in the ledger."""

    def __init__(self, uk: ContractApproved, de: ContractApproved, exceptions: dict[str, str]):
        self.uk, self.de, self.exceptions = uk, de, exceptions


def _record(ledger: Ledger, event: ContractApproved) -> str:
    now = datetime.now(UTC)
    ledger.upsert_contract(
        ContractRecordIn(
            contract_id=event.contract_id,
            workflow_id=f"contract-{event.contract_id}",
            stage=Stage.VALIDATING,
            updated_at=now,
            customer_id=event.customer.crm_account_id,
            legal_entity=event.legal_entity,
            billing_model=event.billing_model,
            currency=event.currency,
            contract_value=event.contract_value,
            approved_at=event.approved_at,
        )
    )
    exception_id = f"EXC-{uuid.uuid4().hex[:10]}"
    ledger.open_exception(
        ExceptionIn(
            exception_id=exception_id,
            contract_id=event.contract_id,
            workflow_id=f"contract-{event.contract_id}",
            stage=Stage.VALIDATING,
            system="erp",
            code="unknown_legal_entity",
            message=f"no legal entity {event.legal_entity}",
            queue="legal",
            opened_at=now,
        )
    )
    return exception_id


@pytest_asyncio.fixture(scope="module")
async def started(
    temporal_client: Client, scope_settings: Settings, scope_ledger: Ledger
) -> Contracts:
    uk = ContractApproved.model_validate(approval_payload(legal_entity=UK))
    de = ContractApproved.model_validate(approval_payload(legal_entity=DE))
    for event in (uk, de):
        await start_contract(temporal_client, event, task_queue=scope_settings.task_queue)
    exceptions = {event.contract_id: _record(scope_ledger, event) for event in (uk, de)}
    # Visibility takes a moment to index new workflows.
    for _ in range(200):
        found = [
            wf.id async for wf in temporal_client.list_workflows(f"LegalEntity IN ('{UK}', '{DE}')")
        ]
        if len(found) == 2:
            break
        await asyncio.sleep(0.1)
    return Contracts(uk, de, exceptions)


async def _listed(http: httpx.AsyncClient, token: str) -> set[str]:
    answer = await http.get("/api/contracts", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return {item["contract_id"] for item in answer.json()["items"]}


async def test_a_scoped_token_lists_only_its_entities_contracts(
    http: httpx.AsyncClient, started: Contracts
) -> None:
    ours = {started.uk.contract_id, started.de.contract_id}
    assert _listed_of(await _listed(http, UK_OPERATOR), ours) == {started.uk.contract_id}
    assert _listed_of(await _listed(http, DE_VIEWER), ours) == {started.de.contract_id}
    assert _listed_of(await _listed(http, BOTH_OPERATOR), ours) == ours
    assert _listed_of(await _listed(http, ALL_OPERATOR), ours) == ours
    # Nothing of any other entity reaches a scoped token either.
    answer = await http.get("/api/contracts", headers=bearer(UK_OPERATOR))
    assert {item["legal_entity"] for item in answer.json()["items"]} == {UK}


def _listed_of(listed: set[str], ours: set[str]) -> set[str]:
    return listed & ours


async def test_another_entitys_contract_is_answered_as_one_that_does_not_exist(
    http: httpx.AsyncClient, started: Contracts
) -> None:
    de = started.de.contract_id
    unknown = await http.get("/api/contracts/NO-SUCH-CONTRACT", headers=bearer(UK_OPERATOR))
    hidden = await http.get(f"/api/contracts/{de}", headers=bearer(UK_OPERATOR))
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == unknown.json()
    assert unknown.json()["error"]["code"] == "contract_not_found"
    body = {"effective_date": "2026-10-15", "reason": "customer left"}
    for path, payload in [
        (f"/api/contracts/{de}/terminate", body),
        (
            f"/api/contracts/{de}/credit-notes",
            {"invoice_id": "INV-1", "amount": "10.00", "reason": "wrong rate"},
        ),
        (
            f"/api/contracts/{de}/amendments",
            {"amendment_id": "A-1", "effective_date": "2026-10-15", "reason": "scope"},
        ),
    ]:
        answer = await http.post(path, json=payload, headers=bearer(UK_OPERATOR))
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == "contract_not_found"


async def test_a_decision_records_the_tokens_name_in_the_audit_trail_and_history(
    http: httpx.AsyncClient,
    started: Contracts,
    scope_ledger: Ledger,
    temporal_client: Client,
) -> None:
    uk = started.uk.contract_id
    answer = await http.post(
        f"/api/contracts/{uk}/credit-notes",
        # What the client claims about who asks is replaced by the token's name.
        json={
            "invoice_id": "INV-1",
            "amount": "10.00",
            "reason": "wrong rate",
            "requested_by": "mallory",
        },
        headers=bearer(UK_OPERATOR),
    )
    assert answer.status_code == 202, answer.text
    credit_note_id = answer.json()["credit_note_id"]
    trail = [e.event for e in scope_ledger.audit_trail(uk)]
    assert f"credit note {credit_note_id} of 10.00 on invoice INV-1 requested by olga" in trail
    assert not any("mallory" in e for e in trail)
    signalled: list[dict[str, Any]] = []
    async for event in contract_handle(temporal_client, uk).fetch_history_events():
        if event.HasField("workflow_execution_signaled_event_attributes"):
            attributes = event.workflow_execution_signaled_event_attributes
            [value] = await temporal_client.data_converter.decode(attributes.input.payloads)
            signalled.append(value)
    assert [s["requested_by"] for s in signalled] == ["olga"]


async def test_a_scoped_token_sees_and_decides_only_its_entities_exceptions(
    http: httpx.AsyncClient, started: Contracts
) -> None:
    uk_exception = started.exceptions[started.uk.contract_id]
    de_exception = started.exceptions[started.de.contract_id]
    listed = await http.get("/api/exceptions?status=all", headers=bearer(UK_OPERATOR))
    assert {i["exception_id"] for i in listed.json()["items"]} == {uk_exception}
    listed = await http.get("/api/exceptions", headers=bearer(ALL_OPERATOR))
    assert {uk_exception, de_exception} <= {i["exception_id"] for i in listed.json()["items"]}
    # Another entity's exception does not exist for this token.
    hidden = await http.post(f"/api/exceptions/{de_exception}/skip", headers=bearer(UK_OPERATOR))
    unknown = await http.post("/api/exceptions/EXC-NOPE/skip", headers=bearer(UK_OPERATOR))
    assert hidden.status_code == unknown.status_code == 404
    assert (
        hidden.json()["error"]["code"] == unknown.json()["error"]["code"] == "exception_not_found"
    )
    # A viewer of the entity may look but not decide.
    refused = await http.post(f"/api/exceptions/{de_exception}/skip", headers=bearer(DE_VIEWER))
    assert refused.status_code == 403


async def test_kpis_count_only_the_tokens_entities(
    http: httpx.AsyncClient, started: Contracts
) -> None:
    def open_count(report: dict[str, Any]) -> int:
        return sum(q["count"] for q in report["open_exceptions"])

    uk = await http.get("/api/kpis", headers=bearer(UK_OPERATOR))
    both = await http.get("/api/kpis", headers=bearer(BOTH_OPERATOR))
    assert uk.status_code == both.status_code == 200, uk.text
    assert (open_count(uk.json()), open_count(both.json())) == (1, 2)
    own = await http.get("/api/kpis", params={"legal_entity": UK}, headers=bearer(UK_OPERATOR))
    assert own.status_code == 200 and open_count(own.json()) == 1
    other = await http.get("/api/kpis", params={"legal_entity": DE}, headers=bearer(UK_OPERATOR))
    assert other.status_code == 403
    assert DE in other.json()["error"]["message"]


async def test_a_period_close_signals_only_the_tokens_entities(
    http: httpx.AsyncClient, started: Contracts
) -> None:
    answer = await http.post(
        "/api/billing/close-period", json={"period": "2026-10"}, headers=bearer(UK_OPERATOR)
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["contracts_signalled"] == 1


async def test_the_codec_refuses_a_scoped_token(http: httpx.AsyncClient) -> None:
    body = {"payloads": []}
    scoped = await http.post("/codec/decode", json=body, headers=bearer(UK_OPERATOR))
    assert scoped.status_code == 403
    assert "every legal entity" in scoped.json()["error"]["message"]
    # An operator of every entity passes (and is told encryption is off here).
    unscoped = await http.post("/codec/decode", json=body, headers=bearer(ALL_OPERATOR))
    assert unscoped.status_code == 404 and unscoped.json()["error"]["code"] == "encryption_off"


async def test_another_entitys_signed_document_is_answered_as_none(
    http: httpx.AsyncClient, started: Contracts
) -> None:
    de = started.de.contract_id
    hidden = await http.get(f"/api/contracts/{de}/document", headers=bearer(UK_OPERATOR))
    # An operator of every entity is told the same about this contract, which has none.
    absent = await http.get(f"/api/contracts/{de}/document", headers=bearer(ALL_OPERATOR))
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json() == absent.json()
    assert absent.json()["error"]["code"] == "no_signed_document"
