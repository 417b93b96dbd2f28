"""The ERP connector against the sandbox over real HTTP: references, rates, credit notes, cash
application, revenue, balances and amendments, each made once through faults and repeats."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from connectors.erp import HttpErp
from domain.errors import BusinessError, NotFound, TransientError
from domain.write_models import (
    AmendmentDraft,
    CashApplicationDraft,
    CreditNoteDraft,
    PaymentDraft,
    RevenueEntryDraft,
)
from tests.connectors.support import (
    Contract,
    erp_contract,
    invoice_body,
    issued_invoice,
    unique,
)


@pytest_asyncio.fixture
async def contract(erp: HttpErp) -> Contract:
    return await erp_contract(erp)


async def writes(sandbox: httpx.AsyncClient, route: str) -> int:
    """How many requests to ``route`` changed ERP data so far."""
    stats = (await sandbox.get("/_admin/stats")).json()
    return int(stats["writes"].get("erp", {}).get(route, 0))


def credit_note(credit_note_id: str, amount: Decimal) -> CreditNoteDraft:
    return CreditNoteDraft.model_validate(
        {
            "credit_note_id": credit_note_id,
            "reason": "Hours billed twice",
            "lines": [
                {
                    "line_id": "1",
                    "description": "Hours billed twice",
                    "amount": amount,
                    "tax_amount": 0,
                }
            ],
            "subtotal": amount,
            "tax": Decimal(0),
            "total": amount,
            "currency": "USD",
        }
    )


async def test_invoices_are_found_by_reference_period_or_milestone(
    erp: HttpErp, contract: Contract
) -> None:
    key = f"{contract.contract_id}:invoice"
    advance = await erp.create_invoice(
        invoice_body(contract, "2026-10:advance"), idempotency_key=f"{key}:advance"
    )
    monthly = await erp.create_invoice(
        invoice_body(contract, "2026-10", reference=None), idempotency_key=f"{key}:monthly"
    )
    milestone = await erp.create_invoice(
        invoice_body(contract, "2026-10", reference=None, period=None, milestone_id="M1"),
        idempotency_key=f"{key}:m1",
    )

    cid = contract.contract_id
    assert await erp.find_invoice(cid, reference="2026-10:advance") == advance
    assert await erp.find_invoice(cid, period="2026-10") == monthly
    assert await erp.find_invoice(cid, reference="2026-10") == monthly
    assert await erp.find_invoice(cid, milestone_id="M1") == milestone
    assert await erp.find_invoice(cid, reference="2026-11") is None
    assert await erp.find_invoice(cid) is None
    assert (advance.reference, milestone.reference) == ("2026-10:advance", "milestone:M1")


async def test_an_invoice_created_again_under_another_key_is_the_same_invoice(
    erp: HttpErp, contract: Contract, sandbox: httpx.AsyncClient
) -> None:
    body = invoice_body(
        contract,
        "2026-10",
        functional_currency="USD",
        exchange_rate=Decimal(1),
        functional_subtotal=Decimal("1000.00"),
        functional_tax=Decimal("0.00"),
        functional_total=Decimal("1000.00"),
    )
    first = await erp.create_invoice(body, idempotency_key=f"{contract.contract_id}:inv:run-1")
    again = await erp.create_invoice(body, idempotency_key=f"{contract.contract_id}:inv:run-2")

    assert again == first
    assert (first.functional_currency, first.exchange_rate) == ("USD", Decimal(1))
    assert first.functional_total == Decimal("1000.00")
    listed = await sandbox.get("/erp/v1/invoices", params={"contract_id": contract.contract_id})
    assert len(listed.json()["items"]) == 1


async def test_the_rate_of_a_day_is_the_latest_on_or_before_it(erp: HttpErp) -> None:
    friday = await erp.get_exchange_rate("EUR", "USD", date(2026, 10, 30))
    sunday = await erp.get_exchange_rate("EUR", "USD", date(2026, 11, 1))

    assert isinstance(sunday, Decimal)
    assert sunday == friday
    assert Decimal("1.0") < friday < Decimal("1.2")
    assert await erp.get_exchange_rate("GBP", "GBP", date(2027, 6, 1)) == Decimal(1)
    with pytest.raises(NotFound):
        await erp.get_exchange_rate("USD", "CHF", date(2026, 10, 30))


async def test_a_credit_note_is_made_once_when_its_answer_is_lost(
    erp: HttpErp, contract: Contract, faults: Any, sandbox: httpx.AsyncClient
) -> None:
    invoice = await issued_invoice(erp, contract, "2026-10")
    note_id = unique("CN")
    body = credit_note(note_id, Decimal("250.00"))
    key = f"{contract.contract_id}:credit-note:{note_id}"
    route = "POST /invoices/{invoice_id}/credit-notes"
    before = await writes(sandbox, route)
    await faults(
        system="erp", path_prefix="/invoices", method="POST", status=503, phase="after", times=1
    )

    with pytest.raises(TransientError):
        await erp.create_credit_note(invoice.invoice_id, body, idempotency_key=key)
    retried = await erp.create_credit_note(invoice.invoice_id, body, idempotency_key=key)
    after_reset = await erp.create_credit_note(invoice.invoice_id, body, idempotency_key="other")

    assert retried == after_reset
    assert (retried.credit_note_id, retried.invoice_id) == (note_id, invoice.invoice_id)
    assert retried.number.startswith("CN-")
    assert (retried.applied_amount, retried.unapplied_amount) == (Decimal("250.00"), 0)
    assert await writes(sandbox, route) == before + 1
    assert [n.credit_note_id for n in await erp.list_credit_notes(contract.contract_id)] == [
        note_id
    ]
    credited = await erp.get_invoice(invoice.invoice_id)
    assert credited is not None
    assert (credited.credited_amount, credited.balance) == (Decimal("250.00"), Decimal("750.00"))


async def test_a_credit_note_with_other_content_is_a_business_error(
    erp: HttpErp, contract: Contract
) -> None:
    invoice = await issued_invoice(erp, contract, "2026-10")
    note_id = unique("CN")
    await erp.create_credit_note(
        invoice.invoice_id, credit_note(note_id, Decimal("10.00")), idempotency_key="k1"
    )

    with pytest.raises(BusinessError) as conflict:
        await erp.create_credit_note(
            invoice.invoice_id, credit_note(note_id, Decimal("11.00")), idempotency_key="k2"
        )
    with pytest.raises(BusinessError) as too_much:
        await erp.create_credit_note(
            invoice.invoice_id, credit_note(unique("CN"), Decimal("991.00")), idempotency_key="k3"
        )

    assert (conflict.value.rejection.status, conflict.value.rejection.code) == (409, "duplicate")
    assert (too_much.value.rejection.code, too_much.value.rejection.field) == (
        "exceeds_invoice",
        "subtotal",
    )


async def test_unapplied_cash_is_applied_once_when_its_answer_is_lost(
    erp: HttpErp, contract: Contract, faults: Any, sandbox: httpx.AsyncClient
) -> None:
    payment_id = unique("PAY")
    payment = await erp.record_payment(
        PaymentDraft(
            **{
                "payment_id": payment_id,
                "invoice_id": None,
                "contract_id": contract.contract_id,
                "amount": Decimal("1500.00"),
                "currency": "USD",
                "received_on": date(2026, 10, 2),
            }
        ),
        idempotency_key=f"payment:{payment_id}",
    )
    invoice = await issued_invoice(erp, contract, "2026-10")
    application = CashApplicationDraft(
        application_id=f"{payment_id}:{invoice.invoice_id}",
        invoice_id=invoice.invoice_id,
        amount=Decimal("1000.00"),
    )
    key = f"apply:{payment_id}:{invoice.invoice_id}"
    route = "POST /payments/{payment_id}/applications"
    before = await writes(sandbox, route)
    await faults(
        system="erp", path_prefix="/payments/", method="POST", status=503, phase="after", times=1
    )

    with pytest.raises(TransientError):
        await erp.apply_payment(payment_id, application, idempotency_key=key)
    applied = await erp.apply_payment(payment_id, application, idempotency_key=key)
    again = await erp.apply_payment(payment_id, application, idempotency_key="after-a-reset")

    assert (payment.invoice_id, payment.unapplied_amount) == (None, Decimal("1500.00"))
    assert applied == again
    assert (applied.source, applied.payment_id, applied.amount) == (
        "payment",
        payment_id,
        Decimal("1000.00"),
    )
    assert await writes(sandbox, route) == before + 1
    [listed] = await erp.list_payments(invoice_id=invoice.invoice_id)
    assert (listed.payment_id, listed.unapplied_amount) == (payment_id, Decimal("500.00"))
    assert [a.application_id for a in listed.applications] == [application.application_id]
    paid = await erp.get_invoice(invoice.invoice_id)
    assert paid is not None and (paid.status, paid.balance) == ("paid", Decimal("0.00"))
    balances = await erp.get_balances(contract.erp_contract_id)
    assert (balances.unapplied_cash, balances.receivable) == (Decimal("500.00"), Decimal(0))


async def test_customer_credit_is_applied_to_the_next_invoice(
    erp: HttpErp, contract: Contract
) -> None:
    paid = await issued_invoice(erp, contract, "2026-10")
    await erp.record_payment(
        PaymentDraft(
            **{
                "payment_id": unique("PAY"),
                "invoice_id": paid.invoice_id,
                "contract_id": contract.contract_id,
                "amount": "1000.00",
                "currency": "USD",
                "received_on": "2026-11-15",
            }
        ),
        idempotency_key=unique("k"),
    )
    note_id = unique("CN")
    note = await erp.create_credit_note(
        paid.invoice_id, credit_note(note_id, Decimal("300.00")), idempotency_key=unique("k")
    )
    upcoming = await issued_invoice(erp, contract, "2026-11")

    applied = await erp.apply_credit(
        note_id,
        CashApplicationDraft(
            **{
                "application_id": f"{note_id}:{upcoming.invoice_id}",
                "invoice_id": upcoming.invoice_id,
                "amount": "300.00",
            }
        ),
        idempotency_key=unique("k"),
    )
    [after] = await erp.list_credit_notes(contract.contract_id, invoice_id=paid.invoice_id)
    settled = await erp.get_invoice(upcoming.invoice_id)

    assert note.unapplied_amount == Decimal("300.00")
    assert (applied.source, applied.credit_note_id) == ("credit_note", note_id)
    assert after.unapplied_amount == 0 and len(after.applications) == 1
    assert settled is not None
    assert (settled.credit_applied, settled.balance) == (Decimal("300.00"), Decimal("700.00"))


async def test_a_revenue_entry_is_posted_once_when_its_answer_is_lost(
    erp: HttpErp, contract: Contract, faults: Any, sandbox: httpx.AsyncClient
) -> None:
    await issued_invoice(erp, contract, "2026-10", Decimal("1200.00"))
    entry = RevenueEntryDraft(
        **{
            "entry_id": f"{contract.contract_id}:revenue:2026-10",
            "period": "2026-10",
            "amount": Decimal("1000.00"),
            "method": "ratable",
            "description": "October of the retainer",
            "recognised_on": date(2026, 10, 31),
        }
    )
    key = f"{contract.contract_id}:revenue:2026-10"
    route = "POST /contracts/{erp_contract_id}/revenue"
    before = await writes(sandbox, route)
    await faults(
        system="erp", path_prefix="/contracts", method="POST", status=503, phase="after", times=1
    )

    with pytest.raises(TransientError):
        await erp.post_revenue(contract.erp_contract_id, entry, idempotency_key=key)
    posted = await erp.post_revenue(contract.erp_contract_id, entry, idempotency_key=key)
    again = await erp.post_revenue(contract.erp_contract_id, entry, idempotency_key="other-key")
    catch_up = await erp.post_revenue(
        contract.erp_contract_id,
        entry.model_copy(
            update={"entry_id": f"{entry.entry_id}:catch-up", "amount": Decimal("-100.00")}
        ),
        idempotency_key=f"{key}:catch-up",
    )

    assert posted == again
    assert (posted.amount, posted.currency, posted.recognised_on) == (
        Decimal("1000.00"),
        "USD",
        date(2026, 10, 31),
    )
    assert catch_up.amount == Decimal("-100.00")
    assert await writes(sandbox, route) == before + 2
    assert [e.amount for e in await erp.list_revenue(contract.erp_contract_id)] == [
        Decimal("1000.00"),
        Decimal("-100.00"),
    ]
    balances = await erp.get_balances(contract.erp_contract_id)
    assert balances.contract_id == contract.contract_id
    assert (balances.billed_to_date, balances.recognised_to_date) == (
        Decimal("1200.00"),
        Decimal("900.00"),
    )
    assert (balances.contract_liability, balances.contract_asset) == (Decimal("300.00"), 0)
    assert balances.receivable == Decimal("1200.00")


async def test_an_amendment_is_applied_once(erp: HttpErp, contract: Contract) -> None:
    amendment = AmendmentDraft.model_validate(
        {
            "amendment_id": "A-1",
            "effective_date": date(2026, 7, 1),
            "end_date": date(2027, 6, 30),
            "not_to_exceed": None,
            "contract_value": Decimal("90000.00"),
            "rate_card": [
                {
                    "role": "consultant",
                    "hourly_rate": Decimal("165.00"),
                    "effective_from": "2026-07-01",
                }
            ],
            "add_milestones": [{"milestone_id": "M9", "name": "Phase 2", "amount": "5000.00"}],
            "reason": "Phase 2 signed",
        }
    )

    amended = await erp.amend_contract(
        contract.erp_contract_id, amendment, idempotency_key="amend:A-1:erp"
    )
    again = await erp.amend_contract(
        contract.erp_contract_id, amendment, idempotency_key="amend:A-1:erp:after-reset"
    )

    assert amended == again
    assert amended.end_date == date(2027, 6, 30)
    assert [(a.amendment_id, a.effective_date) for a in amended.amendments] == [
        ("A-1", date(2026, 7, 1))
    ]
