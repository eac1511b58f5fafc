"""The service against the stand-in Dinero playing the accountant, and a stand-in platform that
receives the outgoing webhooks (and can be down).

Reuses the export tests' helpers (tests/exports/test_runner.py): items stored as intake stores
them, the runner run until everything settles. Each test starts from an empty database (all
companies deleted), so outbox counts and request budgets are the test's own.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from dinero_sandbox import create_sandbox_app
from pydantic import SecretStr
from sqlalchemy import select, text
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.exports.models import ExportItem
from app.follow_up import cycle
from app.follow_up.result import CycleResult
from app.main import create_app
from app.outbox import delivery
from app.outbox.delivery import DeliveryResult
from app.outbox.models import OutboxEvent
from app.services import Services
from tests import stored
from tests.conftest import make_runtime, running
from tests.exports import test_runner as export_helpers
from tests.sandboxed import Service, connected_company, read_item, sandbox_settings

PLATFORM = "http://platform.test"
PLATFORM_URL = f"{PLATFORM}/dinero-bridge/events"
PLATFORM_SECRET = "whsec_cGxhdGZvcm0tc2lnbmluZy1zZWNyZXQtMTIzNDU2Nzg="


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def verify(self) -> None:
        Webhook(PLATFORM_SECRET).verify(self.body, self.headers, json_parse=False)


@dataclass
class Platform:
    """The expense platform's webhook endpoint: records every attempt, answers `status`."""

    status: int = 204
    attempts: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    """webhook-ids answered 422 (the platform refuses that one event)."""

    @property
    def accepted(self) -> list[Received]:
        """Attempts answered 2xx (the platform took these)."""
        return [r for r in self.attempts if r.headers.get("x-answered", "").startswith("2")]

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            headers = dict(request.headers)
            status = 422 if headers.get("webhook-id") in self.refuse else self.status
            headers["x-answered"] = str(status)
            self.attempts.append(Received(headers=headers, body=await request.body()))
            return Response(status_code=status)

        return Starlette(routes=[Route("/dinero-bridge/events", receive, methods=["POST"])])


class ByHost(httpx.AsyncBaseTransport):
    """Routes each request to the in-process app serving its host (no network)."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.routes[request.url.host].handle_async_request(request)


@dataclass
class World:
    service: Service
    platform: Platform
    hosts: ByHost
    """Where the service's requests go, by host: `hosts.routes["dinero.test"]` can be swapped
    for another stand-in (e.g. a respx double) once the sandbox has set the company up."""

    @property
    def services(self) -> Services:
        shared: Services = self.service.app.state.services
        return shared


@pytest.fixture(scope="module")
def follow_db(make_migrated_database: Callable[[], str]) -> str:
    url = make_migrated_database()
    return url


@contextlib.asynccontextmanager
async def world(database_url: str, **settings: Any) -> AsyncIterator[World]:
    platform = Platform()
    dinero = create_sandbox_app()
    runtime = make_runtime(
        database_url,
        **sandbox_settings(
            platform_webhook_url=PLATFORM_URL,
            platform_webhook_secret=SecretStr(PLATFORM_SECRET),
            **settings,
        ),
    )
    transport = ByHost(
        {
            "dinero.test": httpx.ASGITransport(app=dinero),
            "platform.test": httpx.ASGITransport(app=platform.app()),
        }
    )
    app = create_app(runtime, dinero_transport=transport, mount_sandbox=False, open_job_queue=True)
    async with running(app) as client:
        shared: Services = app.state.services
        async with shared.sessionmaker() as session, session.begin():
            for table in ("companies", "dinero_request_slots", "dinero_rate_budgets"):
                await session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
            await session.execute(text("DELETE FROM procrastinate_jobs WHERE status = 'todo'"))
        yield World(
            service=Service(
                app=app, client=client, sandbox=dinero.state.sandbox, sandbox_app=dinero
            ),
            platform=platform,
            hosts=transport,
        )


@pytest.fixture
async def w(follow_db: str) -> AsyncIterator[World]:
    async with world(follow_db, dinero_rate_limit_per_minute=10_000) as built:
        yield built


@pytest.fixture
async def company(w: World) -> str:
    return await connected_company(w.service)


# --- helpers ---------------------------------------------------------------------------------

add_item = export_helpers.add_item
card_expense = export_helpers.card_expense
line = stored.line
jpeg = export_helpers.jpeg
item_row = export_helpers.item_row
settle = export_helpers.settle


async def follow(
    w: World, company: str, *, checkpoint: cycle.Checkpoint | None = None
) -> CycleResult:
    """One follow-up cycle, as the job runs it (`checkpoint`: where a test kills it)."""
    return await cycle.run_company(w.services, company, checkpoint=checkpoint)


async def deliver(w: World, *, checkpoint: delivery.Checkpoint | None = None) -> DeliveryResult:
    """One delivery pass, as the job runs it (`checkpoint`: where a test kills it)."""
    return await delivery.deliver_pending(w.services, checkpoint=checkpoint)


async def fast_forward_outbox(w: World) -> None:
    """As if every backoff had passed."""
    async with w.services.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE outbox_events SET next_attempt_at = now() WHERE delivered_at IS NULL")
        )


async def outbox(w: World, item_id: uuid.UUID | None = None) -> list[OutboxEvent]:
    async with w.services.sessionmaker() as session:
        query = select(OutboxEvent).order_by(OutboxEvent.seq)
        if item_id is not None:
            query = query.where(OutboxEvent.item_id == item_id)
        return list((await session.execute(query)).scalars())


async def item_api(w: World, company: str, item_id: uuid.UUID) -> dict[str, Any]:
    return await read_item(w.service, company, item_id)


async def draft_of(w: World, item_id: uuid.UUID) -> ExportItem:
    row = await item_row(w.service, item_id)
    assert row.dinero_guid is not None
    return row


def rows_touched(w: World, method: str, pattern: str) -> int:
    return len(w.service.sandbox.find_requests(method, pattern))
