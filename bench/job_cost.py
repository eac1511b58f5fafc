"""What one job costs a worker: its process's CPU and PostgreSQL's, per job.

    ./dev run python -m bench.job_cost [--jobs 1000]

The in-process worker of a plain `dinero-bridge serve` shares the API's event loop, so every
job it runs is CPU the webhooks do not get (bench/README.md, webhook intake). This measures it
apart, in this process, on a fresh embedded PostgreSQL, with JSON logs written as `serve`
writes them (to a stream that counts and drops the lines):

- **defer**: `--jobs` jobs deferred one transaction each, as the intake defers a runner's job
  (the baseline: what enqueueing alone costs);
- **no-op job**: as many jobs of a task that does nothing, run by `app.jobs.run_worker` (what
  procrastinate's own work per job costs: fetching, finishing, its log lines);
- **runner pass**: as many `exports.run` jobs for the webhook bench's companies, which have no
  Dinero connection, so each pass reads the company's connection and ends (the passes
  `bench.webhook_intake` makes).

Each row prints CPU per job (this process, PostgreSQL), the log lines written per job and the
ratio of its CPU to the baseline's. A diagnostic, with no target of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import time
from dataclasses import dataclass
from typing import Any

from bench.common import PostgresCpu, service_settings, temp_database
from bench.webhook_intake import seed

NOOP_TASK = "bench.noop"


class CountingStream(io.TextIOBase):
    """A log stream that counts the lines written to it and keeps none."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


@dataclass(frozen=True)
class Row:
    name: str
    jobs: int
    cpu_seconds: float
    db_cpu_seconds: float
    log_lines: int

    @property
    def total(self) -> float:
        return self.cpu_seconds + self.db_cpu_seconds

    def line(self, baseline: Row | None) -> str:
        per_job = self.cpu_seconds / self.jobs * 1000
        ratio = f"  {self.total / baseline.total:.2f} x defer" if baseline is not None else ""
        return (
            f"{self.name:<12} {self.jobs:>6} jobs  CPU {per_job:5.2f} ms/job  "
            f"database CPU {self.db_cpu_seconds / self.jobs * 1000:5.2f} ms/job  "
            f"log lines {self.log_lines / self.jobs:4.1f}/job{ratio}"
        )


async def run(count: int) -> list[Row]:
    from sqlalchemy import text

    from app import jobs, services
    from app.db import libpq_url
    from app.logging import configure_logging
    from app.runtime import resolve

    @jobs.job_app.task(name=NOOP_TASK, queue="bench")
    async def noop() -> None:
        return None

    rows: list[Row] = []
    with temp_database() as db:
        companies = list(await seed(db.url))
        stream = CountingStream()
        settings = service_settings(db.url, log_level="INFO", log_format="json")
        configure_logging(settings.log_level, settings.log_format, stream=stream)  # type: ignore[arg-type]
        runtime = resolve(settings, database_url=None, public_url="http://127.0.0.1:8000")
        async with services.started(runtime) as shared:
            pool = jobs.create_job_pool(libpq_url(db.url))
            await jobs.open_jobs(pool)
            try:

                async def measured(name: str, work: Any) -> None:
                    database = PostgresCpu(db.postmaster_pid)
                    lines, cpu = stream.lines, time.process_time()
                    database.start()
                    await work
                    await database.stop()
                    cpu = time.process_time() - cpu
                    rows.append(Row(name, count, cpu, database.used(), stream.lines - lines))

                async def defer_all(task: str, **kwargs: Any) -> None:
                    for n in range(count):
                        async with shared.sessionmaker() as session, session.begin():
                            args = {k: v(n) for k, v in kwargs.items()}
                            await jobs.defer(session, task, **args)

                async def run_all() -> None:
                    worker = asyncio.create_task(
                        jobs.run_worker(
                            additional_context=services.worker_context(shared),
                            concurrency=settings.worker_concurrency,
                            name="bench",
                            heartbeat_seconds=settings.worker_heartbeat_seconds,
                            poll_seconds=settings.worker_poll_seconds,
                            install_signal_handlers=False,
                        )
                    )
                    try:
                        while True:
                            await asyncio.sleep(0.5)
                            async with shared.sessionmaker() as session:
                                left = await session.scalar(
                                    text(
                                        "SELECT count(*) FROM procrastinate_jobs "
                                        "WHERE status IN ('todo', 'doing')"
                                    )
                                )
                            if not left:
                                return
                    finally:
                        worker.cancel()
                        await asyncio.gather(worker, return_exceptions=True)

                await measured("defer", defer_all(NOOP_TASK))
                await measured("no-op job", run_all())
                await defer_all(
                    jobs.EXPORTS_RUN, company_id=lambda n: companies[n % len(companies)]
                )
                await measured("runner pass", run_all())
            finally:
                await jobs.close_jobs(pool)
                configure_logging("INFO", "console")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per row")
    args = parser.parse_args()
    rows = asyncio.run(run(args.jobs))
    print(
        f"\n{args.jobs} jobs per row, one worker (concurrency as WORKER_CONCURRENCY), JSON logs "
        "at INFO, embedded PostgreSQL:"
    )
    for row in rows:
        print(row.line(None if row is rows[0] else rows[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
