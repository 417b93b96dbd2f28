"""``c2c up`` keeps secrets off command lines and, with encryption on, wires the Temporal UI to
the API's codec server.

The unit tests check the dev server's command line as ``c2c up`` builds it; the end-to-end
test runs ``c2c up`` and ``c2c demo`` with every secret set and reads each child's
``/proc/<pid>/cmdline`` and ``environ``, then the stored history and the codec through the
stack's own API.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from temporalio.api.history.v1 import History
from temporalio.client import Client

from c2c.codec import Keyring
from c2c.ports import free_port
from c2c.settings import Settings
from starter.api.auth import Role, hashed_entry
from starter.stack.components import StartupFailed, UpOptions
from starter.stack.up import Stack as UpStack
from tests.e2e.test_up_and_demo import Stack, UpProcess, c2c, descendants, processes_mentioning
from tests.security.test_encrypted_history import payloads_in

KEY = Keyring.new_entry("up-k1")
WEBHOOK_SECRET = "whsec-for-the-up-test-5f4e3d2c1b"
OPERATOR = "operator-for-the-up-test-0a9b8c7d"
VIEWER = "viewer-for-the-up-test-1b2c3d4e5f"


def settings_with(**changes: object) -> Settings:
    return Settings(_env_file=None).model_copy(update=changes)  # type: ignore[call-arg]


def test_with_a_key_the_ui_decodes_through_the_api(tmp_path: Path) -> None:
    options = UpOptions(state_dir=tmp_path, ui_port=9233, api_port=9000)
    stack = UpStack(options, settings=settings_with(encryption_key=SecretStr(KEY)))
    env: dict[str, str] = {}
    argv = stack.temporal_command(env)
    flag = argv.index("--ui-codec-endpoint")
    assert argv[flag + 1] == "http://127.0.0.1:9000/codec"
    # The UI on a non-default port may call the codec; the configured origins still may.
    origins = env["C2C_CODEC_CORS_ORIGINS"].split(",")
    assert origins[:2] == ["http://localhost:8233", "http://127.0.0.1:8233"]
    assert {"http://localhost:9233", "http://127.0.0.1:9233"} <= set(origins)
    assert KEY.partition(":")[2] not in " ".join(argv)
    assert stack.encryption_note == (
        "Payloads are encrypted in Temporal (key id up-k1). "
        "The Temporal UI decrypts them through http://127.0.0.1:9000/codec."
    )


@pytest.mark.parametrize("ui", [True, False])
def test_without_a_key_or_a_ui_there_is_no_codec_endpoint(tmp_path: Path, ui: bool) -> None:
    key = SecretStr(KEY) if not ui else None
    stack = UpStack(
        UpOptions(state_dir=tmp_path, ui=ui), settings=settings_with(encryption_key=key)
    )
    env: dict[str, str] = {}
    assert "--ui-codec-endpoint" not in stack.temporal_command(env)
    assert env == {}


def test_a_malformed_key_stops_up_before_anything_starts(tmp_path: Path) -> None:
    bad = "k1:" + base64.b64encode(b"too short").decode()
    settings = settings_with(encryption_key=SecretStr(bad))
    stack = UpStack(UpOptions(state_dir=tmp_path), settings=settings)
    with pytest.raises(StartupFailed, match="C2C_ENCRYPTION_KEY: key 'k1' is 9 bytes") as caught:
        stack.temporal_command({})
    assert bad.partition(":")[2] not in str(caught.value)


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack(
        tmp_path / "state", free_port(), free_port(), free_port(), free_port(), free_port()
    )


@pytest.fixture
def secret_env(stack: Stack) -> dict[str, str]:
    """A fresh machine's environment with every c2c secret set."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}
    tokens = f"{OPERATOR}:operator,{hashed_entry(VIEWER, Role.VIEWER)}"
    return {
        **base,
        "C2C_ENCRYPTION_KEY": KEY,
        "C2C_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "C2C_API_TOKENS": tokens,
    }


@pytest.fixture
def up(stack: Stack, secret_env: dict[str, str], tmp_path: Path) -> Iterator[UpProcess]:
    process = UpProcess(stack, secret_env, tmp_path)
    yield process
    process.kill_if_running()
    for pid in processes_mentioning(str(stack.state_dir)):
        os.kill(pid, signal.SIGKILL)


def proc(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_up_with_every_secret_set(
    stack: Stack, secret_env: dict[str, str], up: UpProcess, tmp_path: Path
) -> None:
    up.wait_until_up()
    children = descendants(up.process.pid)
    assert len(children) >= 4, up.output
    secrets = [KEY, KEY.partition(":")[2], WEBHOOK_SECRET, OPERATOR, VIEWER]
    api = f"http://127.0.0.1:{stack.api_port}"
    for pid in children:
        cmdline = proc(pid, "cmdline")
        for secret in secrets:
            assert secret.encode() not in cmdline, (pid, cmdline)
    # The secrets reach the c2c components through their environment.
    components = [pid for pid in children if b"starter.cli" in proc(pid, "cmdline")]
    assert len(components) == 3, [proc(pid, "cmdline") for pid in children]
    for pid in components:
        assert f"C2C_ENCRYPTION_KEY={KEY}".encode() in proc(pid, "environ")
    [temporal] = [pid for pid in children if b"start-dev" in proc(pid, "cmdline")]
    assert f"--ui-codec-endpoint\x00{api}/codec\x00".encode() in proc(temporal, "cmdline")
    assert "Payloads are encrypted in Temporal (key id up-k1)" in up.output
    # The UI tells the browser where to decode.
    ui = httpx.get(f"http://127.0.0.1:{stack.ui_port}/api/v1/settings", timeout=30)
    assert ui.status_code == 200, ui.text
    assert ui.json()["Codec"]["Endpoint"] == f"{api}/codec"

    # The whole demo runs encrypted, the CLI and the API included.
    env = {**stack.client_env(secret_env)}
    demo = c2c("demo", "--timeout", "120", env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr + "\n" + up.output
    match = re.search(r"contract (DEMO-\S+) approved", demo.stdout)
    assert match, demo.stdout
    workflow_id = f"contract-{match.group(1)}"

    async def raw_history() -> History:
        plain = await Client.connect(f"127.0.0.1:{stack.temporal_port}")
        fetched = await plain.get_workflow_handle(workflow_id).fetch_history()
        return History(events=fetched.events)

    history = asyncio.run(raw_history())
    payloads = list(payloads_in(history))
    assert payloads and all(p.metadata["encoding"] == b"binary/encrypted" for p in payloads)

    # The UI, from its own origin, decodes through the stack's codec with an operator token.
    first = payloads[0]
    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in first.metadata.items()},
                "data": base64.b64encode(first.data).decode(),
            }
        ]
    }
    origin = f"http://localhost:{stack.ui_port}"
    headers = {"Authorization": f"Bearer {OPERATOR}", "Origin": origin, "X-Namespace": "default"}
    decoded = httpx.post(f"{api}/codec/decode", json=body, headers=headers, timeout=30)
    assert decoded.status_code == 200, decoded.text
    assert decoded.headers["access-control-allow-origin"] == origin
    [opened] = decoded.json()["payloads"]
    assert base64.b64decode(opened["metadata"]["encoding"]) == b"json/plain"
    viewer = {**headers, "Authorization": f"Bearer {VIEWER}"}
    assert httpx.post(f"{api}/codec/decode", json=body, headers=viewer).status_code == 403

    assert up.interrupt() == 0, up.output
