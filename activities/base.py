"""What every activity shares: its dependencies, idempotency keys, error classes and audit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.ledger_writes import write_audit
from activities.reference_data import ReferenceData
from c2c.settings import Settings
from connectors.registry import Connectors
from domain.errors import (
    BUSINESS_REJECTION,
    TRANSIENT_FAILURE,
    BusinessError,
    Rejection,
    TransientError,
)
from domain.steps import AuditEntry

if TYPE_CHECKING:
    from ledger import Ledger


def workflow_run() -> tuple[str, str]:
    """The workflow id and run id of the running activity (always set for workflow activities)."""
    info = activity.info()
    assert info.workflow_id is not None and info.workflow_run_id is not None
    return info.workflow_id, info.workflow_run_id


def idempotency_key(*step: str) -> str:
    """``<workflow id>:<step>``: stable across retries, replays and resets of the contract.

    Built from the workflow id, never the run id, because a reset starts a new run that must
    find what the old one created.
    """
    return ":".join((workflow_run()[0], *step))


def business_error(rejection: Rejection) -> ApplicationError:
    return ApplicationError(
        f"{rejection.system} rejected the request: {rejection.code}: {rejection.message}",
        rejection.model_dump(mode="json"),
        type=BUSINESS_REJECTION,
        non_retryable=True,
        # Expected outcomes with their own exception queue, not worker faults to alert on.
        category=ApplicationErrorCategory.BENIGN,
    )


@asynccontextmanager
async def error_classes(step: str) -> AsyncIterator[None]:
    """Turn connector errors into the Temporal errors that decide retry or hold."""
    log = structlog.get_logger("c2c.activities")
    try:
        yield
    except BusinessError as exc:
        log.warning("business rejection", step=step, system=exc.system, code=exc.rejection.code)
        raise business_error(exc.rejection) from exc
    except TransientError as exc:
        log.info("transient failure", step=step, system=exc.system, status=exc.status)
        delay = timedelta(seconds=exc.retry_after_s) if exc.retry_after_s else None
        raise ApplicationError(
            str(exc),
            {"system": exc.system, "status": exc.status},
            type=TRANSIENT_FAILURE,
            next_retry_delay=delay,
        ) from exc


class StepActivities:
    """Base of the activity classes: connectors and ledger are injected by the worker."""

    def __init__(
        self,
        connectors: Connectors,
        ledger: Ledger,
        settings: Settings,
        *,
        reference: ReferenceData | None = None,
    ) -> None:
        self.connectors = connectors
        self.ledger = ledger
        self.settings = settings
        #: Legal entities and tax jurisdictions, kept a short while: the worker passes every
        #: activity class the process's one.
        self.reference = reference or ReferenceData(connectors, settings)

    async def write_audit(
        self,
        contract_id: str,
        entries: Iterable[AuditEntry],
        open_exceptions: list[str] | None = None,
    ) -> None:
        """Write audit entries (idempotent by key) and move the contract's read model on;
        with ``open_exceptions``, supersede the contract's other open exceptions."""
        await self.write_together(self.audit_write(contract_id, entries, open_exceptions))

    def audit_write(
        self,
        contract_id: str,
        entries: Iterable[AuditEntry],
        open_exceptions: list[str] | None = None,
    ) -> Callable[[], None] | None:
        """``write_audit`` as a write for ``write_together``; ``None`` when there is none."""
        entries = list(entries)
        if not entries:
            return None
        workflow_id, run_id = workflow_run()
        return partial(
            write_audit, self.ledger, contract_id, workflow_id, run_id, entries, open_exceptions
        )

    async def write_together(self, *writes: Callable[[], object] | None) -> None:
        """Run ledger writes in one thread and one transaction: all are recorded, or none
        (and the activity fails, to be retried)."""
        todo = [write for write in writes if write is not None]
        if not todo:
            return

        def run() -> None:
            with self.ledger.unit_of_work():
                for write in todo:
                    write()

        await asyncio.to_thread(run)

    async def audit_if_retried(self, contract_id: str, entries: Iterable[AuditEntry]) -> None:
        """Before a step's call, on a retried attempt only: its audit entries, so that the
        contract's read model shows the stage the step is retrying in.

        A first attempt writes them with what its call produced (``record_results``), in one
        transaction; if it fails, the workflow keeps them pending for its next write.
        """
        if activity.info().attempt > 1:
            await self.write_audit(contract_id, entries)

    async def record_results(
        self,
        contract_id: str,
        entries: Iterable[AuditEntry],
        *writes: Callable[[], object] | None,
    ) -> None:
        """After a step's call: its audit entries, the read model and ``writes`` (the
        cross-references and facts of what the call produced) in one transaction."""
        await self.write_together(self.audit_write(contract_id, entries), *writes)

    def xref_write(
        self, contract_id: str, system: str, kind: str, external_id: str
    ) -> Callable[[], None]:
        """``Ledger.record_xref`` as a write for ``write_together``."""
        return partial(self.ledger.record_xref, contract_id, system, kind, external_id)
