"""Background runs of data sources: the first import, refreshes on demand and on a schedule.

A run is one `data_sources.refresh` job per data source, enqueued with a queueing lock so at
most one waits per data source; the run itself takes the data source's advisory lock, so two
never import at once even when a request and the schedule coincide. A run that has to give
way (the organization's request budget is busy with exports, Dinero is briefly unavailable)
enqueues its own continuation for later and ends; the continuation resumes at its checkpoint.
"""

from __future__ import annotations

import contextlib
from typing import Final
from uuid import UUID

import structlog
from procrastinate import JobContext
from procrastinate import exceptions as procrastinate_exceptions
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import jobs, services
from app.datasources import importer
from app.datasources.models import DataSource
from app.jobs import job_app

log = structlog.get_logger(__name__)

QUEUE: Final = "data_sources"
SCHEDULE_BATCH: Final = 500
"""Data sources enqueued per scheduling tick at most (the rest on the next minute)."""


def queueing_lock(data_source_id: UUID | str) -> str:
    return f"data-source:{data_source_id}"


@job_app.task(name="data_sources.refresh", queue=QUEUE, pass_context=True)
async def refresh_data_source(
    context: JobContext, data_source_id: str, reason: str = "requested"
) -> None:
    """Import or refresh one data source (`reason`: created, requested, schedule, retry…)."""
    shared = services.of(context)
    outcome = await importer.run_data_source(
        engine=shared.engine,
        sessionmaker=shared.sessionmaker,
        gateway=shared.dinero,
        data_source_id=UUID(data_source_id),
        scheduled=reason == "schedule",
        settings=importer.DEFAULTS,
    )
    if outcome.retry_in is not None:
        await _defer_later(data_source_id, outcome.retry_in)


async def _defer_later(data_source_id: str, seconds: float) -> None:
    # AlreadyEnqueued: a run is already waiting; it picks up where this one stopped.
    with contextlib.suppress(procrastinate_exceptions.AlreadyEnqueued):
        await refresh_data_source.configure(
            queueing_lock=queueing_lock(data_source_id),
            schedule_in={"seconds": round(seconds)},
        ).defer_async(data_source_id=data_source_id, reason="retry")


async def enqueue_refresh(session: AsyncSession, data_source_id: UUID, *, reason: str) -> bool:
    """Enqueue a run in the caller's transaction; False when one is already waiting.

    A waiting run that was put off (busy budget, Dinero unavailable) is brought forward: the
    admin asked for it now.
    """
    queued = await jobs.defer_once(
        session,
        refresh_data_source,
        queueing_lock=queueing_lock(data_source_id),
        data_source_id=str(data_source_id),
        reason=reason,
    )
    if not queued and reason != "schedule":
        await jobs.bring_forward(session, queueing_lock(data_source_id), None)
    return queued


@job_app.periodic(cron="* * * * *", periodic_id="schedule_data_sources")
@job_app.task(name="data_sources.schedule", queue="housekeeping", pass_context=True)
async def schedule_data_sources(context: JobContext, timestamp: int) -> None:
    """Every minute: enqueue the data sources whose refresh is due."""
    del timestamp
    queued = await enqueue_due(services.of(context).sessionmaker)
    if queued:
        log.info("data_sources_scheduled", count=queued)


async def enqueue_due(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Enqueue a run for every data source whose `next_refresh_at` has come (its interval, or a
    run that was lost with its worker)."""
    async with sessionmaker() as session, session.begin():
        due = (
            await session.execute(
                select(DataSource.id)
                .where(DataSource.next_refresh_at <= text("now()"))
                .order_by(DataSource.next_refresh_at)
                .limit(SCHEDULE_BATCH)
            )
        ).scalars()
        queued = 0
        for data_source_id in list(due):
            queued += await enqueue_refresh(session, data_source_id, reason="schedule")
    return queued


__all__ = [
    "QUEUE",
    "enqueue_due",
    "enqueue_refresh",
    "queueing_lock",
    "refresh_data_source",
    "schedule_data_sources",
]
