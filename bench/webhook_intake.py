"""Webhook intake throughput against a bare one-INSERT FastAPI endpoint, on the same database.

    ./dev run python -m bench.webhook_intake [--requests 3000] [--concurrency 16]

A fresh embedded PostgreSQL (pgserver) is migrated to head. Two uvicorn servers are started as
child processes, configured exactly like `dinero-bridge serve` (JSON logs to /dev/null):

- **webhook**: the real service, `POST /v1/webhooks/expenses` — signature check, item
  validation, category lookup, export + item + receipt rows and the runner's job, one transaction;
- **bare**: a FastAPI app with one route that stores the same body with one INSERT and commits.

The load generator (this process) sends the same signed webhook bodies (one card expense with
a category line and a small inline receipt; 20 companies) to each server with `--concurrency`
requests in flight, in alternating rounds, and prints requests/second, p50/p99 latency and the
throughput ratio webhook / bare (target ≥ 0.8). Servers run in their own processes so the load
generator does not compete with them for the GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from standardwebhooks.webhooks import Webhook

from bench.common import (
    WEBHOOK_SECRET,
    PostgresCpu,
    free_port,
    processes_cpu,
    service_settings,
    temp_database,
)
from tests.stored import add_booked_history

COMPANIES = 20
CATEGORY_ACCOUNT = 7000
TARGET_RATIO = 0.8
PACED_RATE = 300
"""Requests/second of the paced phase, whose p99 must stay within TARGET_P99_MS."""
TARGET_P99_MS = 50.0
DEFAULT_HISTORY = 2000
"""Items each company has exported before the run: a year of a mid-sized company's expenses
(intake looks up each new item among them; a lookup that grew with them would show)."""
RECEIPT = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8).decode()  # ~2 KB


# --- The servers (child processes) ---------------------------------------------------------


def _bare_app(database_url: str) -> FastAPI:
    """One route, one INSERT, one commit: the floor any intake endpoint stands on."""
    from sqlalchemy import text

    from app.db import create_engine, create_sessionmaker

    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/bare", status_code=202)
    async def bare(request: Request) -> JSONResponse:
        body = await request.body()
        row_id = uuid.uuid4()
        async with sessionmaker() as session:
            await session.execute(
                text("INSERT INTO bench_bare (id, payload) VALUES (:id, :payload)"),
                {"id": row_id, "payload": body.decode()},
            )
            await session.commit()
        return JSONResponse({"id": str(row_id)}, status_code=202)

    return app


def serve(kind: str, port: int, database_url: str, *, worker: bool) -> None:
    import uvicorn

    from app.logging import configure_logging
    from app.main import create_app
    from app.runtime import resolve

    settings = service_settings(database_url, log_level="INFO", log_format="json")
    configure_logging(settings.log_level, settings.log_format)
    if kind == "bare":
        app = _bare_app(database_url)
    else:
        runtime = resolve(settings, database_url=None, public_url=f"http://127.0.0.1:{port}")
        # As a newcomer's `dinero-bridge serve` builds it: the job worker runs in this process
        # (its runner passes for the benchmark's unconnected companies end at once, so each
        # webhook kicks a runner that has already run, as in production).
        app = create_app(runtime, run_worker=worker, mount_sandbox=False)
    # As `dinero-bridge serve` runs it.
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, proxy_headers=True)


def _profile_format(path: str) -> tuple[str, ...]:
    """py-spy's output format from the file's name: speedscope (.json), collapsed stacks (.txt,
    one line per stack and its count), or a flame graph (anything else)."""
    if path.endswith(".json"):
        return ("--format", "speedscope")
    if path.endswith(".txt"):
        return ("--format", "raw")
    return ()


# --- The database ---------------------------------------------------------------------------


async def seed(database_url: str, history: int = 0) -> dict[str, str]:
    """The companies and one category each (items name it, so intake looks it up), and
    `history` items each company exported before (booked, each in the export of its webhook),
    as a company has after months of use."""
    from sqlalchemy import text

    from app.db import create_engine

    engine = create_engine(database_url)
    categories: dict[str, str] = {}
    try:
        async with engine.begin() as conn:
            # Both servers' commits return without waiting for the disk's flush (connections
            # opened after this): on a slow disk the flush, equal for both, would hide the CPU.
            await conn.execute(text("ALTER DATABASE bench SET synchronous_commit = off"))
            await conn.execute(
                text(
                    "CREATE TABLE bench_bare (id uuid PRIMARY KEY, payload text NOT NULL, "
                    "created_at timestamptz NOT NULL DEFAULT now())"
                )
            )
            for n in range(COMPANIES):
                company, category = f"bench-co-{n}", str(uuid.uuid4())
                await conn.execute(text("INSERT INTO companies (id) VALUES (:c)"), {"c": company})
                await conn.execute(
                    text(
                        "INSERT INTO categories (id, company_id, account_number, account_name, "
                        "hidden, active) VALUES (:id, :c, :n, 'Rejser', false, true)"
                    ),
                    {"id": category, "c": company, "n": CATEGORY_ACCOUNT},
                )
                categories[company] = category
            if history:
                await add_booked_history(conn, list(categories), history)
                await conn.execute(text("ANALYZE exports, export_items"))
    finally:
        await engine.dispose()
    return categories


async def runner_passes(database_url: str) -> int:
    """How many export runner jobs were started (each is one pass of a company's runner)."""
    from sqlalchemy import text

    from app import jobs
    from app.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            started = await conn.scalar(
                text(
                    "SELECT count(*) FROM procrastinate_jobs "
                    "WHERE task_name = :task AND status <> 'todo'"
                ),
                {"task": jobs.EXPORTS_RUN},
            )
    finally:
        await engine.dispose()
    return int(started or 0)


# --- The load -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    name: str
    seconds: float
    latencies: list[float]
    errors: int
    cpu_seconds: float
    """CPU time the server process used meanwhile (from /proc)."""
    db_cpu_seconds: float
    """CPU time PostgreSQL's processes used meanwhile (`PostgresCpu`, from /proc)."""

    @classmethod
    def measured(cls, name: str, latencies: list[float], errors: int, timing: Timing) -> Result:
        return cls(
            name=name,
            seconds=timing.seconds,
            latencies=latencies,
            errors=errors,
            cpu_seconds=timing.cpu_seconds,
            db_cpu_seconds=timing.db_cpu_seconds,
        )

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    def line(self) -> str:
        cpu = self.cpu_seconds / len(self.latencies) * 1000
        db_cpu = self.db_cpu_seconds / len(self.latencies) * 1000
        return (
            f"{self.name:<15} {len(self.latencies):>6} req  {self.rps:>8.0f} req/s  "
            f"p50 {self.percentile(0.50):6.1f} ms  p99 {self.percentile(0.99):6.1f} ms  "
            f"server CPU {cpu:4.2f} ms/req  database CPU {db_cpu:4.2f} ms/req"
            + (f"  ERRORS {self.errors}" if self.errors else "")
        )


def webhook_request(n: int, categories: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    company = f"bench-co-{n % COMPANIES}"
    body = {
        "type": "export.requested",
        "company_id": company,
        "items": [
            {
                "external_id": f"exp_{uuid.uuid4().hex}",
                "type": "card_expense",
                "date": "2026-11-03",
                "description": "Taxa Nord, client visit",
                "amount": {"value": 24500, "currency": "DKK"},
                "lines": [{"category_id": categories[company], "tax_code": "I25", "amount": 24500}],
                "receipts": [
                    {
                        "content_base64": RECEIPT,
                        "filename": "taxa.png",
                        "content_type": "image/png",
                    }
                ],
                "employee": {"id": "emp_7", "name": "Mette Jensen"},
            }
        ],
    }
    raw = json.dumps(body)
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    return raw.encode(), {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": _signer().sign(msg_id, now, raw),
        "content-type": "application/json",
    }


_SIGNER: list[Webhook] = []


def _signer() -> Webhook:
    if not _SIGNER:
        _SIGNER.append(Webhook(WEBHOOK_SECRET))
    return _SIGNER[0]


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    path: str
    pid: int
    database_pid: int | None


KEEP_ALIVE_SECONDS = 4.0
"""A connection idle longer than this is not reused: uvicorn closes one after 5 s idle."""


class Connection:
    """One keep-alive HTTP/1.1 connection sending prepared bytes (a load generator's client).

    httpx spends more CPU per request than the servers measured here, so a load generator
    built on it measures itself; this one writes a request's bytes and reads the answer's
    status line, headers and Content-Length body, nothing else.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.last_used = time.monotonic()

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length)
        self.last_used = time.monotonic()
        return status, body

    @property
    def stale(self) -> bool:
        """Idle long enough for the server to have closed it (uvicorn's keep-alive timeout)."""
        return time.monotonic() - self.last_used > KEEP_ALIVE_SECONDS

    def close(self) -> None:
        self.writer.close()


def prepared(target: Target, content: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {target.path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(content)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + content


async def load(
    target: Target, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> Result:
    """Closed loop: `concurrency` connections, each sending its next request on an answer."""
    latencies: list[float] = []
    errors = 0
    requests = [prepared(target, content, headers) for content, headers in bodies]
    pending = iter(requests)

    async def worker(connection: Connection) -> None:
        nonlocal errors
        for request in pending:
            started = time.perf_counter()
            status, answer = await connection.exchange(request)
            latencies.append(time.perf_counter() - started)
            if status != 202:
                errors += 1
                if errors <= 3:
                    print(f"  {target.name}: {status} {answer[:300]!r}")

    connections = [await Connection.open(target.port) for _ in range(concurrency)]
    timing = await _timed(target, asyncio.gather(*(worker(c) for c in connections)))
    for connection in connections:
        connection.close()
    return Result.measured(target.name, latencies, errors, timing)


@dataclass(frozen=True)
class Timing:
    seconds: float
    cpu_seconds: float
    db_cpu_seconds: float


async def _timed(target: Target, work: Awaitable[object]) -> Timing:
    """Wall seconds, the server's and the database's CPU seconds while `work` runs."""
    database = PostgresCpu(target.database_pid)
    cpu = processes_cpu([target.pid])
    database.start()
    started = time.perf_counter()
    await work
    seconds, cpu = time.perf_counter() - started, processes_cpu([target.pid]) - cpu
    await database.stop()
    return Timing(seconds=seconds, cpu_seconds=cpu, db_cpu_seconds=database.used())


async def paced(target: Target, bodies: list[tuple[bytes, dict[str, str]]], rate: float) -> Result:
    """Open loop: one request every 1/rate s whatever the answers; latency from its slot.

    Measured from the moment each request was due (not when it got sent), so a server that
    falls behind shows it in the latency instead of slowing the load down.
    """
    latencies: list[float] = []
    errors = 0
    requests = [prepared(target, content, headers) for content, headers in bodies]
    idle: list[Connection] = []

    async def one(due: float, request: bytes) -> None:
        nonlocal errors
        # The last used is on top; those left below it since a spike may have gone stale.
        while idle and idle[-1].stale:
            idle.pop().close()
        connection = idle.pop() if idle else await Connection.open(target.port)
        status, _ = await connection.exchange(request)
        latencies.append(time.perf_counter() - due)
        idle.append(connection)
        if status != 202:
            errors += 1

    async def send_all() -> None:
        started = time.perf_counter()
        sent: list[asyncio.Task[None]] = []
        for n, request in enumerate(requests):
            due = started + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append(asyncio.create_task(one(due, request)))
        await asyncio.gather(*sent)

    timing = await _timed(target, send_all())
    for connection in idle:
        connection.close()
    return Result.measured(target.name, latencies, errors, timing)


@dataclass(frozen=True)
class Options:
    worker: bool = True
    """The service runs its job worker in process, as `dinero-bridge serve` does by default."""
    profile: str | None = None
    """Record the service's CPU with py-spy into this file (see `_profile_format`)."""
    history: int = DEFAULT_HISTORY
    """Items each company exported before the run."""


@contextlib.asynccontextmanager
async def server(kind: str, database_url: str, options: Options) -> AsyncIterator[tuple[int, int]]:
    port = free_port()
    command = [sys.executable, "-m", "bench.webhook_intake", "--serve", kind, "--port", str(port)]
    if not options.worker:
        command.append("--no-worker")
    process = await asyncio.create_subprocess_exec(
        *command,
        env={**os.environ, "BENCH_DATABASE_URL": database_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    profiler: asyncio.subprocess.Process | None = None
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(1200):  # up to 2 minutes on a busy machine
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{base}/healthz")).status_code == 200:
                        break
                if process.returncode is not None:
                    raise RuntimeError(f"the {kind} server exited with {process.returncode}")
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"the {kind} server did not start")
        if options.profile and kind == "webhook":
            profiler = await asyncio.create_subprocess_exec(
                os.path.join(os.path.dirname(sys.executable), "py-spy"),
                *("record", "--pid", str(process.pid), "--rate", "200", "--nonblocking"),
                *("--output", options.profile),
                *_profile_format(options.profile),
                stdout=subprocess.DEVNULL,
            )
        yield port, process.pid
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            await profiler.wait()
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


def _merged(name: str, parts: list[Result]) -> Result:
    return Result(
        name=name,
        seconds=sum(r.seconds for r in parts),
        latencies=[x for r in parts for x in r.latencies],
        errors=sum(r.errors for r in parts),
        cpu_seconds=sum(r.cpu_seconds for r in parts),
        db_cpu_seconds=sum(r.db_cpu_seconds for r in parts),
    )


@dataclass(frozen=True)
class Verdict:
    ratio: float
    median_ratio: float
    paced_p99_ms: float

    @property
    def met(self) -> bool:
        return self.median_ratio >= TARGET_RATIO and self.paced_p99_ms <= TARGET_P99_MS


async def run(
    requests: int, concurrency: int, rounds: int, paced_seconds: float, options: Options
) -> Verdict:
    with temp_database("bench-intake-") as db:
        database_url = db.url
        categories = await seed(database_url, options.history)
        async with (
            server("webhook", database_url, options) as (webhook_port, webhook_pid),
            server("bare", database_url, options) as (bare_port, bare_pid),
        ):
            targets = [
                Target(
                    "webhook intake",
                    webhook_port,
                    "/v1/webhooks/expenses",
                    webhook_pid,
                    db.postmaster_pid,
                ),
                Target("bare insert", bare_port, "/bare", bare_pid, db.postmaster_pid),
            ]
            warmup = [webhook_request(n, categories) for n in range(min(300, requests))]
            for target in targets:
                await load(target, warmup, concurrency)
            per_round = max(1, requests // rounds)
            totals: dict[str, list[Result]] = {target.name: [] for target in targets}
            for _ in range(rounds):
                # The same bodies, freshly signed, for both (new ids: nothing is a replay).
                for target in targets:
                    bodies = [webhook_request(n, categories) for n in range(per_round)]
                    totals[target.name].append(await load(target, bodies, concurrency))
            steady: dict[str, Result] = {}
            for target in targets:
                count = int(PACED_RATE * paced_seconds)
                bodies = [webhook_request(n, categories) for n in range(count)]
                steady[target.name] = await paced(target, bodies, PACED_RATE)
            passes = await runner_passes(database_url)
    results = {name: _merged(name, parts) for name, parts in totals.items()}
    print(
        f"\nwebhook intake vs bare one-INSERT endpoint: {rounds} rounds of {per_round}, "
        f"concurrency {concurrency}, uvicorn in child processes (service: in-process worker "
        f"{'on' if options.worker else 'off'}), {COMPANIES} companies with "
        f"{options.history:,} items exported before each, embedded PostgreSQL "
        "(synchronous_commit off: the CPU, not the disk's flush, is measured)\n"
    )
    for result in results.values():
        print(result.line())
    ratio = results["webhook intake"].rps / results["bare insert"].rps
    spread = [
        w.rps / b.rps for w, b in zip(totals["webhook intake"], totals["bare insert"], strict=True)
    ]
    median = statistics.median(spread)
    print(
        f"\nratio webhook/bare (throughput): {ratio:.2f}  "
        f"(rounds: {', '.join(f'{x:.2f}' for x in spread)}; median {median:.2f}; "
        f"target ≥ {TARGET_RATIO})"
    )
    print(
        f"\npaced at {PACED_RATE} req/s for {paced_seconds:g} s "
        "(open loop, latency from each slot):"
    )
    for result in steady.values():
        print(result.line())
    webhooks = sum(len(r.latencies) for r in totals["webhook intake"]) + len(
        steady["webhook intake"].latencies
    )
    print(
        f"\nexport runner passes (jobs started): {passes:,} for {webhooks:,} measured webhooks "
        "and the warm-up"
    )
    p99 = steady["webhook intake"].percentile(0.99)
    print(f"\nwebhook p99 at {PACED_RATE} req/s: {p99:.1f} ms (target ≤ {TARGET_P99_MS:g} ms)")
    verdict = Verdict(ratio=ratio, median_ratio=median, paced_p99_ms=p99)
    print("target met" if verdict.met else "TARGET MISSED")
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000, help="per endpoint, measured")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternating measured rounds")
    parser.add_argument(
        "--paced-seconds", type=float, default=10, help=f"length of the {PACED_RATE} req/s phase"
    )
    parser.add_argument(
        "--no-worker", action="store_true", help="the service without its in-process worker"
    )
    parser.add_argument(
        "--profile",
        help="py-spy record the service into this file (.json: speedscope, .txt: collapsed "
        "stacks, anything else: a flame graph SVG)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=DEFAULT_HISTORY,
        help="items each company exported before the run (booked)",
    )
    parser.add_argument("--serve", choices=["webhook", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, os.environ["BENCH_DATABASE_URL"], worker=not args.no_worker)
        return 0
    options = Options(worker=not args.no_worker, profile=args.profile, history=args.history)
    verdict = asyncio.run(
        run(args.requests, args.concurrency, args.rounds, args.paced_seconds, options)
    )
    return 0 if verdict.met else 1


if __name__ == "__main__":
    sys.exit(main())
