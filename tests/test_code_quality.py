"""Lint, types and wording are part of the suite, so CI refuses code that is not ruff and mypy
clean, and words that speak of how the work was planned rather than of c2c."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import venv_binary

ROOT = Path(__file__).resolve().parent.parent

#: A tracker's item or a plan's step by number: "issue" or "stop", then a number (with or without
#: "#" or "no."). The repository speaks of c2c and its users; where a change came from belongs in
#: the tracker.
PLANNING_WORDS = re.compile(r"\b(?:issue|stop)s?\s*(?:no\.?\s*)?#?\d+", re.IGNORECASE)


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    result = run(venv_binary("ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def _repository_files() -> list[Path]:
    """Tracked files, and new ones git does not ignore."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files")
    listed = run("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    assert listed.returncode == 0, listed.stderr
    return [ROOT / name for name in listed.stdout.split("\0") if name]


def test_no_words_about_how_the_work_was_planned() -> None:
    found = []
    for path in _repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # binary files and files deleted but not yet staged
        for number, line in enumerate(text.splitlines(), 1):
            for match in PLANNING_WORDS.finditer(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)!r}")
    assert not found, "say what c2c does instead:\n" + "\n".join(found)
