"""The PostgreSQL pacer: an exact sliding window per organization, shared by every worker.

These tests run on a database of their own (the pacer commits its own transactions). Where the
waits only need to be seen, the pacer's sleep is replaced by a recorder (no time passes, the
database clock is the real one); where time must pass (background lanes look again later, the
end-to-end burst), the window is shortened to about a second.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import httpx
import pytest
from dinero_sandbox import SandboxConfig, create_sandbox_app, ratelimit
from dinero_sandbox.config import RateLimitWindow
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.connection.gateway import LOCK_NAMESPACE, PostgresPacer, pacer_lock_key
from app.connection.models import RateBudget
from app.db import create_engine, create_sessionmaker
from app.dinero import DineroClient, StaticTokenProvider
from app.dinero.pacing import Lane, Pacer, PacerBusy

WINDOW = timedelta(seconds=60.5)
"""The default window plus margin."""

_orgs = itertools.count(random.randrange(10**9, 2 * 10**9, 10**6))


def new_org() -> int:
    return next(_orgs)


class Recorder:
    """The pacer's sleep: records the waits; sleeps for real only when asked to."""

    def __init__(self, *, real: bool = False) -> None:
        self.waits: list[float] = []
        self._real = real

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self._real:
            await asyncio.sleep(seconds)


@pytest.fixture(scope="module")
async def pacing_url(make_migrated_database: Callable[[], str]) -> str:
    url = make_migrated_database()
    return url


@pytest.fixture(scope="module")
async def worker_a(pacing_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pacing_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def worker_b(pacing_url: str) -> AsyncIterator[AsyncEngine]:
    """A second engine (its own connection pool): another worker process."""
    engine = create_engine(pacing_url)
    yield engine
    await engine.dispose()


async def slots(engine: AsyncEngine, org: int, lane: Lane | None = None) -> list[datetime]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT slot_at FROM dinero_request_slots WHERE organization_id = :org "
                "AND (CAST(:lane AS text) IS NULL OR lane = :lane) ORDER BY slot_at"
            ),
            {"org": org, "lane": None if lane is None else lane.value},
        )
        return [row.slot_at for row in rows]


def assert_within_limit(slots_at: list[datetime], limit: int, span: timedelta) -> None:
    """No `span` holds more than `limit` slots: slot i + limit is at least a span after slot i."""
    for earlier, later in zip(slots_at, slots_at[limit:], strict=False):
        assert later - earlier >= span, (earlier, later)


def test_the_postgres_pacer_satisfies_the_protocol(worker_a: AsyncEngine) -> None:
    assert isinstance(PostgresPacer(worker_a, 100), Pacer)
    assert -(2**31) <= pacer_lock_key(2**40 + 12345) < 2**31
    assert pacer_lock_key(100001) == 100001
    assert LOCK_NAMESPACE < 2**31


async def test_the_first_l_go_at_once_and_the_next_waits_for_the_first_plus_a_window(
    worker_a: AsyncEngine,
) -> None:
    org, sleep = new_org(), Recorder()
    pacer = PostgresPacer(worker_a, 5, sleep=sleep)
    for _ in range(5):
        await pacer.acquire(org)
    assert sleep.waits == []
    await pacer.acquire(org)
    assert len(sleep.waits) == 1
    assert 59.5 < sleep.waits[0] <= 60.5
    taken = await slots(worker_a, org)
    assert taken[5] - taken[0] == WINDOW  # exactly the first slot + window + margin
    assert taken[4] - taken[0] < timedelta(seconds=1)


async def test_a_request_answered_late_moves_its_slot_to_when_it_was_answered(
    worker_a: AsyncEngine,
) -> None:
    """A request answered more than the margin after its slot began (a busy worker) may have
    reached Dinero that late: its slot moves to the answer's time, and the next request a
    window later is planned from there. Answered in time, nothing is written."""
    org, sleep = new_org(), Recorder()
    pacer = PostgresPacer(worker_a, 1, sleep=sleep)
    claim = await pacer.acquire(org)
    (slot,) = await slots(worker_a, org)
    await pacer.answered(claim)  # at once: within the margin
    assert await slots(worker_a, org) == [slot]

    claim.began -= 3.0  # as if answered three seconds after its slot began
    await pacer.answered(claim)
    (moved,) = await slots(worker_a, org)
    assert moved > slot
    async with worker_a.connect() as conn:
        now = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
    assert abs((now - moved).total_seconds()) < 1.0
    await pacer.acquire(org)
    assert (await slots(worker_a, org))[1] - moved == WINDOW


async def test_a_late_slot_that_cannot_be_moved_leaves_the_answer_standing(
    worker_a: AsyncEngine,
) -> None:
    """The database gone between the request and its answer: the answer stands (the window is
    only less exact), nothing is raised into the request that was answered."""
    pacer = PostgresPacer(worker_a, 1)
    claim = await pacer.acquire(new_org())
    claim.began -= 3.0
    unreachable = create_engine("postgresql://nobody@127.0.0.1:1/none")
    try:
        await PostgresPacer(unreachable, 1).answered(claim)
    finally:
        await unreachable.dispose()


async def test_a_short_interactive_burst_finishes_at_once(worker_a: AsyncEngine) -> None:
    """A chart sync (four requests) on an idle organization does not wait."""
    org = new_org()
    pacer = PostgresPacer(worker_a, 100)
    started = time.monotonic()
    for _ in range(4):
        await pacer.acquire(org, Lane.INTERACTIVE)
    assert time.monotonic() - started < 0.5


async def test_two_workers_together_never_exceed_the_limit_and_use_all_of_it(
    worker_a: AsyncEngine, worker_b: AsyncEngine
) -> None:
    org, sleep = new_org(), Recorder()
    first = PostgresPacer(worker_a, 5, sleep=sleep)
    second = PostgresPacer(worker_b, 5, sleep=sleep)
    await asyncio.gather(*(pacer.acquire(org) for pacer in [first, second] * 15))
    taken = await slots(worker_a, org)
    assert len(taken) == 30
    assert_within_limit(taken, 5, WINDOW)
    assert len(sleep.waits) == 25  # only the first five went at once
    # Each slot exactly a window after the one five before: the whole budget, nothing spread.
    assert all(taken[i + 5] - taken[i] == WINDOW for i in range(25))
    assert taken[4] - taken[0] < timedelta(seconds=1)


async def test_a_penalty_pauses_every_worker_and_only_that_organization(
    worker_a: AsyncEngine, worker_b: AsyncEngine
) -> None:
    org, other, sleep = new_org(), new_org(), Recorder()
    first = PostgresPacer(worker_a, 5, sleep=sleep)
    second = PostgresPacer(worker_b, 5, sleep=sleep)
    await first.acquire(org)
    await first.penalize(org, 30.0)
    await first.penalize(org, 5.0)  # never shortens a pause
    await second.acquire(org)
    assert len(sleep.waits) == 1
    assert 29.0 < sleep.waits[0] <= 30.0
    for _ in range(5):
        await second.acquire(other)
    assert len(sleep.waits) == 1
    async with create_sessionmaker(worker_a)() as session:
        budget = (
            await session.execute(select(RateBudget).where(RateBudget.organization_id == org))
        ).scalar_one()
    taken = await slots(worker_a, org)
    assert taken[-1] == budget.paused_until


async def test_slots_reserved_before_a_429_go_out_after_the_pause(
    worker_a: AsyncEngine, worker_b: AsyncEngine
) -> None:
    """No cascade: requests already sleeping towards their slots queue again after the pause."""
    org = new_org()
    waits: list[float] = []
    woken = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await woken.wait()

    first = PostgresPacer(worker_a, 2, sleep=sleep)
    second = PostgresPacer(worker_b, 2, sleep=sleep)
    burst = asyncio.gather(*(pacer.acquire(org) for pacer in [first, second] * 3))
    for _ in range(500):
        if len(waits) == 4:
            break
        await asyncio.sleep(0.01)
    assert sorted(round(w) for w in waits) == [60, 60, 121, 121]
    await second.penalize(org, 300.0)  # a 429 while four requests wait for their slots
    woken.set()
    await burst
    async with worker_a.connect() as conn:
        paused = (
            await conn.execute(
                text("SELECT paused_until FROM dinero_rate_budgets WHERE organization_id = :org"),
                {"org": org},
            )
        ).scalar_one()
    taken = await slots(worker_a, org)
    assert len(taken) == 6  # the four stale reservations were given up
    assert taken[0] <= taken[1] < paused
    assert taken[2:] == [paused, paused, paused + WINDOW, paused + WINDOW]
    assert_within_limit(taken, 2, WINDOW)


async def test_pacer_busy_after_max_wait_claims_nothing(worker_a: AsyncEngine) -> None:
    org, sleep = new_org(), Recorder()
    pacer = PostgresPacer(worker_a, 3, sleep=sleep)
    for _ in range(3):
        await pacer.acquire(org)
    with pytest.raises(PacerBusy) as busy:
        await pacer.acquire(org, Lane.FOLLOW_UP, max_wait=5.0)
    assert 59.5 < busy.value.retry_after <= 60.5
    assert busy.value.organization_id == org
    with pytest.raises(PacerBusy):
        await pacer.acquire(org, Lane.EXPORT, max_wait=30.0)
    assert len(await slots(worker_a, org)) == 3
    assert sleep.waits == []
    await pacer.acquire(org, Lane.EXPORT, max_wait=61.0)
    assert len(sleep.waits) == 1


async def test_background_lanes_yield_to_pending_exports(worker_a: AsyncEngine) -> None:
    org, sleep = new_org(), Recorder(real=True)
    pacer = PostgresPacer(worker_a, 4, window_seconds=1.0, margin_seconds=0.1, sleep=sleep)
    exports = asyncio.gather(*(pacer.acquire(org, Lane.EXPORT) for _ in range(6)))
    for _ in range(500):
        if len(await slots(worker_a, org)) == 6:
            break
        await asyncio.sleep(0.01)
    await pacer.acquire(org, Lane.DATA_SOURCE)  # asked while two exports are queued
    await exports
    taken = await slots(worker_a, org, Lane.EXPORT)
    (data,) = await slots(worker_a, org, Lane.DATA_SOURCE)
    assert taken[4] - taken[0] == timedelta(seconds=1.1)
    assert data >= taken[-1]


async def test_background_lanes_stay_within_their_share(worker_a: AsyncEngine) -> None:
    org, sleep = new_org(), Recorder(real=True)
    pacer = PostgresPacer(
        worker_a,
        10,
        window_seconds=1.0,
        margin_seconds=0.1,
        follow_up_share=0.2,
        data_source_share=0.5,
        sleep=sleep,
    )
    span = timedelta(seconds=1.1)
    await asyncio.gather(
        *(pacer.acquire(org, Lane.FOLLOW_UP) for _ in range(2)),
        *(pacer.acquire(org, Lane.DATA_SOURCE) for _ in range(5)),
    )
    assert sleep.waits == []
    with pytest.raises(PacerBusy):  # two follow-ups (a fifth of 10) per window
        await pacer.acquire(org, Lane.FOLLOW_UP, max_wait=0.5)
    with pytest.raises(PacerBusy):  # five data-source requests (half of 10) per window
        await pacer.acquire(org, Lane.DATA_SOURCE, max_wait=0.5)
    # The background lanes took 7 of 10: exports get the other 3 at once, no more.
    for _ in range(3):
        await pacer.acquire(org, Lane.EXPORT, max_wait=0.0)
    with pytest.raises(PacerBusy):
        await pacer.acquire(org, Lane.EXPORT, max_wait=0.5)
    await pacer.acquire(org, Lane.FOLLOW_UP)  # waits (really) until the window moved on
    follow_ups = await slots(worker_a, org, Lane.FOLLOW_UP)
    assert len(follow_ups) == 3
    assert follow_ups[2] - follow_ups[0] >= span
    assert len(await slots(worker_a, org, Lane.DATA_SOURCE)) == 5
    assert_within_limit(await slots(worker_a, org), 10, span)


async def test_old_slots_are_deleted(worker_a: AsyncEngine) -> None:
    org = new_org()
    pacer = PostgresPacer(worker_a, 2, window_seconds=0.05, margin_seconds=0.0)
    await pacer.acquire(org)
    await asyncio.sleep(0.15)  # more than two windows
    await pacer.acquire(org)
    assert len(await slots(worker_a, org)) == 1


@pytest.mark.parametrize("window", ["fixed", "sliding"])
async def test_a_burst_through_the_pacer_gets_no_429_from_the_sandbox(
    worker_a: AsyncEngine, monkeypatch: pytest.MonkeyPatch, window: RateLimitWindow
) -> None:
    """End to end: the stand-in Dinero counting 4 requests per second (its window shortened
    from a minute), the real clock, and a burst of 10 concurrent requests."""
    monkeypatch.setattr(ratelimit, "WINDOW", timedelta(seconds=1))
    sandbox_app = create_sandbox_app(
        SandboxConfig(rate_limit_per_minute=4, rate_limit_window=window)
    )
    sandbox = sandbox_app.state.sandbox
    org = 100001  # the sandbox's Pro organization
    async with worker_a.begin() as conn:
        await conn.execute(
            text("DELETE FROM dinero_request_slots WHERE organization_id = :org"), {"org": org}
        )
    pacer = PostgresPacer(worker_a, 4, window_seconds=1.0, margin_seconds=0.2)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox_app), timeout=httpx.Timeout(10.0)
    ) as http:
        client = DineroClient(
            http,
            "http://dinero.test",
            org,
            StaticTokenProvider(str(sandbox.issue_token(lifetime_seconds=3600))),
            pacer,
        )
        started = time.monotonic()
        # A 429 would raise DineroRateLimited here.
        await asyncio.gather(*(client.vat_types() for _ in range(10)))
        elapsed = time.monotonic() - started
    assert 2.3 < elapsed < 5.0  # bursts of 4 at 0, 1.2 and 2.4 s
    assert_within_limit(await slots(worker_a, org), 4, timedelta(seconds=1.2))
