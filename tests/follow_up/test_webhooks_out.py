"""Outgoing webhooks: every change reaches the platform, signed, in order, even when it was down
for an hour or a worker died mid-delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.exports.models import ExportItem, ItemStatus, ItemType
from app.outbox import delivery
from app.outbox.models import OutboxEvent
from tests.follow_up.conftest import (
    World,
    add_item,
    card_expense,
    deliver,
    fast_forward_outbox,
    follow,
    item_row,
    outbox,
    settle,
)
from tests.killing import Killed
from tests.sandboxed import PRO_ORG


async def test_approved_while_the_platform_is_down_is_delivered_when_it_is_back(
    w: World, company: str
) -> None:
    item_id = await card_expense(w.service, company, 12500)
    await settle(w.service, company)
    w.platform.status = 503
    row = await item_row(w.service, item_id)
    w.service.sandbox.approve_purchase_voucher(PRO_ORG, str(row.dinero_guid))
    assert (await follow(w, company)).booked == 1

    first = await deliver(w)
    assert first.platform_unavailable
    assert (first.delivered, len(w.platform.attempts)) == (0, 1)  # stops at once, no hammering
    head = (await outbox(w, item_id))[0]
    assert head.attempts == 1
    assert head.next_attempt_at is not None
    assert head.next_attempt_at > datetime.now(UTC)
    assert await deliver(w) == delivery.DeliveryResult()  # not due yet: nothing sent

    # An hour of outage: retried all along, never given up.
    for _ in range(6):
        await fast_forward_outbox(w)
        await deliver(w)
    async with w.services.sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.first_attempt_at.is_not(None))
            .values(first_attempt_at=datetime.now(UTC) - timedelta(hours=1))
        )
    await fast_forward_outbox(w)
    await deliver(w)
    events = await outbox(w, item_id)
    assert all(e.delivered_at is None and e.given_up_at is None for e in events)
    assert events[0].attempts == 8
    assert {e.attempts for e in events[1:]} == {0}  # the others kept their place

    w.platform.status = 200
    await fast_forward_outbox(w)
    back = await deliver(w)

    assert back.delivered == 3
    bodies = [r.json for r in w.platform.accepted]
    assert [b["data"]["status"] for b in bodies] == ["exporting", "awaiting_approval", "booked"]
    for received in w.platform.accepted:
        received.verify()
    ids = [r.headers["webhook-id"] for r in w.platform.attempts]
    assert len(set(ids)) == 3
    assert ids[:9] == [str(events[0].id)] * 9  # every retry of an event carries its id
    assert all(e.delivered_at is not None for e in await outbox(w, item_id))


async def test_a_worker_killed_mid_delivery_loses_nothing(w: World, company: str) -> None:
    for amount in (1000, 2000):
        await card_expense(w.service, company, amount)
    await settle(w.service, company)
    events = await outbox(w)
    assert len(events) == 4

    async def kill(name: str) -> None:
        if name == "after_send" and len(w.platform.attempts) == 2:
            raise Killed(name)  # the platform has the 2nd event; we never recorded it

    with pytest.raises(Killed):
        await deliver(w, checkpoint=kill)

    result = await deliver(w)  # the restarted worker

    assert result.delivered == 3
    killed = w.platform.attempts[1].headers["webhook-id"]
    received = [r.headers["webhook-id"] for r in w.platform.accepted]
    assert received.count(killed) == 2  # sent again, with the same id: a repeat
    assert set(received) == {str(e.id) for e in events}
    assert all(e.delivered_at is not None for e in await outbox(w))


async def test_an_event_the_platform_refuses_holds_up_only_its_own_item(
    w: World, company: str
) -> None:
    first = await add_item(w.service, company, ItemType.REIMBURSEMENT, 1000)
    second = await add_item(w.service, company, ItemType.REIMBURSEMENT, 2000)
    await settle(w.service, company)
    refused = (await outbox(w, first))[0]
    w.platform.refuse = {str(refused.id)}

    result = await deliver(w)

    assert not result.platform_unavailable  # a 422 concerns that event only
    assert result.delivered == len(await outbox(w, second))
    delivered = {r.json["data"]["id"] for r in w.platform.accepted}
    assert delivered == {str(second)}  # the first item's later events wait behind its first
    events = await outbox(w, first)
    assert events[0].last_status_code == 422
    assert all(e.delivered_at is None for e in events)

    w.platform.refuse = set()
    await fast_forward_outbox(w)
    await deliver(w)
    statuses = [
        r.json["data"]["status"] for r in w.platform.accepted if r.json["data"]["id"] == str(first)
    ]
    assert statuses == ["exporting", "booked"]


async def test_a_status_change_from_any_code_path_writes_an_event(w: World, company: str) -> None:
    item_id = await add_item(w.service, company, ItemType.REIMBURSEMENT, 1000)
    async with w.services.sessionmaker() as session, session.begin():
        await session.execute(
            update(ExportItem).where(ExportItem.id == item_id).values(attempts=3)
        )  # no status change: no event
    assert await outbox(w, item_id) == []
    async with w.services.sessionmaker() as session, session.begin():
        await session.execute(
            update(ExportItem)
            .where(ExportItem.id == item_id)
            .values(status=ItemStatus.FAILED, failure_code="by_hand", failure_message="Stopped.")
        )
    events = await outbox(w, item_id)
    assert [(e.previous_status, e.status) for e in events] == [("queued", "failed")]
    assert events[0].item["failure_code"] == "by_hand"
    assert events[0].company_id == company
