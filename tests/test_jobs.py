"""The job queue: jobs commit with the request that enqueued them, survive restarts, and several
workers never run one job twice."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.db import libpq_url
from app.deps import CompanyAdmin, SessionDep
from app.errors import AppError
from app.logging import configure_logging
from tests.conftest import bearer, log_lines
from tests.sandboxed import PRO_ORG, connect_with_api_key, sandboxed_service

calls: Counter[str] = Counter()


@jobs.job_app.task(name="tests.record_call", queue="tests")
async def record_call(key: str) -> None:
    await asyncio.sleep(0)
    calls[key] += 1


def _add_route(app: FastAPI) -> None:
    @app.post("/v1/companies/{company}/_enqueue")
    async def enqueue(
        access: CompanyAdmin, session: SessionDep, fail: bool = False
    ) -> dict[str, int]:
        job_id = await jobs.defer(session, record_call, key=f"{access.company.id}:{fail}")
        if fail:
            raise AppError("Refused after enqueueing.", code="refused")
        return {"job_id": job_id}


async def _queued(db: AsyncSession, key: str) -> int:
    result = await db.execute(
        text(
            "SELECT count(*) FROM procrastinate_jobs "
            "WHERE task_name = 'tests.record_call' AND args->>'key' = :key"
        ),
        {"key": key},
    )
    return int(result.scalar_one())


async def test_job_commits_with_the_request(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    _add_route(app)
    ok = await client.post("/v1/companies/acme/_enqueue", headers=bearer())
    assert ok.status_code == 200
    assert await _queued(db, "acme:False") == 1


async def test_job_rolls_back_with_a_failed_request(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    _add_route(app)
    refused = await client.post("/v1/companies/acme/_enqueue?fail=true", headers=bearer())
    assert refused.status_code == 400
    assert refused.json()["code"] == "refused"
    assert await _queued(db, "acme:True") == 0


async def test_queue_survives_restart_and_two_workers_run_each_job_once(
    make_migrated_database: Callable[[], str],
) -> None:
    url = libpq_url(make_migrated_database())
    calls.clear()

    pool = jobs.create_job_pool(url)
    await jobs.open_jobs(pool)
    for i in range(20):
        await record_call.defer_async(key=f"job-{i}")
    await jobs.close_jobs(pool)  # the "process" stops with jobs still queued

    pool = jobs.create_job_pool(url)
    await jobs.open_jobs(pool)
    try:
        await asyncio.gather(
            jobs.job_app.run_worker_async(
                queues=["tests"], wait=False, concurrency=3, install_signal_handlers=False
            ),
            jobs.job_app.run_worker_async(
                queues=["tests"], wait=False, concurrency=3, install_signal_handlers=False
            ),
        )
    finally:
        await jobs.close_jobs(pool)
    assert calls == Counter({f"job-{i}": 1 for i in range(20)})


async def _claimed_by(pool: AsyncConnectionPool, job_id: int, worker: int) -> None:
    """As if `worker` had taken the job and was running it."""
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE id = %s",
            (worker, job_id),
        )


async def _silenced(pool: AsyncConnectionPool, worker: int) -> None:
    """As if `worker` had been killed 10 s ago: its heartbeat stopped then."""
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '10 seconds' "
            "WHERE id = %s",
            (worker,),
        )


async def _run_waiting_test_jobs() -> None:
    await jobs.job_app.run_worker_async(
        queues=["tests"], wait=False, install_signal_handlers=False, listen_notify=False
    )


async def _recorded_jobs(pool: AsyncConnectionPool) -> list[tuple[str, str]]:
    """(key, status) of every tests.record_call job, in the order they were deferred."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT args->>'key', status FROM procrastinate_jobs "
                "WHERE task_name = 'tests.record_call' ORDER BY id"
            )
        ).fetchall()
    return [(str(key), str(status)) for key, status in rows]


async def test_the_job_of_a_worker_that_stopped_beating_is_put_back_and_runs(
    make_migrated_database: Callable[[], str],
) -> None:
    """A worker killed mid-job leaves it 'doing' under its lock; a live worker retries it once
    the dead one missed its heartbeats, and leaves a live worker's job alone."""
    url = libpq_url(make_migrated_database())
    calls.clear()
    pool = jobs.create_job_pool(url)
    await jobs.open_jobs(pool)
    try:
        manager = jobs.job_app.job_manager
        dead = await manager.register_worker()
        alive = await manager.register_worker()
        for key, worker in (("orphan", dead), ("busy", alive)):
            job_id = await record_call.configure(lock=f"lock-{key}").defer_async(key=key)
            await _claimed_by(pool, job_id, worker)
        await _silenced(pool, dead)

        assert await jobs.retry_stalled(3.0) == 1
        assert await jobs.retry_stalled(3.0) == 0  # once only

        await _run_waiting_test_jobs()
        assert calls == Counter({"orphan": 1})
        assert await _recorded_jobs(pool) == [("orphan", "succeeded"), ("busy", "doing")]
    finally:
        await jobs.close_jobs(pool)


async def test_a_stalled_job_with_a_twin_waiting_is_ended_so_the_twin_runs(
    make_migrated_database: Callable[[], str],
) -> None:
    """A kick while the job ran queued a twin under the same queueing lock; the dead worker's
    job cannot be put back beside it, so it is ended (aborted) and the twin, which does the
    same work, gets the execution lock instead of waiting for it for good."""
    url = libpq_url(make_migrated_database())
    calls.clear()
    pool = jobs.create_job_pool(url)
    await jobs.open_jobs(pool)
    try:
        dead = await jobs.job_app.job_manager.register_worker()
        stalled = await record_call.configure(
            lock="run:acme", queueing_lock="run:acme"
        ).defer_async(key="first")
        await _claimed_by(pool, stalled, dead)
        await _silenced(pool, dead)
        await record_call.configure(lock="run:acme", queueing_lock="run:acme").defer_async(
            key="twin"
        )

        assert await jobs.retry_stalled(3.0) == 0  # not put back: ended

        await _run_waiting_test_jobs()
        assert calls == Counter({"twin": 1})
        assert await _recorded_jobs(pool) == [("first", "aborted"), ("twin", "succeeded")]
    finally:
        await jobs.close_jobs(pool)


async def test_serves_in_process_worker_runs_jobs_with_the_apps_own_resources(
    make_migrated_database: Callable[[], str],
) -> None:
    """`serve` runs a worker beside the API and hands it the app's resources: connecting a
    company enqueues its chart sync, which that worker runs against the app's own Dinero."""
    async with sandboxed_service(make_migrated_database(), run_worker=True) as service:
        await connect_with_api_key(service.client, "co-in-process")
        state: dict[str, Any] = {}
        for _ in range(600):  # until the worker has run the sync (no job is run by the test)
            response = await service.client.get(
                "/v1/companies/co-in-process/dinero/sync", headers=bearer("co-in-process")
            )
            state = response.json()
            if state["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
    assert state["status"] == "succeeded", state
    assert service.sandbox.find_requests("GET", f"/v1/{PRO_ORG}/accounts/entry")


@jobs.job_app.task(name="tests.logged_job", queue="tests-logs")
async def logged_job(fail: bool) -> None:
    if fail:
        raise RuntimeError("the job failed")


async def _run_logged_jobs(url: str, level: str, stream: io.StringIO) -> list[str]:
    """The events logged while a worker runs one job that succeeds and one that fails."""
    configure_logging(level, "json", stream=stream)
    pool = jobs.create_job_pool(url)
    await jobs.open_jobs(pool)
    try:
        await logged_job.defer_async(fail=False)
        await logged_job.defer_async(fail=True)
        await jobs.job_app.run_worker_async(
            queues=["tests-logs"], wait=False, install_signal_handlers=False, listen_notify=False
        )
    finally:
        await jobs.close_jobs(pool)
        configure_logging("INFO", "console")
    return [str(line["event"]) for line in log_lines(stream)]


async def test_procrastinates_routine_lines_are_left_out_below_debug(
    make_migrated_database: Callable[[], str],
) -> None:
    url = libpq_url(make_migrated_database())
    events = await _run_logged_jobs(url, "INFO", io.StringIO())
    assert not [e for e in events if e.startswith(("Deferred", "Starting job"))]
    assert not [e for e in events if "ended with status: Success" in e]
    # What went wrong, and the worker's own start and stop, are kept.
    [failed] = [e for e in events if "ended with status: Error" in e]
    assert "tests.logged_job" in failed
    assert [e for e in events if e.startswith("Starting worker")]

    # At DEBUG every job's lines are there.
    events = await _run_logged_jobs(url, "DEBUG", io.StringIO())
    assert len([e for e in events if e == "Deferred 1 job"]) == 2
    assert len([e for e in events if e.startswith("Starting job")]) == 2
    assert len([e for e in events if "ended with status: Success" in e]) == 1
