"""Connector errors become the Temporal errors that decide between retry and hold."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities.base import error_classes
from domain.errors import (
    BUSINESS_REJECTION,
    TRANSIENT_FAILURE,
    BusinessError,
    Rejection,
    TransientError,
)


async def test_a_rejection_is_non_retryable_and_carries_the_systems_words() -> None:
    rejection = Rejection(
        system="erp",
        code="unknown_legal_entity",
        message="no XX01",
        field="legal_entity",
        status=422,
    )
    with pytest.raises(ApplicationError) as exc:
        async with error_classes("create_erp_project"):
            raise BusinessError(rejection)
    assert exc.value.non_retryable
    assert exc.value.type == BUSINESS_REJECTION
    assert Rejection.model_validate(exc.value.details[0]) == rejection


async def test_a_429_is_retried_after_the_systems_retry_after() -> None:
    with pytest.raises(ApplicationError) as exc:
        async with error_classes("bill_period"):
            raise TransientError("erp", "rate limited", status=429, retry_after_s=7)
    assert not exc.value.non_retryable
    assert exc.value.type == TRANSIENT_FAILURE
    assert exc.value.next_retry_delay == timedelta(seconds=7)


async def test_a_503_without_retry_after_uses_the_retry_policy() -> None:
    with pytest.raises(ApplicationError) as exc:
        async with error_classes("bill_period"):
            raise TransientError("psa", "unavailable", status=503)
    assert not exc.value.non_retryable
    assert exc.value.next_retry_delay is None
