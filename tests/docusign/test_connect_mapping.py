"""Connect's HMAC and the mapping of an envelope's fields to contract terms."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from c2c.docusign_connect import (
    MappingError,
    load_mapping,
    parse_message,
    to_contract,
)
from c2c.docusign_hmac import (
    ConnectSignatureError,
    sign_connect,
    signature_headers,
    verify_connect,
)
from c2c.settings import Settings
from tests.docusign.connect_schema import connect_schema
from tests.docusign.support import connect_message, contract_fields

BODY = b'{"event":"envelope-completed"}'


def test_any_configured_key_verifies_any_header() -> None:
    # DocuSign signs with every active key: while a key is rotated, both are active.
    headers = signature_headers(BODY, ["old-key", "new-key"])
    assert set(headers) == {"X-DocuSign-Signature-1", "X-DocuSign-Signature-2"}
    assert verify_connect(headers, BODY, ["old-key"]) == 1
    assert verify_connect(headers, BODY, ["new-key"]) == 2
    # The old key removed in DocuSign: the new one alone still verifies.
    only_new = signature_headers(BODY, ["new-key"])
    assert verify_connect(only_new, BODY, ["old-key", "new-key"]) == 1


def test_header_names_are_case_insensitive() -> None:
    headers = {"x-docusign-signature-1": sign_connect(BODY, "k")}
    assert verify_connect(headers, BODY, ["k"]) == 1


@pytest.mark.parametrize(
    ("headers", "body", "keys", "reason"),
    [
        (signature_headers(BODY, ["k"]), BODY + b" ", ["k"], "matches"),
        (signature_headers(BODY, ["k"]), BODY.replace(b"c", b"C", 1), ["k"], "matches"),
        (signature_headers(BODY, ["other"]), BODY, ["k"], "matches"),
        ({}, BODY, ["k"], "missing"),
        ({"X-DocuSign-Signature-1": "not base64 at all"}, BODY, ["k"], "matches"),
        (signature_headers(BODY, ["k"]), BODY, [], "no DocuSign Connect key"),
    ],
)
def test_a_wrong_or_missing_signature_is_refused(
    headers: dict[str, str], body: bytes, keys: list[str], reason: str
) -> None:
    with pytest.raises(ConnectSignatureError, match=reason):
        verify_connect(headers, body, keys)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("k1,k2", ["k1", "k2"]), ('["k1", "k2"]', ["k1", "k2"]), (" k1 , ", ["k1"])],
)
def test_connect_keys_are_a_comma_or_json_list(value: str, expected: list[str]) -> None:
    settings = Settings(_env_file=None, C2C_DOCUSIGN_CONNECT_KEYS=value)  # type: ignore[call-arg]
    assert settings.docusign_keys() == expected


def test_clm_sources_are_checked() -> None:
    assert Settings(_env_file=None).clm_sources == ["c2c"]  # type: ignore[call-arg]
    both = Settings(_env_file=None, C2C_CLM_SOURCES="c2c, docusign")  # type: ignore[call-arg]
    assert both.clm_sources == ["c2c", "docusign"]
    with pytest.raises(ValueError, match="unknown CLM source"):
        Settings(_env_file=None, C2C_CLM_SOURCES="c2c,acme")  # type: ignore[call-arg]


def test_the_test_messages_have_the_published_shape() -> None:
    validator = Draft202012Validator(connect_schema())
    validator.validate(connect_message("env-1", contract_fields("T-1")))
    with pytest.raises(Exception, match="Additional properties"):
        validator.validate({**connect_message("env-1", None), "envelopeStatus": "x"})


def test_a_completed_envelope_maps_to_an_approval() -> None:
    message = parse_message(connect_message("env-42", contract_fields("T-42")))
    approved = to_contract(message, load_mapping())
    assert approved.contract_id == "T-42"
    assert approved.event_id == "docusign-env-42"
    assert approved.title == "Data platform build-out"
    assert approved.customer.parent_crm_account_id == "ACME-HOLD"  # by its term path
    assert [(r.role, r.hourly_rate) for r in approved.rate_card] == [
        ("Senior Consultant", Decimal("200.00")),
        ("Analyst", Decimal("120.00")),
    ]
    assert approved.approved_by == "contracts@example.com"  # the sender, by default
    assert approved.approved_at.year == 2026
    assert approved.payment_terms_days == 30
    assert approved.signed_document is not None
    assert (approved.signed_document.account_id, approved.signed_document.envelope_id) == (
        "acct-1",
        "env-42",
    )


def test_list_custom_fields_and_milestones_are_read() -> None:
    fields = contract_fields("T-7", billing_model="fixed_fee")
    del fields["billing_model"], fields["rate_card"]
    fields["milestones"] = "M1|Discovery|10000.00|2026-10-15; M2|Delivery|15000.00"
    message = parse_message(
        connect_message("env-7", fields, list_fields={"billing_model": "fixed_fee"})
    )
    approved = to_contract(message, load_mapping())
    assert approved.billing_model == "fixed_fee"
    assert [m.milestone_id for m in approved.milestones] == ["M1", "M2"]
    assert approved.milestones[0].due_date is not None


def test_a_missing_field_is_refused_naming_it() -> None:
    fields = contract_fields("T-8")
    del fields["billing_model"]
    with pytest.raises(MappingError, match=r"customFields\.billing_model is missing") as caught:
        to_contract(parse_message(connect_message("env-8", fields)), load_mapping())
    assert caught.value.field == "customFields.billing_model"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "XYZ"}, "customFields.currency"),
        ({"start_date": "next week"}, "customFields.start_date"),
        ({"rate_card": "Senior Consultant 200"}, "customFields.rate_card"),
        ({"rate_card": "Senior Consultant=abc"}, "customFields.rate_card"),
        ({"customer_country": "United States"}, "customFields.customer_country"),
        ({"c2c.nonsense": "1"}, "customFields.c2c.nonsense"),
    ],
)
def test_an_invalid_field_is_refused_naming_it(change: dict[str, str], field: str) -> None:
    message = parse_message(connect_message("env-9", contract_fields("T-9", **change)))
    with pytest.raises(MappingError) as caught:
        to_contract(message, load_mapping())
    assert caught.value.field == field
    assert field in str(caught.value)


def test_a_mapping_file_replaces_the_default(tmp_path: Path) -> None:
    mapping = json.loads(Path(load_mapping.__globals__["DEFAULT_MAPPING"]).read_text())
    mapping["fields"]["contract_id"] = {"custom_field": "SOW Number"}
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mapping))
    fields = contract_fields("unused")
    del fields["contract_id"]
    fields["SOW Number"] = "SOW-2026-001"
    approved = to_contract(parse_message(connect_message("env-3", fields)), load_mapping(path))
    assert approved.contract_id == "SOW-2026-001"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"nonsense": {"custom_field": "x"}}, "not a contract term"),
        ({"title": {"custom_field": "x", "format": "yaml"}}, "unknown format"),
        ({"title": {"custom_fields": "x"}}, "unknown keys"),
        ({"title": {}}, "no source and no default"),
    ],
)
def test_a_bad_mapping_file_is_refused(tmp_path: Path, fields: dict, problem: str) -> None:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"fields": fields}))
    with pytest.raises(ValueError, match=problem):
        load_mapping(path)
