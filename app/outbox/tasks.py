"""The delivery job: one at a time, kicked after changes and every minute while events are due."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from procrastinate import JobContext
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs, services
from app.jobs import job_app
from app.outbox import delivery

log = structlog.get_logger(__name__)

QUEUE = "webhooks"
LOCK = "outbox-deliver"
"""Queueing lock (one waiting) and lock (one running): events go out in order."""


@job_app.task(name="outbox.deliver", queue=QUEUE, pass_context=True)
async def deliver_job(context: JobContext) -> None:
    """Send the due outbox events to the platform (see app/outbox/delivery.py)."""
    shared = services.of(context)
    result = await delivery.deliver_pending(shared)
    if result.more_due:
        await kick_delivery(shared)
    if result.delivered or result.failed:
        log.info(
            "webhooks_delivered",
            delivered=result.delivered,
            failed=result.failed,
            given_up=result.given_up,
            platform_unavailable=result.platform_unavailable,
        )


async def kick(session: AsyncSession) -> None:
    """Make sure a delivery pass runs soon, inside the caller's transaction."""
    await jobs.defer_once(session, deliver_job, queueing_lock=LOCK, lock=LOCK)


async def kick_delivery(shared: services.Services) -> None:
    """Kick a delivery pass in its own transaction (nothing to do without a platform URL)."""
    if shared.settings.platform_webhook_url is None:
        return
    async with shared.sessionmaker() as session, session.begin():
        await kick(session)


@job_app.periodic(cron="* * * * *", periodic_id="tick_outbox")
@job_app.task(name="outbox.tick", queue="housekeeping", pass_context=True)
async def tick_outbox(context: JobContext, timestamp: int) -> None:
    """Every minute: kick a delivery pass when events are due."""
    del timestamp
    shared = services.of(context)
    if shared.settings.platform_webhook_url is None:
        return
    due = await delivery.next_due_at(shared)
    if due is not None and due <= datetime.now(UTC):
        await kick_delivery(shared)


@job_app.periodic(cron="27 3 * * *", periodic_id="prune_outbox")
@job_app.task(name="outbox.prune", queue="housekeeping", pass_context=True)
async def prune_outbox(context: JobContext, timestamp: int) -> None:
    """Daily: forget delivered events after a week (see delivery.prune)."""
    del timestamp
    await delivery.prune(services.of(context))
