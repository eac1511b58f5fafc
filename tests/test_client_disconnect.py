"""A client that hangs up mid-request is not an error of ours: it is logged at info as
`client_disconnected`, its access line and metrics say 499 (nginx's "client closed request"),
and nothing is stored. Driven at the ASGI level, the way uvicorn delivers a dropped connection:
part of the body, then `http.disconnect`.
"""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message

from app.exports.models import Export
from tests.conftest import bearer, log_lines

EXPORTS = ("/v1/companies/acme/exports", "/v1/companies/{company}/exports")
WEBHOOK = ("/v1/webhooks/expenses", "/v1/webhooks/expenses")
PARTIAL_BODY = b'{"items": [{"external_id": "exp_1", "type": "card_exp'


def _counted(route: str, status: int) -> float:
    value = REGISTRY.get_sample_value(
        "dinero_bridge_http_requests_total",
        {"method": "POST", "route": route, "status": str(status)},
    )
    return value or 0.0


async def _post(
    app: FastAPI, path: str, headers: dict[str, str], messages: list[Message]
) -> list[Message]:
    """One POST straight into the ASGI app; returns what the app sent back."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    incoming = list(messages)

    async def receive() -> Message:
        # Once disconnected, every further receive says so again (as uvicorn does).
        return incoming.pop(0) if len(incoming) > 1 else incoming[0]

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)  # raises if the error reached the server
    return sent


async def _exports_stored(db: AsyncSession) -> int:
    count = await db.scalar(select(func.count()).select_from(Export))
    return int(count or 0)


@pytest.mark.parametrize(
    ("path", "route", "headers"),
    [
        (*EXPORTS, {**bearer("acme"), "Content-Type": "application/json"}),
        (*WEBHOOK, {"Content-Type": "application/json"}),
    ],
    ids=["rest-export", "webhook"],
)
async def test_client_hanging_up_mid_body_is_a_499_not_an_error(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    json_logs: io.StringIO,
    path: str,
    route: str,
    headers: dict[str, str],
) -> None:
    if path == WEBHOOK[0]:
        # Headers that pass the check made before the body is read (the signature cannot be
        # checked until the body is in, and the client hangs up before that).
        headers = {
            **headers,
            "webhook-id": "msg_gone",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,c2lnbmF0dXJl",
        }
    before = {status: _counted(route, status) for status in (400, 499, 500)}
    stored = await _exports_stored(db)

    await _post(
        app,
        path,
        {**headers, "Content-Length": "4096"},
        [
            {"type": "http.request", "body": PARTIAL_BODY, "more_body": True},
            {"type": "http.disconnect"},
        ],
    )

    lines = log_lines(json_logs)
    [gone] = [line for line in lines if line["event"] == "client_disconnected"]
    assert gone["level"] == "info"
    assert gone["path"] == path
    assert gone["during"] == "request"
    [access] = [line for line in lines if line["event"] == "request"]
    assert access["status"] == 499
    assert access["path"] == path
    assert not [line for line in lines if line["level"] in {"error", "critical"}], lines
    assert "unhandled_error" not in json_logs.getvalue()
    after = {status: _counted(route, status) for status in (400, 499, 500)}
    assert after == {400: before[400], 499: before[499] + 1, 500: before[500]}
    assert await _exports_stored(db) == stored


async def test_a_request_whose_body_arrives_is_answered_as_usual(
    app: FastAPI, client: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    # The same start of a body, but complete (and still not JSON): an ordinary 422.
    sent = await _post(
        app,
        EXPORTS[0],
        {**bearer("acme"), "Content-Type": "application/json"},
        [{"type": "http.request", "body": PARTIAL_BODY, "more_body": False}],
    )

    [start] = [m for m in sent if m["type"] == "http.response.start"]
    assert start["status"] == 422
    lines = log_lines(json_logs)
    assert [line["status"] for line in lines if line["event"] == "request"] == [422]
    assert not [line for line in lines if line["event"] == "client_disconnected"]
