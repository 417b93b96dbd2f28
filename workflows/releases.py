"""The release gate: which behaviours a contract run takes, decided once, at its start.

Until 0.10 every behaviour that changed what a contract run records asked a patch of its own
(``workflow.patched``), most of them at the run's start. Each patch costs the run two history
events (its marker and the search attribute it upserts), so a new contract paid ten events for
five patches before it did any work. From 0.11 a new run asks one patch, ``PATCH_RELEASE``,
which answers them all:

- a run that recorded the release marker (every run started, reset to its start or continued
  as new by a 0.11 worker or later) takes every behaviour in ``FOLDED`` and ``NEW_IN_RELEASE``
  without asking for their patches;
- a run recorded before it asks each folded patch where it always did, so its history replays
  unchanged, and takes none of the behaviours new in the release (asking for them mid-run would
  record a marker where a replay does not expect one).

A behaviour new in a later release adds its id to ``NEW_IN_RELEASE`` and asks
``ContractBase.feature`` (or, from a decider, yields ``Patched``). When the next release folds
these in turn, ``PATCH_RELEASE`` gets a new id and the previous one joins ``FOLDED``.
"""

from __future__ import annotations

#: The one patch a contract run asks at its start.
PATCH_RELEASE = "c2c-0.11"

#: The patches, asked one by one by runs recorded before ``PATCH_RELEASE``, that it answers.
FOLDED: frozenset[str] = frozenset(
    {
        "ordered-inbox",
        "mid-run-decisions-at-start",
        "invoice-documents",
        "sender-order",
        "late-messages-decided",
        "signed-document-archive",
        "ledger-writes-local",
        "continue-as-new",
    }
)

#: The ERP's customer, project and contract made by one step (``provision_erp``) instead of
#: three: two activities fewer per contract.
ERP_ONBOARDING_ONE_STEP = "erp-onboarding-one-step"

#: Behaviours new in this release: taken by runs with the release marker, never by older runs.
NEW_IN_RELEASE: frozenset[str] = frozenset(
    {
        # Work written off above a not-to-exceed cap is told to the ERP (workflows.billing).
        "write-offs-to-erp",
        ERP_ONBOARDING_ONE_STEP,
        # One invoice per customer and period across its contracts (workflows.consolidation).
        "consolidated-invoicing",
    }
)
