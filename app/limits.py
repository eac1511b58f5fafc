"""Request-body limits, applied before anything reads a body or checks a token.

A body declared (`Content-Length`) larger than its route's limit is answered 413 at once, from
the headers alone: nothing is read, no token is verified, no database is touched, and the
connection is closed so the rest of the upload is not received. A body sent without a length
(chunked) is counted as it streams in and refused the moment it passes the limit, so at most
the limit is ever held in memory.

Only the two intake routes (and the development sandbox, which takes receipt uploads) carry
large bodies (`MAX_REQUEST_BYTES`); every other route takes at most `SMALL_BODY_BYTES`.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import AppError, problem_response

SMALL_BODY_BYTES: Final = 1024 * 1024
"""Every route but the intake ones: settings, connections, data sources, OAuth callbacks."""
LARGE_BODY_PATHS: Final = re.compile(
    r"^(?:/v1/webhooks/expenses|/v1/companies/[^/]+/exports(?:/preview)?|/sandbox(?:/.*)?)$"
)


class BodyTooLarge(AppError, StarletteHTTPException):  # type: ignore[misc]  # headers: a dict
    """413 with the limit. An HTTPException too, so FastAPI's body reading re-raises it as is."""

    status = 413
    code = "payload_too_large"
    title = "Request body too large"

    def __init__(self, limit: int) -> None:
        AppError.__init__(
            self,
            f"The request body is larger than {limit:,} bytes, the most this endpoint takes; "
            "nothing was stored. Send fewer items per request, or receipts as links.",
            extra={"max_bytes": limit},
            headers={"Connection": "close"},
        )
        self.status_code = 413


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class BodyLimitMiddleware:
    """Pure ASGI: refuses an oversized body by its declared length, or as it streams in."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, small_bytes: int = SMALL_BODY_BYTES
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.small_bytes = min(small_bytes, max_bytes)

    def limit_for(self, path: str) -> int:
        return self.max_bytes if LARGE_BODY_PATHS.match(path) else self.small_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            refusal = BodyTooLarge(limit)
            response = problem_response(
                status=refusal.status,
                code=refusal.code,
                title=refusal.title,
                detail=refusal.detail,
                instance=scope["path"],
                extra=refusal.extra,
                headers=refusal.headers,
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


__all__ = ["LARGE_BODY_PATHS", "SMALL_BODY_BYTES", "BodyLimitMiddleware", "BodyTooLarge"]
