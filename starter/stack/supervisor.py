"""Child processes that start together, print under their names and stop together.

Each child runs in its own session (process group), so a Ctrl-C in the terminal reaches only
the supervisor, which then stops the children in reverse order; signalling the whole group
also stops any process a child started. On Linux a child is also told to stop if the
supervisor dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TextIO

#: How long a child may take to stop after SIGTERM before it is killed.
STOP_GRACE_S = 10.0


#: prctl(2), looked up before any fork: the child must not import between fork and exec.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """A started child process and the thread that copies its output."""

    name: str
    process: subprocess.Popen[bytes]
    pump: threading.Thread = field(repr=False)

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id)."""
        return self.process.pid

    def exit_code(self) -> int | None:
        """The child's exit code, or ``None`` while it runs."""
        return self.process.poll()


class Supervisor:
    """Starts children, prefixes their output with their names, and stops them all.

    Args:
        out: Where the children's output and the supervisor's messages go.
    """

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._lock = threading.Lock()
        self.children: list[Child] = []
        self._width = 8

    def say(self, text: str = "", *, name: str | None = None) -> None:
        """Print a line (under ``name`` if given), whole, even while children print."""
        prefix = f"{name:>{self._width}} | " if name else ""
        # A closed terminal or pipe must not stop the pumps: a child whose output is not
        # drained blocks on its next write.
        with self._lock, contextlib.suppress(OSError, ValueError):
            for line in text.splitlines() or [""]:
                self._out.write(f"{prefix}{line}\n")
            self._out.flush()

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> Child:
        """Start a child in its own process group; its output is printed under ``name``."""
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        assert process.stdout is not None
        pump = threading.Thread(
            target=self._pump, args=(name, process.stdout), name=f"out-{name}", daemon=True
        )
        child = Child(name, process, pump)
        self._width = max(self._width, len(name))
        self.children.append(child)
        pump.start()
        return child

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.say(raw.decode(errors="replace").rstrip("\n"), name=name)
        stream.close()

    def first_exited(self) -> Child | None:
        """A child that has exited, if any."""
        return next((c for c in self.children if c.exit_code() is not None), None)

    def stop_all(self, *, grace_s: float = STOP_GRACE_S) -> None:
        """Stop every child, the last started first: SIGTERM, then SIGKILL after ``grace_s``."""
        for child in reversed(self.children):
            self._stop(child, grace_s)
        for child in self.children:
            child.pump.join(timeout=2)
        self.children.clear()

    def _stop(self, child: Child, grace_s: float) -> None:
        if child.exit_code() is None:
            self.say(f"stopping {child.name} (pid {child.pid})")
        _signal_group(child.pid, signal.SIGTERM)
        try:
            child.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.say(f"{child.name} did not stop within {grace_s:.0f} s; killing it")
        # The whole group, in case the child left processes of its own behind.
        _signal_group(child.pid, signal.SIGKILL)
        child.process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
