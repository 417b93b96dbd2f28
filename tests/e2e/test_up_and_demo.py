"""End to end, as a user: ``c2c up``, ``c2c demo``, Ctrl-C, and a restart that keeps the state.

Everything runs as separate processes through the installed ``c2c`` console script, on free
loopback ports and a temporary state directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from c2c.loops import resolve
from c2c.ports import free_port

C2C = str(Path(sys.executable).parent / "c2c")
READY_LINE = "c2c is up"
#: An e-mail address, wherever it appears in a log line.
EMAIL_ADDRESS = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,}")
START_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30


@dataclass(frozen=True)
class Stack:
    """Where one ``c2c up`` listens and keeps its state."""

    state_dir: Path
    temporal_port: int
    ui_port: int
    sandbox_port: int
    api_port: int
    worker_metrics_port: int

    def up_args(self) -> list[str]:
        return [
            "up",
            "--state-dir",
            str(self.state_dir),
            "--temporal-port",
            str(self.temporal_port),
            "--ui-port",
            str(self.ui_port),
            "--sandbox-port",
            str(self.sandbox_port),
            "--api-port",
            str(self.api_port),
            "--worker-metrics-port",
            str(self.worker_metrics_port),
        ]

    def client_env(self, base: dict[str, str]) -> dict[str, str]:
        """The environment a user sets to point ``c2c demo`` and friends at this stack."""
        return {
            **base,
            "C2C_API_URL": f"http://127.0.0.1:{self.api_port}",
            "C2C_SANDBOX_URL": f"http://127.0.0.1:{self.sandbox_port}",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "C2C_STATE_DIR": str(self.state_dir),
            "C2C_TEMPORAL_UI_URL": f"http://localhost:{self.ui_port}",
        }


class UpProcess:
    """``c2c up`` running in the background, its output collected line by line."""

    def __init__(self, stack: Stack, env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [C2C, *stack.up_args()],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any(READY_LINE in line for line in self.lines):
            if self.process.poll() is not None:
                pytest.fail(f"c2c up exited with {self.process.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"c2c up did not come up in {START_TIMEOUT_S} s:\n{self.output}")
            time.sleep(0.2)

    def wait_for_exit(self, after: str) -> int:
        """The exit code, once ``c2c up`` has stopped and all its output is read."""
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"c2c up did not stop within {STOP_TIMEOUT_S} s {after}:\n{self.output}")
        self._reader.join(timeout=5)
        return code

    def interrupt(self) -> int:
        """Ctrl-C; returns the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.wait_for_exit("after Ctrl-C")

    def kill_if_running(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _proc_file(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _alive(pid: int) -> bool:
    stat = _proc_file(pid, "stat").decode(errors="replace")
    # The state follows the parenthesised command name; a zombie has already exited.
    return bool(stat) and stat.rpartition(")")[2].split()[0] != "Z"


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (children of children too)."""
    parents: dict[int, int] = {}
    for pid in _pids():
        stat = _proc_file(pid, "stat").decode(errors="replace")
        if stat:
            parents[pid] = int(stat.rpartition(")")[2].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return {pid for pid in found if _alive(pid)}


def processes_mentioning(needle: str) -> set[int]:
    """Live processes whose command line or environment contains ``needle``."""
    me = os.getpid()
    raw = needle.encode()
    return {
        pid
        for pid in _pids()
        if pid != me
        and _alive(pid)
        and (raw in _proc_file(pid, "cmdline") or raw in _proc_file(pid, "environ"))
    }


def c2c(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [C2C, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack(
        state_dir=tmp_path / "state",
        temporal_port=free_port(),
        ui_port=free_port(),
        sandbox_port=free_port(),
        api_port=free_port(),
        worker_metrics_port=free_port(),
    )


@pytest.fixture
def base_env() -> dict[str, str]:
    """This environment without c2c's or Temporal's settings, as on a fresh machine."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}


@pytest.fixture
def ups(stack: Stack) -> Iterator[list[UpProcess]]:
    started: list[UpProcess] = []
    yield started
    for up in started:
        up.kill_if_running()
    # Never leave a server behind on a CI machine, even when the test failed.
    for pid in processes_mentioning(str(stack.state_dir)):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(900)
def test_up_demo_stop_and_restart(
    stack: Stack, base_env: dict[str, str], ups: list[UpProcess], tmp_path: Path
) -> None:
    up = UpProcess(stack, base_env, tmp_path)
    ups.append(up)
    up.wait_until_up()
    assert f"http://127.0.0.1:{stack.api_port}" in up.output
    assert f"http://localhost:{stack.ui_port}" in up.output
    assert "c2c demo" in up.output
    assert f"http://127.0.0.1:{stack.api_port}/metrics (API)" in up.output
    # The worker's metrics moved with the other ports, and answered before the banner said so.
    assert f"http://127.0.0.1:{stack.worker_metrics_port}/metrics (worker)" in up.output

    secret_file = stack.state_dir / "webhook-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = secret_file.read_text().strip()
    children = descendants(up.process.pid)
    assert len(children) >= 4, up.output
    assert not any(secret.encode() in _proc_file(pid, "cmdline") for pid in children)

    env = stack.client_env(base_env)
    demo = c2c("demo", "--timeout", "120", env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr + "\n" + up.output
    assert "Done: contract to cash." in demo.stdout
    tail = demo.stdout.rpartition("Done: contract to cash.")[2]
    assert re.search(r"contract\s+DEMO-\S+ \(closed\)", tail), tail
    # The whole demo ran on the worker's default loop: uvloop where it is installed.
    loop = resolve("auto")
    assert re.search(rf"worker running.*event_loop={loop}", up.output), up.output
    assert re.search(r"invoice\s+\S+: \d+\.\d{2} USD, paid", tail), tail
    assert f"http://localhost:{stack.ui_port}/namespaces/default/workflows/contract-DEMO-" in tail
    match = re.search(r"contract (DEMO-\S+) approved", demo.stdout)
    assert match, demo.stdout
    contract_id = match.group(1)
    # Every component's log of a whole contract to cash: ids, never a person's address (the
    # demo's approver and billing contact have one).
    assert "approved in CLM" in up.output
    addresses = EMAIL_ADDRESS.findall(up.output)
    assert not addresses, f"{addresses} logged by c2c up:\n{up.output}"

    assert up.interrupt() == 0, up.output
    assert "c2c stopped." in up.output
    assert not {pid for pid in children if _alive(pid)}, up.output
    assert not processes_mentioning(str(stack.state_dir))
    for name in ("temporal.db", "ledger.db", "sandbox.db"):
        assert (stack.state_dir / name).exists(), name

    again = UpProcess(stack, base_env, tmp_path)
    ups.append(again)
    again.wait_until_up()
    status = c2c("contracts", "status", contract_id, "--json", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr + "\n" + again.output
    found = json.loads(status.stdout)
    assert found["contract_id"] == contract_id
    assert found["stage"] == "closed"
    assert [i["status"] for i in found["invoices"]] == ["paid"]
    assert (stack.state_dir / "webhook-secret").read_text().strip() == secret

    assert again.interrupt() == 0, again.output
    assert not processes_mentioning(str(stack.state_dir))


@pytest.mark.timeout(300)
def test_a_component_that_dies_stops_the_stack(
    stack: Stack, base_env: dict[str, str], ups: list[UpProcess], tmp_path: Path
) -> None:
    up = UpProcess(stack, base_env, tmp_path)
    ups.append(up)
    up.wait_until_up()
    children = descendants(up.process.pid)
    sandbox = next(
        pid for pid in children if b"starter.cli\x00sandbox" in _proc_file(pid, "cmdline")
    )

    os.kill(sandbox, signal.SIGKILL)

    assert up.wait_for_exit("after the sandbox died") == 1
    assert "sandbox exited with code -9 unexpectedly" in up.output
    assert not {pid for pid in children if _alive(pid)}
    assert not processes_mentioning(str(stack.state_dir))
