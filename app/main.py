"""create_app(): routers, error handlers, middleware, and the lifespan owning shared resources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app import jobs
from app.auth import TokenVerifier
from app.companies.router import router as companies_router
from app.connection.gateway import DineroGateway, PostgresPacer
from app.connection.router import router as connection_router
from app.crypto import TokenCipher
from app.db import create_engine, create_sessionmaker, libpq_url
from app.errors import PROBLEM_RESPONSES, Problem, install_error_handlers
from app.middleware import RequestContextMiddleware
from app.ops.router import router as ops_router
from app.runtime import SANDBOX_PREFIX, Runtime

log = structlog.get_logger(__name__)

DESCRIPTION = (
    "Connects each company of the expense platform to its books in **Dinero**: expenses become "
    "draft purchase vouchers awaiting *Godkend*, reimbursements and wallet top-ups are booked in "
    "the *Kassekladde*, and Dinero's data can be read back by data type. Every error is "
    "`application/problem+json` with a stable `code`."
)


def create_http_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The one outbound HTTP client: explicit timeouts and pool limits."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "dinero-bridge/0.1"},
        follow_redirects=False,
    )


def _document_problem_schema(app: FastAPI) -> None:
    """Put the Problem schema into the OpenAPI components (routes refer to it by $ref)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = Problem.model_json_schema()
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    runtime: Runtime,
    *,
    engine: AsyncEngine | None = None,
    run_worker: bool = False,
    open_job_queue: bool = True,
    mount_sandbox: bool | None = None,
    dinero_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the service. The engine may be handed in (tests share one across apps)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        db_engine = engine or create_engine(runtime.database_url.get_secret_value())
        http = create_http_client(dinero_transport)
        app.state.engine = db_engine
        app.state.sessionmaker = create_sessionmaker(db_engine)
        app.state.dinero = DineroGateway(
            http=http,
            endpoints=runtime.dinero,
            cipher=TokenCipher(runtime.encryption_keys),
            sessionmaker=app.state.sessionmaker,
            pacer=PostgresPacer(db_engine, runtime.settings.dinero_rate_limit_per_minute),
        )
        app.state.http = http
        app.state.token_verifier = TokenVerifier(
            secret=runtime.jwt_secret, jwks_url=runtime.jwks_url, http=http
        )
        pool = None
        worker: asyncio.Task[None] | None = None
        if open_job_queue:
            pool = jobs.create_job_pool(libpq_url(runtime.database_url.get_secret_value()))
            await jobs.open_jobs(pool)
        if run_worker:
            worker = asyncio.create_task(
                jobs.job_app.run_worker_async(
                    concurrency=runtime.settings.worker_concurrency,
                    install_signal_handlers=False,
                    name="in-process",
                ),
                name="job-worker",
            )
            log.info("worker_started", mode="in-process")
        try:
            yield
        finally:
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
                log.info("worker_stopped")
            if pool is not None:
                await jobs.close_jobs(pool)
            await http.aclose()
            if own_engine:
                await db_engine.dispose()

    app = FastAPI(
        title="dinero-bridge",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(ops_router)
    app.include_router(companies_router, responses=PROBLEM_RESPONSES)
    app.include_router(connection_router, responses=PROBLEM_RESPONSES)
    _document_problem_schema(app)
    if runtime.dinero.sandbox if mount_sandbox is None else mount_sandbox:
        from app.sandbox import create_sandbox_app

        app.mount(SANDBOX_PREFIX, create_sandbox_app(), name="sandbox")
    return app
