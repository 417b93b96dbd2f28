"""c2c's layers hold: the import contracts of ``pyproject.toml`` are kept, no two packages
import each other, and every module says what it is for."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from tests.package_graph import PACKAGES, cycles, package_graph
from tests.support import venv_binary

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_are_kept() -> None:
    # --no-cache: the check is quick, and leaves no cache folder in the checkout.
    result = subprocess.run(
        [venv_binary("lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_cycle_between_packages() -> None:
    assert cycles(package_graph()) == []


def test_every_module_opens_with_a_docstring() -> None:
    files = [ROOT / "worker.py"]
    for folder in (*PACKAGES, "bench", "tests"):
        files += sorted((ROOT / folder).rglob("*.py"))
    missing = [
        str(path.relative_to(ROOT))
        for path in files
        if ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None
    ]
    assert not missing, "say what each module is for, in a docstring:\n" + "\n".join(missing)
