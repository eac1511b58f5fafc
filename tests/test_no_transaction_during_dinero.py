"""While a request waits for Dinero, it holds no database transaction open.

Against the sandbox (slowed down), on a committed database: while each request that calls
Dinero in-request is waiting for Dinero's answer, another connection looks at
`pg_stat_activity`; no backend of the app's database may sit `idle in transaction` (holding row
locks and a pooled connection) for longer than a moment.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import bearer
from tests.sandboxed import (
    PRO_ORG,
    Service,
    connect_with_api_key,
    put_api_key_connection,
    service_fixture,
    shared,
    synced_company,
)

LATENCY_MS = 1500
HELD = "0.5 seconds"
"""Longer than any pause between a request's own statements, far shorter than Dinero's wait."""

service = service_fixture()

IDLE_IN_TRANSACTION = text(
    """
    SELECT pid, left(query, 120) AS query
    FROM pg_stat_activity
    WHERE datname = current_database()
      AND pid <> pg_backend_pid()
      AND state LIKE 'idle in transaction%'
      AND clock_timestamp() - state_change > CAST(:held AS interval)
    """
)


async def held_transactions(
    service: Service, request: Callable[[], Awaitable[httpx.Response]]
) -> tuple[httpx.Response, list[str]]:
    """Send the request with every organization call slowed down; return its answer and every
    backend seen idle in a transaction for longer than HELD while it ran."""
    service.sandbox.add_fault(kind="latency", path=f"/v1/{PRO_ORG}/*", latency_ms=LATENCY_MS)
    seen: list[str] = []
    started = time.monotonic()
    pending = asyncio.ensure_future(request())
    async with shared(service).engine.connect() as conn:
        while not pending.done():
            rows = (await conn.execute(IDLE_IN_TRANSACTION, {"held": HELD})).all()
            await conn.commit()
            seen += [f"{row.pid}: {row.query}" for row in rows]
            await asyncio.sleep(0.05)
    response = await pending
    # The request really waited for Dinero (the window above was looked at).
    assert time.monotonic() - started >= LATENCY_MS / 1000
    return response, seen


@pytest.fixture
async def company(service: Service) -> str:
    return await synced_company(service)


async def test_creating_a_data_source(service: Service, company: str) -> None:
    async def request() -> httpx.Response:
        return await service.client.post(
            f"/v1/companies/{company}/data-sources",
            json={
                "data_types": ["entries"],
                "accounting_year": {"start": "2026-01-01", "end": "2026-12-31"},
            },
            headers=bearer(company),
        )

    response, held = await held_transactions(service, request)

    assert response.status_code == 201, response.text
    assert held == []


async def test_creating_a_deposit_account(service: Service, company: str) -> None:
    async def request() -> httpx.Response:
        return await service.client.post(
            f"/v1/companies/{company}/dinero/deposit-accounts",
            json={"name": "Pleo", "use_as": "deposit"},
            headers=bearer(company),
        )

    response, held = await held_transactions(service, request)

    assert response.status_code == 201, response.text
    assert held == []


async def test_connecting_with_an_api_key(service: Service) -> None:
    company = f"co-{uuid.uuid4().hex[:10]}"  # its first request: the company row is new

    response, held = await held_transactions(
        service, functools.partial(put_api_key_connection, service.client, company)
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "connected"
    assert held == []


async def test_reconnecting_with_an_api_key(service: Service, company: str) -> None:
    """The company has a connection row, which connecting reads (and later writes)."""
    await connect_with_api_key(service.client, company)

    response, held = await held_transactions(
        service, functools.partial(put_api_key_connection, service.client, company)
    )

    assert response.status_code == 200, response.text
    assert held == []
