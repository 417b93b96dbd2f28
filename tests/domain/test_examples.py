"""Every example contract in ``examples/`` parses as the CLI would read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.models import ContractApproved

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_contract_is_valid(path: Path) -> None:
    ContractApproved.model_validate(json.loads(path.read_text()))


def test_there_are_examples() -> None:
    assert EXAMPLES
