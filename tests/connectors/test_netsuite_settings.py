"""NetSuite's settings and signatures: routes, the segment mapping, token-based authentication."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from c2c.netsuite_auth import authorization, base_url, parse_authorization, signature
from c2c.settings import Settings
from tests.netsuite_support import credentials, segments


def test_routes_default_to_the_reference_erp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2C_ERP_ROUTES", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.erp_routes == {"*": "reference"}
    assert settings.erp_for("US01") == "reference"


def test_routes_name_known_erps_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_ERP_ROUTES", '{"US01": "netsuite", "*": "reference"}')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.erp_for("US01"), settings.erp_for("DE01")) == ("netsuite", "reference")
    monkeypatch.setenv("C2C_ERP_ROUTES", '{"US01": "sap"}')
    with pytest.raises(ValidationError, match="US01: 'sap' is not an ERP"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_segment_without_its_class_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "C2C_NETSUITE_SEGMENTS",
        '{"roles": {"Analyst": {"item": "1", "department": "2", "location": "4"}}}',
    )
    with pytest.raises(ValidationError, match=r"roles\.Analyst\.class"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_mapping_names_every_gap_of_a_contract() -> None:
    problems = segments().missing(
        legal_entity="DE01",
        currency="EUR",
        billing_model="retainer",
        roles=["Analyst", "Architect"],
        expenses_billable=True,
    )
    assert [field for field, _ in problems] == [
        "legal_entity",
        "currency",
        "rate_card[1].role",
        "billing_model",
        "billing_model",
    ]
    assert "Architect" in problems[2][1]


def test_a_signature_verifies_over_the_path_and_query_and_changes_with_either() -> None:
    creds = credentials()
    url = httpx.URL("http://127.0.0.1:8100/vendors/netsuite/services/rest/record/v1/invoice?q=a b")
    header = authorization(creds, "GET", url, timestamp=1_700_000_000, nonce="n1")
    fields = parse_authorization(header)
    assert fields["realm"] == creds.account
    assert fields["oauth_signature_method"] == "HMAC-SHA256"
    params = [*url.params.multi_items(), *fields.items()]
    again = signature("GET", str(url), params, creds.consumer_secret, creds.token_secret)
    assert again == fields["oauth_signature"]
    other = [("q", "a c"), *fields.items()]
    assert signature("GET", str(url), other, creds.consumer_secret, creds.token_secret) != again
    assert signature("POST", str(url), params, creds.consumer_secret, creds.token_secret) != again


def test_the_base_url_drops_default_ports_and_the_query() -> None:
    assert base_url("HTTPS://Acct.Suitetalk.api.netsuite.com:443/x?y=1") == (
        "https://acct.suitetalk.api.netsuite.com/x"
    )
    assert base_url("http://127.0.0.1:8100/a") == "http://127.0.0.1:8100/a"


def test_refused_credentials_go_to_integration_and_other_netsuite_refusals_to_finance() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.queue_for("erp", "INVALID_LOGIN") == "integration"
    assert settings.queue_for("erp", "netsuite_mapping_missing") == "finance"
    assert settings.queue_for("erp", "USER_ERROR") == "finance"
