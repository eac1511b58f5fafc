"""Planning the company's export runner again later (backoff, following ledger bookings).

Two queueing locks keep the queue small: at most one runner waiting to start now
(`jobs.wake_exports`, what other domains and intake use) and one scheduled for later
(`schedule_run`); both share one execution lock, so a company's runner never runs twice at
once. The task itself is `exports.run` in app/exports/tasks.py, deferred here by its name.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app import jobs
from app.services import Services


def later_lock(company_id: str) -> str:
    return f"export-later:{company_id}"


async def schedule_run(shared: Services, company_id: str, seconds: float) -> None:
    """Run the company's runner again in `seconds` (or sooner, if one is already planned)."""
    at = datetime.now(UTC) + timedelta(seconds=max(seconds, 0))
    async with shared.sessionmaker() as session, session.begin():
        queued = await jobs.defer_once(
            session,
            jobs.EXPORTS_RUN,
            queueing_lock=later_lock(company_id),
            lock=jobs.export_run_lock(company_id),
            schedule_at=at,
            company_id=company_id,
        )
        if not queued:  # one is planned already: bring it forward if this one is sooner
            await jobs.bring_forward(session, later_lock(company_id), at)


async def tell_platform(shared: Services) -> None:
    """After a pass that changed items: wake the outgoing webhooks' delivery (their events are
    written by a trigger), in its own transaction; nothing to do without a platform URL."""
    if shared.settings.platform_webhook_url is None:
        return
    async with shared.sessionmaker() as session, session.begin():
        await jobs.wake_outbox(session)
