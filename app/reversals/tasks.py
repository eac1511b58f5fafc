"""The reversal job: one per reversal, run by the workers; retried from its step if a worker
dies (the heartbeat puts a dead worker's job back), rescheduled while Dinero books."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from procrastinate import JobContext
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs, services
from app.jobs import job_app
from app.outbox.tasks import kick_delivery
from app.reversals.flow import run_reversal


def _lock(reversal_id: uuid.UUID | str) -> str:
    return f"export-reversal:{reversal_id}"


@job_app.task(name="exports.reverse", queue="exports", pass_context=True)
async def reverse_job(context: JobContext, reversal_id: str) -> None:
    """Take one reversal as far as it goes; run again later while Dinero books it."""
    shared = services.of(context)
    later = await run_reversal(shared, uuid.UUID(reversal_id))
    if later is not None:
        async with shared.sessionmaker() as session, session.begin():
            await request_reversal(
                session,
                uuid.UUID(reversal_id),
                at=datetime.now(UTC) + timedelta(seconds=later.seconds),
            )
    else:
        await kick_delivery(shared)  # tell the platform the item's new status (app/outbox)


async def request_reversal(
    session: AsyncSession, reversal_id: uuid.UUID, *, at: datetime | None = None
) -> bool:
    """Enqueue the reversal's job in the caller's transaction (one waiting at a time)."""
    return await jobs.defer_once(
        session,
        reverse_job,
        queueing_lock=_lock(reversal_id),
        lock=_lock(reversal_id),
        schedule_at=at,
        reversal_id=str(reversal_id),
    )
