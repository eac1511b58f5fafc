"""Data-source import: 100,000 records (90,000 entries, 10,000 contacts) streamed into PostgreSQL.

    ./dev run python -m bench.datasource_import [--entries 90000] [--contacts 10000]

A fresh embedded PostgreSQL is migrated to head. The stand-in Dinero runs in a process of its
own (uvicorn on a free local port), seeded with the contacts and with the entries spread over
accounting year 2026, so this process's memory is the service's alone. A company is connected
with the demo API key and a data source (contacts + entries 2026) is created over the API; then
its first import runs (the job's code, in this process) under `tracemalloc`.

Printed: Dinero requests used against the minimum possible (contact pages of 1,000 plus one
entries call for the year), wall time, peak traced memory, and, as the baseline measured in the
same run, the naive way: one `entries` call for the whole year and every contact page kept in
lists, which uses the minimum of requests and holds everything in memory. Targets (exit status
1 when missed): every record stored once; peak memory at most half the baseline's (the import
streams: it holds one page or entries window at a time, so its peak does not grow with the
records); at most twice the minimum of requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from dinero_sandbox import SandboxConfig, create_sandbox_app
from dinero_sandbox.state import Entry
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from app.auth import issue_token
from app.connection.models import DineroConnection
from app.datasources import importer
from app.dinero.collections import Collection, DineroRecord
from app.dinero.paging import MAX_PAGE_SIZE
from app.logging import configure_logging
from app.main import create_app
from app.runtime import resolve
from bench.common import (
    JWT_SECRET,
    free_port,
    service_settings,
    temp_database,
    wait_until_up,
)

ORG = 100001
API_KEY = "sandbox-api-key-100001"
COMPANY = "bench-co"
YEAR = 2026
PAGE = 1000
MIB = 1024 * 1024

TARGET_MEMORY_RATIO = 0.5
TARGET_REQUESTS_RATIO = 2.0


# --- the stand-in Dinero, in its own process --------------------------------------------------


def serve_sandbox(port: int, entries: int, contacts: int) -> None:
    """Seed a sandbox and serve it on 127.0.0.1:port (runs in the child process)."""
    import uvicorn

    app = create_sandbox_app(SandboxConfig(rate_limit_per_minute=0, max_logged_requests=100_000))
    sandbox = app.state.sandbox
    books = sandbox.org(ORG)
    for index in range(contacts):
        sandbox.add_record(ORG, "contacts", Name=f"Kontakt {index:05d} ApS")
    accounts = [1000, 2000, 3600, 4000, 5000, 55000, 55030, 61000, 61010]
    start = date(YEAR, 1, 1)
    for index in range(entries):
        day = start + timedelta(days=index * 365 // max(entries, 1))
        books.entries.append(
            Entry(
                guid=sandbox.ids.guid(),
                account_number=accounts[index % len(accounts)],
                account_name=books.account_name(accounts[index % len(accounts)]),
                entry_date=day,
                amount=Decimal(index % 9973) / 4 - Decimal("1000.25"),
                voucher_number=10_000 + index // 2,
                voucher_guid=sandbox.ids.guid(),
                voucher_type="manuel",
                created_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
                description=f"Postering {index}",
                vat_code="I25" if index % 3 == 0 else None,
            )
        )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def _sandbox_process(entries: int, contacts: int) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "bench.datasource_import", "--serve-sandbox", str(port)]
    command += ["--entries", str(entries), "--contacts", str(contacts)]
    child = subprocess.Popen(command)  # noqa: S603 - our own module
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(child, f"{base}/_sandbox")
        yield base
    finally:
        child.terminate()
        child.wait(timeout=10)


# --- the service ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _service(url: str, dinero: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = service_settings(
        url,
        dinero,
        # Dinero allows 100 requests a minute; pacing would only add waiting to the timings.
        dinero_rate_limit_per_minute=10_000,
        log_format="console",
    )
    runtime = resolve(settings, database_url=None, public_url="http://bench.local")
    app = create_app(runtime, open_job_queue=False, mount_sandbox=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as api:
            yield app, api


def _auth() -> dict[str, str]:
    token = issue_token(secret=SecretStr(JWT_SECRET), company_id=COMPANY, role="admin")
    return {"Authorization": f"Bearer {token}"}


async def _requests(dinero: str) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=dinero) as http:
        log = (await http.get("/_sandbox/requests", params={"organization_id": ORG})).json()
    counts: dict[str, int] = {}
    items = log["requests"] if isinstance(log, dict) else log
    for item in items:
        path = item["path"].replace(f"/{ORG}/", "/{org}/")
        counts[path] = counts.get(path, 0) + 1
    return counts


async def _clear_requests(dinero: str) -> None:
    async with httpx.AsyncClient(base_url=dinero) as http:
        await http.delete("/_sandbox/requests")


async def _create(api: httpx.AsyncClient) -> uuid.UUID:
    created = await api.post(
        f"/v1/companies/{COMPANY}/data-sources",
        json={
            "data_types": ["contacts", "entries"],
            "accounting_year": {"start": f"{YEAR}-01-01", "end": f"{YEAR}-12-31"},
        },
        headers=_auth(),
    )
    assert created.status_code == 201, created.text
    return uuid.UUID(created.json()["id"])


async def run(url: str, dinero: str, settings: importer.ImportSettings) -> dict[str, Any]:
    """Each way runs twice: once timed, once under tracemalloc (which slows Python down)."""
    async with _service(url, dinero) as (app, api):
        connected = await api.put(
            f"/v1/companies/{COMPANY}/dinero/connection",
            json={"organization_id": ORG, "method": "api_key", "api_key": API_KEY},
            headers=_auth(),
        )
        assert connected.status_code == 200, connected.text

        # Two identical data sources (creating one asks Dinero for the accounting years).
        waiting = [await _create(api), await _create(api)]

        async def streamed() -> None:
            outcome = await importer.run_data_source(
                engine=app.state.services.engine,
                sessionmaker=app.state.services.sessionmaker,
                gateway=app.state.services.dinero,
                data_source_id=waiting.pop(0),
                settings=settings,
            )
            assert outcome.result == "done", outcome

        async with app.state.services.sessionmaker() as session:
            connection = (
                await session.execute(
                    select(DineroConnection).where(DineroConnection.company_id == COMPANY)
                )
            ).scalar_one()
        client = app.state.services.dinero.client_for(connection)
        held: list[int] = []

        async def in_memory() -> None:
            # The baseline: the fewest requests, everything held in memory, nothing stored.
            all_entries = await client.entry_records(date(YEAR, 1, 1), date(YEAR, 12, 31))
            all_contacts: list[DineroRecord] = []
            number, last = 0, False
            while not last:
                page = await client.record_page(
                    Collection.CONTACTS, page=number, page_size=MAX_PAGE_SIZE
                )
                all_contacts.extend(page.records)
                number, last = number + 1, page.last
            held[:] = [len(all_entries), len(all_contacts)]

        results: dict[str, Any] = {}
        for name, way in (("import", streamed), ("baseline", in_memory)):
            await _clear_requests(dinero)
            started = time.perf_counter()
            await way()
            results[f"{name}_seconds"] = time.perf_counter() - started
            results[f"{name}_used"] = await _requests(dinero)
            tracemalloc.start()
            await way()
            results[f"{name}_peak"] = tracemalloc.get_traced_memory()[1] / MIB
            tracemalloc.stop()
        sources = (await api.get(f"/v1/companies/{COMPANY}/data-sources", headers=_auth())).json()
        results["source"] = sources["items"][0]
        results["held"] = tuple(held)
    return results


def report(
    result: dict[str, Any], entries: int, contacts: int, settings: importer.ImportSettings
) -> bool:
    source = result["source"]
    progress = source["progress"]
    stored_entries = progress["entries"]["records"]
    stored_contacts = progress["contacts"]["records"]
    used = sum(result["import_used"].values())
    naive = sum(result["baseline_used"].values())
    minimum = -(-stored_contacts // PAGE) + 1
    seconds, baseline_seconds = result["import_seconds"], result["baseline_seconds"]
    peak, baseline_peak = result["import_peak"], result["baseline_peak"]
    print(f"seeded: {entries:,} entries and {contacts:,} contacts (plus the demo organization's)")
    print(f"stored: {stored_entries:,} entries, {stored_contacts:,} contacts ({source['status']})")
    print(f"  the baseline read {result['held'][0]:,} entries, {result['held'][1]:,} contacts")
    print(
        f"import settings: pages of {settings.page_size}, entries windows aiming at "
        f"{settings.entries_per_request:,} entries"
    )
    print()
    print(f"{'':34}{'import (streamed)':>20}{'baseline (in memory)':>24}")
    print(f"{'Dinero requests':34}{used:>20}{naive:>24}")
    for path in sorted(set(result["import_used"]) | set(result["baseline_used"])):
        ours = result["import_used"].get(path, 0)
        theirs = result["baseline_used"].get(path, 0)
        print(f"{'  ' + path:34}{ours:>20}{theirs:>24}")
    print(f"{'  minimum possible':34}{minimum:>20}")
    print(f"{'wall time (s)':34}{seconds:>20.2f}{baseline_seconds:>24.2f}")
    print(f"{'peak traced memory (MiB)':34}{peak:>20.1f}{baseline_peak:>24.1f}")
    print()
    print(f"requests / minimum:             {used / minimum:.2f}")
    print(f"peak memory / baseline's:       {peak / baseline_peak:.2f}")
    print(f"records stored per second:      {(stored_entries + stored_contacts) / seconds:,.0f}")
    print(
        "Dinero's budget (100 requests/min; data sources use at most half by default, only when "
        f"exports leave it idle): at least {used / 50 * 60:.0f} s for these {used} requests"
    )
    met = (
        stored_entries >= entries
        and stored_contacts >= contacts
        and peak / baseline_peak <= TARGET_MEMORY_RATIO
        and used / minimum <= TARGET_REQUESTS_RATIO
    )
    print(
        f"targets: every record stored once, peak memory / baseline's <= {TARGET_MEMORY_RATIO}, "
        f"requests / minimum <= {TARGET_REQUESTS_RATIO}: {'target met' if met else 'TARGET MISSED'}"
    )
    return bool(met)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=90_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument(
        "--entries-per-request",
        type=int,
        default=importer.DEFAULTS.entries_per_request,
        help="the import's target size of one entries answer",
    )
    parser.add_argument("--serve-sandbox", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sandbox is not None:
        serve_sandbox(args.serve_sandbox, args.entries, args.contacts)
        return
    configure_logging("WARNING", "console")
    with (
        temp_database("bench-datasource-") as db,
        _sandbox_process(args.entries, args.contacts) as dinero,
    ):
        url = db.url
        settings = replace(importer.DEFAULTS, entries_per_request=args.entries_per_request)
        result = asyncio.run(run(url, dinero, settings))
    raise SystemExit(0 if report(result, args.entries, args.contacts, settings) else 1)


if __name__ == "__main__":
    main()
