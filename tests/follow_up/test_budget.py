"""Following drafts is cheap: it uses only the FOLLOW_UP lane, within its share of the
organization's budget (10 of 100 requests a minute here), and never holds up an export."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from app.exports import runner
from app.exports.models import ItemStatus
from tests.follow_up.conftest import World, card_expense, follow, item_row, world
from tests.sandboxed import PRO_ORG, connected_company

DRAFTS = 14


@pytest.fixture
async def paced(follow_db: str) -> AsyncIterator[World]:
    async with world(follow_db, dinero_rate_limit_per_minute=100) as built:
        yield built


async def _lanes(w: World) -> dict[str, int]:
    async with w.services.sessionmaker() as session:
        rows = await session.execute(
            text("SELECT lane, count(*) FROM dinero_request_slots GROUP BY lane")
        )
        return {lane: count for lane, count in rows.tuples()}


async def test_a_cycle_stops_at_its_share_and_exports_still_go_at_once(paced: World) -> None:
    w = paced
    company = await connected_company(w.service)
    for n in range(DRAFTS):
        await card_expense(w.service, company, 1000 + n)
    await runner.run_company(w.services, company)
    before = await _lanes(w)
    assert "follow_up" not in before
    w.service.sandbox.clear_requests()

    result = await follow(w, company)

    assert result.stopped == "budget"  # no FOLLOW_UP slot left within a second: stop, not wait
    assert result.retry_in is not None
    assert result.retry_in > 30
    assert result.total_requests == 10  # 10 % of 100 a minute
    assert len(w.service.sandbox.requests) == 10
    after = await _lanes(w)
    assert after["follow_up"] == 10
    assert after["export"] == before["export"]  # every follow-up request in its own lane
    assert result.requests["entries"] == 1
    assert result.requests["files"] == 1
    assert result.reads == 8

    item_id = await card_expense(w.service, company, 777)
    started = time.monotonic()
    await runner.run_company(w.services, company)
    assert time.monotonic() - started < 5  # the export did not wait behind the follow-up
    assert (await item_row(w.service, item_id)).status == ItemStatus.AWAITING_APPROVAL
    assert len(w.service.sandbox.drafts(PRO_ORG)) == DRAFTS + 1
