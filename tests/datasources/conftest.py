"""The service wired to an in-process stand-in Dinero (every exchange checked against Dinero's
contract), on a committed database of this package's own, with the real job queue: requests
enqueue runs, and a procrastinate worker runs them in-process (`world.run_jobs()`).

Each test gets a fresh sandbox (wall-clock time, like the database) and a company of its own,
connected with the sandbox's API key; the test's companies (and so their data sources and
records) and any jobs it left waiting are removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from dinero_sandbox import (
    API_KEY,
    Sandbox,
    SandboxConfig,
    SystemClock,
    create_sandbox_app,
)
from dinero_sandbox.reads import primo_entries
from dinero_sandbox.state import Entry, Record
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import jobs, services
from app.backoff import Backoff
from app.datasources import importer, tasks
from app.datasources.types import DataType
from app.db import create_engine, libpq_url
from app.main import create_app
from tests.conftest import bearer, make_runtime, running
from tests.contract import ContractTransport
from tests.sandboxed import sandbox_settings

DINERO = "http://dinero.test"
ORG = 100001
PAGE = 4
"""Page size in these tests: every paged type spans several pages of the demo data."""

TEST_SETTINGS = importer.ImportSettings(
    page_size=PAGE,
    entries_per_request=25,
    first_entries_window_days=31,
    overlap=timedelta(seconds=1),
    max_wait_seconds=5.0,
    failure_backoff=Backoff(first=timedelta(seconds=60), cap=timedelta(seconds=60)),
)

# The service's own pacing would space calls 0.6 s apart; Dinero's limit is not under test.
SERVICE_SETTINGS: dict[str, Any] = sandbox_settings(dinero_rate_limit_per_minute=10_000)

ALL_TYPES = [t.value for t in DataType]  # every data type
YEAR_2026 = {"start": "2026-01-01", "end": "2026-12-31"}


class Gate(httpx.AsyncBaseTransport):
    """Passes requests through; one matching `hold` waits until released (or cancelled)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.hold: Callable[[httpx.Request], bool] | None = None
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.hold is not None and self.hold(request):
            self.hold = None
            self.held.set()
            await self.release.wait()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class World:
    sandbox: Sandbox
    service: FastAPI
    api: httpx.AsyncClient
    engine: AsyncEngine
    gate: Gate
    company: str
    companies: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"/v1/companies/{self.company}/data-sources"

    def headers(self, role: str = "admin") -> dict[str, str]:
        return bearer(self.company, role)  # type: ignore[arg-type]

    async def create(self, **body: Any) -> httpx.Response:
        return await self.api.post(self.base, json=body, headers=self.headers())

    async def created(self, **body: Any) -> dict[str, Any]:
        response = await self.create(**body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def get(self, data_source_id: str) -> dict[str, Any]:
        response = await self.api.get(f"{self.base}/{data_source_id}", headers=self.headers())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def refresh(self, data_source_id: str, **body: Any) -> httpx.Response:
        return await self.api.post(
            f"{self.base}/{data_source_id}/refresh", json=body or None, headers=self.headers()
        )

    async def records(
        self, data_source_id: str, accept: str | None = None, **params: Any
    ) -> httpx.Response:
        headers = self.headers("member")
        if accept is not None:
            headers["Accept"] = accept
        return await self.api.get(
            f"{self.base}/{data_source_id}/records", params=params, headers=headers
        )

    async def all_records(self, data_source_id: str, **params: Any) -> list[dict[str, Any]]:
        """Every record, following cursors page by page."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": 50}
            if cursor:
                query["cursor"] = cursor
            response = await self.records(data_source_id, **query)
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return items

    async def run_jobs(self, **options: Any) -> None:
        """Run every data-source job that is due, like a worker would, then return."""
        await jobs.job_app.run_worker_async(
            additional_context=services.worker_context(self.service.state.services),
            queues=[tasks.QUEUE],
            wait=False,
            install_signal_handlers=False,
            listen_notify=False,
            **options,
        )

    async def queued(self, data_source_id: str) -> list[dict[str, Any]]:
        """Jobs waiting for this data source (status todo)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT args, scheduled_at FROM procrastinate_jobs "
                    "WHERE queueing_lock = :lock AND status = 'todo'"
                ),
                {"lock": tasks.queueing_lock(data_source_id)},
            )
            return [{"args": r.args, "scheduled_at": r.scheduled_at} for r in rows]

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        async with self.engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []

    def requests(self, path: str) -> list[Any]:
        return self.sandbox.find_requests("GET", path, organization_id=ORG)


@pytest.fixture(scope="package")
async def committed(
    make_migrated_database: Callable[[], str],
) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A database of this package's own, where requests and jobs really commit."""
    url = make_migrated_database()
    engine = create_engine(url)
    pool = jobs.create_job_pool(libpq_url(url))
    await pool.open(wait=True)
    await jobs.job_app.open_async(pool=pool)
    try:
        yield url, engine
    finally:
        await jobs.close_jobs(pool)
        await engine.dispose()


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> importer.ImportSettings:
    monkeypatch.setattr(importer, "DEFAULTS", TEST_SETTINGS)
    return TEST_SETTINGS


@contextlib.asynccontextmanager
async def world_for(
    url: str, engine: AsyncEngine, *, sandbox_config: SandboxConfig | None = None
) -> AsyncIterator[World]:
    config = sandbox_config or SandboxConfig(clock=SystemClock(), rate_limit_per_minute=0)
    sandbox_app = create_sandbox_app(config)
    gate = Gate(httpx.ASGITransport(app=sandbox_app))
    service = create_app(
        make_runtime(url, **SERVICE_SETTINGS),
        engine=engine,
        open_job_queue=False,
        mount_sandbox=False,
        dinero_transport=ContractTransport(gate),
    )
    company = f"co-{uuid.uuid4().hex[:10]}"
    async with running(service) as api:
        world = World(
            sandbox=sandbox_app.state.sandbox,
            service=service,
            api=api,
            engine=engine,
            gate=gate,
            company=company,
            companies=[company],
        )
        connected = await api.put(
            f"/v1/companies/{company}/dinero/connection",
            json={"organization_id": ORG, "method": "api_key", "api_key": API_KEY},
            headers=bearer(company),
        )
        assert connected.status_code == 200, connected.text
        world.sandbox.clear_requests()  # tests look at what the data sources asked for
        try:
            yield world
        finally:
            gate.release.set()
            await world.sql(
                "DELETE FROM procrastinate_jobs WHERE queue_name = :q AND status = 'todo'",
                q=tasks.QUEUE,
            )
            await world.sql("DELETE FROM companies WHERE id = ANY(:ids)", ids=world.companies)


@pytest.fixture
async def world(
    committed: tuple[str, AsyncEngine], settings: importer.ImportSettings
) -> AsyncIterator[World]:
    url, engine = committed
    async with world_for(url, engine) as w:
        yield w


# --- what Dinero has ----------------------------------------------------------------------------


def live(sandbox: Sandbox, *kinds: str) -> set[str]:
    """Guids of the records Dinero lists (not deleted) of these sandbox kinds."""
    return {
        r.guid
        for kind in kinds
        for r in sandbox.records(ORG, kind, include_deleted=False)  # type: ignore[arg-type]
    }


def year_entries(sandbox: Sandbox, year: int) -> set[str]:
    """EntryGuids of what Dinero answers for the whole year (its entries, plus the primo)."""
    books = sandbox.org(ORG)
    accounting_year = books.years[year]
    normal = {
        e.guid
        for e in books.entries
        if e.type == "Normal" and accounting_year.contains(e.entry_date)
    }
    return normal | {e.guid for e in primo_entries(books, accounting_year)}


def backdate(record: Record, moment: datetime) -> None:
    """Pretend a sandbox record was created and last changed at `moment`."""
    record.created_at = moment
    record.updated_at = moment


def book_entry(
    sandbox: Sandbox, day: date, account: int, amount: str, *, text_: str = "Test"
) -> Entry:
    """An entry booked a second ago (as if a voucher was approved), with its balancing entry.

    A second ago: Dinero's change log works in whole seconds, so a refresh starting within the
    same second would, rightly, leave it to the next refresh.
    """
    books = sandbox.org(ORG)
    voucher = str(uuid.uuid4())
    now = datetime.now(UTC) - timedelta(seconds=1)
    made = []
    for number, value in ((account, Decimal(amount)), (55000, -Decimal(amount))):
        entry = Entry(
            guid=str(uuid.uuid4()),
            account_number=number,
            account_name=books.account_name(number),
            entry_date=day,
            amount=value,
            voucher_number=9000 + len(books.entries),
            voucher_guid=voucher,
            voucher_type="manuel",
            created_at=now,
            description=text_,
        )
        books.entries.append(entry)
        made.append(entry)
    return made[0]
