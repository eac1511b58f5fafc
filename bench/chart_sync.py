"""Chart sync: 2,000 accounts and 40 VAT types against the stand-in Dinero with 50 ms latency.

    ./dev run python -m bench.chart_sync [--accounts 2000] [--vat-types 40] [--latency-ms 50]

A fresh embedded PostgreSQL is migrated to head; the service talks to an in-process sandbox
(ASGI transport) that adds the latency to every request. A company is connected with the demo
API key, then the sync runs twice: the first writes the whole chart, the second finds nothing
changed. For each it prints the Dinero requests used (the minimum is one per list: five), the
wall time, and the ratio of that time to the latency floor (the lists are read concurrently, so
the floor is one round trip). Target: first sync under 1 s; second sync writes no chart row.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
from dinero_sandbox import Sandbox, SandboxConfig, create_sandbox_app
from fastapi import FastAPI
from pydantic import SecretStr

from app.auth import issue_token
from app.chart.sync import CHART_REQUESTS, sync_chart
from app.main import create_app
from app.runtime import resolve
from bench.common import JWT_SECRET, service_settings, temp_database

ORG = 100001
API_KEY = "sandbox-api-key-100001"
DINERO = "http://dinero.bench"
COMPANY = "bench-co"


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


async def _run(accounts: int, vat_types: int, latency_ms: int) -> int:
    with temp_database("bench-chart-") as db:
        async with _service(db.url, latency_ms) as (app, sandbox):
            _grow_chart(sandbox, accounts, vat_types)
            services = app.state.services
            floor = latency_ms / 1000
            failed = 0
            for label in ("first sync", "second sync (nothing changed)"):
                sandbox.clear_requests()
                started = time.perf_counter()
                outcome = await sync_chart(services, COMPANY)
                elapsed = time.perf_counter() - started
                requests = len(sandbox.requests)
                print(
                    f"{label:32s} requests={requests} (minimum {CHART_REQUESTS})  "
                    f"time={elapsed:.3f}s  ratio_to_latency_floor={elapsed / floor:.1f}  "
                    f"chart_rows_written={outcome.changes}  status={outcome.status}"
                )
                if outcome.status != "succeeded" or requests != CHART_REQUESTS:
                    failed = 1
                if label == "first sync" and elapsed >= 1.0:
                    failed = 1
                if label != "first sync" and outcome.changes != 0:
                    failed = 1
            print("target met" if not failed else "TARGET MISSED")
            return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--vat-types", type=int, default=40)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(_run(args.accounts, args.vat_types, args.latency_ms)))


if __name__ == "__main__":
    main()
