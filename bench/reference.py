"""The reference and the floor: c2c's own onboarding calls, without c2c's workflow.

Both make the calls a c2c contract makes from its approval to ``active``, with the same
inputs, by calling c2c's real activity functions (``activities/registry.py``): validate the
contract, find or create the ERP customer and create the ERP project and contract (one step,
``provision_erp``, as a contract started at 0.11 does), archive the signed document when the
approval carries one, create and activate the PSA project, then
write the remaining audit trail to the ledger. Each step carries the audit lines written since
the previous one, as c2c's steps do, so the ledger receives the same writes.

- **The reference** (``ReferenceOnboarding``, run by ``bench.reference_worker`` on the single
  task queue ``bench-reference``) is a plain workflow that runs those steps one after the
  other as activities on its own queue, the last audit write as a local activity, as c2c's
  ledger writes are. No stages, no search attributes, no holds, no inbox, no routing.
- **The floor** (``onboard_directly``, run by ``bench.floor``) makes the same calls from a
  plain asyncio program, with no Temporal server: each activity function runs in an in-process
  activity context (``temporalio.testing.ActivityEnvironment``) that gives it the workflow id
  its idempotency keys are made of.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.testing import ActivityEnvironment

with workflow.unsafe.imports_passed_through():
    from domain.models import ContractApproved
    from domain.names import SIGNAL_CLOSE_PERIOD, Stage
    from domain.periods import Period
    from domain.pricing import initial_rates
    from domain.revenue import revenue_method
    from domain.steps import (
        ACTIVATE_PSA_PROJECT,
        ARCHIVE_SIGNED_DOCUMENT,
        BILL_PERIOD,
        PROVISION_ERP,
        RECORD_AUDIT,
        VALIDATE_CONTRACT,
        AuditEntry,
        BillPeriodInput,
        BillPeriodResult,
        ContractStep,
        CreatedRef,
        ErpProvisioned,
        RevenuePlan,
        StepInput,
        Validated,
    )

REFERENCE_TASK_QUEUE = "bench-reference"
REFERENCE_ONBOARDING = "BenchReferenceOnboarding"
REFERENCE_CONTRACT = "BenchReferenceContract"
#: The same attempt timeout as a c2c step's default (C2C_STEP_TIMEOUT_S).
STEP_TIMEOUT = timedelta(seconds=60)
#: As long as c2c gives a billing step (which heartbeats every page of time it reads).
BILLING_TIMEOUT = timedelta(hours=1)


#: What each onboarding step answers, where it is not a ``CreatedRef``.
RESULTS: dict[str, type[Any]] = {VALIDATE_CONTRACT: Validated, PROVISION_ERP: ErpProvisioned}


def onboarding_steps(contract: ContractApproved) -> list[tuple[str, Stage]]:
    """The remote steps a contract runs until ``active``, in c2c's order, with the stage each
    runs in."""
    steps = [
        (VALIDATE_CONTRACT, Stage.VALIDATING),
        (PROVISION_ERP, Stage.PROVISIONING_ERP),
    ]
    if contract.signed_document is not None:
        steps.append((ARCHIVE_SIGNED_DOCUMENT, Stage.PROVISIONING_ERP))
    steps.append((ACTIVATE_PSA_PROJECT, Stage.ACTIVATING_PSA))
    return steps


def audit_line(workflow_id: str, seq: int, at: datetime, stage: Stage, event: str) -> AuditEntry:
    """An audit line keyed as c2c keys its own (workflow, run, sequence)."""
    return AuditEntry(key=f"{workflow_id}:reference:{seq}", at=at, stage=stage, event=event)


class Onboarding:
    """One contract's calls, in order; ``run`` drives them with whatever runs a step."""

    def __init__(self, workflow_id: str, contract: ContractApproved) -> None:
        self.workflow_id = workflow_id
        self.contract = contract
        self.refs: dict[str, str] = {}
        self.validated: Validated | None = None
        self._seq = 0

    def line(self, at: datetime, stage: Stage, event: str) -> AuditEntry:
        self._seq += 1
        return audit_line(self.workflow_id, self._seq, at, stage, event)

    def step_input(self, audit: list[AuditEntry]) -> ContractStep:
        return ContractStep(
            contract_id=self.contract.contract_id,
            audit=audit,
            contract=self.contract,
            refs=dict(self.refs),
        )

    def took(self, result: Any) -> str:
        """Keep what a step created; the audit line c2c writes for it."""
        if isinstance(result, CreatedRef):
            self.refs[result.ref_name] = result.external_id
            return f"{result.system} {result.kind} {result.external_id} ready"
        if isinstance(result, ErpProvisioned):
            return "; ".join(self.took(ref) for ref in result.created)
        if isinstance(result, Validated):
            self.validated = result
            return f"validated: tax jurisdiction {result.jurisdiction_code}"
        return "done"


def close_input(calls: Onboarding, period: Period, today: date) -> BillPeriodInput:
    """What c2c's billing step is given at the close of ``period`` of a time-and-materials
    contract without a cap, retainer or milestones (the benchmarks' contracts)."""
    c, validated, name = calls.contract, calls.validated, str(period)
    return BillPeriodInput(
        contract_id=c.contract_id,
        reference=name,
        period=name,
        through_date=min(period.last_day, c.end_date),
        time_pricing="rate_card",
        invoice_date=today,
        currency=c.currency,
        legal_entity=c.legal_entity,
        functional_currency=validated.functional_currency if validated else None,
        country=c.customer.country,
        region=c.customer.region,
        customer_tax_id=validated.customer_tax_id if validated else None,
        seller_country=validated.legal_entity_country if validated else None,
        payment_terms_days=c.payment_terms_days,
        expenses_billable=c.expenses_billable,
        expense_markup_percent=c.expense_markup_percent,
        rates=initial_rates(c.rate_card, c.start_date),
        refs=dict(calls.refs),
        revenue=RevenuePlan(
            entry_id=f"{c.contract_id}:{name}",
            period=name,
            method="as_invoiced",
            add_as_invoiced=True,
            description=f"{name}: time and expenses as invoiced",
        ),
        revenue_method=revenue_method(c.billing_model),
    )


async def _onboard(contract: ContractApproved) -> tuple[Onboarding, list[AuditEntry]]:
    """The onboarding steps as activities; the audit lines still to write."""
    calls = Onboarding(workflow.info().workflow_id, contract)
    pending = [calls.line(workflow.now(), Stage.RECEIVED, "approved in CLM")]
    for name, stage in onboarding_steps(contract):
        pending.append(calls.line(workflow.now(), stage, f"entered {stage.value}"))
        result = await workflow.execute_activity(
            name,
            calls.step_input(pending),
            result_type=RESULTS.get(name, CreatedRef),
            start_to_close_timeout=STEP_TIMEOUT,
        )
        pending = [calls.line(workflow.now(), stage, calls.took(result))]
    pending.append(calls.line(workflow.now(), Stage.ACTIVE, "contract active"))
    return calls, pending


async def _write_audit(contract_id: str, pending: list[AuditEntry]) -> None:
    await workflow.execute_local_activity(
        RECORD_AUDIT,
        StepInput(contract_id=contract_id, audit=pending),
        start_to_close_timeout=STEP_TIMEOUT,
    )


@workflow.defn(name=REFERENCE_ONBOARDING)
class ReferenceOnboarding:
    """c2c's onboarding steps in a row on one task queue, then the last audit write (local)."""

    @workflow.run
    async def run(self, contract: ContractApproved) -> int:
        _, pending = await _onboard(contract)
        await _write_audit(contract.contract_id, pending)
        return len(onboarding_steps(contract)) + 1


@workflow.defn(name=REFERENCE_CONTRACT)
class ReferenceContract:
    """The reference's onboarding, parked until ``close_period``; then c2c's billing step for
    that period and the audit write after it (local), as c2c closes a period."""

    def __init__(self) -> None:
        self._period: str | None = None

    @workflow.signal(name=SIGNAL_CLOSE_PERIOD)
    def close_period(self, request: dict[str, Any]) -> None:
        self._period = str(request["period"])

    @workflow.run
    async def run(self, contract: ContractApproved) -> str:
        calls, pending = await _onboard(contract)
        await _write_audit(contract.contract_id, pending)
        await workflow.wait_condition(lambda: self._period is not None)
        assert self._period is not None
        period = Period.parse(self._period)
        pending = [calls.line(workflow.now(), Stage.ACTIVE, f"closing period {period}")]
        step = close_input(calls, period, workflow.now().date())
        step.audit = pending
        result = await workflow.execute_activity(
            BILL_PERIOD,
            step,
            result_type=BillPeriodResult,
            start_to_close_timeout=BILLING_TIMEOUT,
            heartbeat_timeout=STEP_TIMEOUT,
        )
        invoice = (result.invoice.number if result.invoice else None) or "none"
        done = [calls.line(workflow.now(), Stage.ACTIVE, f"invoice {invoice} issued")]
        await _write_audit(contract.contract_id, done)
        return invoice


def _environment(workflow_id: str, step: str) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_id=workflow_id,
        workflow_run_id="floor",
        workflow_type=REFERENCE_ONBOARDING,
        activity_type=step,
        task_queue="floor",
    )
    return env


async def onboard_directly(
    steps: Mapping[str, Callable[..., Any]], workflow_id: str, contract: ContractApproved
) -> int:
    """The floor: the reference's calls for one contract, made in process, no Temporal."""
    calls = Onboarding(workflow_id, contract)
    pending = [calls.line(datetime.now(UTC), Stage.RECEIVED, "approved in CLM")]
    plan = onboarding_steps(contract)
    for name, stage in plan:
        pending.append(calls.line(datetime.now(UTC), stage, f"entered {stage.value}"))
        result = await _environment(workflow_id, name).run(steps[name], calls.step_input(pending))
        pending = [calls.line(datetime.now(UTC), stage, calls.took(result))]
    pending.append(calls.line(datetime.now(UTC), Stage.ACTIVE, "contract active"))
    await _environment(workflow_id, RECORD_AUDIT).run(
        steps[RECORD_AUDIT], StepInput(contract_id=contract.contract_id, audit=pending)
    )
    return len(plan) + 1
