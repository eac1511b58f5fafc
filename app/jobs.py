"""Background jobs on procrastinate, in the same PostgreSQL as everything else.

Tasks are registered on `job_app` by the domain `tasks` modules listed in TASK_MODULES. A job
deferred with `defer()` is written on the request's own connection, so it commits with the
request's transaction or not at all.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any

import procrastinate
import structlog
from procrastinate import JobContext
from procrastinate import exceptions as procrastinate_exceptions
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

log = structlog.get_logger(__name__)

TASK_MODULES: tuple[str, ...] = (
    "app.ops.tasks",
    "app.chart.tasks",
    "app.datasources.tasks",
    "app.exports.tasks",
    "app.follow_up.tasks",
    "app.outbox.tasks",
)

job_app = procrastinate.App(connector=procrastinate.PsycopgConnector())


def load_tasks() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)


def create_job_pool(conninfo: str, *, max_size: int = 10) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        conninfo,
        open=False,
        min_size=1,
        max_size=max_size,
        check=AsyncConnectionPool.check_connection,
    )


async def open_jobs(pool: AsyncConnectionPool) -> None:
    load_tasks()
    await pool.open(wait=True)
    await job_app.open_async(pool=pool)


async def close_jobs(pool: AsyncConnectionPool) -> None:
    await job_app.close_async()
    # The connector does not close a pool it was handed; forget it so the app can be reopened.
    job_app.connector._async_pool = None  # type: ignore[attr-defined]
    job_app.connector._pool_externally_set = False  # type: ignore[attr-defined]
    await pool.close()


async def defer(
    session: AsyncSession,
    task: Any,
    *,
    queueing_lock: str | None = None,
    lock: str | None = None,
    priority: int | None = None,
    schedule_at: datetime | None = None,
    **kwargs: Any,
) -> int:
    """Enqueue `task` inside the session's transaction; returns the job id."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    options: dict[str, Any] = {"connection": raw.driver_connection}
    if queueing_lock is not None:
        options["queueing_lock"] = queueing_lock
    if lock is not None:
        options["lock"] = lock
    if priority is not None:
        options["priority"] = priority
    if schedule_at is not None:
        options["schedule_at"] = schedule_at
    job_id: int = await task.configure(**options).defer_async(**kwargs)
    return job_id


async def defer_once(
    session: AsyncSession,
    task: Any,
    *,
    queueing_lock: str,
    lock: str | None = None,
    schedule_at: datetime | None = None,
    **kwargs: Any,
) -> bool:
    """Enqueue unless a job with this queueing lock is already waiting; False when one is.

    The insert runs in a savepoint, so a refused duplicate does not abort the caller's
    transaction.
    """
    try:
        async with session.begin_nested():
            await defer(
                session,
                task,
                queueing_lock=queueing_lock,
                lock=lock,
                schedule_at=schedule_at,
                **kwargs,
            )
    except procrastinate_exceptions.AlreadyEnqueued:
        return False
    return True


async def bring_forward(session: AsyncSession, queueing_lock: str, at: datetime | None) -> None:
    """Move the waiting job with this queueing lock to `at` (None: now) if that is sooner.

    procrastinate has no call for this; the waiting job's row is updated directly.
    """
    await session.execute(
        text(
            "UPDATE procrastinate_jobs SET scheduled_at = CAST(:at AS timestamptz) "
            "WHERE queueing_lock = :lock AND status = 'todo' AND scheduled_at IS NOT NULL "
            "AND (CAST(:at AS timestamptz) IS NULL OR scheduled_at > CAST(:at AS timestamptz))"
        ),
        {"at": at, "lock": queueing_lock},
    )


async def retry_stalled(
    context: JobContext, task: Any, *, seconds_since_heartbeat: float = 60
) -> int:
    """Put back the jobs of `task` whose worker stopped sending heartbeats (it died mid-job).

    Such a job stays 'doing' and keeps its lock, which would block its company for good.
    """
    manager = context.app.job_manager
    stalled = list(
        await manager.get_stalled_jobs(
            task_name=task.name, seconds_since_heartbeat=seconds_since_heartbeat
        )
    )
    for job in stalled:
        log.warning("job_stalled_retried", task=task.name, job_id=job.id, **job.task_kwargs)
        await manager.retry_job(job)
    return len(stalled)
