"""One error hierarchy, rendered as RFC 9457 `application/problem+json` by one set of handlers."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.dinero.pacing import PacerBusy

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://dinero-bridge.dev/problems/"


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this service is answered."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable reason.")
    instance: str | None = None
    errors: dict[str, str] | None = Field(
        default=None, description="Field → message, for validation problems."
    )


def problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem_doc("No valid bearer token."),
    403: problem_doc("The caller's role may not do this."),
    404: problem_doc("Not found (or another company's)."),
    422: problem_doc("The request is not valid; `errors` names each bad field."),
}


class AppError(Exception):
    """An expected failure: carries its HTTP status, a stable `code` and a human sentence."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        errors: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.errors = dict(errors) if errors else None
        self.extra = dict(extra) if extra else {}
        self.headers = dict(headers) if headers else {}


class ValidationFailed(AppError):
    status = 422
    code = "validation_error"
    title = "The request is not valid"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class ServiceUnavailable(AppError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"


class DineroUnavailable(AppError):
    """Dinero could not be reached or answered with a transient failure while a request waited."""

    status = 503
    code = "dinero_unavailable"
    title = "Dinero is not available"


class DineroBusy(AppError):
    """The organization's Dinero request budget is used up (by an export, say) for longer than a
    request may wait: answered at once, with `Retry-After`, instead of holding the caller."""

    status = 503
    code = "dinero_busy"
    title = "Dinero is busy for this organization"

    def __init__(self, retry_after: float, detail: str | None = None) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        """Whole seconds to wait before asking again (at least 1)."""
        super().__init__(
            detail
            or "The organization's Dinero request budget is used up for now (Dinero allows "
            f"about 100 requests a minute); try again in {self.retry_after} s.",
            headers={"Retry-After": str(self.retry_after)},
            extra={"retry_after": self.retry_after},
        )

    @classmethod
    def of(cls, busy: PacerBusy, detail: str | None = None) -> DineroBusy:
        return cls(busy.retry_after, detail)


class DineroRefused(AppError):
    """Dinero answered a request's call with a refusal that trying again will not change."""

    status = 502
    code = "dinero_refused"
    title = "Dinero refused the request"


class _ProblemJSON(JSONResponse):
    """JSON whose text may echo a client's unpaired surrogate (e.g. a field name): written as
    its JSON escape (`\\ud800`) instead of failing to encode as UTF-8."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    errors: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = dict(errors)
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return _ProblemJSON(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "request"


async def app_error_response(request: Request, exc: Exception) -> JSONResponse:
    """The answer to an AppError (the app's handler; the webhook fast path calls it too)."""
    assert isinstance(exc, AppError)
    return problem_response(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        errors=exc.errors,
        extra=exc.extra,
        headers=exc.headers,
    )


async def _pacer_busy(request: Request, exc: Exception) -> JSONResponse:
    """A request's Dinero call that could not get a slot in time (its client had a max_wait)."""
    assert isinstance(exc, PacerBusy)
    log.info(
        "dinero_busy",
        path=request.url.path,
        organization_id=exc.organization_id,
        lane=exc.lane.value,
        retry_after=exc.retry_after,
    )
    return await app_error_response(request, DineroBusy.of(exc))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: dict[str, str] = {}
    for err in exc.errors():
        errors.setdefault(_field_name(tuple(err.get("loc", ()))), str(err.get("msg", "invalid")))
    fields = ", ".join(sorted(errors))
    return problem_response(
        status=422,
        code="validation_error",
        title="The request is not valid",
        detail=f"Some fields are missing or invalid: {fields}.",
        instance=request.url.path,
        errors=errors,
    )


_HTTP_CODES = {
    400: "malformed_body",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette's 405 names only the first route's).

    OPTIONS is not served (it answers 405 too); HEAD only where a route declares it.
    """
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        if route.methods and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
    return problem_response(
        status=exc.status_code,
        code=_HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}"),
        title=phrase,
        detail=detail if detail.endswith(".") else detail + ".",
        instance=request.url.path,
        headers=headers or None,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
    return problem_response(
        status=500,
        code="internal_error",
        title="Internal server error",
        detail="Something went wrong on our side; it has been logged.",
        instance=request.url.path,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error_response)
    app.add_exception_handler(PacerBusy, _pacer_busy)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
