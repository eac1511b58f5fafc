"""Named jobs: how one domain wakes another without importing it (app/jobs.py).

Each name must be a task that its domain registered (with the queue and locks that domain's own
jobs use), and waking twice leaves one job waiting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from procrastinate.exceptions import TaskNotFound
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import jobs, registry


async def _waiting(db: AsyncSession, task_name: str) -> list[dict[str, Any]]:
    rows = await db.execute(
        text(
            "SELECT queue_name, lock, queueing_lock, args FROM procrastinate_jobs "
            "WHERE task_name = :task AND status = 'todo' ORDER BY id"
        ),
        {"task": task_name},
    )
    return [dict(row._mapping) for row in rows]


def test_every_named_job_is_a_registered_task() -> None:
    registry.load()
    assert jobs.job_app.tasks[jobs.EXPORTS_RUN].queue == "exports"
    assert jobs.job_app.tasks[jobs.CHART_SYNC].queue == "chart"
    assert jobs.job_app.tasks[jobs.OUTBOX_DELIVER].queue == "webhooks"


async def test_waking_the_exports_defers_the_runner_once(db: AsyncSession) -> None:
    registry.load()
    assert await jobs.wake_exports(db, "co-named") is True
    assert await jobs.wake_exports(db, "co-named") is False  # one waiting is enough

    assert await _waiting(db, "exports.run") == [
        {
            "queue_name": "exports",
            "lock": "export-run:co-named",
            "queueing_lock": "export-run:co-named",
            "args": {"company_id": "co-named"},
        }
    ]


async def test_waking_the_exports_now_brings_a_later_runner_forward(db: AsyncSession) -> None:
    registry.load()
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert await jobs.wake_exports(db, "co-named", at=later) is True
    # Later still: the runner already waiting keeps its time.
    assert await jobs.wake_exports(db, "co-named", at=later + timedelta(seconds=5)) is False
    assert await _scheduled(db) == [later]

    assert await jobs.wake_exports(db, "co-named") is True  # moved to now
    assert await _scheduled(db) == [None]
    assert await jobs.wake_exports(db, "co-named") is False
    assert await jobs.wake_exports(db, "co-named", at=later) is False  # never pushed back
    assert await _scheduled(db) == [None]


@pytest.mark.parametrize(
    ("task", "wake"),
    [("exports.run", jobs.wake_exports), ("follow_up.run", jobs.wake_follow_up)],
    ids=["exports", "follow-up"],
)
async def test_waking_holds_a_waiting_job_until_the_commit(
    committed: tuple[str, AsyncEngine],
    task: str,
    wake: Callable[[AsyncSession, str], Awaitable[bool]],
) -> None:
    """A runner (a follow-up cycle) already waiting cannot start on what was there before the
    change that woke it (a mapping fixed, a late receipt for a draft): procrastinate's claim
    skips it until the waking transaction ends."""
    registry.load()
    _, engine = committed
    # How procrastinate's fetch claims a job (procrastinate_fetch_job_v2), for this company's.
    waiting = (
        "SELECT id FROM procrastinate_jobs WHERE status = 'todo' "
        "AND task_name = :task AND args->>'company_id' = 'co-held'"
    )
    claim = text(f"{waiting} FOR UPDATE SKIP LOCKED")
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    async with sessionmaker() as first, first.begin():
        assert await wake(first, "co-held") is True
        queued = await first.scalar(text(waiting), {"task": task})
    async with sessionmaker() as change, engine.connect() as worker:
        async with change.begin():
            assert await wake(change, "co-held") is False  # one is waiting
            assert (await worker.execute(claim, {"task": task})).all() == []  # ...held
            await worker.rollback()
        # Committed: it may start.
        [claimed] = (await worker.execute(claim, {"task": task})).all()
        await worker.rollback()
    assert claimed.id == queued  # the job that was waiting all along


async def _scheduled(db: AsyncSession) -> list[datetime | None]:
    rows = await db.execute(
        text(
            "SELECT scheduled_at FROM procrastinate_jobs "
            "WHERE task_name = 'exports.run' AND status = 'todo' ORDER BY id"
        )
    )
    return list(rows.scalars())


async def test_requesting_a_chart_sync_defers_the_sync_once(db: AsyncSession) -> None:
    registry.load()
    assert await jobs.request_chart_sync(db, "co-named") is True
    assert await jobs.request_chart_sync(db, "co-named") is False

    assert await _waiting(db, "chart.sync") == [
        {
            "queue_name": "chart",
            "lock": None,
            "queueing_lock": "chart-sync:co-named",
            "args": {"company_id": "co-named"},
        }
    ]


async def test_waking_the_outbox_defers_one_delivery_pass(db: AsyncSession) -> None:
    registry.load()
    assert await jobs.wake_outbox(db) is True
    assert await jobs.wake_outbox(db) is False

    assert await _waiting(db, "outbox.deliver") == [
        {
            "queue_name": "webhooks",
            "lock": "outbox-deliver",
            "queueing_lock": "outbox-deliver",
            "args": {},
        }
    ]


async def test_a_name_no_domain_registered_is_refused(db: AsyncSession) -> None:
    registry.load()
    with pytest.raises(TaskNotFound):
        await jobs.defer(db, "exports.no_such_task", company_id="co-named")
    assert await _waiting(db, "exports.no_such_task") == []
