"""The goals benchmark runs its whole method at a tiny size and reports every figure.

It starts its own stack (Temporal dev server, sandbox, c2c's worker and API, the do-nothing
baseline's worker and the reference's worker) and runs the floor as its own process, exactly
as a full run does, through onboarding pairs and month-end pairs. Only the report's shape is
checked, never a figure: speed is what the script reports, on a machine that is not this
test's to judge.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.goals import PARTIES, abba

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_the_parties_run_in_abba_order() -> None:
    assert abba(0) == ["c2c", "reference", "baseline", "floor"]
    assert abba(1) == list(reversed(abba(0)))
    assert sorted(abba(2)) == sorted(PARTIES)


def test_the_goals_benchmark_runs_end_to_end_at_a_tiny_size(tmp_path: Path) -> None:
    tracked_docs = {path: path.read_text() for path in (ROOT / "docs").glob("*.md")}
    args = ["--contracts", "2", "--pairs", "2", "--warmup", "1", "--single", "2", "--entries", "3"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.goals",
            *args,
            *("--workdir", str(tmp_path / "stack"), "--results-dir", str(tmp_path / "results")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    [path] = (tmp_path / "results").glob("goals-*.json")
    result = json.loads(path.read_text())
    assert path.with_suffix(".md").read_text().startswith("### ")
    assert {path: path.read_text() for path in (ROOT / "docs").glob("*.md")} == tracked_docs
    assert result["command"].startswith("python -m bench.goals ")
    rows = {row["metric"]: row for row in result["rows"]}
    for goal in ("G1 ", "G1' ", "G2 ", "G3 "):
        [row] = [r for m, r in rows.items() if m.startswith(goal)]
        assert row["ratio"] > 0 and row["goal"] and row["met"] in (True, False), row
    assert rows["history events per onboarded contract (median)"]["value"] > 0
    assert rows["approval → active, the first after start"]["value"] > 0
    assert rows["largest history payload"]["met"] in (True, False)
    # Every pair is reported, and in ABBA order.
    pairs = result["details"]["pairs"]
    assert [p["order"] for p in pairs] == [abba(0), abba(1)]
    for pair in pairs:
        assert sorted(pair["bursts"]) == sorted(PARTIES)
        assert set(pair["ratios"]) == {"G1", "G1_cpu", "G2", "G3"}
    assert len(result["details"]["warmup"]) == 3
    # The month-end close, in ABBA pairs too (each checked its invoices against its entries).
    close = rows["month-end close, own CPU per contract, c2c ÷ reference"]
    assert close["ratio"] > 0 and close["met"] in (True, False)
    closes = result["details"]["month_end_pairs"]
    assert [c["order"] for c in closes] == [["c2c", "reference"], ["reference", "c2c"]]
    # CPU per process, the stand-in systems apart from c2c's own.
    assert "CPU per contract, c2c: worker (median)" in rows
    assert "CPU per contract, c2c: sandbox (stand-in system) (median)" in rows
    assert "CPU per contract, floor: floor (median)" in rows
