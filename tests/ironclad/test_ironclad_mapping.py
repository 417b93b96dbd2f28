"""The Ironclad mapping: a completed workflow's attributes read as an approval, and every
refusal naming the Ironclad field and the contract term."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from c2c.ironclad_mapping import MappingError, load_mapping, to_contract
from tests.ironclad.support import contract_attributes


def completed(attributes: dict[str, Any], **changes: Any) -> dict[str, Any]:
    workflow: dict[str, Any] = {
        "id": "6f1c0a",
        "title": "SOW: data platform",
        "status": "completed",
        "lastUpdated": "2026-09-28T10:00:00.123Z",
        "creator": {"displayName": "Contracts Desk", "email": "contracts@example.com"},
        "attributes": {
            **attributes,
            "signedCopy": [
                {
                    "filename": "sow.pdf",
                    "download": "/public/api/v1/workflows/6f1c0a/document/signed-abc/download",
                }
            ],
        },
    }
    workflow.update(changes)
    return workflow


def test_a_completed_workflow_gives_its_approval() -> None:
    approved = to_contract(completed(contract_attributes("C-1")), load_mapping())
    assert approved.contract_id == "C-1"
    assert approved.event_id == "ironclad-6f1c0a"
    assert approved.customer.parent_crm_account_id == "ACME-HOLD"
    assert str(approved.start_date) == "2026-10-01"
    assert approved.payment_terms_days == 30
    assert approved.not_to_exceed == Decimal("50000")  # a monetary attribute's amount
    assert approved.expenses_billable is True
    assert [r.role for r in approved.rate_card] == ["Senior Consultant", "Analyst"]
    assert approved.approved_by == "legal@example.com"
    assert approved.signed_document is not None
    assert (approved.signed_document.workflow_id, approved.signed_document.document_key) == (
        "6f1c0a",
        "signed-abc",
    )
    dumped = approved.signed_document.model_dump()
    assert "account_id" not in dumped and "envelope_id" not in dumped


@pytest.mark.parametrize(
    ("workflow", "field", "words"),
    [
        (
            completed(contract_attributes("C-2", billingModel=None)),
            "attributes.billingModel",
            "is missing",
        ),
        (
            completed(contract_attributes("C-3", billingModel="hourly")),
            "attributes.billingModel",
            "billing_model",
        ),
        (
            completed(contract_attributes("C-4", startDate="next week")),
            "attributes.startDate",
            "not a date",
        ),
        (completed(contract_attributes("C-5"), status="active"), "status", "not 'completed'"),
        (
            {**completed(contract_attributes("C-6")), "attributes": contract_attributes("C-6")},
            "attributes.signedCopy",
            "signed copy",
        ),
    ],
)
def test_a_refusal_names_the_ironclad_field(
    workflow: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(MappingError) as refused:
        to_contract(workflow, load_mapping())
    assert refused.value.field == field
    assert words in str(refused.value)


def test_an_unusable_mapping_file_says_which_entry(tmp_path: Path) -> None:
    bad = tmp_path / "mapping.json"
    bad.write_text('{"fields": {"title": {"attributes": "x"}}}')
    with pytest.raises(ValueError, match="unknown keys"):
        load_mapping(bad)
