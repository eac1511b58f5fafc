"""The export runner's jobs: one runner per company at a time, kicked whenever work arrives.

Two queueing locks keep the queue small: at most one runner waiting to start now (`kick`) and
one scheduled for later (`schedule_run`, for backoff and for following ledger bookings); both
share one execution lock, so a company's runner never runs twice at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs, services
from app.follow_up import tasks as follow_up_tasks
from app.jobs import job_app

log = structlog.get_logger(__name__)


def run_lock(company_id: str) -> str:
    return f"export-run:{company_id}"


def _later_lock(company_id: str) -> str:
    return f"export-later:{company_id}"


@job_app.task(name="exports.run", queue="exports")
async def run_company_job(company_id: str) -> None:
    """Export what is due for one company (see app/exports/runner.py)."""
    from app.exports.runner import run_company

    shared = services.current()
    result = await run_company(shared, company_id)
    if result.stats.get("created") or result.stats.get("voucher_found"):
        await follow_up_tasks.plan_first(shared, company_id)  # follow the new drafts


async def kick(session: AsyncSession, company_id: str) -> None:
    """Make sure the company's runner runs soon, inside the caller's transaction."""
    await jobs.defer_once(
        session,
        run_company_job,
        queueing_lock=run_lock(company_id),
        lock=run_lock(company_id),
        company_id=company_id,
    )


async def schedule_run(shared: services.Services, company_id: str, seconds: float) -> None:
    """Run the company's runner again in `seconds` (or sooner, if one is already planned)."""
    at = datetime.now(UTC) + timedelta(seconds=max(seconds, 0))
    async with shared.sessionmaker() as session, session.begin():
        queued = await jobs.defer_once(
            session,
            run_company_job,
            queueing_lock=_later_lock(company_id),
            lock=run_lock(company_id),
            schedule_at=at,
            company_id=company_id,
        )
        if not queued:  # one is planned already: bring it forward if this one is sooner
            await jobs.bring_forward(session, _later_lock(company_id), at)
