"""Background jobs on procrastinate, in the same PostgreSQL as everything else.

Tasks are registered on `job_app` by the domain `tasks` modules listed in TASK_MODULES. A job
deferred with `defer()` is written on the request's own connection, so it commits with the
request's transaction or not at all.
"""

from __future__ import annotations

import importlib
from typing import Any

import procrastinate
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncSession

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
    job_id: int = await task.configure(**options).defer_async(**kwargs)
    return job_id
