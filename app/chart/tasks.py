"""Background chart syncs: on request, right after connecting, and on a schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from procrastinate import JobContext
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import jobs, services
from app.chart.models import ChartSync
from app.chart.sync import sync_chart, sync_state
from app.connection.models import ConnectionStatus, DineroConnection
from app.jobs import job_app

log = structlog.get_logger(__name__)

FAILED_RETRY_AFTER = timedelta(minutes=10)
"""A failed sync is tried again after this long (or the interval, if shorter)."""


@job_app.task(name=jobs.CHART_SYNC, queue="chart", pass_context=True)
async def sync_chart_job(context: JobContext, company_id: str) -> None:
    """Sync one company's chart (never two at once: see app/chart/sync.py)."""
    await sync_chart(services.of(context), company_id)


async def request_sync(session: AsyncSession, company_id: str) -> bool:
    """Enqueue a sync in the caller's transaction; False when one is already waiting to run."""
    state = await sync_state(session, company_id)
    state.requested_at = datetime.now(UTC)
    await session.flush()
    return await jobs.request_chart_sync(session, company_id)


@job_app.periodic(cron="* * * * *", periodic_id="schedule_chart_syncs")
@job_app.task(name="chart.schedule", queue="housekeeping", pass_context=True)
async def schedule_chart_syncs(context: JobContext, timestamp: int) -> None:
    """Every minute: enqueue the syncs that are due (hourly by default)."""
    del timestamp
    shared = services.of(context)
    interval = timedelta(minutes=shared.settings.chart_sync_interval_minutes)
    queued = await enqueue_due_syncs(shared.sessionmaker, interval)
    if queued:
        log.info("chart_syncs_scheduled", count=queued)


async def enqueue_due_syncs(
    sessionmaker: async_sessionmaker[AsyncSession], interval: timedelta
) -> int:
    """Enqueue a sync for every connected company whose chart is older than the interval."""
    now = datetime.now(UTC)
    retry_failed = min(interval, FAILED_RETRY_AFTER)
    async with sessionmaker() as session, session.begin():
        rows = await session.execute(
            select(DineroConnection.company_id)
            .outerjoin(ChartSync, ChartSync.company_id == DineroConnection.company_id)
            .where(
                DineroConnection.status == ConnectionStatus.CONNECTED,
                or_(
                    ChartSync.company_id.is_(None),
                    ChartSync.finished_at.is_(None),
                    ChartSync.finished_at < now - interval,
                    (ChartSync.status == "failed") & (ChartSync.finished_at < now - retry_failed),
                ),
            )
        )
        queued = 0
        for company_id in rows.scalars():
            queued += await request_sync(session, company_id)
    return queued
