"""Each benchmark script runs end to end at a tiny size, so the scripts keep working.

The scripts start their own stacks (a Temporal dev server, the sandbox, the worker, the API,
the baseline worker) as separate processes, exactly as for a full run; they run at once to
keep this short. Only what a run must produce is checked, never how fast it was: speed is what
the scripts report, on a machine that is not this test's to judge.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.profile import summarise

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "onboarding": ["--contracts", "3", "--single", "1"],
    "month_end": ["--contracts", "3", "--entries", "40"],
    "parked": ["--contracts", "3"],
    "webhooks": ["--requests", "12", "--rounds", "2", "--concurrency", "4"],
    "server_cost": ["--workflows", "2", "--rounds", "1", "--activities", "2"],
    "sandbox_requests": ["--requests", "5", "--rounds", "1"],
    "soak": [
        *("--minutes", "0.5", "--per-minute", "12", "--warmup-minutes", "0.1"),
        *("--interval-s", "10", "--drain-minutes", "3", "--base-port", "0"),
    ],
}


def test_every_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    tracked_docs = {path: path.read_text() for path in (ROOT / "docs").glob("*.md")}
    runs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                f"bench.{name}",
                *args,
                "--workdir",
                str(tmp_path / name),
                "--results-dir",
                str(tmp_path / "results"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, args in TINY.items()
    }
    outputs = {name: run.communicate(timeout=400)[0] for name, run in runs.items()}
    for name, run in runs.items():
        assert run.returncode == 0, f"{name}:\n{outputs[name]}"

    results = {
        path.name.split("-")[0]: json.loads(path.read_text())
        for path in (tmp_path / "results").glob("*.json")
    }
    assert sorted(results) == sorted(TINY)
    # Each run's table is beside its JSON file, and no tracked doc was written to.
    for path in (tmp_path / "results").glob("*.json"):
        assert path.with_suffix(".md").read_text().startswith("### "), path
    assert {path: path.read_text() for path in (ROOT / "docs").glob("*.md")} == tracked_docs
    for name, result in results.items():
        assert result["machine"]["nproc"] >= 1
        assert result["command"].startswith(f"python -m bench.{name} ")
        assert all(row["value"] is not None for row in result["rows"]), name
    rows = {name: {row["metric"]: row for row in r["rows"]} for name, r in results.items()}
    onboarding = rows["onboarding"]
    # Validation, the one ERP step (provision_erp) and the PSA's activation at the least.
    assert onboarding["activities per contract (parked active; max)"]["value"] >= 3
    assert onboarding["approval → active throughput"]["ratio"] > 0
    # The month-end run checked its own invoices against the entries it seeded.
    month_end = rows["month_end"]
    assert month_end["invoiced subtotal = entries × rates"]["met"] is True
    assert month_end["largest payload in any contract history"]["met"] is True
    assert rows["parked"]["close_period delivered and handled by all"]["baseline"] > 0
    webhooks = rows["webhooks"]
    assert webhooks["signed approvals per second"]["baseline"] > 0
    # The queued party's queue started every workflow it answered for.
    queued = "event queue on: approvals answered and their workflows started, per second"
    assert webhooks[queued]["value"] > 0
    assert rows["server_cost"]["server CPU per workflow: all"]["value"] >= 0
    assert rows["sandbox_requests"]["keyed write: sandbox CPU per request"]["value"] >= 0
    # The soak checked the systems of record and the ledger against what it sent.
    soak = rows["soak"]
    assert soak["contracts approved"]["value"] > 0
    assert soak["events lost"]["met"] is True
    assert soak["events duplicated"]["met"] is True


def test_a_profile_is_summarised_by_function_and_by_c2c_code() -> None:
    raw = "\n".join(
        [
            "main (starter/cli/main.py:10);bill_period (activities/billing.py:5);"
            "_send (httpx/_client.py:1) 30",
            "main (starter/cli/main.py:10);price (domain/pricing.py:7) 10",
            "select (selectors.py:3) 60",
        ]
    )

    summary = summarise(raw)

    assert summary.splitlines()[0] == "100 samples"
    assert "    60.0  select (selectors.py)" in summary
    assert "    40.0  main (starter/cli/main.py)" in summary
    assert "    30.0  bill_period (activities/billing.py)" in summary
