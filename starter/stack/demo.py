"""``c2c demo``: one contract from CLM approval to cash, against a running stack.

It uses only public interfaces, as the real systems and a user would: a signed CLM webhook to
the API, approved time entered in the (sandbox) PSA, a period close through the API, and a
payment at the (sandbox) gateway, whose webhook tells c2c that the invoice is paid.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from c2c.signing import sign
from domain.names import SIGNATURE_HEADER, Stage, contract_workflow_id
from domain.periods import Period
from starter.stack.demo_setup import TIME_ENTRIES, DemoConfig, DemoFailed, demo_contract

_POLL_S = 0.5
#: Stages in which the demo cannot go on without an operator.
_STUCK = (Stage.ON_HOLD, Stage.CANCELLED)
#: The references the final summary shows.
_SUMMARY_REFS = ("erp_customer_id", "erp_project_id", "erp_contract_id", "psa_project_id")


def _print(line: str) -> None:
    print(line, flush=True)


class Demo:
    """The demo's steps, printed as they happen.

    Args:
        config: The stack to drive.
        say: Prints one line.
    """

    def __init__(self, config: DemoConfig, say: Callable[[str], None] = _print) -> None:
        self.config = config
        self.say = say
        headers = {"Authorization": f"Bearer {config.api_token}"} if config.api_token else {}
        self.api = httpx.Client(base_url=config.api_url, headers=headers, timeout=30)
        self.sandbox = httpx.Client(base_url=config.sandbox_url, timeout=30)
        self._seen_history = 0

    def close(self) -> None:
        """Close the HTTP clients."""
        self.api.close()
        self.sandbox.close()

    def workflow_link(self, contract_id: str) -> str:
        """The contract's workflow in the Temporal UI."""
        return (
            f"{self.config.ui_url}/namespaces/{self.config.namespace}/workflows/"
            f"{contract_workflow_id(contract_id)}"
        )

    def run(self) -> None:
        """Run every step.

        Raises:
            DemoFailed: a step failed or timed out.
        """
        now = datetime.now(UTC)
        contract = demo_contract(now.date(), now)
        period = Period.of(contract.start_date)
        cid = contract.contract_id
        self.say(
            f"1. CLM: contract {cid} approved ({contract.title}, Acme Corp, "
            f"time and materials, {period.first_day} to {period.last_day})"
        )
        started = self._post_webhook(
            "/webhooks/clm", {"type": "contract.approved", "data": contract.model_dump(mode="json")}
        )
        self.say(
            f"   c2c started workflow {started['workflow_id']}"
            + (" (already running: duplicate approval)" if started["duplicate"] else "")
        )

        self.say("2. Provisioning ERP and PSA...")
        status = self._wait(cid, "the contract to become active", lambda s: s["stage"] == "active")
        refs = status["refs"]
        psa_project = refs.get("psa_project_id")
        if not psa_project:
            raise DemoFailed(f"the active contract has no PSA project in its refs: {refs}")
        self.say("   " + ", ".join(f"{k}={v}" for k, v in sorted(refs.items())))

        self.say(f"3. PSA: consultants enter approved time on project {psa_project}")
        self._enter_time(cid, psa_project, period)

        self.say(f"4. Closing billing period {period}")
        closed = self._call(
            self.api, "POST", "/api/billing/close-period", json={"period": str(period)}, expect=202
        )
        self.say(f"   {closed['contracts_signalled']} contract(s) asked to bill {period}")

        status = self._wait(
            cid, f"the invoice for {period}", lambda s: _invoice(s, str(period)) is not None
        )
        invoice = _invoice(status, str(period))
        assert invoice is not None
        self.say(
            f"   invoice {invoice['number']} ({invoice['invoice_id']}): subtotal "
            f"{invoice['subtotal']} + tax {invoice['tax']} = {invoice['total']} "
            f"{contract.currency}, due {invoice['due_on']}"
        )

        self.say(f"5. Gateway: Acme pays {invoice['total']} {contract.currency}")
        payment = self._call(
            self.sandbox,
            "POST",
            "/payments/v1/payments",
            expect=201,
            json={
                "invoice_id": invoice["invoice_id"],
                "amount": invoice["total"],
                "currency": contract.currency,
            },
            headers={"Idempotency-Key": f"demo-{cid}-{invoice['invoice_id']}-payment"},
        )
        self.say(f"   payment {payment['payment_id']} succeeded; the gateway notifies c2c")

        self.say("6. Waiting for the payment to be applied and the contract to close...")
        status = self._wait(cid, "the invoice to be paid and the contract closed", _paid_and_closed)
        paid = _invoice(status, str(period))
        assert paid is not None
        self._summary(status, paid)

    def _summary(self, status: dict[str, Any], invoice: dict[str, Any]) -> None:
        refs = status["refs"]
        self.say("")
        self.say("Done: contract to cash.")
        rows = [("contract", f"{status['contract_id']} ({status['stage']})")]
        rows += [(name, refs[name]) for name in _SUMMARY_REFS if name in refs]
        rows += [
            (
                "invoice",
                f"{invoice['number']}: {invoice['total']} {status['currency']}, "
                f"{invoice['status']}",
            ),
            ("balance due", status["balance_due"]),
            ("Temporal UI", self.workflow_link(status["contract_id"])),
        ]
        for label, value in rows:
            self.say(f"  {label:<16} {value}")

    def _post_webhook(self, path: str, event: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(event).encode()
        headers = {
            SIGNATURE_HEADER: sign(body, self.config.webhook_secret),
            "Content-Type": "application/json",
        }
        return self._call(self.api, "POST", path, content=body, headers=headers, expect=202)

    def _enter_time(self, contract_id: str, project_id: str, period: Period) -> None:
        for n, (consultant, role, day, hours) in enumerate(TIME_ENTRIES, start=1):
            work_date = period.first_day.replace(day=day)
            entry = self._call(
                self.sandbox,
                "POST",
                f"/psa/v1/projects/{project_id}/time-entries",
                expect=201,
                json={
                    "consultant_id": consultant,
                    "role": role,
                    "work_date": work_date.isoformat(),
                    "hours": hours,
                    "billable": True,
                    "approved": True,
                    "notes": "demo: approved time",
                },
                headers={"Idempotency-Key": f"demo-{contract_id}-time-{n}"},
            )
            self.say(
                f"   {entry.get('entry_id', '?')}: {work_date} {consultant} {role}, "
                f"{hours} h (approved, billable)"
            )

    def _call(
        self, client: httpx.Client, method: str, path: str, *, expect: int, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise DemoFailed(f"{method} {client.base_url}{path} failed: {exc}") from None
        if response.status_code != expect:
            raise DemoFailed(f"{method} {path} answered {response.status_code}: {response.text}")
        body: dict[str, Any] = response.json()
        return body

    def _wait(
        self, contract_id: str, what: str, done: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """Poll the contract's status, printing new history, until ``done`` holds."""
        deadline = time.monotonic() + self.config.timeout_s
        while True:
            status = self._status(contract_id)
            if status is not None:
                self._print_history(status)
                if done(status):
                    return status
                if status["stage"] in _STUCK:
                    raise DemoFailed(self._stuck(status))
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"timed out after {self.config.timeout_s:.0f} s waiting for {what}. "
                    f"Is the worker running? See the workflow in the Temporal UI: "
                    f"{self.workflow_link(contract_id)}"
                )
            time.sleep(_POLL_S)

    def _status(self, contract_id: str) -> dict[str, Any] | None:
        try:
            response = self.api.get(f"/api/contracts/{contract_id}")
        except httpx.HTTPError:
            return None
        if response.status_code in (401, 403):
            raise DemoFailed(f"the API refused the demo's token: {response.text}")
        if response.status_code != 200:
            return None  # not visible yet, or Temporal busy: ask again
        body: dict[str, Any] = response.json()
        return body

    def _print_history(self, status: dict[str, Any]) -> None:
        history = status.get("history") or []
        for entry in history[self._seen_history :]:
            at = entry["at"][11:19] if len(entry["at"]) >= 19 else entry["at"]
            self.say(f"   {at}  {entry['stage']:<17} {entry['event']}")
        self._seen_history = max(self._seen_history, len(history))

    def _stuck(self, status: dict[str, Any]) -> str:
        lines = [f"the contract is {status['stage']}"]
        lines += [
            f"  {e['exception_id']}: {e['system']} {e['code']}: {e['message']} (queue {e['queue']})"
            for e in status.get("open_exceptions") or []
        ]
        lines.append("See `c2c ops exceptions` and " + self.workflow_link(status["contract_id"]))
        return "\n".join(lines)


def _invoice(status: dict[str, Any], period: str) -> dict[str, Any] | None:
    return next((i for i in status.get("invoices") or [] if i.get("period") == period), None)


def _paid_and_closed(status: dict[str, Any]) -> bool:
    invoices = status.get("invoices") or []
    return (
        bool(invoices)
        and all(i["status"] == "paid" for i in invoices)
        and (status["stage"] == Stage.CLOSED)
    )


def run_demo(config: DemoConfig, say: Callable[[str], None] = _print) -> int:
    """Run the demo; returns the exit code (0 when the invoice is paid and the contract closed)."""
    demo = Demo(config, say)
    try:
        demo.run()
    except DemoFailed as exc:
        say(f"c2c demo failed: {exc}")
        return 1
    finally:
        demo.close()
    return 0
