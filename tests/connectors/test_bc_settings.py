"""Business Central's settings: routes, companies, the account and dimension mapping, and the
connectors a worker builds from them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from c2c.settings import Settings
from connectors.business_central import BusinessCentralErp, invoice_key, project_number
from connectors.registry import build_connectors
from connectors.routing import RoutedErp
from domain.names import ExceptionQueue
from tests.bc_support import dimensions


def test_routes_take_business_central(monkeypatch: pytest.MonkeyPatch) -> None:
    routes = '{"US01": "netsuite", "UK01": "business-central", "*": "reference"}'
    monkeypatch.setenv("C2C_ERP_ROUTES", routes)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert [settings.erp_for(e) for e in ("US01", "UK01", "DE01")] == [
        "netsuite",
        "business-central",
        "reference",
    ]
    monkeypatch.setenv("C2C_ERP_ROUTES", '{"UK01": "dynamics"}')
    with pytest.raises(ValidationError, match="business-central"):
        Settings(_env_file=None)  # type: ignore[call-arg]


async def test_a_worker_builds_business_central_only_when_an_entity_routes_to_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("C2C_ERP_ROUTES", raising=False)
    plain = build_connectors(Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        assert not isinstance(plain.erp, RoutedErp)
    finally:
        await plain.aclose()
    monkeypatch.setenv("C2C_ERP_ROUTES", '{"UK01": "business-central", "*": "reference"}')
    routed = build_connectors(Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        assert isinstance(routed.erp, RoutedErp)
        assert isinstance(routed.erp.backends["business-central"], BusinessCentralErp)
        assert "netsuite" not in routed.erp.backends
    finally:
        await routed.aclose()


def test_a_company_without_its_id_and_a_line_without_its_account_are_refused_naming_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("C2C_BC_COMPANIES", '{"UK01": {"tenant": "t", "environment": "p"}}')
    with pytest.raises(ValidationError, match=r"UK01\.company_id"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.delenv("C2C_BC_COMPANIES")
    monkeypatch.setenv("C2C_BC_DIMENSIONS", '{"roles": {"Analyst": {"dimensions": {}}}}')
    with pytest.raises(ValidationError, match=r"roles\.Analyst\.account"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_mapping_names_every_gap_of_a_contract() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    problems = dimensions(expense_categories={}).missing(
        legal_entity="DE01",
        companies=settings.bc_companies,
        billing_model="retainer",
        roles=["Analyst", "Architect"],
        expenses_billable=True,
    )
    assert [field for field, _ in problems] == [
        "legal_entity",
        "legal_entity",
        "rate_card[1].role",
        "expenses_billable",
        "billing_model",
        "billing_model",
    ]
    assert "Architect" in problems[2][1]


def test_keys_fit_business_centrals_codes_and_are_the_same_every_time() -> None:
    contract = "K-" + "x" * 62
    assert len(project_number(contract)) == 20 and project_number(contract).isupper()
    key = invoice_key(contract, "milestone:" + "m" * 50)
    assert len(key) == 35 and key.startswith(project_number(contract) + "-")
    assert key == invoice_key(contract, "milestone:" + "m" * 50)
    assert key != invoice_key(contract, "2026-10")


def test_refused_credentials_go_to_integration_and_a_mapping_gap_to_finance() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    queue = settings.exception_queues
    assert queue["erp.Authentication_InvalidCredentials"] == ExceptionQueue.INTEGRATION
    assert "erp.bc_mapping_missing" not in queue and queue["erp"] == ExceptionQueue.FINANCE
