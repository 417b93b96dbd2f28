"""Per-legal-entity settings: an entity's own entry, else ``"*"``, else the default."""

from __future__ import annotations

import pytest

from c2c.settings import LegalEntityDetails, Settings


def test_an_entity_takes_its_own_entry_then_the_star_then_the_default() -> None:
    settings = Settings(
        _env_file=None,
        invoice_review={"US01": "required"},
        purchase_order_required={"US01": False, "*": True},
        consolidated_invoicing={"*": "customer"},
        legal_entity_time_zones={"UK01": "Europe/London"},
        legal_entity_details={"*": LegalEntityDetails(city="Lyon")},
    )
    assert settings.invoice_review_for("US01") == "required"
    assert settings.invoice_review_for("UK01") == "none"
    # An entity's explicit false is its own, not overridden by "*".
    assert settings.purchase_order_required_for("US01") is False
    assert settings.purchase_order_required_for("UK01") is True
    assert settings.consolidated_invoicing_for("FR01") == "customer"
    assert settings.time_zone_for("UK01") == "Europe/London"
    assert settings.time_zone_for("US01") == "UTC"
    assert settings.details_for("FR01").city == "Lyon"
    assert settings.erp_for("FR01") == "reference"


@pytest.mark.parametrize(
    ("env", "value"),
    [("C2C_INVOICE_REVIEW", '{"US01": "sometimes"}'), ("C2C_CONSOLIDATED_INVOICING", '{"*": 1}')],
)
def test_a_bad_entry_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValueError, match=env):
        Settings(_env_file=None)
