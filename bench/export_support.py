"""What the export benchmarks share: database, stand-in Dinero in a child process, the service,
companies, stored items, and the real job worker run until every item has settled.

The stand-in Dinero runs as its own process (uvicorn on a free local port), so its CPU is not
counted as the service's and it does not share the service's event loop. It is wrapped in a
small ASGI counter that tallies every Dinero request per organization (method, path with ids
replaced, status) and answers `GET /_bench/stats` with the tallies and its own CPU time, so no
request log has to be shipped back.

Items are stored the way the intake stores them (export + item + inline receipt rows, as
tests/exports/test_runner.py's `add_item` does), in bulk. The export then runs on the real
worker path: `job_app.run_worker_async(queues=["exports"], concurrency=N)` in a task, handed the
service's resources as `serve`'s in-process worker is, the companies' runners kicked, the
database polled until no item is queued or exporting; more worker processes (`--worker`, like
`dinero-bridge worker`) may run beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import random
import re
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from dinero_sandbox import SandboxConfig, create_sandbox_app
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, insert, select, text

from app import jobs, services
from app.auth import issue_token
from app.chart.sync import sync_chart
from app.config import Settings
from app.exports.models import Export, ExportItem, InlineReceipt, ItemStatus, ItemType, Step
from app.logging import configure_logging
from app.main import create_app
from app.runtime import resolve
from bench.common import (
    JWT_SECRET,
    TICK,
    PostgresCpu,
    free_port,
    processes_cpu,
    service_settings,
    wait_until_up,
)

FIRST_ORG = 200001
CARD, OUT_OF_POCKET, BANK = 55030, 55080, 55000
EXPENSE_ACCOUNT = 2800
MIB = 1024 * 1024
OPEN_STATUSES = (ItemStatus.QUEUED, ItemStatus.EXPORTING)
STATS_PATH = "/_bench/stats"


def api_key(org: int) -> str:
    return f"bench-api-key-{org}"


def company_of(org: int) -> str:
    return f"bench-{org}"


# --- the stand-in Dinero, in its own process --------------------------------------------------

_GUID = re.compile(r"/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ORG = re.compile(r"^/(v\d+(?:\.\d+)?)/(\d+)(?=/|$)")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=dict)
    first: float | None = None
    last: float | None = None


class CountingMiddleware:
    """Counts every Dinero request per organization; serves the counts at STATS_PATH."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tallies: dict[str, _Tally] = {}
        self.clients: set[tuple[str, int]] = set()
        """Client (host, port) pairs seen: each is one TCP connection the service opened."""

    def _stats(self) -> bytes:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return json.dumps(
            {
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "max_rss_kib": usage.ru_maxrss,
                "connections": len(self.clients),
                "organizations": {
                    org: {"counts": t.counts, "first": t.first, "last": t.last}
                    for org, t in self.tallies.items()
                },
            }
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path == STATS_PATH:
            body = self._stats()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if path.startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if client:
            self.clients.add((str(client[0]), int(client[1])))
        match = _ORG.match(path)
        org = match.group(2) if match else "-"
        template = _GUID.sub("/{guid}", _ORG.sub(r"/\1/{org}", path))
        status = 0

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            tally = self.tallies.setdefault(org, _Tally())
            key = f"{scope['method']} {template} {status}"
            tally.counts[key] = tally.counts.get(key, 0) + 1
            now = time.time()
            tally.first = tally.first if tally.first is not None else now
            tally.last = now


def serve_sandbox(port: int, organizations: int) -> None:
    """Seed the organizations (each with an API key) and serve on 127.0.0.1:port (child)."""
    import uvicorn

    config = SandboxConfig(rate_limit_per_minute=0, latency_ms=0, max_logged_requests=1000)
    app = create_sandbox_app(config)
    sandbox = app.state.sandbox
    for org in range(FIRST_ORG, FIRST_ORG + organizations):
        sandbox.add_organization(org, f"Bench {org} ApS")
        sandbox.add_api_key(api_key(org), org)
    uvicorn.run(
        CountingMiddleware(app), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


@dataclass
class SandboxProcess:
    url: str
    pid: int


@contextlib.contextmanager
def sandbox_process(organizations: int) -> Iterator[SandboxProcess]:
    port = free_port()
    command = [sys.executable, "-m", "bench.export_support", "--serve-sandbox", str(port)]
    command += ["--organizations", str(organizations)]
    child = subprocess.Popen(command)  # noqa: S603 - our own module
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(child, f"{base}{STATS_PATH}")
        yield SandboxProcess(url=base, pid=child.pid)
    finally:
        child.terminate()
        child.wait(timeout=10)


async def configure_sandbox(dinero: str, **settings: Any) -> None:
    async with httpx.AsyncClient(base_url=dinero) as http:
        answer = await http.patch("/_sandbox/config", json=settings)
        answer.raise_for_status()


@dataclass
class OrgRequests:
    """What the stand-in Dinero saw from one organization (counts by 'METHOD path status')."""

    counts: dict[str, int]
    first: float | None
    last: float | None

    def total(self, pattern: str = "", status: int | None = None) -> int:
        return sum(
            n
            for key, n in self.counts.items()
            if pattern in key and (status is None or key.endswith(f" {status}"))
        )

    @property
    def sent(self) -> int:
        return self.total()

    @property
    def rejected_429(self) -> int:
        return self.total(status=429)


@dataclass
class SandboxStats:
    cpu_seconds: float
    connections: int
    organizations: dict[str, OrgRequests]

    def org(self, org: int) -> OrgRequests:
        return self.organizations.get(str(org), OrgRequests({}, None, None))


async def sandbox_stats(dinero: str) -> SandboxStats:
    async with httpx.AsyncClient(base_url=dinero) as http:
        body = (await http.get(STATS_PATH)).json()
    return SandboxStats(
        cpu_seconds=float(body["cpu_seconds"]),
        connections=int(body["connections"]),
        organizations={
            org: OrgRequests(dict(v["counts"]), v["first"], v["last"])
            for org, v in body["organizations"].items()
        },
    )


def since(after: OrgRequests, before: OrgRequests) -> OrgRequests:
    counts = {k: n - before.counts.get(k, 0) for k, n in after.counts.items()}
    return OrgRequests({k: n for k, n in counts.items() if n}, after.first, after.last)


# --- the database ----------------------------------------------------------------------------


# --- CPU accounting --------------------------------------------------------------------------


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in first]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / TICK, sum(ticks) / TICK


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class CpuSnapshot:
    wall: float
    service: float
    workers: float
    """The extra worker processes' CPU seconds."""
    postgres: float
    sandbox: float
    machine_busy: float
    machine_total: float


async def cpu_snapshot(
    dinero: str, postgres: PostgresCpu, workers: list[int] | None = None
) -> CpuSnapshot:
    stats = await sandbox_stats(dinero)
    busy, total = machine_busy()
    postgres.sample()
    return CpuSnapshot(
        wall=time.perf_counter(),
        service=own_cpu(),
        workers=processes_cpu(workers or []),
        postgres=postgres.used(),
        sandbox=stats.cpu_seconds,
        machine_busy=busy,
        machine_total=total,
    )


# --- the service -----------------------------------------------------------------------------


def settings(database_url: str, dinero: str, limit: int) -> Settings:
    return service_settings(
        database_url, dinero, dinero_rate_limit_per_minute=limit, log_format="console"
    )


@contextlib.asynccontextmanager
async def service(database_url: str, dinero: str, limit: int) -> AsyncIterator[FastAPI]:
    """The service as a worker process runs it: services started, job queue open."""
    configure_logging("WARNING", "console")
    runtime = resolve(
        settings(database_url, dinero, limit), database_url=None, public_url="http://b"
    )
    app = create_app(runtime, open_job_queue=True, mount_sandbox=False)
    async with app.router.lifespan_context(app):
        yield app


def _auth(company: str) -> dict[str, str]:
    token = issue_token(secret=SecretStr(JWT_SECRET), company_id=company, role="admin")
    return {"Authorization": f"Bearer {token}"}


async def connect_companies(app: FastAPI, orgs: list[int], parallel: int = 8) -> None:
    """Connect each organization's company with its API key, sync the chart, map accounts."""
    services = app.state.services
    gate = asyncio.Semaphore(parallel)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://b") as api:

        async def one(org: int) -> None:
            company = company_of(org)
            async with gate:
                connected = await api.put(
                    f"/v1/companies/{company}/dinero/connection",
                    json={"organization_id": org, "method": "api_key", "api_key": api_key(org)},
                    headers=_auth(company),
                )
                assert connected.status_code == 200, connected.text
                outcome = await sync_chart(services, company)
                assert outcome.status == "succeeded", outcome
                mapped = await api.put(
                    f"/v1/companies/{company}/dinero/settings",
                    json={
                        "deposit_account": CARD,
                        "out_of_pocket_account": OUT_OF_POCKET,
                        "reimbursement_account": BANK,
                    },
                    headers=_auth(company),
                )
                assert mapped.status_code == 200, mapped.text

        await asyncio.gather(*(one(org) for org in orgs))


def receipt_jpeg(kib: int, seed: int = 7) -> bytes:
    """A JPEG of about `kib` KiB: a receipt-like white page with noisy 'text' rows."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    width = 600
    height = max(200, kib * 6)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for y in range(20, height - 20, 14):
        x = 20
        while x < width - 40:
            word = rng.randint(10, 60)
            draw.rectangle([x, y, x + word, y + 8], fill=rng.randint(0, 90))
            x += word + rng.randint(5, 12)
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=85)
    return out.getvalue()


async def store_items(
    app: FastAPI,
    org: int,
    expenses: int,
    receipt: bytes,
    *,
    reimbursements: int = 0,
    chunk: int = 250,
) -> None:
    """Store items as the intake does (export + item + inline receipt rows), in bulk."""
    company = company_of(org)
    maker = app.state.services.sessionmaker
    kinds = [ItemType.REIMBURSEMENT] * reimbursements + [ItemType.CARD_EXPENSE] * expenses
    for start in range(0, len(kinds), chunk):
        part = kinds[start : start + chunk]
        now = datetime.now(UTC)
        export_id = uuid.uuid4()
        items: list[dict[str, Any]] = []
        blobs: list[dict[str, Any]] = []
        for offset, kind in enumerate(part):
            item_id = uuid.uuid4()
            number = start + offset
            amount = 10_000 + number % 9_000
            receipts: list[dict[str, Any]] = []
            if kind.is_expense:
                blob_id = uuid.uuid4()
                blobs.append(
                    {"id": blob_id, "item_id": item_id, "content": receipt, "created_at": now}
                )
                receipts = [
                    {
                        "blob_id": str(blob_id),
                        "filename": "kvittering.jpg",
                        "content_type": "image/jpeg",
                    }
                ]
            items.append(
                {
                    "id": item_id,
                    "company_id": company,
                    "export_id": export_id,
                    "external_id": f"exp_{number:06d}",
                    "type": kind,
                    "status": ItemStatus.QUEUED,
                    "step": Step.NEW,
                    "voucher_date": date(2026, 11, 3),
                    "description": f"Taxa Nord, kundebesøg {number}",
                    "currency": "DKK",
                    "amount_minor": amount,
                    "dkk_amount_minor": amount,
                    "lines": (
                        [
                            {
                                "category_id": None,
                                "account_number": EXPENSE_ACCOUNT,
                                "tax_code": "I25",
                                "amount": amount,
                                "dkk_amount": amount,
                                "description": None,
                            }
                        ]
                        if kind.is_expense
                        else []
                    ),
                    "employee": {"id": "emp-1", "name": "Mette Sørensen"},
                    "receipts": receipts,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        async with maker() as session, session.begin():
            await session.execute(
                insert(Export).values(
                    id=export_id,
                    company_id=company,
                    source="api",
                    created_at=now,
                    item_ids=[str(i["id"]) for i in items],
                    rejected=[],
                )
            )
            await session.execute(insert(ExportItem), items)
            if blobs:
                await session.execute(insert(InlineReceipt), blobs)


async def reset_pacing(app: FastAPI) -> None:
    """Forget the setup's reservations (connect, chart sync), so each run starts with a full
    budget; the stand-in's limiter was off during the setup, so it has counted nothing."""
    async with app.state.services.engine.begin() as conn:
        await conn.execute(text("DELETE FROM dinero_request_slots"))
        await conn.execute(text("DELETE FROM dinero_rate_budgets"))


async def open_items(app: FastAPI, companies: list[str]) -> dict[str, int]:
    async with app.state.services.sessionmaker() as session:
        rows = await session.execute(
            select(ExportItem.company_id, func.count())
            .where(ExportItem.company_id.in_(companies), ExportItem.status.in_(OPEN_STATUSES))
            .group_by(ExportItem.company_id)
        )
        return {company: int(n) for company, n in rows.tuples()}


async def item_outcomes(app: FastAPI, companies: list[str]) -> dict[str, int]:
    async with app.state.services.sessionmaker() as session:
        rows = await session.execute(
            select(ExportItem.status, func.count())
            .where(ExportItem.company_id.in_(companies))
            .group_by(ExportItem.status)
        )
        return {str(status): int(n) for status, n in rows.tuples()}


@dataclass
class Run:
    """The worker's run over some companies until every item settled (or time ran out)."""

    wall: float
    finished: dict[str, float]
    """Seconds from the start until each company had no open item."""
    timed_out: bool
    samples: list[tuple[float, int, float]]
    """(seconds, items settled, RSS MiB) every sample."""


async def run_worker_until_settled(
    app: FastAPI,
    companies: list[str],
    *,
    concurrency: int,
    total_items: int,
    time_limit: float,
    sample_every: float = 0.25,
    poll_interval: float | None = None,
    on_sample: Callable[[float, int, float], None] | None = None,
) -> Run:
    """Start a worker on the exports queue, kick every company, poll until all settled."""
    options: dict[str, Any] = {}
    if poll_interval is not None:
        options["fetch_job_polling_interval"] = poll_interval
    started = time.perf_counter()
    worker = asyncio.create_task(
        jobs.job_app.run_worker_async(
            additional_context=services.worker_context(app.state.services),
            queues=["exports"],
            concurrency=concurrency,
            wait=True,
            install_signal_handlers=False,
            name="bench",
            **options,
        )
    )
    async with app.state.services.sessionmaker() as session, session.begin():
        for company in companies:
            await jobs.wake_exports(session, company)
    finished: dict[str, float] = {}
    samples: list[tuple[float, int, float]] = []
    timed_out = False
    try:
        while True:
            await asyncio.sleep(sample_every)
            now = time.perf_counter() - started
            still = await open_items(app, [c for c in companies if c not in finished])
            for company in companies:
                if company not in finished and still.get(company, 0) == 0:
                    finished[company] = now
            open_now = sum(still.values())
            sample = (now, total_items - open_now, rss_mib())
            samples.append(sample)
            if on_sample is not None:
                on_sample(*sample)
            if len(finished) == len(companies):
                break
            if worker.done():
                worker.result()  # raises what stopped it
                raise RuntimeError("the worker stopped")
            if now > time_limit:
                timed_out = True
                break
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    wall = max(finished.values()) if finished and not timed_out else time.perf_counter() - started
    return Run(wall=wall, finished=finished, timed_out=timed_out, samples=samples)


# --- requests needed -------------------------------------------------------------------------


@dataclass
class Needed:
    expenses: int
    ledger_batches: int
    status_polls: int

    @property
    def total(self) -> int:
        return 2 * self.expenses + 2 * self.ledger_batches + self.status_polls


def needed(requests: OrgRequests, expenses: int, reimbursements: int) -> Needed:
    """Each expense with a receipt: upload + create. Reimbursements: per batch of up to 1000
    one create and one book, plus the status polls that follow the booking (as observed)."""
    batches = math.ceil(reimbursements / 1000)
    polls = requests.total("ledgeritems/status") - requests.total("ledgeritems/status", 429)
    return Needed(expenses=expenses, ledger_batches=batches, status_polls=polls if batches else 0)


def breakdown(requests: OrgRequests) -> str:
    """The requests by kind, most frequent first."""
    kinds: dict[str, int] = {}
    for key, n in requests.counts.items():
        method, path, status = key.split(" ")
        label = f"{method} {path}" + (" 429" if status == "429" else "")
        kinds[label] = kinds.get(label, 0) + n
    return ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))


# --- more worker processes --------------------------------------------------------------------


async def _worker_main(args: argparse.Namespace) -> None:
    """A worker process as `dinero-bridge worker` runs one, on the exports queue only."""
    from app.db import libpq_url

    configure_logging("WARNING", "console")
    runtime = resolve(
        settings(args.database_url, args.dinero, args.limit),
        database_url=None,
        public_url="http://b",
    )
    async with services.started(runtime) as shared:
        pool = jobs.create_job_pool(libpq_url(args.database_url))
        await jobs.open_jobs(pool)
        options: dict[str, Any] = {}
        if args.poll_interval is not None:
            options["fetch_job_polling_interval"] = args.poll_interval
        print("ready", flush=True)
        try:
            await jobs.job_app.run_worker_async(
                additional_context=services.worker_context(shared),
                queues=["exports"],
                concurrency=args.concurrency,
                name=f"bench-{os.getpid()}",
                install_signal_handlers=False,
                **options,
            )
        finally:
            await jobs.close_jobs(pool)


def _spawn(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603


@contextlib.asynccontextmanager
async def worker_processes(
    count: int,
    database_url: str,
    dinero: str,
    limit: int,
    concurrency: int,
    poll_interval: float | None,
) -> AsyncIterator[list[int]]:
    """`count` more worker processes on the exports queue; yields their pids once ready."""
    children: list[subprocess.Popen[str]] = []
    try:
        for _ in range(count):
            command = [sys.executable, "-m", "bench.export_support", "--worker"]
            command += ["--database-url", database_url, "--dinero", dinero]
            command += ["--limit", str(limit), "--concurrency", str(concurrency)]
            if poll_interval is not None:
                command += ["--poll-interval", str(poll_interval)]
            children.append(_spawn(command))
        for child in children:
            assert child.stdout is not None
            line = await asyncio.to_thread(child.stdout.readline)
            if line.strip() != "ready":
                raise RuntimeError("a worker process did not start")
        yield [child.pid for child in children]
    finally:
        for child in children:
            child.kill()  # every item has settled; a runner's job may be left 'doing'
            child.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description="helpers of the export benchmarks")
    parser.add_argument("--serve-sandbox", type=int, help="serve the stand-in on this port")
    parser.add_argument("--organizations", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help="run an exports worker")
    parser.add_argument("--database-url")
    parser.add_argument("--dinero")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--poll-interval", type=float, default=None)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(_worker_main(args))
    else:
        serve_sandbox(args.serve_sandbox, args.organizations)


if __name__ == "__main__":
    main()
