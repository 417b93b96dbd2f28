"""The API fuzzed against its own OpenAPI document, over real HTTP, with a real worker.

schemathesis generates requests for every operation of ``/openapi.json``: within the
schema (positive) and outside it (negative), with an operator's token, a viewer's and none.
Every answer must be a documented status with a body that matches the document, and never a
``5xx``. The webhooks are fuzzed with bodies that are not signed by the webhook secret: all of
them are ``401``.

The API runs in a Temporal namespace of its own on the session's dev server, with one
contract started (through its signed webhook) and run by a worker before the fuzzing; after
it, Temporal holds that one workflow, the ledger the same inbound events and exceptions, and
the contract's history only the ``close_period`` signals that accepted requests reported.

The run is bounded and deterministic: ``C2C_FUZZ_EXAMPLES`` examples per operation and mode
(default 20), derandomized, without shrinking.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import schemathesis
import schemathesis.specs.openapi.checks  # registers the OpenAPI checks
from google.protobuf.duration_pb2 import Duration
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from c2c.settings import Settings
from c2c.signing import sign
from c2c.temporal import connect
from domain.names import (
    SEARCH_ATTRIBUTES,
    SIGNAL_CLOSE_PERIOD,
    SIGNATURE_HEADER,
    contract_workflow_id,
)
from ledger import Ledger, get_ledger
from starter.api.contracts import get_status
from tests.starter.helpers import captured_logs
from tests.support import WEBHOOK_SECRET, approval_payload, serve
from worker import contract_worker

OPERATOR = "fuzz-operator-token"
VIEWER = "fuzz-viewer-token"
EXAMPLES = int(os.environ.get("C2C_FUZZ_EXAMPLES", "20"))
WEBHOOKS = ("/webhooks/clm", "/webhooks/psa", "/webhooks/payments")
#: DocuSign's Connect messages: signed by DocuSign's keys, not c2c's, and off by default.
DOCUSIGN_WEBHOOK = "/webhooks/docusign"
#: Ironclad's webhooks: signed with Ironclad's private key, and off by default.
IRONCLAD_WEBHOOK = "/webhooks/ironclad"
#: Every check schemathesis has (``--checks all``): no ``5xx``, documented statuses, headers and
#: bodies, and the schema exactly as strict as the server (valid data accepted, ``ST202``;
#: invalid data refused).
CHECKS = REGISTERED_CHECKS.get_all()


def fuzz_settings_for(examples: int) -> Any:
    """Hypothesis settings of a bounded, repeatable run: a fixed seed, no shrinking (a
    failure is reported as found), no example database."""
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


@pytest_asyncio.fixture(scope="module")
async def fuzz_settings(
    temporal_env: WorkflowEnvironment, settings: Settings, state_dir: Path
) -> Settings:
    """A namespace of its own, with c2c's search attributes, as ``c2c up`` registers them."""
    namespace = f"c2c-fuzz-{uuid.uuid4().hex[:8]}"
    service = temporal_env.client
    await service.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    await service.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                for key in SEARCH_ATTRIBUTES
            },
        )
    )
    return settings.model_copy(
        update={
            "temporal_namespace": namespace,
            "task_queue": f"c2c-fuzz-{uuid.uuid4().hex[:8]}",
            "database_url": f"sqlite:///{state_dir / 'fuzz-ledger.db'}",
            "api_tokens": SecretStr(f"{VIEWER}:viewer,{OPERATOR}:operator"),
            # As deployed: every valid event is recorded, answered and delivered by the queue.
            "webhook_queue": True,
        }
    )


@pytest_asyncio.fixture(scope="module")
async def fuzz_client(fuzz_settings: Settings) -> Client:
    client = await connect(fuzz_settings)
    deadline = time.monotonic() + 60
    while True:  # a new namespace reaches every service of the dev server within seconds
        try:
            await client.count_workflows("ContractId = 'none'")
            return client
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


@pytest_asyncio.fixture(scope="module")
async def fuzz_worker(fuzz_client: Client, fuzz_settings: Settings) -> AsyncIterator[Worker]:
    async with contract_worker(fuzz_client, fuzz_settings) as running:
        yield running


@pytest.fixture(scope="module")
def api_logs() -> Iterator[io.StringIO]:
    """The process's log lines, configured as ``c2c api`` configures them."""
    with captured_logs("api") as out:
        yield out


@pytest.fixture(scope="module")
def api_url(fuzz_settings: Settings, fuzz_worker: Worker, api_logs: io.StringIO) -> Iterator[str]:
    with serve(fuzz_settings) as url:
        yield url


@pytest.fixture(scope="module")
def fuzz_ledger(fuzz_settings: Settings) -> Ledger:
    store = get_ledger(fuzz_settings.ledger_url)
    store.create_all()
    return store


@pytest_asyncio.fixture(scope="module")
async def seeded_contract(api_url: str, fuzz_client: Client) -> str:
    """One contract, started through its signed webhook and provisioned by the worker."""
    data = approval_payload()
    body = json.dumps({"id": f"evt-{uuid.uuid4().hex}", "type": "contract.approved", "data": data})
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        started = await api.post(
            "/webhooks/clm",
            content=body,
            headers={SIGNATURE_HEADER: sign(body.encode(), WEBHOOK_SECRET)},
        )
    assert started.status_code == 202, started.text

    async def active() -> None:
        while True:
            try:  # the event queue starts the workflow moments after the answer
                if (await get_status(fuzz_client, data["contract_id"])).stage == "active":
                    return
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
            await asyncio.sleep(0.2)

    await asyncio.wait_for(active(), timeout=120)
    return str(data["contract_id"])


@dataclass
class State:
    """What a request could change: Temporal's workflows, the ledger's inbound events and
    exceptions, and the ``close_period`` signals the seeded contract received."""

    workflows: list[str]
    inbound: list[tuple[str, str, str]]
    exceptions: list[tuple[str, str]]
    close_period_signals: int


async def state_of(client: Client, ledger: Ledger, contract_id: str) -> State:
    # An accepted POST /api/ops/reconcile starts a reconciliation, which only reads: not
    # a change to the contracts.
    workflows = sorted(
        [wf.id async for wf in client.list_workflows() if not wf.id.startswith("reconcile-")]
    )
    history = await client.get_workflow_handle(contract_workflow_id(contract_id)).fetch_history()
    signals = sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == SIGNAL_CLOSE_PERIOD
    )
    return State(
        workflows=workflows,
        inbound=[(e.source, e.event_id, e.status) for e in ledger.list_inbound_events(None)],
        exceptions=[(e.exception_id, e.status) for e in ledger.list_exceptions()],
        close_period_signals=signals,
    )


@dataclass
class Run:
    """Findings and accepted effects of a fuzzing run."""

    failures: list[str] = field(default_factory=list)
    statuses: dict[str, set[int]] = field(default_factory=dict)
    #: ``close_period`` signals the accepted period closes reported sending.
    signalled: int = 0
    #: Operations with no input a negative case could break.
    without_inputs: set[str] = field(default_factory=set)


def _negation_lost_on_the_wire(case: schemathesis.Case) -> bool:
    """Whether what made a negative case invalid never reaches the server: a query value that
    is no string (a list, an object or null, which a URL cannot carry as generated), or a
    negated header when the test sends the token's ``Authorization`` itself."""
    if any(not isinstance(v, (str, int, float, bool)) for v in (case.query or {}).values()):
        return True
    meta = case.meta
    if meta is None:
        return False
    negated = {
        str(place).lower() for place, info in meta.components.items() if info.mode.is_negative
    }
    return bool(negated) and all(place.endswith("header") for place in negated)


def fuzz_operation(
    operation: Any, mode: schemathesis.GenerationMode, token: str | None, run: Run
) -> None:
    """Fuzz one operation in one mode with one token (or none); record what fails."""
    label = f"{operation.label} [{mode.value}, {'no token' if token is None else token}]"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    examples = EXAMPLES if token == OPERATOR else max(3, EXAMPLES // 4)

    @fuzz_settings_for(examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: schemathesis.Case) -> None:
        if token is None:
            # Generated credentials would be a token the API does not know: drop them.
            case.headers = {
                k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
            }
        response = case.call(headers=headers, timeout=30)
        run.statuses.setdefault(operation.label, set()).add(response.status_code)
        if operation.label == "POST /api/billing/close-period" and response.status_code == 202:
            run.signalled += int(response.json()["contracts_signalled"])
        checks = CHECKS
        if mode.is_negative and _negation_lost_on_the_wire(case):
            checks = [c for c in CHECKS if c.__name__ != "negative_data_rejection"]
        case.validate_response(response, checks=checks, headers=headers)

    try:
        fuzz()
    except Unsatisfiable:
        # Nothing to make invalid: an operation without parameters or a body.
        run.without_inputs.add(operation.label)
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports a group of failures
        run.failures.append(f"{label}: {exc}"[:3000])


def fuzz_every_operation(api_url: str, run: Run) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        for mode in schemathesis.GenerationMode:
            fuzz_operation(operation, mode, OPERATOR, run)
        for token in (VIEWER, None):
            fuzz_operation(operation, schemathesis.GenerationMode.POSITIVE, token, run)
    return labels


async def test_fuzzing_every_operation_finds_no_5xx_no_schema_break_and_changes_nothing(
    api_url: str,
    fuzz_client: Client,
    fuzz_ledger: Ledger,
    seeded_contract: str,
    api_logs: io.StringIO,
) -> None:
    before = await state_of(fuzz_client, fuzz_ledger, seeded_contract)
    run = Run()

    # In a thread: the worker keeps running in this loop while requests are made.
    labels = await asyncio.to_thread(fuzz_every_operation, api_url, run)

    assert not run.failures, "\n\n".join(run.failures)
    assert run.without_inputs == {
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        f"POST {DOCUSIGN_WEBHOOK}",
        f"POST {IRONCLAD_WEBHOOK}",
        # Stripe's events are Stripe's own shape, verified by Stripe's library: no schema here.
        "POST /webhooks/stripe",
    }
    # Unsigned (a generated signature is no signature), every webhook body is refused.
    for path in WEBHOOKS:
        assert run.statuses[f"POST {path}"] == {401}, path
    assert {f"POST {path}" for path in WEBHOOKS} <= set(labels)
    assert len(labels) >= 15
    # The operations were reached past their authorization, and refused by it too.
    assert any(200 <= s < 300 for s in run.statuses["GET /api/contracts"])
    assert {401, 403} <= run.statuses["POST /api/billing/close-period"]
    after = await state_of(fuzz_client, fuzz_ledger, seeded_contract)
    assert after.workflows == before.workflows == [contract_workflow_id(seeded_contract)]
    assert after.inbound == before.inbound
    assert after.exceptions == before.exceptions
    assert after.close_period_signals - before.close_period_signals == run.signalled
    # Every request was logged, and no token with it.
    assert api_logs.getvalue().count('"event": "request"') >= len(labels) * EXAMPLES
    assert OPERATOR not in api_logs.getvalue() and VIEWER not in api_logs.getvalue()


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=30)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
        max_leaves=20,
    )


def _envelopes() -> st.SearchStrategy[bytes]:
    """Bodies a sender could post: events of every type with valid or random data, JSON of
    any shape, and bytes that are no JSON at all."""
    kinds = st.sampled_from(
        ["contract.approved", "contract.amended", "milestone.completed", "payment.succeeded"]
    )
    events = st.builds(
        lambda kind, data, event_id: {"id": event_id, "type": kind, "data": data},
        kinds,
        st.one_of(st.builds(approval_payload), _json_values()),
        st.text(min_size=1, max_size=40),
    )
    return st.one_of(
        events.map(lambda e: json.dumps(e).encode()),
        _json_values().map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=512),
    )


def _signatures(body: bytes, choice: int, garbage: str) -> str | None:
    """A signature header that is not a valid signature of ``body`` by the webhook secret."""
    now = int(time.time())
    return [
        None,
        garbage,
        sign(body, "not-the-webhook-secret"),
        sign(body, WEBHOOK_SECRET, timestamp=now - 3600),
        sign(body, WEBHOOK_SECRET, timestamp=now + 3600),
        sign(body + b"\n", WEBHOOK_SECRET),
        f"t={now},v1={garbage}",
    ][choice]


def fuzz_webhooks(api: httpx.Client) -> tuple[list[str], int]:
    failures: list[str] = []
    sent = 0

    @fuzz_settings_for(EXAMPLES * 3)
    @given(
        path=st.sampled_from(WEBHOOKS),
        body=_envelopes(),
        choice=st.integers(min_value=0, max_value=6),
        # Any header value HTTP/1.1 can carry: Latin-1 without control characters, not
        # starting or ending in white space.
        garbage=st.text(
            alphabet=st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=80
        ).map(str.strip),
    )
    def fuzz(path: str, body: bytes, choice: int, garbage: str) -> None:
        nonlocal sent
        header = _signatures(body, choice, garbage)
        headers = [(b"content-type", b"application/json")]
        if header is not None:
            headers.append((SIGNATURE_HEADER.encode(), header.encode("latin-1")))
        response = api.post(path, content=body, headers=headers)
        sent += 1
        if response.status_code != 401 or response.json()["error"]["code"] != "invalid_signature":
            failures.append(f"{path} {header!r} {body[:200]!r}: {response.status_code}")

    fuzz()
    return failures, sent


async def test_webhooks_refuse_every_unsigned_body_and_record_nothing(
    api_url: str, fuzz_client: Client, fuzz_ledger: Ledger, seeded_contract: str
) -> None:
    before = await state_of(fuzz_client, fuzz_ledger, seeded_contract)

    with httpx.Client(base_url=api_url, timeout=30) as api:
        failures, sent = await asyncio.to_thread(fuzz_webhooks, api)

    assert not failures, "\n".join(failures[:20])
    assert sent >= EXAMPLES * 3
    after = await state_of(fuzz_client, fuzz_ledger, seeded_contract)
    assert after == before


def _signed(case: schemathesis.Case, api_url: str) -> dict[str, Any]:
    """The request of a generated webhook case, its body signed by the webhook secret as a
    sender would sign it, unless the case is negative in its signature header (then the header
    is sent as generated, or not at all)."""
    kwargs = case.as_transport_kwargs(base_url=api_url)
    headers = dict(kwargs.get("headers") or {})
    if "json" in kwargs:
        raw = json.dumps(kwargs.pop("json")).encode()
        kwargs["data"] = raw
        headers["Content-Type"] = "application/json"
    else:
        raw = kwargs.get("data") or b""
        raw = raw.encode() if isinstance(raw, str) else raw
    meta = case.meta
    header_negated = (
        meta is not None
        and meta.generation.mode.is_negative
        and any(
            str(location).lower().endswith("header") and info.mode.is_negative
            for location, info in meta.components.items()
        )
    )
    if not header_negated:
        headers = {k: v for k, v in headers.items() if k.lower() != SIGNATURE_HEADER.lower()}
        headers[SIGNATURE_HEADER] = sign(raw, WEBHOOK_SECRET)
    kwargs["headers"] = headers
    return kwargs


#: The refusals of a ``contract.approved`` or ``payment.succeeded`` that its schema allows: the
#: rules across fields that the document states in words (``starter.api.webhook_schemas``).
CROSS_FIELD_REFUSALS = re.compile(
    r"must not be before start_date|digits before the decimal point|more decimal places than"
    r"|appears twice|is already used|contract needs (at least one role|at least one milestone"
    r"|a monthly amount)"
)


def _refused_across_fields(case: schemathesis.Case, response: Any) -> bool:
    """A schema-valid approval or payment refused by a rule across its fields, and by nothing
    else."""
    if response.status_code != 422 or not isinstance(case.body, dict):
        return False
    if case.body.get("type") not in ("contract.approved", "payment.succeeded"):
        return False
    errors = response.json().get("errors") or []
    return bool(errors) and all(CROSS_FIELD_REFUSALS.search(e["message"]) for e in errors)


def fuzz_signed_operation(
    operation: Any, mode: schemathesis.GenerationMode, api_url: str, run: Run
) -> None:
    """Fuzz one webhook in one mode with signed bodies; record what fails.

    A case generated as valid whose body the document's schema refuses (schemathesis does
    not always meet a long ``pattern`` and ``maxLength`` together) is not held to the
    promise of valid data: the server's answer is checked against the document all the same.
    """
    import jsonschema_rs
    import requests

    document = httpx.get(f"{api_url}/openapi.json").json()
    content = document["paths"][operation.path]["post"]["requestBody"]["content"]
    body_schema = jsonschema_rs.validator_for(content["application/json"]["schema"])

    @fuzz_settings_for(EXAMPLES * 2)
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: schemathesis.Case) -> None:
        kwargs = _signed(case, api_url)
        response = requests.request(**kwargs, timeout=30)
        run.statuses.setdefault(f"{operation.label} {mode.value}", set()).add(response.status_code)
        checks = CHECKS
        if mode.is_positive and (
            _refused_across_fields(case, response) or not body_schema.is_valid(case.body)
        ):
            checks = [c for c in CHECKS if c.__name__ != "positive_data_acceptance"]
        case.validate_response(response, checks=checks, transport_kwargs=kwargs)

    try:
        fuzz()
    except (Exception, BaseExceptionGroup) as exc:
        run.failures.append(f"{operation.label} [{mode.value}, signed]: {exc}"[:3000])


def fuzz_signed_webhooks(api_url: str, run: Run) -> None:
    """Every webhook fuzzed from its documented body, signed: within the schema (accepted,
    or refused as a contract's answer) and outside it (refused with ``400``/``422``)."""
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in WEBHOOKS:
            for mode in schemathesis.GenerationMode:
                fuzz_signed_operation(operation, mode, api_url, run)


async def test_signed_webhook_bodies_fuzzed_past_the_signature_find_no_5xx_no_schema_break(
    api_url: str, fuzz_ledger: Ledger, seeded_contract: str
) -> None:
    """Past the signature, a body the document allows is taken in (or refused as the contract's
    answer: an unknown contract, an event id reused with another body) and a body it does not
    allow is refused, with no ``5xx`` and the documented answer either way."""
    run = Run()
    before = len(fuzz_ledger.list_inbound_events(None))

    await asyncio.to_thread(fuzz_signed_webhooks, api_url, run)

    assert not run.failures, "\n\n".join(run.failures)
    for path in WEBHOOKS:
        # Valid bodies reached their processor: taken in, or answered for an unknown contract
        # or invoice.
        accepted = run.statuses[f"POST {path} positive"]
        assert accepted - {401, 422}, (path, accepted)
        assert run.statuses[f"POST {path} negative"] <= {400, 401, 413, 422}, path
    # What was taken in is recorded.
    assert len(fuzz_ledger.list_inbound_events(None)) > before
