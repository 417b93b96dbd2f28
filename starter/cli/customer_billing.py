"""``c2c billing customers`` and ``c2c billing customer ID``: consolidated invoicing's customer
billing workflows, read through the API (``C2C_API_URL``, ``C2C_API_TOKEN``), so a token
limited to some legal entities sees only theirs, as on the dashboard."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import typer

from domain.consolidation import CustomerBillingStatus
from starter.api.customer_billing import CustomerBillingList
from starter.cli import render
from starter.cli.ops import EXIT_INVALID, api_message, call_api, fail


def _read(path: str, params: dict[str, str] | None = None) -> Any:
    """The JSON the API answers to ``GET path``; exits 2 naming each field the API refused,
    1 on any other refusal."""
    answer = call_api("GET", path, params=params)
    if answer.status_code == 422:
        _refused_fields(answer)
    if answer.status_code in (401, 403):
        fail(f"the API refused ({api_message(answer)}); set C2C_API_TOKEN to a token that may read")
    if answer.status_code != 200:
        fail(api_message(answer))
    return answer.json()


def _refused_fields(answer: httpx.Response) -> None:
    errors = answer.json().get("errors") or [answer.json().get("error", {})]
    for error in errors:
        field = error.get("field")
        option = f"--{field.replace('_', '-')}" if field else "input"
        typer.echo(f"{option}: {error.get('message')}", err=True)
    fail("nothing was read", EXIT_INVALID)


def customers(
    status: str = typer.Option(
        "running",
        help="running, completed, failed, canceled, terminated, timed_out or all",
    ),
    legal_entity: str | None = typer.Option(None, "--legal-entity", help="only this entity"),
    customer: str | None = typer.Option(None, help="only this CRM account"),
    as_json: bool = typer.Option(False, "--json", help="print the list as the API answers it"),
) -> None:
    """List customer billing workflows (consolidated invoicing): key, mode, members, sections
    waiting, open balance and last invoice."""
    params = {"status": status}
    if legal_entity is not None:
        params["legal_entity"] = legal_entity
    if customer is not None:
        params["customer"] = customer
    found = _read("/api/customer-billing", params)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    typer.echo(render.customer_billing_table(CustomerBillingList.model_validate(found).items))


def customer(
    workflow_id: str = typer.Argument(
        ..., help="the customer billing workflow's id (customer-billing-...)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the status as the API answers it"),
) -> None:
    """Show a customer's consolidated invoicing: members, sections waiting by period,
    invoices with each section's total, paid and balance, payments and history."""
    found = _read(f"/api/customer-billing/{quote(workflow_id, safe='')}")
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    typer.echo(render.customer_billing_text(CustomerBillingStatus.model_validate(found)))
