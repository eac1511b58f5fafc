"""The accountant approves, deletes and edits drafts in the stand-in Dinero; the service notices,
says so on the item, and tells the platform."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.exports.models import ItemStatus, ItemType, Step
from app.follow_up.models import FollowUpState
from tests.conftest import bearer
from tests.follow_up.conftest import (
    World,
    add_item,
    deliver,
    follow,
    item_api,
    item_row,
    line,
    outbox,
    settle,
)
from tests.killing import Killed, kill_at
from tests.sandboxed import PRO_ORG


async def _draft(w: World, company: str, amount: int = 24500) -> tuple[uuid.UUID, str]:
    item_id = await add_item(
        w.service,
        company,
        ItemType.CARD_EXPENSE,
        amount,
        lines=[line(2800, amount - 4500), line(2810, 4500, "none")],
    )
    await settle(w.service, company)
    row = await item_row(w.service, item_id)
    assert row.status == ItemStatus.AWAITING_APPROVAL
    return item_id, str(row.dinero_guid)


async def test_godkend_books_the_item_with_its_number_from_one_entries_call(
    w: World, company: str
) -> None:
    item_id, guid = await _draft(w, company)
    other, _ = await _draft(w, company, 9900)
    first = await follow(w, company)  # reads each new draft once: nothing changed
    assert (first.booked, first.deleted, first.edited) == (0, 0, 0)

    approved = w.service.sandbox.approve_purchase_voucher(PRO_ORG, guid)
    w.service.sandbox.clear_requests()
    result = await follow(w, company)

    assert result.booked == 1
    assert result.requests["entries"] == 1
    assert "vouchers" not in result.requests  # no GET per voucher: the entries said it
    assert w.service.sandbox.find_requests("GET", f"/v1/{PRO_ORG}/vouchers/purchase/*") == []
    row = await item_row(w.service, item_id)
    assert (row.status, row.step) == (ItemStatus.BOOKED, Step.BOOKED)
    assert row.dinero_voucher_number == approved.voucher_number is not None
    body = await item_api(w, company, item_id)
    assert body["status"] == "booked"
    assert body["dinero"]["voucher_number"] == approved.voucher_number
    assert body["booked_at"] is not None
    assert (await item_row(w.service, other)).status == ItemStatus.AWAITING_APPROVAL

    delivered = await deliver(w)
    assert delivered.delivered == 5  # two drafts (exporting, awaiting_approval) + booked
    events = [r.json for r in w.platform.accepted if r.json["data"]["id"] == str(item_id)]
    assert [(e["data"]["previous_status"], e["data"]["status"]) for e in events] == [
        ("queued", "exporting"),
        ("exporting", "awaiting_approval"),
        ("awaiting_approval", "booked"),
    ]
    assert events[-1]["type"] == "export_item.updated"
    assert events[-1]["data"]["dinero"]["voucher_number"] == approved.voucher_number
    assert events[-1]["data"]["company_id"] == company
    for received in w.platform.accepted:
        received.verify()


async def test_a_deleted_draft_is_said_and_one_call_exports_it_again(
    w: World, company: str
) -> None:
    item_id, guid = await _draft(w, company)
    w.service.sandbox.delete_purchase_voucher(PRO_ORG, guid)

    result = await follow(w, company)

    assert result.hints == 1  # the file archive no longer links the file to the voucher
    assert result.deleted == 1
    row = await item_row(w.service, item_id)
    assert row.status == ItemStatus.DELETED_IN_DINERO

    retried = await w.service.client.post(
        f"/v1/companies/{company}/export-items/{item_id}/retry", headers=bearer(company)
    )
    assert retried.status_code == 202, retried.text
    await settle(w.service, company)

    drafts = w.service.sandbox.drafts(PRO_ORG)
    assert len(drafts) == 1  # exactly one new voucher
    assert drafts[0].guid != guid
    creates = w.service.sandbox.find_requests("POST", f"/v1.2/{PRO_ORG}/vouchers/purchase")
    assert len(creates) == 2  # the first export and the one re-export
    row = await item_row(w.service, item_id)
    assert (row.status, str(row.dinero_guid)) == (ItemStatus.AWAITING_APPROVAL, drafts[0].guid)

    again = await follow(w, company)
    assert (again.deleted, again.booked) == (0, 0)
    statuses = [(e.previous_status, e.status) for e in await outbox(w, item_id)]
    assert statuses[-4:] == [
        ("awaiting_approval", "deleted_in_dinero"),
        ("deleted_in_dinero", "queued"),
        ("queued", "exporting"),
        ("exporting", "awaiting_approval"),
    ]


async def test_an_edited_draft_is_shown_with_what_changed(w: World, company: str) -> None:
    item_id, guid = await _draft(w, company)
    w.service.sandbox.edit_purchase_voucher(PRO_ORG, guid, line=0, account_number=2900)
    w.service.sandbox.edit_purchase_voucher(PRO_ORG, guid, line=1, amount="50.00")

    result = await follow(w, company)

    assert result.edited == 1
    body = await item_api(w, company, item_id)
    assert body["status"] == "awaiting_approval"
    changes = {c["field"]: (c["sent"], c["now"]) for c in body["edited_in_dinero"]["changes"]}
    assert changes["lines[0].account_number"] == (2800, 2900)
    assert changes["lines[1].amount"] == ("45.00", "50.00")
    assert changes["total"] == ("245.00", "250.00")
    events = await outbox(w, item_id)
    assert events[-1].item["dinero_changes"]["changes"] == body["edited_in_dinero"]["changes"]

    # Read again with nothing new: no new event.
    async with w.services.sessionmaker() as session, session.begin():
        row = await session.get(type(await item_row(w.service, item_id)), item_id)
        assert row is not None
        row.follow_up_checked_at = None
    count = len(await outbox(w, item_id))
    await follow(w, company)
    assert len(await outbox(w, item_id)) == count


async def test_a_draft_read_as_paid_is_booked_with_dinero_booking_time(
    w: World, company: str
) -> None:
    """When the entries window did not show it (e.g. approved long before the watermark)."""
    item_id, guid = await _draft(w, company)
    approved = w.service.sandbox.approve_purchase_voucher(PRO_ORG, guid)
    async with w.services.sessionmaker() as session, session.begin():
        state = await session.get(FollowUpState, company)
        assert state is None  # the first cycle starts at the oldest draft
    # Hide the booking entries from this cycle: drop them in the stand-in.
    books = w.service.sandbox.org(PRO_ORG)
    books.entries[:] = [e for e in books.entries if e.voucher_guid != guid]

    result = await follow(w, company)

    assert result.booked == 1
    assert result.requests["vouchers"] == 1
    row = await item_row(w.service, item_id)
    assert row.status == ItemStatus.BOOKED
    assert row.dinero_voucher_number == approved.voucher_number
    assert row.booked_at is not None


async def test_a_restart_mid_cycle_loses_no_approval(w: World, company: str) -> None:
    item_id, guid = await _draft(w, company)
    await follow(w, company)
    async with w.services.sessionmaker() as session:
        before = (
            await session.execute(
                select(FollowUpState.entries_watermark).where(FollowUpState.company_id == company)
            )
        ).scalar_one()
    w.service.sandbox.approve_purchase_voucher(PRO_ORG, guid)

    with pytest.raises(Killed):
        await follow(w, company, checkpoint=kill_at("after_entries"))
    async with w.services.sessionmaker() as session:
        after = (
            await session.execute(
                select(FollowUpState.entries_watermark).where(FollowUpState.company_id == company)
            )
        ).scalar_one()
    assert after == before  # the window that saw the approval was not committed
    assert (await item_row(w.service, item_id)).status == ItemStatus.AWAITING_APPROVAL

    result = await follow(w, company)  # the restarted worker

    assert result.booked == 1
    assert (await item_row(w.service, item_id)).status == ItemStatus.BOOKED


async def test_a_draft_exported_before_follow_up_is_measured_from_its_first_read(
    w: World, company: str
) -> None:
    item_id, guid = await _draft(w, company)
    async with w.services.sessionmaker() as session, session.begin():
        row = await session.get(type(await item_row(w.service, item_id)), item_id)
        assert row is not None
        row.dinero_sent = None  # as items exported by an earlier release

    first = await follow(w, company)
    assert first.edited == 0
    w.service.sandbox.edit_purchase_voucher(PRO_ORG, guid, line=0, account_number=2900)
    async with w.services.sessionmaker() as session, session.begin():
        row = await session.get(type(await item_row(w.service, item_id)), item_id)
        assert row is not None
        assert row.dinero_sent is not None
        row.follow_up_checked_at = None
    second = await follow(w, company)

    assert second.edited == 1
    body = await item_api(w, company, item_id)
    assert {"field": "lines[0].account_number", "sent": 2800, "now": 2900} in body[
        "edited_in_dinero"
    ]["changes"]


async def test_a_draft_dinero_refuses_to_show_does_not_hold_up_the_others(
    w: World, company: str
) -> None:
    refused, refused_guid = await _draft(w, company)
    deleted, deleted_guid = await _draft(w, company, 9900)
    w.service.sandbox.add_fault(
        kind="error",
        method="GET",
        path=f"/v1/{PRO_ORG}/vouchers/purchase/{refused_guid}",
        status=400,
    )
    w.service.sandbox.delete_purchase_voucher(PRO_ORG, deleted_guid)
    async with w.services.sessionmaker() as session, session.begin():
        row = await session.get(type(await item_row(w.service, deleted)), deleted)
        assert row is not None
        row.dinero_file_guid = None  # no hint: found by the round of reads alone

    result = await follow(w, company)

    assert result.stopped is None
    assert result.deleted == 1
    assert (await item_row(w.service, deleted)).status == ItemStatus.DELETED_IN_DINERO
    unreadable = await item_row(w.service, refused)
    assert unreadable.status == ItemStatus.AWAITING_APPROVAL
    assert unreadable.follow_up_checked_at is not None  # read again in 30 minutes
