"""The Ironclad intake's names and messages: a completed Ironclad workflow read into an
approval by the worker, for the API to start the contract with.

The API verifies and records Ironclad's webhook but never calls Ironclad: it starts the
``IroncladIntake`` workflow, whose activity reads the workflow's attributes from Ironclad and
maps them to a ``ContractApproved``, and starts the contract with the result.
"""

from __future__ import annotations

import hashlib

from pydantic import Field

from domain.models import ContractApproved, Model

INTAKE_WORKFLOW_TYPE = "IroncladIntake"
READ_IRONCLAD_APPROVAL = "read_ironclad_approval"


def intake_workflow_id(ironclad_workflow_id: str) -> str:
    """The intake's workflow id: one intake at a time per Ironclad workflow."""
    safe = "".join(c for c in ironclad_workflow_id if c.isalnum() or c in "-_")[:64]
    if safe != ironclad_workflow_id:
        safe = f"{safe[:40]}-{hashlib.sha256(ironclad_workflow_id.encode()).hexdigest()[:16]}"
    return f"ironclad-intake-{safe}"


class IroncladIntakeRequest(Model):
    """A completed workflow to read: its id in Ironclad, and the webhook event that told."""

    event_id: str = Field(min_length=1, max_length=255)
    workflow_id: str = Field(min_length=1, max_length=128)


class IroncladIntakeResult(Model):
    """The approval the workflow carries, or why it carries none.

    Attributes:
        approved: The approval, when every term was read.
        field: The Ironclad field at fault (``attributes.billingModel``), when refused.
        reason: Why it was refused, naming the field and the contract term.
    """

    approved: ContractApproved | None = None
    field: str | None = None
    reason: str | None = None
