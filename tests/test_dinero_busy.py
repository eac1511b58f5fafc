"""A request that must call Dinero while the organization's budget is used up (by an export,
say) answers at once: 503 `dinero_busy` with `Retry-After`, and Dinero hears nothing of it.

Against the sandbox, with the shared PostgreSQL pacer: the organization's window is filled with
export reservations, as a running export leaves it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.chart.sync import sync_chart
from app.dinero.pacing import INTERACTIVE_MAX_WAIT_SECONDS, PacerBusy
from app.errors import PROBLEM_JSON
from tests.conftest import bearer
from tests.sandboxed import (
    PRO_ORG,
    Service,
    put_api_key_connection,
    service_fixture,
    shared,
    synced_company,
)
from tests.test_connection_sandbox import (
    World,
    approve_in_dinero,
    dinero_world,
    outcome,
    start_oauth,
)

LIMIT = 20

service = service_fixture(dinero_rate_limit_per_minute=LIMIT)


@pytest.fixture
async def company(service: Service) -> str:
    return await synced_company(service)


FILL = text(
    "INSERT INTO dinero_request_slots (organization_id, slot_at, lane) "
    "SELECT :org, clock_timestamp(), 'export' FROM generate_series(1, :n)"
)


async def fill_budget(service: Service) -> None:
    """The organization's whole minute reserved by an export, just now."""
    async with shared(service).engine.begin() as conn:
        await conn.execute(FILL, {"org": PRO_ORG, "n": LIMIT})


def assert_busy(response: httpx.Response, started: float) -> dict[str, Any]:
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["code"] == "dinero_busy"
    # The window frees ~60.5 s after the export's reservations: that, in whole seconds.
    retry_after = int(response.headers["Retry-After"])
    assert 50 <= retry_after <= 61
    assert problem["retry_after"] == retry_after
    assert f"{retry_after} s" in problem["detail"]
    assert elapsed < 5, f"answered after {elapsed:.1f} s"
    return problem


async def test_creating_a_deposit_account_answers_busy_at_once(
    service: Service, company: str
) -> None:
    await fill_budget(service)
    service.sandbox.clear_requests()

    started = time.monotonic()
    response = await service.client.post(
        f"/v1/companies/{company}/dinero/deposit-accounts",
        json={"name": "Pleo"},
        headers=bearer(company),
    )

    assert_busy(response, started)
    assert service.sandbox.requests == []  # Dinero heard nothing
    assert "Pleo" not in {a.name for a in service.sandbox.org(PRO_ORG).deposit_accounts()}


SLOTS_AGO = text(
    "INSERT INTO dinero_request_slots (organization_id, slot_at, lane) "
    "SELECT :org, clock_timestamp() - make_interval(secs => :ago), 'export' "
    "FROM generate_series(1, :n)"
)


async def test_a_request_making_several_calls_waits_that_long_in_all_not_each(
    service: Service, company: str
) -> None:
    """Creating a deposit account makes eight calls. Here the create waits ~6 s for a slot and
    the sync's reads ~6 s more: each within the 10 s, together past it, so the request answers
    busy once the account is created instead of holding the admin ~12 s."""
    async with shared(service).engine.begin() as conn:
        # The connect and first sync's own reservations forgotten: only these count.
        await conn.execute(
            text("DELETE FROM dinero_request_slots WHERE organization_id = :org"), {"org": PRO_ORG}
        )
        await conn.execute(SLOTS_AGO, {"org": PRO_ORG, "n": 1, "ago": 54.5})  # free in ~6 s
        await conn.execute(SLOTS_AGO, {"org": PRO_ORG, "n": LIMIT - 3, "ago": 48.5})  # ~12 s
    service.sandbox.clear_requests()

    response = await service.client.post(
        f"/v1/companies/{company}/dinero/deposit-accounts",
        json={"name": "Pleo"},
        headers=bearer(company),
    )

    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["code"] == "dinero_busy"
    assert problem["detail"].startswith("The account was created in Dinero")
    assert 4 <= int(response.headers["Retry-After"]) <= 8  # the sync's reads: ~6 s more
    assert "Pleo" in {a.name for a in service.sandbox.org(PRO_ORG).deposit_accounts()}
    # The two reads and the create went out; none of the sync's five reads did.
    sent = [f"{r.method} {r.path.split('/')[-1]}" for r in service.sandbox.requests]
    assert sorted(sent) == ["GET deposit", "GET entry", "POST deposit"], sent


async def test_creating_a_data_source_answers_busy_at_once(service: Service, company: str) -> None:
    await fill_budget(service)
    service.sandbox.clear_requests()

    started = time.monotonic()
    response = await service.client.post(
        f"/v1/companies/{company}/data-sources",
        json={
            "data_types": ["entries"],
            "accounting_year": {"start": "2026-01-01", "end": "2026-12-31"},
        },
        headers=bearer(company),
    )

    assert_busy(response, started)
    assert service.sandbox.requests == []
    listed = await service.client.get(
        f"/v1/companies/{company}/data-sources", headers=bearer(company)
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []


async def test_connecting_with_an_api_key_answers_busy_at_once(service: Service) -> None:
    await fill_budget(service)
    service.sandbox.clear_requests()
    company = "co-busy-connect"

    started = time.monotonic()
    response = await put_api_key_connection(service.client, company)

    assert_busy(response, started)
    # The key was exchanged and the login's organizations listed (neither counts against the
    # organization's budget), but nothing was asked of the organization itself.
    assert [r.path for r in service.sandbox.requests if f"/{PRO_ORG}/" in r.path] == []
    connection = await service.client.get(
        f"/v1/companies/{company}/dinero/connection", headers=bearer(company)
    )
    assert connection.json()["status"] == "not_connected"


async def test_a_bounded_chart_sync_gives_up_and_leaves_the_sync_state_as_it_was(
    service: Service, company: str
) -> None:
    path = f"/v1/companies/{company}/dinero/sync"
    before = (await service.client.get(path, headers=bearer(company))).json()
    assert before["status"] == "succeeded"
    await fill_budget(service)
    service.sandbox.clear_requests()

    started = time.monotonic()
    with pytest.raises(PacerBusy):
        await sync_chart(shared(service), company, max_wait=INTERACTIVE_MAX_WAIT_SECONDS)

    assert time.monotonic() - started < 5
    assert service.sandbox.requests == []
    assert (await service.client.get(path, headers=bearer(company))).json() == before


@pytest.fixture
async def world(committed: tuple[str, AsyncEngine]) -> AsyncIterator[World]:
    url, engine = committed
    async with dinero_world(url, engine, dinero_rate_limit_per_minute=LIMIT) as w:
        yield w


async def test_an_oauth_approval_while_busy_is_told_on_the_callback_page(world: World) -> None:
    company = world.new_company()
    url = await start_oauth(world, company)
    async with world.engine.begin() as conn:
        await conn.execute(FILL, {"org": PRO_ORG, "n": LIMIT})

    started = time.monotonic()
    page = await approve_in_dinero(world, url)

    assert time.monotonic() - started < 5
    assert page.status_code == 503, page.text
    assert outcome(page) == "dinero_busy"
    assert 50 <= int(page.headers["Retry-After"]) <= 61
    assert [e.path for e in world.wire.exchanges if f"/{PRO_ORG}/" in e.path] == []
    connection = await world.connection(company)
    assert connection["status"] != "connected"
