"""Records one contract owns are created first and looked up only when the create is refused:
over real HTTP to the sandbox, every way the create can be refused while the record exists
gives the record, a refusal with no record is the answer, and nothing is made twice."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio

from connectors.erp import HttpErp
from connectors.psa import HttpPsa
from domain.errors import BusinessError, TransientError
from domain.write_models import CustomerDraft, ProjectDraft
from tests.connectors.support import psa_project_body, unique


@pytest_asyncio.fixture
async def customer_id(erp: HttpErp) -> str:
    customer = await erp.ensure_customer(
        CustomerDraft(
            **{
                "crm_account_id": unique("ACC"),
                "name": "Create First Inc.",
                "country": "US",
                "region": "CA",
                "legal_entity": "US01",
                "currency": "USD",
            }
        ),
        idempotency_key=unique("customer"),
    )
    return customer.customer_id


def project(contract_id: str, customer_id: str, **changes: Any) -> ProjectDraft:
    return ProjectDraft.model_validate(
        {
            "contract_id": contract_id,
            "customer_id": customer_id,
            "legal_entity": "US01",
            "name": "Create first",
            "currency": "USD",
            "project_template": "standard",
            "start_date": "2026-01-01",
            "end_date": "2026-12-31",
            **changes,
        }
    )


async def calls(sandbox: httpx.AsyncClient, system: str, route: str) -> tuple[int, int]:
    """Requests served and writes made on ``route`` so far."""
    stats = (await sandbox.get("/_admin/stats")).json()
    served = stats["requests"].get(system, {}).get(route, 0)
    return int(served), int(stats["writes"].get(system, {}).get(route, 0))


async def test_a_new_project_costs_one_call(
    erp: HttpErp, customer_id: str, sandbox: httpx.AsyncClient
) -> None:
    lookups = await calls(sandbox, "erp", "GET /projects")
    creates = await calls(sandbox, "erp", "POST /projects")

    made = await erp.ensure_project(project(unique("CT"), customer_id), idempotency_key="k-new")

    assert made.project_id
    assert await calls(sandbox, "erp", "GET /projects") == lookups
    assert await calls(sandbox, "erp", "POST /projects") == (creates[0] + 1, creates[1] + 1)


@pytest.mark.parametrize(
    ("key", "changes"),
    [
        pytest.param("same", {}, id="the same key and body: the kept answer"),
        pytest.param("other", {}, id="another key: 409 duplicate"),
        pytest.param("same", {"end_date": "2027-06-30"}, id="the same key, another body"),
        pytest.param("other", {"legal_entity": "XX99"}, id="a rule the project predates"),
    ],
)
async def test_a_refused_create_of_an_existing_project_gives_that_project(
    erp: HttpErp,
    customer_id: str,
    sandbox: httpx.AsyncClient,
    key: str,
    changes: dict[str, Any],
) -> None:
    contract_id = unique("CT")
    first = await erp.ensure_project(
        project(contract_id, customer_id), idempotency_key=f"{contract_id}:project"
    )
    writes_before = (await calls(sandbox, "erp", "POST /projects"))[1]

    again = await erp.ensure_project(
        project(contract_id, customer_id, **changes),
        idempotency_key=f"{contract_id}:project" if key == "same" else f"{contract_id}:run-2",
    )

    assert again == first
    assert (await calls(sandbox, "erp", "POST /projects"))[1] == writes_before
    listed = await sandbox.get("/erp/v1/projects", params={"contract_id": contract_id})
    assert [p["project_id"] for p in listed.json()["items"]] == [first.project_id]


async def test_a_refusal_with_no_project_is_the_answer(
    erp: HttpErp, customer_id: str, sandbox: httpx.AsyncClient
) -> None:
    contract_id = unique("CT")

    with pytest.raises(BusinessError) as refused:
        await erp.ensure_project(
            project(contract_id, customer_id, legal_entity="XX99"), idempotency_key="k-refused"
        )

    assert refused.value.rejection.field == "legal_entity"
    listed = await sandbox.get("/erp/v1/projects", params={"contract_id": contract_id})
    assert listed.json()["items"] == []


async def test_the_psa_project_is_created_once_under_two_keys(
    psa: HttpPsa, sandbox: httpx.AsyncClient
) -> None:
    contract_id = unique("CT")
    body = psa_project_body(contract_id)

    first = await psa.ensure_project(body, idempotency_key=f"{contract_id}:psa-project")
    again = await psa.ensure_project(body, idempotency_key=f"{contract_id}:run-2")

    assert again == first
    listed = await sandbox.get("/psa/v1/projects", params={"contract_id": contract_id})
    assert [p["project_id"] for p in listed.json()["items"]] == [first.project_id]


async def test_a_project_whose_create_answer_is_lost_is_made_once(
    erp: HttpErp, customer_id: str, faults: Any, sandbox: httpx.AsyncClient
) -> None:
    contract_id = unique("CT")
    key = f"{contract_id}:project"
    writes_before = (await calls(sandbox, "erp", "POST /projects"))[1]
    await faults(
        system="erp", path_prefix="/projects", method="POST", status=503, phase="after", times=1
    )

    with pytest.raises(TransientError):
        await erp.ensure_project(project(contract_id, customer_id), idempotency_key=key)
    retried = await erp.ensure_project(project(contract_id, customer_id), idempotency_key=key)
    after_reset = await erp.ensure_project(
        project(contract_id, customer_id), idempotency_key=f"{contract_id}:run-2"
    )

    assert retried == after_reset
    assert (await calls(sandbox, "erp", "POST /projects"))[1] == writes_before + 1
    listed = await sandbox.get("/erp/v1/projects", params={"contract_id": contract_id})
    assert [p["project_id"] for p in listed.json()["items"]] == [retried.project_id]
