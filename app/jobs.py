"""Background jobs on procrastinate, in the same PostgreSQL as everything else.

Tasks are registered on `job_app` by the domain `tasks` modules that `app.registry` lists and
loads (with every model) before a queue is opened. A job deferred with `defer()` is written on
the request's own connection, so it commits with the request's transaction or not at all.

Domains wake each other through the named jobs below (`wake_exports`, `request_chart_sync`):
they are deferred by task name and lock, so the chart need not import the exports, nor the
connection the chart. The task behind each name is registered by its own domain.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any, Final

import procrastinate
import structlog
from procrastinate import exceptions as procrastinate_exceptions
from procrastinate.jobs import Status
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import registry

log = structlog.get_logger(__name__)

job_app = procrastinate.App(connector=procrastinate.PsycopgConnector())


def create_job_pool(conninfo: str, *, max_size: int = 10) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        conninfo,
        open=False,
        min_size=1,
        max_size=max_size,
        check=AsyncConnectionPool.check_connection,
    )


async def open_jobs(pool: AsyncConnectionPool) -> None:
    registry.load()
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
    task: Any | str,
    *,
    queueing_lock: str | None = None,
    lock: str | None = None,
    priority: int | None = None,
    schedule_at: datetime | None = None,
    **kwargs: Any,
) -> int:
    """Enqueue `task` (a task, or a registered task's name) in the session's transaction.

    Returns the job id. A name that no task module registered is refused (TaskNotFound).
    """
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
    if isinstance(task, str):
        deferrer = job_app.configure_task(task, allow_unknown=False, **options)
    else:
        deferrer = task.configure(**options)
    job_id: int = await deferrer.defer_async(**kwargs)
    return job_id


async def defer_once(
    session: AsyncSession,
    task: Any | str,
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


# --- named jobs: how one domain wakes another ---------------------------------------------------

EXPORTS_RUN: Final = "exports.run"
"""The company's export runner (registered by app/exports/tasks.py)."""

CHART_SYNC: Final = "chart.sync"
"""The company's chart sync (registered by app/chart/tasks.py)."""


def export_run_lock(company_id: str) -> str:
    """The runner's queueing and execution lock: one waiting, one running per company."""
    return f"export-run:{company_id}"


def chart_sync_lock(company_id: str) -> str:
    """The chart sync's queueing lock: at most one waiting per company."""
    return f"chart-sync:{company_id}"


async def wake_exports(
    session: AsyncSession, company_id: str, *, at: datetime | None = None
) -> bool:
    """Make sure the company's export runner runs at `at` (None: now) or sooner, and sees what
    the caller's transaction wrote.

    For whatever may let waiting items go: a sync, a mapping or category changed, new items
    (`at`: the intake's burst, app/exports/intake_store.py). A runner already waiting is held
    until the caller's transaction ends (`hold_waiting_job_sql`: it cannot start on what was
    there before the change), and moved to `at` if it waits for later (a burst's linger): a
    mapping fixed during a burst does not wait out the burst. A moved job sends no notice; an
    idle worker finds it at its next poll. True when a runner was queued or moved.
    """
    return await _wake(session, EXPORTS_RUN, export_run_lock(company_id), at, company_id)


async def _wake(
    session: AsyncSession, task: str, lock: str, at: datetime | None, company_id: str
) -> bool:
    """The company's job `task` (queueing lock and lock `lock`) due at `at` (None: now) or
    sooner, held until the caller's transaction ends if it is already waiting (see
    `wake_exports`). True when a job was queued or moved."""
    held = await session.execute(
        text(hold_waiting_job_sql("lock", columns="id, scheduled_at")), {"lock": lock}
    )
    waiting = held.first()
    if waiting is None:
        queued = await defer_once(
            session, task, queueing_lock=lock, lock=lock, schedule_at=at, company_id=company_id
        )
        # Not queued: another transaction queued one just now (and it sees this one's writes
        # only if it has not started by the commit); it is brought forward all the same.
        return queued or await bring_forward(session, lock, at)
    if waiting.scheduled_at is None or (at is not None and waiting.scheduled_at <= at):
        return False  # due by then already: nothing to write
    return await bring_forward(session, lock, at)


FOLLOW_UP_RUN: Final = "follow_up.run"
"""The company's follow-up cycle (registered by app/follow_up/tasks.py)."""


def follow_up_lock(company_id: str) -> str:
    """The follow-up's queueing and execution lock: one waiting, one running per company."""
    return f"follow-up:{company_id}"


async def wake_follow_up(
    session: AsyncSession, company_id: str, at: datetime | None = None
) -> bool:
    """A follow-up cycle at `at` (None: now), or the waiting one moved to `at` if that is sooner,
    inside the caller's transaction. A cycle already waiting is held until that transaction ends,
    as `wake_exports` holds a runner: a late receipt for a draft is not missed by a cycle that
    started before it was committed. True when a job was queued or moved."""
    return await _wake(session, FOLLOW_UP_RUN, follow_up_lock(company_id), at, company_id)


OUTBOX_DELIVER: Final = "outbox.deliver"
"""The outgoing webhooks' delivery pass (registered by app/outbox/tasks.py)."""

OUTBOX_LOCK: Final = "outbox-deliver"
"""The delivery's queueing lock (one waiting) and lock (one running): events go out in order."""


async def wake_outbox(session: AsyncSession) -> bool:
    """Make sure a delivery pass of the outgoing webhooks runs soon, in the caller's transaction.

    For the runner and the follow-up after a pass that changed items (their outbox events are
    written by a trigger). False when a pass was already waiting.
    """
    return await defer_once(session, OUTBOX_DELIVER, queueing_lock=OUTBOX_LOCK, lock=OUTBOX_LOCK)


async def request_chart_sync(session: AsyncSession, company_id: str) -> bool:
    """Enqueue a chart sync in the caller's transaction; False when one is already waiting."""
    return await defer_once(
        session, CHART_SYNC, queueing_lock=chart_sync_lock(company_id), company_id=company_id
    )


def hold_waiting_job_sql(queueing_lock_param: str, *, columns: str = "id") -> str:
    """SQL (a statement, or a CTE's) for the job waiting under the queueing lock bound as
    `:queueing_lock_param`, held so that it cannot start before the caller's transaction ends;
    `columns` of procrastinate_jobs are selected.

    procrastinate claims jobs with FOR UPDATE SKIP LOCKED, so a job held FOR KEY SHARE waits
    until the caller commits and then sees what it wrote: a statement that finds one needs no
    defer of its own (the intake's store statement, saving a savepoint and two round trips).
    """
    # Only the caller's constants are formatted in (a parameter's name, columns), never a value.
    return (
        f"SELECT {columns} FROM procrastinate_jobs "  # noqa: S608
        f"WHERE queueing_lock = :{queueing_lock_param} AND status = 'todo' FOR KEY SHARE"
    )


async def bring_forward(session: AsyncSession, queueing_lock: str, at: datetime | None) -> bool:
    """Move the waiting job with this queueing lock to `at` (None: now) if that is sooner.

    procrastinate has no call for this; the waiting job's row is updated directly. True when
    a job was moved.
    """
    moved = await session.execute(
        text(
            "UPDATE procrastinate_jobs SET scheduled_at = CAST(:at AS timestamptz) "
            "WHERE queueing_lock = :lock AND status = 'todo' AND scheduled_at IS NOT NULL "
            "AND (CAST(:at AS timestamptz) IS NULL OR scheduled_at > CAST(:at AS timestamptz))"
        ),
        {"at": at, "lock": queueing_lock},
    )
    return bool(getattr(moved, "rowcount", 0))


async def run_worker(
    *,
    additional_context: dict[str, Any],
    concurrency: int,
    name: str,
    heartbeat_seconds: float,
    poll_seconds: float,
    install_signal_handlers: bool = True,
) -> None:
    """Run a worker on every queue, and put back the jobs of workers that died.

    `additional_context` is what the worker hands each task declared with `pass_context=True`
    (`services.worker_context(...)`: the process's resources, read with `services.of(context)`).

    New jobs wake a worker at once (LISTEN/NOTIFY). Two kinds of job send no notice when they
    become runnable: one scheduled for later (a backoff, the next ledger-status poll) and one
    held back by its lock while another job with that lock ran. An idle worker looks for those
    every `poll_seconds` (procrastinate's default of 5 s would idle a company's exports 5 s
    between passes).

    A worker killed mid-job (SIGKILL, a lost machine) leaves its job 'doing', holding its lock,
    which would block that company's exports, syncs or imports for good. Every worker sends a
    heartbeat each `heartbeat_seconds`; each also checks as often for jobs whose worker has
    been silent for STALLED_AFTER_HEARTBEATS of them (or is gone) and retries them. Every task
    is written to be run again after such a death (each looks in Dinero before repeating a
    write), so this is safe for all of them.
    """
    stalled_after = heartbeat_seconds * STALLED_AFTER_HEARTBEATS
    recovery = asyncio.create_task(
        _recover_stalled(every=heartbeat_seconds, stalled_after=stalled_after),
        name="recover-stalled-jobs",
    )
    try:
        await job_app.run_worker_async(
            additional_context=additional_context,
            concurrency=concurrency,
            name=name,
            install_signal_handlers=install_signal_handlers,
            fetch_job_polling_interval=poll_seconds,
            update_heartbeat_interval=heartbeat_seconds,
            stalled_worker_timeout=stalled_after,
        )
    finally:
        recovery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recovery


STALLED_AFTER_HEARTBEATS: Final = 3
"""A worker is taken for dead after this many missed heartbeats."""


async def _recover_stalled(*, every: float, stalled_after: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await retry_stalled(stalled_after)
        except Exception:  # the next round tries again; a worker must not die of this
            log.warning("stalled_job_check_failed", exc_info=True)


async def retry_stalled(stalled_after: float) -> int:
    """Put back every 'doing' job whose worker sent no heartbeat for `stalled_after` seconds."""
    manager = job_app.job_manager
    await manager.prune_stalled_workers(stalled_after)
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after))
    retried = 0
    for job in stalled:
        try:
            await manager.retry_job(job)
        except procrastinate_exceptions.ProcrastinateException:
            # Most often a twin is waiting already (a kick while this job ran takes the same
            # queueing lock, which only one waiting job may hold): it does this job's work, so
            # this one is ended, which frees the execution lock the twin waits for. Or another
            # worker dealt with it first, and ending it again fails harmlessly.
            with contextlib.suppress(procrastinate_exceptions.ProcrastinateException):
                await manager.finish_job(job, status=Status.ABORTED, delete_job=False)
                log.warning("job_stalled_superseded", task=job.task_name, job_id=job.id)
            continue
        retried += 1
        log.warning("job_stalled_retried", task=job.task_name, job_id=job.id)
    return retried
