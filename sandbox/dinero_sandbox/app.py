"""`create_sandbox_app`: the stand-in Dinero as one ASGI app (run alone, mounted, in-process)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from dinero_sandbox import files, inspect, ledger, oauth, reads, vouchers
from dinero_sandbox.auth import RateLimited
from dinero_sandbox.config import SandboxConfig
from dinero_sandbox.errors import NOT_FOUND, VALIDATION, DineroError, OAuthError
from dinero_sandbox.faults import ASGIApp, FaultMiddleware, Receive, Scope, Send
from dinero_sandbox.requestlog import RecordMiddleware
from dinero_sandbox.sandbox import Sandbox
from dinero_sandbox.wire import DineroJSONResponse

# Dinero (ASP.NET) binds query parameters case-insensitively; FastAPI does not.
QUERY_NAMES = {
    name.lower(): name
    for name in (
        "fields",
        "categoryFilter",
        "page",
        "pageSize",
        "changesSince",
        "deletedOnly",
        "queryFilter",
        "freeTextSearch",
        "statusFilter",
        "startDate",
        "endDate",
        "sort",
        "sortOrder",
        "fromDate",
        "toDate",
        "includePrimo",
        "changesFrom",
        "changesTo",
        "extensions",
        "uploadedBefore",
        "uploadedAfter",
        "fileStatus",
    )
}


class QueryNameMiddleware:
    """Rewrites Dinero's query parameter names to their documented spelling."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            renamed = [(QUERY_NAMES.get(k.lower(), k), v) for k, v in pairs]
            if renamed != pairs:
                scope = dict(scope)
                scope["query_string"] = urlencode(renamed).encode("latin-1")
        await self.app(scope, receive, send)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "body", "header")]
    return ".".join(parts) or "request"


def _install_handlers(app: FastAPI) -> None:
    async def dinero_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DineroError)
        return DineroJSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def rate_limited(request: Request, exc: Exception) -> Response:
        # Dinero's gateway answers in plain text and sends no Retry-After header.
        return PlainTextResponse(str(exc), status_code=429)

    async def oauth_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OAuthError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def control_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, inspect.ControlError)
        return inspect.control_error_response(exc)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = {_location(tuple(e.get("loc", ()))): str(e.get("msg")) for e in exc.errors()}
        body = DineroError(400, VALIDATION, "Validation error", errors).body()
        return DineroJSONResponse(body, status_code=400)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            body = DineroError(404, NOT_FOUND, "No HTTP resource was found").body()
        else:
            body = DineroError(exc.status_code, exc.status_code, str(exc.detail)).body()
        return DineroJSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(DineroError, dinero_error)
    app.add_exception_handler(RateLimited, rate_limited)
    app.add_exception_handler(OAuthError, oauth_error)
    app.add_exception_handler(inspect.ControlError, control_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)


def create_sandbox_app(config: SandboxConfig | None = None) -> FastAPI:
    """A stand-in Dinero: Dinero's API, Visma Connect's OAuth, the legacy token endpoint and
    the `/_sandbox` control API. `app.state.sandbox` is the `Sandbox` handle."""
    sandbox = Sandbox(config)
    app = FastAPI(
        title="Dinero sandbox",
        description="A stand-in for Dinero's public API (api.dinero.dk) and Visma Connect.",
        version="1.0",
        docs_url="/_sandbox/docs",
        redoc_url=None,
        openapi_url="/_sandbox/openapi.json",
    )
    app.state.sandbox = sandbox
    for router in (
        oauth.router,
        reads.router,
        files.router,
        vouchers.router,
        ledger.router,
        inspect.router,
    ):
        app.include_router(router)
    _install_handlers(app)
    # Added innermost first: the request log wraps the faults, so faulted requests are logged.
    app.add_middleware(QueryNameMiddleware)
    app.add_middleware(FaultMiddleware, sandbox=sandbox)
    app.add_middleware(RecordMiddleware, sandbox=sandbox)
    return app
