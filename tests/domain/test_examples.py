"""Every example in ``examples/`` parses as the CLI would read it: contracts as
``ContractApproved``, the files in ``examples/amendments/`` as ``Amendment``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.models import Amendment, ContractApproved
from domain.names import BillingModel

ROOT = Path(__file__).resolve().parents[2] / "examples"
CONTRACTS = sorted(ROOT.glob("*.json"))
AMENDMENTS = sorted((ROOT / "amendments").glob("*.json"))


def _contract(path: Path) -> ContractApproved:
    return ContractApproved.model_validate(json.loads(path.read_text()))


@pytest.mark.parametrize("path", CONTRACTS, ids=[p.name for p in CONTRACTS])
def test_example_contract_is_valid(path: Path) -> None:
    _contract(path)


@pytest.mark.parametrize("path", AMENDMENTS, ids=[p.name for p in AMENDMENTS])
def test_example_amendment_is_valid(path: Path) -> None:
    Amendment.model_validate(json.loads(path.read_text()))


def test_there_are_examples() -> None:
    assert CONTRACTS
    assert AMENDMENTS


def test_every_billing_model_has_an_example() -> None:
    assert {_contract(p).billing_model for p in CONTRACTS} == set(BillingModel)


def test_examples_are_distinct_contracts() -> None:
    # Each file starts its own workflow: a shared contract_id would make one a duplicate.
    contracts = [_contract(p) for p in CONTRACTS]
    assert len({c.contract_id for c in contracts}) == len(contracts)
    assert len({c.event_id for c in contracts}) == len(contracts)


def test_amendment_ids_are_distinct() -> None:
    ids = [json.loads(p.read_text())["amendment_id"] for p in AMENDMENTS]
    assert len(set(ids)) == len(ids)
