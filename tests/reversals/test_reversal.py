"""Reversing an exported item, then exporting it again corrected: against the stand-in Dinero.

What users notice: the API answers (202, the item `reversing` then `reversed`, the refusals'
codes), what Dinero's books hold (the original, the reversing entry, the new voucher, and
balances that net to the corrected amount), the webhook event, and that a worker killed at
any step leaves exactly one reversing entry.
"""

from __future__ import annotations

import base64
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from app.auth import Role
from app.connection.models import ConnectionStatus, DineroConnection
from app.exports import runner
from app.exports.models import ExportItem
from app.outbox.models import OutboxEvent
from app.reversals import flow
from app.reversals.models import Reversal
from tests.conftest import bearer
from tests.exports.intake_support import deliver, reimbursement, webhook_body
from tests.exports.test_closed_periods import put_settings
from tests.killing import Killed, kill_at
from tests.receipts.samples import receipt_photo
from tests.sandboxed import (
    BANK,
    CARD,
    OUT_OF_POCKET,
    PRO_ORG,
    Service,
    connected_company,
    read_item,
    run_jobs,
    service_fixture,
    shared,
)

EXPENSE_ACCOUNT = 5000
REVERSAL_DAY = "2026-11-20"


service = service_fixture(dinero_rate_limit_per_minute=10_000)


@pytest.fixture
async def company(service: Service) -> str:
    connected = await connected_company(service)
    _BEFORE[id(service.sandbox)] = balances(service)
    return connected


def receipt() -> dict[str, str]:
    return {
        "content_base64": base64.b64encode(receipt_photo("PNG")).decode(),
        "filename": "taxa.png",
        "content_type": "image/png",
    }


def expense(
    external_id: str, amount: int, *, day: str = "2026-11-03", receipts: bool = False
) -> dict[str, Any]:
    return {
        **({"receipts": [receipt()]} if receipts else {}),
        "external_id": external_id,
        "type": "card_expense",
        "date": day,
        "description": "Taxa Nord",
        "amount": {"value": amount, "currency": "DKK"},
        "lines": [{"account_number": EXPENSE_ACCOUNT, "tax_code": "I25", "amount": amount}],
    }


async def export(
    service: Service, company: str, item: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    response = await service.client.post(
        f"/v1/companies/{company}/exports",
        json={"items": [item], **extra},
        headers=bearer(company),
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def run_exports(service: Service, company: str) -> None:
    for _ in range(6):
        await runner.run_company(shared(service), company)
        service.sandbox.complete_ledger_bookings(PRO_ORG)


async def exported(service: Service, company: str, body: dict[str, Any]) -> dict[str, Any]:
    await export(service, company, body)
    item_id = await item_id_of(service, company, body["external_id"])
    await run_exports(service, company)
    return await read_item(service, company, item_id)


async def item_id_of(service: Service, company: str, external_id: str) -> str:
    async with shared(service).sessionmaker() as session:
        found = await session.execute(
            select(ExportItem.id).where(
                ExportItem.company_id == company, ExportItem.external_id == external_id
            )
        )
        return str(found.scalar_one())


async def reverse(
    service: Service, company: str, item_id: str, headers: dict[str, str] | None = None, **body: Any
) -> tuple[int, dict[str, Any]]:
    response = await service.client.post(
        f"/v1/companies/{company}/export-items/{item_id}/reverse",
        json=body,
        headers={**bearer(company), **(headers or {})},
    )
    return response.status_code, response.json()


async def run_reversal(service: Service, reversal_id: str) -> None:
    """What the job does, run again while it asks to (a ledger booking is asynchronous)."""
    for _ in range(10):
        later = await flow.run_reversal(shared(service), uuid.UUID(reversal_id))
        if later is None:
            return
        service.sandbox.complete_ledger_bookings(PRO_ORG)
    raise AssertionError("the reversal did not finish")


def entries_of(service: Service, guid: str) -> dict[int, Decimal]:
    by_account: dict[int, Decimal] = {}
    for entry in service.sandbox.entries(PRO_ORG, voucher_guid=guid):
        by_account[entry.account_number] = by_account.get(entry.account_number, Decimal(0)) + (
            entry.amount
        )
    return by_account


WATCHED = (EXPENSE_ACCOUNT, CARD, OUT_OF_POCKET, BANK)


def balances(service: Service) -> dict[int, Decimal]:
    """The saldo of the accounts these tests move (the sandbox's demo books move them too)."""
    return {account: service.sandbox.balance(PRO_ORG, account) for account in WATCHED}


_BEFORE: dict[int, dict[int, Decimal]] = {}


def balance(service: Service, account: int) -> Decimal:
    """How far the account moved since the test's company was connected (the sandbox's demo
    books hold entries of their own on these accounts)."""
    return balances(service)[account] - _BEFORE[id(service.sandbox)][account]


async def outbox_statuses(service: Service, item_id: str) -> list[str]:
    async with shared(service).sessionmaker() as session:
        rows = await session.execute(
            select(OutboxEvent.status)
            .where(OutboxEvent.item_id == uuid.UUID(item_id))
            .order_by(OutboxEvent.seq)
        )
        return list(rows.scalars())


async def reversals_of(
    service: Service, company: str, item_id: str, role: Role = "admin"
) -> list[dict[str, Any]]:
    """The item's reversals, as `GET …/export-items/{id}/reversals` lists them."""
    response = await service.client.get(
        f"/v1/companies/{company}/export-items/{item_id}/reversals", headers=bearer(company, role)
    )
    assert response.status_code == 200, response.text
    reversals: list[dict[str, Any]] = response.json()
    return reversals


def reversing_manual_vouchers(service: Service, reversal_id: str) -> list[Any]:
    ours = f"bridge-reversal:{reversal_id}"
    return [v for v in service.sandbox.manual_vouchers(PRO_ORG) if v.external_reference == ours]


# --- a draft awaiting Godkend ------------------------------------------------------------------


async def test_a_draft_is_deleted_and_a_corrected_export_makes_a_new_one(
    service: Service, company: str
) -> None:
    first = await exported(service, company, expense("exp-draft", 12500))
    assert first["status"] == "awaiting_approval"
    draft_guid = first["dinero"]["voucher_guid"]
    file_guid = first["dinero"]["file_guid"]

    status, body = await reverse(service, company, first["id"], reason="wrong amount")
    assert status == 202, body
    assert (body["status"], body["item_status"]) == ("pending", "reversing")
    await run_reversal(service, body["id"])

    after = await read_item(service, company, first["id"])
    assert after["status"] == "reversed"
    gone = {v.guid: v for v in service.sandbox.purchase_vouchers(PRO_ORG, include_deleted=True)}
    assert gone[draft_guid].deleted_at is not None  # deleted in Dinero
    assert file_guid in {f.guid for f in service.sandbox.files(PRO_ORG)}  # file kept
    assert entries_of(service, draft_guid) == {}  # a draft never reached the books
    assert (await outbox_statuses(service, first["id"]))[-2:] == ["reversing", "reversed"]
    [reversal] = await reversals_of(service, company, first["id"], "member")
    assert reversal["kind"] == "draft_deleted"
    assert reversal["original"]["voucher_guid"] == draft_guid
    assert reversal["reason"] == "wrong amount"

    # Without replace, the same external_id is still a no-op.
    await export(service, company, expense("exp-draft", 10000))
    await run_exports(service, company)
    assert (await read_item(service, company, first["id"]))["status"] == "reversed"

    # The preview says the same: a no-op without replace, the corrected posting with it.
    for replace, outcome in ((False, "exists"), (True, "would_export")):
        preview = await service.client.post(
            f"/v1/companies/{company}/exports/preview",
            json={"items": [expense("exp-draft", 10000)], "replace": replace},
            headers=bearer(company),
        )
        assert preview.status_code == 200, preview.text
        [previewed] = preview.json()["items"]
        assert previewed["outcome"] == outcome, previewed
    assert previewed["posting"]["amount_minor"] == 10000

    accepted = await export(service, company, expense("exp-draft", 10000), replace=True)
    assert accepted["items"][0]["status"] == "queued"
    await run_exports(service, company)
    again = await read_item(service, company, first["id"])
    assert again["status"] == "awaiting_approval"
    assert again["dinero"]["voucher_guid"] != draft_guid
    assert again["amount"]["value"] == 10000
    service.sandbox.approve_purchase_voucher(PRO_ORG, again["dinero"]["voucher_guid"])
    assert balance(service, EXPENSE_ACCOUNT) == Decimal("80.00")  # 100.00 incl. 25 % VAT
    assert balance(service, CARD) == Decimal("-100.00")


async def test_a_signed_webhook_with_replace_exports_a_reversed_item_again(
    service: Service, company: str
) -> None:
    """The platform that sends its exports by webhook corrects a reversed item the same way:
    `replace: true` in the envelope; without it the webhook's item is a no-op."""
    first = await exported(service, company, expense("exp-hook", 10000))
    status, body = await reverse(service, company, first["id"], reason="wrong amount")
    assert status == 202, body
    await run_reversal(service, body["id"])

    for replace, queued in ((False, "reversed"), (True, "queued")):
        envelope = {**webhook_body(company, expense("exp-hook", 9000)), "replace": replace}
        answer = await deliver(service.client, envelope)
        assert answer.status_code == 202, answer.text
        assert (await read_item(service, company, first["id"]))["status"] == queued
    await run_exports(service, company)
    again = await read_item(service, company, first["id"])
    assert (again["status"], again["amount"]["value"]) == ("awaiting_approval", 9000)
    assert again["dinero"]["voucher_guid"] != first["dinero"]["voucher_guid"]


# --- an approved expense ------------------------------------------------------------------------


async def approved(service: Service, company: str, external_id: str, amount: int) -> dict[str, Any]:
    first = await exported(service, company, expense(external_id, amount))
    service.sandbox.approve_purchase_voucher(PRO_ORG, first["dinero"]["voucher_guid"])
    return first


async def test_an_approved_expense_gets_a_booked_reversing_voucher_then_a_new_one(
    service: Service, company: str
) -> None:
    first = await approved(service, company, "exp-paid", 12500)
    original = first["dinero"]["voucher_guid"]
    assert balance(service, EXPENSE_ACCOUNT) == Decimal("100.00")

    status, body = await reverse(service, company, first["id"], voucher_date=REVERSAL_DAY)
    assert status == 202, body
    await run_reversal(service, body["id"])

    [reversing] = reversing_manual_vouchers(service, body["id"])
    assert reversing.status == "Booked"
    assert reversing.file_guid == first["dinero"]["file_guid"]  # the original's file
    assert reversing.voucher_date == date(2026, 11, 20)
    assert entries_of(service, reversing.guid) == {
        CARD: Decimal("125.00"),
        EXPENSE_ACCOUNT: Decimal("-100.00"),
        **{k: v for k, v in entries_of(service, reversing.guid).items() if k not in (CARD, 5000)},
    }
    assert balance(service, EXPENSE_ACCOUNT) == Decimal("0.00")
    assert balance(service, CARD) == Decimal("0.00")
    after = await read_item(service, company, first["id"])
    assert after["status"] == "reversed"
    [reversal] = await reversals_of(service, company, first["id"])
    assert reversal["kind"] == "manual_voucher"
    assert reversal["reversing"]["voucher_guid"] == reversing.guid
    assert reversal["reversing"]["voucher_number"] == reversing.voucher_number

    await export(service, company, expense("exp-paid", 10000), replace=True)
    await run_exports(service, company)
    again = await read_item(service, company, first["id"])
    service.sandbox.approve_purchase_voucher(PRO_ORG, again["dinero"]["voucher_guid"])
    # The books: the original, its reversal and the new voucher, netting to the correction.
    assert entries_of(service, original)[EXPENSE_ACCOUNT] == Decimal("100.00")
    assert entries_of(service, reversing.guid)[EXPENSE_ACCOUNT] == Decimal("-100.00")
    assert entries_of(service, again["dinero"]["voucher_guid"])[EXPENSE_ACCOUNT] == Decimal("80.00")
    assert balance(service, EXPENSE_ACCOUNT) == Decimal("80.00")
    assert balance(service, CARD) == Decimal("-100.00")


# --- a booked reimbursement ---------------------------------------------------------------------


async def test_a_booked_reimbursement_gets_a_booked_reversing_ledger_item(
    service: Service, company: str
) -> None:
    first = await exported(service, company, reimbursement("reimb-1", 50000))
    assert first["status"] == "booked"
    assert balance(service, OUT_OF_POCKET) == Decimal("500.00")

    status, body = await reverse(service, company, first["id"])
    assert status == 202, body
    await run_reversal(service, body["id"])

    [reversing] = [i for i in service.sandbox.ledger_items(PRO_ORG) if i.id == body["id"]]
    assert reversing.status == "Booked"
    assert balance(service, OUT_OF_POCKET) == Decimal("0.00")
    assert balance(service, BANK) == Decimal("0.00")
    assert (await read_item(service, company, first["id"]))["status"] == "reversed"

    await export(service, company, reimbursement("reimb-1", 45000), replace=True)
    await run_exports(service, company)
    assert (await read_item(service, company, first["id"]))["status"] == first["status"]
    assert balance(service, OUT_OF_POCKET) == Decimal("450.00")
    assert balance(service, BANK) == Decimal("-450.00")


# --- exactly once: a worker killed at every step --------------------------------------------------


async def killed_at(service: Service, reversal_id: str, step: str) -> None:
    """Run the reversal until the worker dies at `step`."""
    with pytest.raises(Killed):
        await flow.run_reversal(shared(service), uuid.UUID(reversal_id), checkpoint=kill_at(step))


@pytest.mark.parametrize("step", ["before_create", "after_create", "before_book", "after_book"])
async def test_a_killed_worker_leaves_one_reversing_voucher(
    service: Service, company: str, step: str
) -> None:
    first = await approved(service, company, f"exp-kill-{step}", 12500)
    status, body = await reverse(service, company, first["id"])
    assert status == 202, body

    await killed_at(service, body["id"], step)
    await run_reversal(service, body["id"])  # the job, retried after the worker died

    assert len(reversing_manual_vouchers(service, body["id"])) == 1
    assert balance(service, EXPENSE_ACCOUNT) == Decimal("0.00")
    assert (await read_item(service, company, first["id"]))["status"] == "reversed"


@pytest.mark.parametrize(
    "step", ["before_ledger_create", "after_ledger_create", "before_ledger_book"]
)
async def test_a_killed_worker_leaves_one_reversing_ledger_item(
    service: Service, company: str, step: str
) -> None:
    first = await exported(service, company, reimbursement(f"reimb-kill-{step}", 50000))
    status, body = await reverse(service, company, first["id"])
    assert status == 202, body

    await killed_at(service, body["id"], step)
    await run_reversal(service, body["id"])

    reversing = [i for i in service.sandbox.ledger_items(PRO_ORG) if i.id == body["id"]]
    assert len(reversing) == 1
    assert balance(service, OUT_OF_POCKET) == Decimal("0.00")


@pytest.mark.parametrize("step", ["before_delete", "after_delete"])
async def test_a_killed_worker_deletes_the_draft_once(
    service: Service, company: str, step: str
) -> None:
    first = await exported(service, company, expense(f"exp-kill-{step}", 12500))
    _, body = await reverse(service, company, first["id"])

    await killed_at(service, body["id"], step)
    await run_reversal(service, body["id"])

    assert (await read_item(service, company, first["id"]))["status"] == "reversed"
    assert service.sandbox.manual_vouchers(PRO_ORG) == []  # nothing booked to undo a draft


async def test_a_lost_answer_to_the_create_is_found_by_our_reference(
    service: Service, company: str
) -> None:
    first = await approved(service, company, "exp-drop", 12500)
    service.sandbox.add_fault(kind="drop", method="POST", path=f"/v1/{PRO_ORG}/vouchers/manuel")
    _, body = await reverse(service, company, first["id"])
    await flow.run_reversal(shared(service), uuid.UUID(body["id"]))  # answer lost: later
    service.sandbox.clear_faults()
    await run_reversal(service, body["id"])

    assert len(reversing_manual_vouchers(service, body["id"])) == 1
    assert (await read_item(service, company, first["id"]))["status"] == "reversed"


# --- refusals -------------------------------------------------------------------------------------


async def test_a_draft_edited_in_dinero_is_refused_with_the_differences(
    service: Service, company: str
) -> None:
    first = await exported(service, company, expense("exp-edited", 12500))
    service.sandbox.edit_purchase_voucher(
        PRO_ORG, first["dinero"]["voucher_guid"], account_number=4000
    )
    status, body = await reverse(service, company, first["id"])
    assert status == 202
    await run_reversal(service, body["id"])

    [reversal] = await reversals_of(service, company, first["id"])
    assert reversal["status"] == "failed"
    assert reversal["failure"]["code"] == "voucher_edited_in_dinero"
    assert {"field": "lines[0].account_number", "sent": 5000, "now": 4000} in reversal["failure"][
        "changes"
    ]
    assert (await read_item(service, company, first["id"]))["status"] == "awaiting_approval"
    assert service.sandbox.purchase_vouchers(PRO_ORG)[-1].deleted_at is None


async def test_a_closed_year_is_refused_and_leaves_nothing(service: Service, company: str) -> None:
    first = await approved(service, company, "exp-closed", 12500)
    service.sandbox.lock_accounting_year(PRO_ORG, 2026)
    status, body = await reverse(service, company, first["id"])
    assert status == 202
    await run_reversal(service, body["id"])

    history = await reversals_of(service, company, first["id"])
    assert history[0]["failure"]["code"] == "accounting_year_closed"
    # Back as it was (the follow-up had not yet seen the approval).
    assert (await read_item(service, company, first["id"]))["status"] == first["status"]
    assert reversing_manual_vouchers(service, body["id"]) == []  # the draft was deleted again
    assert balance(service, EXPENSE_ACCOUNT) == Decimal("100.00")


async def test_a_date_outside_the_accounting_years_is_refused_at_once(
    service: Service, company: str
) -> None:
    first = await approved(service, company, "exp-1999", 12500)
    status, body = await reverse(service, company, first["id"], voucher_date="1999-01-01")
    assert status == 409
    assert body["code"] == "accounting_year_closed"
    assert (await read_item(service, company, first["id"]))["status"] == first["status"]


async def test_an_item_posted_on_the_first_open_day_is_reversed_from_what_it_posted(
    service: Service, company: str
) -> None:
    """The reversal reads the booked entry on the date it was posted, not the item's own."""
    locked = await put_settings(
        service, company, books_closed_through="2026-11-10", closed_period_policy="first_open_day"
    )
    assert locked.status_code == 200, locked.text
    first = await exported(service, company, reimbursement("reimb-moved", 30000))
    assert first["status"] == "booked"
    assert (first["date"], first["posting_date"]) == ("2026-11-04", "2026-11-11")
    assert balance(service, OUT_OF_POCKET) == Decimal("300.00")

    status, body = await reverse(service, company, first["id"], voucher_date=REVERSAL_DAY)
    assert status == 202, body
    await run_reversal(service, body["id"])

    assert (await read_item(service, company, first["id"]))["status"] == "reversed"
    [reversing] = [i for i in service.sandbox.ledger_items(PRO_ORG) if i.id == body["id"]]
    assert (reversing.status, reversing.voucher_date) == ("Booked", date(2026, 11, 20))
    assert balance(service, OUT_OF_POCKET) == Decimal("0.00")
    assert balance(service, BANK) == Decimal("0.00")


async def test_a_reversal_dated_in_the_closed_period_is_refused_at_once(
    service: Service, company: str
) -> None:
    first = await approved(service, company, "exp-locked", 12500)
    locked = await put_settings(service, company, books_closed_through="2026-11-15")
    assert locked.status_code == 200, locked.text
    service.sandbox.clear_requests()

    status, body = await reverse(service, company, first["id"], voucher_date="2026-11-15")

    assert status == 409, body
    assert body["code"] == "period_closed"
    assert "voucher_date" in body["errors"]
    assert (await read_item(service, company, first["id"]))["status"] == first["status"]
    assert await reversals_of(service, company, first["id"]) == []
    assert service.sandbox.requests == []
    # The day after the lock date is open.
    status, body = await reverse(service, company, first["id"], voucher_date="2026-11-16")
    assert status == 202, body


async def test_a_connection_needing_reauthorisation_is_refused(
    service: Service, company: str
) -> None:
    first = await exported(service, company, expense("exp-reauth", 12500))
    async with shared(service).sessionmaker() as session, session.begin():
        await session.execute(
            update(DineroConnection)
            .where(DineroConnection.company_id == company)
            .values(status=ConnectionStatus.REAUTH_REQUIRED)
        )
    status, body = await reverse(service, company, first["id"])
    assert status == 409
    assert body["code"] == "reauth_required"
    assert (await read_item(service, company, first["id"]))["status"] == "awaiting_approval"


async def test_only_exported_items_can_be_reversed(service: Service, company: str) -> None:
    await export(service, company, expense("exp-queued", 12500))
    item_id = await item_id_of(service, company, "exp-queued")
    status, body = await reverse(service, company, item_id)
    assert (status, body["code"]) == (409, "item_not_reversible")


async def test_asking_twice_starts_one_reversal(service: Service, company: str) -> None:
    first = await exported(service, company, expense("exp-twice", 12500))
    key = {"Idempotency-Key": "rev-1"}
    one = await reverse(service, company, first["id"], headers=key, reason="x")
    two = await reverse(service, company, first["id"], headers=key, reason="x")
    three = await reverse(service, company, first["id"])
    assert one[0] == two[0] == three[0] == 202
    assert one[1]["id"] == two[1]["id"] == three[1]["id"]
    other = await reverse(service, company, first["id"], headers=key, reason="y")
    assert (other[0], other[1]["code"]) == (409, "idempotency_key_reused")
    async with shared(service).sessionmaker() as session:
        mine = await session.execute(
            select(Reversal.id).where(Reversal.item_id == uuid.UUID(first["id"]))
        )
        assert len(list(mine.scalars())) == 1


async def test_an_idempotency_key_that_cannot_be_stored_is_refused(
    service: Service, company: str
) -> None:
    first = await exported(service, company, expense("exp-nul-key", 12500))
    status, body = await reverse(
        service, company, first["id"], headers={"Idempotency-Key": "rev\x00-1"}
    )
    assert (status, body["code"]) == (422, "validation_error")
    assert "Idempotency-Key" in body["errors"]
    assert (await read_item(service, company, first["id"]))["status"] == "awaiting_approval"


async def test_a_whole_export_is_reversed_item_by_item(service: Service, company: str) -> None:
    response = await service.client.post(
        f"/v1/companies/{company}/exports",
        json={"items": [expense("bulk-1", 12500), expense("bulk-2", 5000)]},
        headers=bearer(company),
    )
    export_id = response.json()["id"]
    await run_exports(service, company)
    await export(service, company, expense("bulk-late", 100))  # another export: not touched
    await run_exports(service, company)
    late = await item_id_of(service, company, "bulk-late")
    assert (await read_item(service, company, late))["status"] == "awaiting_approval"

    bulk = await service.client.post(
        f"/v1/companies/{company}/exports/{export_id}/reverse", json={}, headers=bearer(company)
    )
    assert bulk.status_code == 202, bulk.text
    outcomes = {i["external_id"]: i for i in bulk.json()["items"]}
    assert set(outcomes) == {"bulk-1", "bulk-2"}
    assert {i["outcome"] for i in outcomes.values()} == {"reversing"}
    again = await service.client.post(
        f"/v1/companies/{company}/exports/{export_id}/reverse", json={}, headers=bearer(company)
    )
    assert {i["reversal"]["id"] for i in again.json()["items"]} == {
        i["reversal"]["id"] for i in outcomes.values()
    }
    for outcome in outcomes.values():
        await run_reversal(service, outcome["reversal"]["id"])
    final = await service.client.post(
        f"/v1/companies/{company}/exports/{export_id}/reverse", json={}, headers=bearer(company)
    )
    assert {(i["outcome"], i["code"]) for i in final.json()["items"]} == {
        ("refused", "item_already_reversed")
    }
    assert (await read_item(service, company, late))["status"] == "awaiting_approval"


async def test_the_job_reverses_the_item_and_tells_the_platform(
    service: Service, company: str
) -> None:
    # Jobs earlier tests left queued would run against this sandbox, whose guids repeat those
    # of theirs (the same seed): let them end first.
    await run_jobs(service, ["exports"])
    first = await exported(service, company, expense("exp-job", 12500))
    status, body = await reverse(service, company, first["id"])
    assert status == 202, body

    await run_jobs(service, ["exports"])  # the workers' queue: the reversal job runs by itself

    history = await reversals_of(service, company, first["id"])
    assert history[0]["status"] == "done", history[0]["failure"]
    assert (await read_item(service, company, first["id"]))["status"] == "reversed"
    assert (await outbox_statuses(service, first["id"]))[-1] == "reversed"


async def test_a_re_export_with_lost_answers_finds_its_own_file_and_voucher(
    service: Service, company: str
) -> None:
    # The same receipt both times: only our id in the file's name tells the two files apart.
    first = await exported(service, company, expense("exp-lost", 12500, receipts=True))
    service.sandbox.approve_purchase_voucher(PRO_ORG, first["dinero"]["voucher_guid"])
    _status, body = await reverse(service, company, first["id"])
    await run_reversal(service, body["id"])
    await export(service, company, expense("exp-lost", 10000, receipts=True), replace=True)
    # The upload and the create both reach Dinero, and both answers are lost.
    service.sandbox.add_fault(kind="drop", method="POST", path=f"/v1/{PRO_ORG}/files", count=1)
    service.sandbox.add_fault(
        kind="drop", method="POST", path=f"/v1.2/{PRO_ORG}/vouchers/purchase", count=1
    )

    for _ in range(3):  # each lost answer backs off: run again at once, as if it had waited
        await run_exports(service, company)
        async with shared(service).sessionmaker() as session, session.begin():
            await session.execute(
                update(ExportItem)
                .where(ExportItem.company_id == company)
                .values(next_attempt_at=None)
            )

    again = await read_item(service, company, first["id"])
    assert again["status"] == "awaiting_approval"
    assert again["dinero"]["voucher_guid"] != first["dinero"]["voucher_guid"]
    assert again["dinero"]["file_guid"] != first["dinero"]["file_guid"]
    drafts = [v for v in service.sandbox.purchase_vouchers(PRO_ORG) if v.is_draft]
    assert [str(v.guid) for v in drafts] == [again["dinero"]["voucher_guid"]]
