"""Named jobs: how one domain wakes another without importing it (app/jobs.py).

Each name must be a task that its domain registered (with the queue and locks that domain's own
jobs use), and waking twice leaves one job waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from procrastinate.exceptions import TaskNotFound
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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
