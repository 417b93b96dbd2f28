"""Legal entities and tax jurisdictions kept per worker process, counted over real HTTP."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.reference_data import ReferenceData
from activities.registry import build_steps
from c2c.settings import Settings
from connectors.registry import build_connectors
from domain.errors import TransientError
from domain.steps import VALIDATE_CONTRACT, ContractStep
from ledger import get_ledger
from sandbox.testing import run_sandbox_in_thread
from tests.support import approval_payload

ENTITY = "erp GET /legal-entities/{code}"
ADDRESS = "tax POST /addresses/validate"
ACCOUNT = "crm GET /accounts/{crm_account_id}"


class Clock:
    """Monotonic seconds that a test moves on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def own_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A sandbox of this module's own, so that only these tests' requests are counted."""
    path: Path = tmp_path_factory.mktemp("reference-data")
    with run_sandbox_in_thread(f"sqlite:///{path / 'sandbox.db'}", "http://127.0.0.1:9", []) as url:
        yield url


@pytest_asyncio.fixture
async def admin(own_sandbox: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=own_sandbox, timeout=10) as client:
        yield client
        await client.delete("/_admin/faults")


class Worker:
    """One worker process's validation step: its connectors, ledger and reference data."""

    def __init__(self, sandbox_url: str, tmp_path: Path, **settings: Any) -> None:
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            sandbox_url=sandbox_url,
            database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
            state_dir=tmp_path,
            connector_quick_retries=0,
            **settings,
        )
        self.clock = Clock()
        self.connectors = build_connectors(self.settings)
        self.reference = ReferenceData(self.connectors, self.settings, clock=self.clock)
        ledger = get_ledger(self.settings.ledger_url)
        self.steps = build_steps(self.connectors, ledger, self.settings, reference=self.reference)

    async def validate(self, **changes: Any) -> None:
        payload = approval_payload(**changes)
        step = ContractStep.model_validate(
            {"contract_id": payload["contract_id"], "contract": payload}
        )
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            env.info, workflow_id=f"contract-{step.contract_id}", workflow_run_id="run-1"
        )
        await env.run(self.steps[VALIDATE_CONTRACT], step)

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.connectors.aclose()


async def served(admin: httpx.AsyncClient) -> Counter[str]:
    """Requests the sandbox has served, by system, method and route."""
    stats = (await admin.get("/_admin/stats")).json()["requests"]
    return Counter(
        {f"{system} {route}": n for system, routes in stats.items() for route, n in routes.items()}
    )


async def test_a_second_validation_within_the_expiry_asks_neither_system_again(
    own_sandbox: str, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with Worker(own_sandbox, tmp_path) as worker:
        before = await served(admin)
        await worker.validate()
        first = await served(admin) - before
        assert (first[ENTITY], first[ADDRESS], first[ACCOUNT]) == (1, 1, 1), first

        worker.clock.now += 59
        await worker.validate()
        second = await served(admin) - before
        # The CRM account is the contract's own, read every time; the rest was kept.
        assert (second[ENTITY], second[ADDRESS], second[ACCOUNT]) == (1, 1, 2), second

        worker.clock.now += 2  # 61 s after the first read: both have expired
        await worker.validate()
        third = await served(admin) - before
        assert (third[ENTITY], third[ADDRESS], third[ACCOUNT]) == (2, 2, 3), third


async def test_zero_seconds_asks_on_every_step(
    own_sandbox: str, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with Worker(own_sandbox, tmp_path, reference_cache_seconds=0) as worker:
        before = await served(admin)
        await worker.validate()
        await worker.validate()
        counted = await served(admin) - before
        assert (counted[ENTITY], counted[ADDRESS]) == (2, 2), counted


async def test_a_refusal_or_an_unknown_entity_is_never_kept(
    own_sandbox: str, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with Worker(own_sandbox, tmp_path) as worker:
        before = await served(admin)
        for _ in range(2):
            with pytest.raises(ApplicationError, match="unknown_legal_entity"):
                await worker.validate(legal_entity="ZZ99")
        assert (await served(admin) - before)[ENTITY] == 2

        before = await served(admin)
        for _ in range(2):
            assert await worker.reference.legal_entity("ZZ99") is None
        assert (await served(admin) - before)[ENTITY] == 2


async def test_a_failed_read_is_not_kept_and_the_next_step_reads_again(
    own_sandbox: str, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with Worker(own_sandbox, tmp_path) as worker:
        rule = {"system": "tax", "status": 503, "times": 1}
        assert (await admin.post("/_admin/faults", json=rule)).status_code in (200, 201)
        before = await served(admin)
        with pytest.raises(TransientError):
            await worker.reference.jurisdiction("US", "CA")
        assert await worker.reference.jurisdiction("US", "CA")
        assert await worker.reference.jurisdiction("US", "CA")
        assert (await served(admin) - before)[ADDRESS] == 2
