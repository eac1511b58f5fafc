"""The shared resources of one process: database, outbound HTTP, the Dinero gateway.

Built once by the web app's lifespan or by a standalone worker, and installed so background jobs
(which procrastinate calls with plain arguments) reach the same objects through `current()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import registry
from app.config import Settings
from app.connection.gateway import DineroGateway, PostgresPacer
from app.crypto import TokenCipher
from app.db import create_engine, create_sessionmaker
from app.runtime import Runtime


def create_http_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The one outbound HTTP client: explicit timeouts and pool limits."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "dinero-bridge/0.1"},
        follow_redirects=False,
    )


@dataclass
class Services:
    runtime: Runtime
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    dinero: DineroGateway

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


_current: Services | None = None


def current() -> Services:
    """The process's services; a job running outside a started app or worker is a bug."""
    if _current is None:
        raise RuntimeError("services are not started: run jobs inside `serve` or `worker`")
    return _current


def install(services: Services | None) -> None:
    global _current  # one per process, set at start-up
    _current = services


@contextlib.asynccontextmanager
async def started(
    runtime: Runtime,
    *,
    engine: AsyncEngine | None = None,
    dinero_transport: httpx.AsyncBaseTransport | None = None,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> AsyncIterator[Services]:
    """Create the services, install them for jobs, and release them on exit."""
    registry.load()
    own_engine = engine is None
    db_engine = engine or create_engine(runtime.database_url.get_secret_value())
    http = create_http_client(dinero_transport)
    maker = sessionmaker or create_sessionmaker(db_engine)
    gateway = DineroGateway(
        http=http,
        endpoints=runtime.dinero,
        cipher=TokenCipher(runtime.encryption_keys),
        sessionmaker=maker,
        pacer=PostgresPacer(
            db_engine,
            runtime.settings.dinero_rate_limit_per_minute,
            follow_up_share=runtime.settings.dinero_follow_up_share,
            data_source_share=runtime.settings.dinero_data_source_share,
        ),
    )
    services = Services(
        runtime=runtime, engine=db_engine, sessionmaker=maker, http=http, dinero=gateway
    )
    previous = _current
    install(services)
    try:
        yield services
    finally:
        install(previous)
        await http.aclose()
        if own_engine:
            await db_engine.dispose()
