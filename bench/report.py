"""Results: per run, under ``bench/results/``, a JSON file and a markdown table with the
command, the date, the machine and the sizes."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starter.stack.components import temporal_binary

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Row:
    """One figure: c2c's value, the baseline's in the same run, and the goal it is held to."""

    metric: str
    value: float | int | str
    unit: str = ""
    baseline: float | int | None = None
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None


@dataclass
class Result:
    """One benchmark run."""

    name: str
    title: str
    sizes: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    command: str = field(default_factory=lambda: _command())
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    machine: dict[str, Any] = field(default_factory=lambda: machine())

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row


def _command() -> str:
    module = Path(sys.argv[0]).stem if sys.argv else "bench"
    return shlex.join(["python", "-m", f"bench.{module}", *sys.argv[1:]])


def _temporal_version() -> str:
    try:
        done = subprocess.run(
            [temporal_binary(), "--version"], capture_output=True, text=True, check=False
        )
    except OSError:
        return "unknown"
    return done.stdout.strip().removeprefix("temporal version ")


def _mem_total_gib() -> float:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def machine() -> dict[str, Any]:
    """The machine a run measured: cores, memory, load, Python and Temporal versions."""
    from importlib.metadata import version

    return {
        "nproc": os.cpu_count(),
        "ram_gib": _mem_total_gib(),
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "temporalio": version("temporalio"),
        "temporal_cli": _temporal_version(),
        "platform": platform.platform(terse=True),
    }


def _fmt(value: float | int | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def markdown(result: Result) -> str:
    """The run as a markdown section."""
    m = result.machine
    lines = [
        f"### {result.title} — {result.started_at[:16].replace('T', ' ')} UTC",
        "",
        f"`{result.command}`",
        "",
        f"Machine: {m['nproc']} cores, {m['ram_gib']} GiB, load {m['loadavg_1m_at_start']} at "
        f"start; Python {m['python']}, temporalio {m['temporalio']}, temporal CLI "
        f"{m['temporal_cli']}. Sizes: "
        + ", ".join(f"{k} {_fmt(v)}" for k, v in result.sizes.items())
        + ".",
        "",
        "| figure | c2c | baseline | ratio | goal | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in result.rows:
        unit = f" {row.unit}" if row.unit else ""
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(
            f"| {row.metric} | {_fmt(row.value)}{unit} | {_fmt(row.baseline)} | "
            f"{_fmt(row.ratio)} | {row.goal} | {met} |"
        )
    if result.notes:
        lines.append("")
        lines.extend(f"- {note}" for note in result.notes)
    lines.append("")
    return "\n".join(lines)


def save(result: Result, results_dir: Path = RESULTS_DIR) -> Path:
    """Write the JSON result and the markdown table into ``results_dir``, and print the table.

    Returns the JSON file's path; the table is beside it, with the suffix ``.md``.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = result.started_at.replace(":", "").replace("-", "")[:15]
    path = results_dir / f"{result.name}-{stamp}.json"
    path.write_text(json.dumps(asdict(result), indent=2, default=str) + "\n", encoding="utf-8")
    section = markdown(result)
    path.with_suffix(".md").write_text(section, encoding="utf-8")
    print(section)
    print(f"results: {path} and {path.with_suffix('.md').name}")
    return path
