"""Pure-ASGI middleware: a request id on every request and log line, one access line, metrics."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logging import FastLines
from app.ops.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger("app.access")
access_log = FastLines("app.access")
"""The access line, one per request: rendered with less machinery (it is on every request)."""

REQUEST_ID_HEADER = b"x-request-id"
CLIENT_CLOSED_REQUEST = 499
"""nginx's status for a client that hung up before it was answered (never a 5xx of ours)."""
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        response_complete = False
        # The client hung up before the response started (whatever we sent, nobody got it), or
        # while it was being sent.
        gone_before_answer = False
        gone_during_answer = False
        failed = False

        async def receive_wrapper() -> Message:
            nonlocal gone_before_answer, gone_during_answer
            message = await receive()
            if message["type"] == "http.disconnect" and not response_complete:
                if response_started:
                    gone_during_answer = True
                else:
                    gone_before_answer = True
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started, response_complete
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message["headers"] = headers
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                response_complete = True
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except ClientDisconnect:
            # Not an error of ours: the body could not be read (or the answer not written)
            # because the client went away. Nothing is left to answer, so nothing is re-raised.
            if response_started:
                gone_during_answer = True
            else:
                gone_before_answer = True
        except BaseException:
            failed = True  # a real error: it stays a 500, whether or not the client waited
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path_format", None) or "unmatched"
            if scope.get("root_path"):
                template = "mounted"
            method = scope["method"]
            if gone_before_answer and not failed:
                status = CLIENT_CLOSED_REQUEST
            if (gone_before_answer or gone_during_answer) and not failed:
                log.info(
                    "client_disconnected",
                    method=method,
                    path=scope["path"],
                    during="request" if gone_before_answer else "response",
                )
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_LATENCY.labels(method, template).observe(elapsed)
            if scope["path"] not in _QUIET_PATHS:
                access_log.info(
                    "request",
                    method=method,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 1),
                )
            structlog.contextvars.clear_contextvars()
