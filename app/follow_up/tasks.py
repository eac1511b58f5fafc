"""The follow-up jobs: one cycle per company at a time, every FOLLOW_UP_INTERVAL_SECONDS while the
company has drafts in Dinero, and at once when a late receipt arrives.

Each cycle plans the company's next one itself, as a job scheduled at its `next_run_at`, so the
interval holds to the second; the per-minute schedule only catches companies nobody planned
(a new draft, a restart after the queue was emptied).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import structlog
from procrastinate import JobContext
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import jobs, services
from app.connection.models import ConnectionStatus, DineroConnection
from app.exports.service import has_drafts
from app.follow_up.cycle import run_company
from app.follow_up.models import FollowUpState
from app.jobs import job_app

log = structlog.get_logger(__name__)

QUEUE: Final = "follow_up"
SCHEDULE_BATCH: Final = 500


@job_app.task(name=jobs.FOLLOW_UP_RUN, queue=QUEUE, pass_context=True)
async def follow_up_job(context: JobContext, company_id: str) -> None:
    """One follow-up cycle for a company (see app/follow_up/cycle.py)."""
    shared = services.of(context)
    await run_company(shared, company_id)
    await plan_next(shared.sessionmaker, company_id)


async def plan_next(sessionmaker: async_sessionmaker[AsyncSession], company_id: str) -> None:
    """Schedule the company's next cycle at its `next_run_at`, while it has drafts to follow."""
    async with sessionmaker() as session, session.begin():
        next_run = await session.scalar(
            select(FollowUpState.next_run_at)
            .join(DineroConnection, DineroConnection.company_id == FollowUpState.company_id)
            .where(
                FollowUpState.company_id == company_id,
                DineroConnection.status == ConnectionStatus.CONNECTED,
                has_drafts(company_id),
            )
        )
        if next_run is not None:
            await jobs.wake_follow_up(session, company_id, next_run)


async def enqueue_due(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Enqueue a cycle for every connected company with drafts whose next cycle is due."""
    now = datetime.now(UTC)
    async with sessionmaker() as session, session.begin():
        rows = await session.execute(
            select(DineroConnection.company_id)
            .outerjoin(FollowUpState, FollowUpState.company_id == DineroConnection.company_id)
            .where(
                DineroConnection.status == ConnectionStatus.CONNECTED,
                or_(FollowUpState.next_run_at.is_(None), FollowUpState.next_run_at <= now),
                has_drafts(DineroConnection.company_id),
            )
            .order_by(FollowUpState.next_run_at.nulls_first())
            .limit(SCHEDULE_BATCH)
        )
        queued = 0
        for company_id in list(rows.scalars()):
            queued += await jobs.wake_follow_up(session, company_id)
    return queued


@job_app.periodic(cron="* * * * *", periodic_id="schedule_follow_up")
@job_app.task(name="follow_up.schedule", queue="housekeeping", pass_context=True)
async def schedule_follow_up(context: JobContext, timestamp: int) -> None:
    """Every minute: enqueue the cycles that are due."""
    del timestamp
    queued = await enqueue_due(services.of(context).sessionmaker)
    if queued:
        log.info("follow_up_scheduled", count=queued)
