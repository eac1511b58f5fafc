"""Chart sync: 2,000 accounts and 40 VAT types against the stand-in Dinero with 50 ms latency.

    ./dev run python -m bench.chart_sync [--accounts 2000] [--vat-types 40] [--latency-ms 50]

A fresh embedded PostgreSQL is migrated to head; the service talks to an in-process sandbox
(ASGI transport) that adds the latency to every request. A company is connected with the demo
API key, then the sync runs: five first syncs, each writing the whole chart (the stored chart,
its history and digest are deleted before each but the first, outside the timing), then five
resyncs that find nothing changed; the median of each five is timed, as the floor is. The
latency floor is measured in the same run: the five lists read in parallel through the
service's own Dinero client, nothing stored (the median of five reads). For each sync it
prints the Dinero requests used (the minimum is one per list: five), the wall time, its ratio to
that floor, and the SQL statements it sent that write (INSERT/UPDATE/DELETE), by table.
Targets (issue 17): each sync ≤ 1.2 x the floor; the second sync writes no statement to the
chart's tables (the sync's own bookkeeping, its state row, the connection's last sync time and
the pacer's reservations, is listed apart).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
from dinero_sandbox import Sandbox, SandboxConfig, create_sandbox_app
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import event, text

from app.auth import issue_token
from app.chart.sync import CHART_REQUESTS, read_chart, sync_chart
from app.connection.models import get_connection
from app.main import create_app
from app.runtime import resolve
from bench.common import JWT_SECRET, service_settings, temp_database

ORG = 100001
API_KEY = "sandbox-api-key-100001"
DINERO = "http://dinero.bench"
COMPANY = "bench-co"
TARGET_RATIO = 1.2
RESYNCS = 5
"""No-op resyncs timed (their median is compared with the floor, itself a median of 5)."""
FIRST_SYNCS = 5
"""First syncs timed, each from an empty chart (`_forget_chart`): their median is compared."""
BOOKKEEPING = frozenset({"chart_syncs", "dinero_connections", "dinero_request_slots"})
"""Written by every sync, changed or not: its state (running, then succeeded), the connection's
last sync time, the pacer's reservation of each request (the runner's wake-up is written on
procrastinate's connection, not counted here)."""
_WRITE = re.compile(
    r"^\s*(?:WITH\b.*?\)\s*)?(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.I | re.S
)


@contextlib.contextmanager
def counting_writes(engine: Any) -> Iterator[Counter[str]]:
    """Count the statements sent on `engine` that write, by (verb, table)."""
    writes: Counter[str] = Counter()

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        match = _WRITE.match(statement)
        if match:
            writes[f"{match.group(1).split()[0].upper()} {match.group(2)}"] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield writes
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


@contextlib.contextmanager
def _uncounted(writes: Counter[str]) -> Iterator[None]:
    """Statements sent inside are left out of `writes` (the bench's own resets)."""
    kept = Counter(writes)
    try:
        yield
    finally:
        writes.clear()
        writes.update(kept)


def _grow_chart(sandbox: Sandbox, accounts: int, vat_types: int) -> None:
    books = sandbox.org(ORG)
    number = 2000
    while len(books.accounts) < accounts:
        if number not in books.accounts:
            sandbox.add_account(ORG, number, f"Udgiftskonto {number}", vat_code="I25")
        number += 1
    index = 0
    while len(books.vat_types) < vat_types:
        sandbox.add_vat_type(ORG, f"P{index:02d}", f"Delvis købsmoms {index}", Decimal("0.05"))
        index += 1


@contextlib.asynccontextmanager
async def _service(url: str, latency_ms: int) -> AsyncIterator[tuple[FastAPI, Sandbox]]:
    sandbox_app = create_sandbox_app(SandboxConfig(latency_ms=0))
    settings = service_settings(url, DINERO)
    runtime = resolve(settings, database_url=None, public_url="http://bench")
    app = create_app(
        runtime,
        dinero_transport=httpx.ASGITransport(app=sandbox_app),
        mount_sandbox=False,
        open_job_queue=True,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            token = issue_token(secret=SecretStr(JWT_SECRET), company_id=COMPANY, role="admin")
            connected = await client.put(
                f"/v1/companies/{COMPANY}/dinero/connection",
                json={"organization_id": ORG, "method": "api_key", "api_key": API_KEY},
                headers={"Authorization": f"Bearer {token}"},
            )
            connected.raise_for_status()
            sandbox = sandbox_app.state.sandbox
            sandbox.configure(latency_ms=latency_ms)
            yield app, sandbox


async def _forget_chart(services: Any) -> None:
    """The company's stored chart, its history and its digest gone: the next sync is a first."""
    async with services.engine.begin() as conn:
        for table in ("categories", "dinero_accounts", "tax_codes"):
            delete = text(f"DELETE FROM {table} WHERE company_id = :c")  # noqa: S608
            await conn.execute(delete, {"c": COMPANY})
        await conn.execute(
            text(
                "UPDATE chart_syncs SET chart_digest = NULL, compared_at = NULL "
                "WHERE company_id = :c"
            ),
            {"c": COMPANY},
        )


async def _floor(services: Any, reads: int = 5) -> float:
    """The five lists read in parallel, nothing else: the median of `reads` reads (seconds)."""
    async with services.sessionmaker() as session:
        connection = await get_connection(session=session, company_id=COMPANY)
    assert connection is not None
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        await read_chart(services.dinero, connection)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _run(accounts: int, vat_types: int, latency_ms: int) -> int:
    with temp_database("bench-chart-") as db:
        async with _service(db.url, latency_ms) as (app, sandbox):
            _grow_chart(sandbox, accounts, vat_types)
            services = app.state.services
            floor = await _floor(services)
            print(
                f"{accounts} accounts, {vat_types} VAT types, {latency_ms} ms latency; floor "
                f"(the {CHART_REQUESTS} lists read in parallel, median of 5): {floor:.3f}s\n"
            )
            failed = 0
            plan = (("first sync", FIRST_SYNCS, True), ("resync (nothing changed)", RESYNCS, False))
            for label, runs, first in plan:
                times: list[float] = []
                sandbox.clear_requests()
                with counting_writes(services.engine) as writes:
                    for run in range(runs):
                        if first and run:
                            with _uncounted(writes):
                                await _forget_chart(services)
                        started = time.perf_counter()
                        outcome = await sync_chart(services, COMPANY)
                        times.append(time.perf_counter() - started)
                        if outcome.status != "succeeded":
                            failed = 1
                elapsed = statistics.median(times)
                requests = len(sandbox.requests) / runs
                per_sync = {k: n / runs for k, n in writes.items()}
                chart_writes = {k: n for k, n in per_sync.items() if _table(k) not in BOOKKEEPING}
                bookkeeping = {k: n for k, n in per_sync.items() if _table(k) in BOOKKEEPING}
                timing = (
                    f"time={elapsed:.3f}s"
                    if runs == 1
                    else (
                        f"time={elapsed:.3f}s (median of {runs}: "
                        + ", ".join(f"{t:.3f}" for t in times)
                        + ")"
                    )
                )
                print(
                    f"{label}: requests={requests:g} per sync (minimum {CHART_REQUESTS})  "
                    f"{timing}  ratio_to_floor={elapsed / floor:.2f} "
                    f"(target ≤ {TARGET_RATIO})  chart_rows_written={outcome.changes}  "
                    f"status={outcome.status}\n"
                    f"  write statements to the chart, per sync: {sum(chart_writes.values()):g} "
                    f"{_counts(chart_writes)}\n"
                    f"  write statements, bookkeeping, per sync: {sum(bookkeeping.values()):g} "
                    f"{_counts(bookkeeping)}"
                )
                if requests != CHART_REQUESTS:
                    failed = 1
                if elapsed / floor > TARGET_RATIO:
                    failed = 1
                if not first and (outcome.changes != 0 or chart_writes):
                    failed = 1
            print("target met" if not failed else "TARGET MISSED")
            return failed


def _table(statement: str) -> str:
    return statement.split()[1]


def _counts(counts: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k!r}: {n:g}" for k, n in sorted(counts.items())) + "}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--vat-types", type=int, default=40)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(_run(args.accounts, args.vat_types, args.latency_ms)))


if __name__ == "__main__":
    main()
