"""The shared resources of one process: database, outbound HTTP, the Dinero gateway.

Built once by the web app's lifespan or by a standalone worker, and installed so background jobs
(which procrastinate calls with plain arguments) reach the same objects through `current()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy

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


def create_receipt_http_client(
    *, proxy: str | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The client receipts are downloaded with, apart from the one that talks to Dinero.

    Receipt hosts are third parties: nothing one of them sets may reach another, or Dinero. So
    no cookie is ever kept (a jar whose policy allows no domain), no proxy or certificate
    setting is taken from the environment (`trust_env=False`; RECEIPT_PROXY_URL only), and no
    redirect is followed by the client (the fetcher checks every hop against the allow-list).
    """
    return httpx.AsyncClient(
        transport=transport,
        proxy=proxy,
        trust_env=False,
        # The jar itself (httpx would copy a Cookies into a default jar, dropping the policy).
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        timeout=httpx.Timeout(connect=5.0, read=15.0, write=15.0, pool=10.0),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=5),
        headers={"User-Agent": "dinero-bridge/0.1 (receipt download)"},
        follow_redirects=False,
    )


@dataclass
class Services:
    runtime: Runtime
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    """Dinero (and the platform's webhooks, the JWKS)."""
    dinero: DineroGateway
    _receipt_http: httpx.AsyncClient | None = field(default=None, repr=False)

    @property
    def receipt_http(self) -> httpx.AsyncClient:
        """Receipt downloads only (`create_receipt_http_client`), made on first use."""
        if self._receipt_http is None:
            self._receipt_http = create_receipt_http_client(
                proxy=self.runtime.settings.receipt_proxy_url
            )
        return self._receipt_http

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
        runtime=runtime,
        engine=db_engine,
        sessionmaker=maker,
        http=http,
        dinero=gateway,
    )
    previous = _current
    install(services)
    try:
        yield services
    finally:
        install(previous)
        if services._receipt_http is not None:
            await services._receipt_http.aclose()
        await http.aclose()
        if own_engine:
            await db_engine.dispose()
