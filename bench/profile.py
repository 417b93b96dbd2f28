"""Sampling profiles of running components with py-spy, summarised as text.

py-spy attaches to a process by id and samples every thread, so it sees both the worker's
activities (on the event loop) and its workflow code (run by the SDK in worker threads), which
an in-process profiler started on the main thread would miss. ``--nonblocking`` keeps it from
pausing the process it samples. The raw output (one collapsed stack per line) stays under
``bench/results/``; the summary lists where the samples were spent, by function, both on CPU
at that frame (self) and anywhere below it (total), counting only c2c's own code for "total".
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from bench.report import Row

#: c2c's own code, for the "total" table (the rest is the SDK, httpx, pydantic, SQLAlchemy...).
OWN_CODE = re.compile(
    r"(?:^|/)(?:(?:activities|connectors|domain|ledger|sandbox|workflows|c2c)/|starter/(?:\w+/)?)[^/]+$"
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    """The py-spy binary beside this Python (the ``bench`` extra), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy recording one process until ``stop``."""

    def __init__(self, pid: int, out: Path, *, rate: int = 50) -> None:
        binary = py_spy()
        if binary is None:
            raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                str(rate),
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> str:
        """Stop sampling, let py-spy write its file, and return the summary."""
        self._process.send_signal(signal.SIGINT)
        try:
            _, err = self._process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            _, err = self._process.communicate()
        if not self.out.exists():
            return f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}"
        return summarise(self.out.read_text(encoding="utf-8"))


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    own = OWN_CODE.search(path)
    where = path[own.start() :].lstrip("/") if own else Path(path).name
    return f"{match['func']} ({where})"


def _own(frame: str) -> bool:
    match = _FRAME.match(frame.strip())
    return bool(match and OWN_CODE.search(match["file"]))


def summarise(raw: str, *, top: int = 20) -> str:
    """The ``top`` functions by self samples, and c2c's own by total samples."""
    self_time: Counter[str] = Counter()
    total_own: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [f for f in stack.split(";") if f]
        # The first frame names the thread ("process 12 ..."/"thread ..."): not code.
        code = [f for f in frames if _FRAME.match(f.strip())]
        if code:
            self_time[_short(code[-1])] += count
        for name in {_short(f) for f in code if _own(f)}:
            total_own[name] += count
    if not samples:
        return "no samples"
    lines = [f"{samples} samples", "", "self  %  function (where)"]
    lines += [f"{100 * n / samples:8.1f}  {name}" for name, n in self_time.most_common(top)]
    lines += ["", "total %  c2c function (where)"]
    lines += [f"{100 * n / samples:8.1f}  {name}" for name, n in total_own.most_common(top)]
    return "\n".join(lines)


#: The note a profiled run carries in its report.
PROFILED_NOTE = (
    "Profiled run (py-spy attached to {what}): its timings include the sampler's cost; "
    "quote the ratio of an unprofiled run."
)


class _Stack(Protocol):
    @property
    def children(self) -> Mapping[str, object]: ...

    def pid(self, component: str) -> int: ...


def profile_components(
    stack: _Stack, components: Iterable[str], results_dir: Path, label: str
) -> dict[str, Profiler]:
    """A running ``Profiler`` per component, writing ``<label>-<component>.pyspy.txt``."""
    return {
        name: Profiler(stack.pid(name), results_dir / f"{label}-{name}.pyspy.txt")
        for name in components
    }


def stop_all(profilers: dict[str, Profiler]) -> dict[str, str]:
    """Stop every profiler; the summary of each by component."""
    return {name: profiler.stop() for name, profiler in profilers.items()}


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) each process has used so far, by name, from ``/proc``.

    The difference of two readings is what a phase cost each component, whatever else the
    machine was running meanwhile: a figure that a busy machine slows down but does not
    inflate, unlike wall time.
    """
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for name, pid in pids.items():
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # The command name in parentheses may hold spaces: count fields after it.
            fields = stat.read().rpartition(")")[2].split()
        used[name] = (int(fields[11]) + int(fields[12])) / tick
    return used


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each process used between two ``cpu_seconds`` readings."""
    return {name: after[name] - before[name] for name in before}


class CpuLaps:
    """The CPU each of a stack's processes uses, phase after phase: ``lap()`` returns what
    each used since the previous lap (or since this was made)."""

    def __init__(self, stack: _Stack) -> None:
        self.pids = {name: stack.pid(name) for name in stack.children}
        self._last = cpu_seconds(self.pids)

    def lap(self) -> dict[str, float]:
        now = cpu_seconds(self.pids)
        spent, self._last = cpu_spent(self._last, now), now
        return spent


CPU_NOTE = (
    "CPU per contract: CPU time (user + system, from /proc) each process used during the phase "
    "÷ contracts; CPU ratios are baseline ÷ c2c."
)


def cpu_rows(
    c2c: dict[str, float],
    baseline: dict[str, float],
    count: int,
    components: Mapping[str, str | None],
) -> list[Row]:
    """Rows of CPU milliseconds per contract of each c2c component, beside the baseline's
    process that does the same part of the work (``None``: the baseline has none)."""
    rows = []
    for name, other in components.items():
        mine = 1000 * c2c[name] / count
        theirs = 1000 * baseline[other] / count if other else None
        ratio = theirs / mine if theirs is not None and mine else None
        rows.append(Row(f"CPU per contract: {name}", mine, "ms", baseline=theirs, ratio=ratio))
    return rows
