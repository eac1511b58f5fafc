"""The jobs on the real queue: the schedule enqueues due cycles, a cycle kicks delivery."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from app.exports.models import ItemStatus
from app.follow_up.models import FollowUpState
from app.follow_up.tasks import enqueue_due
from app.outbox import delivery
from tests.follow_up.conftest import World, card_expense, item_row, settle
from tests.sandboxed import PRO_ORG, run_jobs


async def test_the_schedule_runs_cycles_and_the_cycle_tells_the_platform(
    w: World, company: str
) -> None:
    item_id = await card_expense(w.service, company, 5000)
    await settle(w.service, company)
    await run_jobs(w.service, ["webhooks"])  # the runner kicked delivery after its pass
    assert [r.json["data"]["status"] for r in w.platform.accepted] == [
        "exporting",
        "awaiting_approval",
    ]

    assert await enqueue_due(w.services.sessionmaker) == 1
    await run_jobs(w.service, ["follow_up"])
    async with w.services.sessionmaker() as session:
        state = await session.get(FollowUpState, company)
        assert state is not None
        assert state.next_run_at is not None
        assert state.next_run_at > datetime.now(UTC)
        assert state.entries_watermark is not None
    assert await enqueue_due(w.services.sessionmaker) == 0  # not due again yet

    w.service.sandbox.approve_purchase_voucher(
        PRO_ORG, str((await item_row(w.service, item_id)).dinero_guid)
    )
    async with w.services.sessionmaker() as session, session.begin():
        await session.execute(
            update(FollowUpState)
            .where(FollowUpState.company_id == company)
            .values(next_run_at=datetime.now(UTC))
        )
    assert await enqueue_due(w.services.sessionmaker) == 1
    await run_jobs(w.service, ["follow_up"])
    await run_jobs(w.service, ["webhooks"])

    assert (await item_row(w.service, item_id)).status == ItemStatus.BOOKED
    assert w.platform.accepted[-1].json["data"]["status"] == "booked"
    assert await delivery.next_due_at(w.services) is None
    assert await enqueue_due(w.services.sessionmaker) == 0  # no drafts left to follow
