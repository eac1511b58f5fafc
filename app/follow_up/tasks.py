"""The follow-up jobs: one cycle per company at a time, every FOLLOW_UP_INTERVAL_SECONDS while the
company has drafts in Dinero, and at once when a late receipt arrives.

Each cycle plans the company's next one itself, as a job scheduled at its `next_run_at`, so the
interval holds to the second; the per-minute schedule only catches companies nobody planned
(a new draft, a restart after the queue was emptied).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import structlog
from procrastinate import JobContext
from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.selectable import Exists

from app import jobs, services
from app.connection.models import ConnectionStatus, DineroConnection
from app.exports.models import ExportItem, ItemStatus
from app.follow_up.models import FollowUpState
from app.jobs import job_app

log = structlog.get_logger(__name__)

QUEUE: Final = "follow_up"
SCHEDULE_BATCH: Final = 500


def lock(company_id: str) -> str:
    return f"follow-up:{company_id}"


@job_app.task(name="follow_up.run", queue=QUEUE)
async def follow_up_job(company_id: str) -> None:
    """One follow-up cycle for a company (see app/follow_up/cycle.py)."""
    from app.follow_up.cycle import run_company

    shared = services.current()
    await run_company(shared, company_id)
    await plan_next(shared.sessionmaker, company_id)


def has_drafts(company_id: str | InstrumentedAttribute[str]) -> Exists:
    """The company (a value, or a column to correlate with) has drafts awaiting approval."""
    return exists().where(
        ExportItem.company_id == company_id,
        ExportItem.status == ItemStatus.AWAITING_APPROVAL,
    )


async def kick(session: AsyncSession, company_id: str) -> bool:
    """Make sure the company's follow-up runs now, inside the caller's transaction.

    A cycle already planned for later is brought forward to now. True unless one was waiting
    to run now already.
    """
    return await _plan(session, company_id, None)


async def _plan(session: AsyncSession, company_id: str, at: datetime | None) -> bool:
    """A cycle at `at` (None: now), or the waiting one moved to `at` if it was later.

    True when a job was queued or moved.
    """
    queued = await jobs.defer_once(
        session,
        follow_up_job,
        queueing_lock=lock(company_id),
        lock=lock(company_id),
        schedule_at=at,
        company_id=company_id,
    )
    return queued or await jobs.bring_forward(session, lock(company_id), at)


async def plan_first(shared: services.Services, company_id: str) -> None:
    """After drafts were created: make sure a cycle is planned no later than one interval on.

    Without this a company's first cycle would wait for the per-minute schedule.
    """
    at = datetime.now(UTC) + timedelta(seconds=shared.settings.follow_up_interval_seconds)
    async with shared.sessionmaker() as session, session.begin():
        if await session.scalar(select(has_drafts(company_id))):
            await _plan(session, company_id, at)


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
            await _plan(session, company_id, next_run)


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
            queued += await kick(session, company_id)
    return queued


@job_app.periodic(cron="* * * * *", periodic_id="schedule_follow_up")
@job_app.task(name="follow_up.schedule", queue="housekeeping", pass_context=True)
async def schedule_follow_up(context: JobContext, timestamp: int) -> None:
    """Every minute: enqueue the cycles that are due."""
    del timestamp
    queued = await enqueue_due(services.current().sessionmaker)
    if queued:
        log.info("follow_up_scheduled", count=queued)
