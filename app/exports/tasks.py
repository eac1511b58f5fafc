"""The export runner's job: one runner per company at a time, woken whenever work arrives
(`jobs.wake_exports`, by name); after a pass that made drafts, the follow-up is planned (by
name too: the exports never import the follow-up)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from procrastinate import JobContext
from sqlalchemy import select

from app import jobs, services
from app.exports.runner import run_company
from app.exports.service import has_drafts
from app.jobs import job_app

log = structlog.get_logger(__name__)


@job_app.task(name=jobs.EXPORTS_RUN, queue="exports", pass_context=True)
async def run_company_job(context: JobContext, company_id: str) -> None:
    """Export what is due for one company (see app/exports/runner.py)."""
    shared = services.of(context)
    result = await run_company(shared, company_id)
    if result.stats.get("created") or result.stats.get("voucher_found"):
        await plan_follow_up(shared, company_id)  # follow the new drafts


async def plan_follow_up(shared: services.Services, company_id: str) -> None:
    """After drafts were created: make sure a follow-up cycle is planned no later than one
    interval on (without this a company's first cycle would wait for the per-minute schedule).
    """
    at = datetime.now(UTC) + timedelta(seconds=shared.settings.follow_up_interval_seconds)
    async with shared.sessionmaker() as session, session.begin():
        if await session.scalar(select(has_drafts(company_id))):
            await jobs.wake_follow_up(session, company_id, at)
