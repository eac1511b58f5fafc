"""Housekeeping jobs."""

from __future__ import annotations

import structlog
from procrastinate import JobContext, builtin_tasks

from app.jobs import job_app

log = structlog.get_logger(__name__)


@job_app.periodic(cron="17 3 * * *", periodic_id="prune_finished_jobs")
@job_app.task(queue="housekeeping", name="prune_finished_jobs", pass_context=True)
async def prune_finished_jobs(context: JobContext, timestamp: int) -> None:
    """Forget finished jobs older than a week so the queue table stays small."""
    await builtin_tasks.remove_old_jobs(
        context, max_hours=24 * 7, remove_failed=False, remove_cancelled=True
    )
    log.info("pruned_finished_jobs")
