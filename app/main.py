"""create_app(): routers, error handlers, middleware, and the lifespan owning shared resources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy.ext.asyncio import AsyncEngine

from app import contract, jobs, registry, services
from app.auth import TokenVerifier
from app.chart.router import router as chart_router
from app.companies.router import router as companies_router
from app.connection.router import router as connection_router
from app.console.devtoken import router as dev_token_router
from app.console.router import router as console_router
from app.datasources.router import router as datasources_router
from app.db import libpq_url
from app.deposit_accounts.router import router as deposit_accounts_router
from app.devsandbox import sandbox_app
from app.errors import PROBLEM_RESPONSES, Problem, install_error_handlers
from app.exports.readiness import exported_to_dinero
from app.exports.router import WebhookFastPath
from app.exports.router import router as exports_router
from app.exports.router import webhooks_router as export_webhooks_router
from app.exports.settings_router import router as export_settings_router
from app.history.router import router as history_router
from app.limits import BodyLimitMiddleware
from app.middleware import RequestContextMiddleware
from app.ops.router import router as ops_router
from app.outbox.webhooks_doc import document_webhooks
from app.preview.router import router as preview_router
from app.reversals.router import router as reversals_router
from app.runtime import SANDBOX_PREFIX, Runtime

log = structlog.get_logger(__name__)

DESCRIPTION = (
    "Connects each company of the expense platform to its books in **Dinero**: expenses become "
    "draft purchase vouchers awaiting *Godkend*, reimbursements and wallet top-ups are booked in "
    "the *Kassekladde*, and Dinero's data can be read back by data type. Every error is "
    "`application/problem+json` with a stable `code`."
)


def _document_problem_schema(app: FastAPI) -> None:
    """Put the Problem schema into the OpenAPI components (routes refer to it by $ref)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                webhooks=app.webhooks.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = Problem.model_json_schema()
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            contract.document(app, schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def _job_queue(
    shared: services.Services, *, open_job_queue: bool, run_worker: bool
) -> AsyncIterator[None]:
    """Open the job queue (to enqueue) and, with run_worker, run a worker in this process."""
    runtime = shared.runtime
    pool = None
    worker: asyncio.Task[None] | None = None
    if open_job_queue:
        pool = jobs.create_job_pool(libpq_url(runtime.database_url.get_secret_value()))
        await jobs.open_jobs(pool)
    if run_worker:
        worker = asyncio.create_task(
            jobs.run_worker(
                additional_context=services.worker_context(shared),
                concurrency=runtime.settings.worker_concurrency,
                name="in-process",
                heartbeat_seconds=runtime.settings.worker_heartbeat_seconds,
                poll_seconds=runtime.settings.worker_poll_seconds,
                install_signal_handlers=False,
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
    registry.load()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services.started(
            runtime, engine=engine, dinero_transport=dinero_transport
        ) as shared:
            app.state.services = shared
            app.state.token_verifier = TokenVerifier(
                secret=runtime.jwt_secret,
                jwks_url=runtime.jwks_url,
                http=shared.http,
                audience=runtime.settings.auth_jwt_audience,
                issuer=runtime.settings.auth_jwt_issuer,
                max_lifetime_seconds=runtime.settings.auth_jwt_max_lifetime_seconds,
            )
            async with _job_queue(shared, open_job_queue=open_job_queue, run_worker=run_worker):
                yield

    app = FastAPI(
        title="dinero-bridge",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    # The connection asks the exports before pointing a company at other books.
    app.state.export_history = exported_to_dinero
    install_error_handlers(app)
    # Innermost: the busiest route, answered without FastAPI's routing and dependency solving,
    # inside the body limit and the request id, metrics and access line.
    app.add_middleware(WebhookFastPath)
    # Inside the request-id middleware (a 413 is logged and counted like any answer), outside
    # everything that reads a body or checks a token.
    app.add_middleware(BodyLimitMiddleware, max_bytes=runtime.settings.max_request_bytes)
    app.add_middleware(RequestContextMiddleware)
    # First: routes are matched in order, and the webhook intake is the busiest route (a route
    # further down costs its requests a regular-expression match per route before it).
    app.include_router(export_webhooks_router)
    app.include_router(ops_router)
    app.include_router(companies_router, responses=PROBLEM_RESPONSES)
    app.include_router(connection_router, responses=PROBLEM_RESPONSES)
    app.include_router(chart_router, responses=PROBLEM_RESPONSES)
    app.include_router(deposit_accounts_router, responses=PROBLEM_RESPONSES)
    app.include_router(export_settings_router, responses=PROBLEM_RESPONSES)
    app.include_router(history_router, responses=PROBLEM_RESPONSES)
    app.include_router(datasources_router, responses=PROBLEM_RESPONSES)
    app.include_router(preview_router, responses=PROBLEM_RESPONSES)
    app.include_router(exports_router, responses=PROBLEM_RESPONSES)
    app.include_router(reversals_router, responses=PROBLEM_RESPONSES)
    app.include_router(dev_token_router)
    app.include_router(console_router)
    document_webhooks(app)
    _document_problem_schema(app)
    if runtime.dinero.sandbox if mount_sandbox is None else mount_sandbox:
        app.mount(SANDBOX_PREFIX, sandbox_app(), name="sandbox")
    return app
