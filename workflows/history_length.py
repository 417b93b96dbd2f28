"""When a long-lived workflow's history is long enough to continue as new."""

from __future__ import annotations

from temporalio import workflow


def history_is_long(threshold: int | None) -> bool:
    """Whether the server suggests continue-as-new (its event count or size limit), or the
    history has reached ``threshold`` events (``C2C_CONTINUE_AS_NEW_EVENTS``; none: the
    server's suggestion alone). Called from workflow code only."""
    info = workflow.info()
    return info.is_continue_as_new_suggested() or (
        threshold is not None and info.get_current_history_length() >= threshold
    )
