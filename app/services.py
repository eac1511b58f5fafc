"""The shared resources of one process: database, outbound HTTP, the Dinero gateway.

Built once by the web app's lifespan or by a standalone worker (`started`). Routes reach them as
`app.state.services`; background jobs are handed them by the worker that runs them: the worker
is started with `additional_context=worker_context(services)`, and every task that needs them is
declared with `pass_context=True` and reads them with `of(context)`. Nothing keeps them in a
module global.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Final

import httpx
from procrastinate import JobContext
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
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
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


_CONTEXT_KEY: Final = "services"
"""Where a worker's additional context holds the process's services."""


def worker_context(services: Services) -> dict[str, Any]:
    """A worker's `additional_context`: the services its jobs run with (read by `of`)."""
    return {_CONTEXT_KEY: services}


def of(context: JobContext) -> Services:
    """The services of the worker running this job (its task has `pass_context=True`).

    A worker started without `worker_context(...)` is a bug, and says so.
    """
    services = context.additional_context.get(_CONTEXT_KEY)
    if not isinstance(services, Services):
        raise RuntimeError(
            "the worker was started without the services: "
            "run_worker_async(additional_context=services.worker_context(...))"
        )
    return services


def freeze_startup_heap() -> None:
    """Once per process, after the first start-up: move every object alive now (modules, the
    app, the services, pools and clients: ~200,000 in the chart benchmark) out of the garbage
    collector's reach.

    A full collection walked all of them each time (~140 ms on the development machine, the
    event loop stopped: a chart sync or a webhook that met one waited for it); now it walks
    only what was made since. Later start-ups in the same process (tests) do nothing.
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


@contextlib.asynccontextmanager
async def started(
    runtime: Runtime,
    *,
    engine: AsyncEngine | None = None,
    dinero_transport: httpx.AsyncBaseTransport | None = None,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> AsyncIterator[Services]:
    """Create the services, and release them on exit."""
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
    freeze_startup_heap()
    try:
        yield services
    finally:
        if services._receipt_http is not None:
            await services._receipt_http.aclose()
        await http.aclose()
        if own_engine:
            await db_engine.dispose()
