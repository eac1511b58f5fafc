"""Request bodies: refused over their route's limit before a byte is read or a token checked; the
export route checks its token, and the webhook route its headers, before reading the body.

The app is driven as ASGI directly, with a `receive` that records what it hands out: "not read"
is then what the test sees, not a guess from timing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from starlette.types import Message

from app.limits import SMALL_BODY_BYTES
from tests.conftest import bearer, bound_app, make_runtime, running
from tests.exports.intake_support import card, count_exports, signed, webhook_body

LIMIT = 2 * 1024 * 1024
EXPORTS = "/v1/companies/acme/exports"
WEBHOOK = "/v1/webhooks/expenses"


@pytest.fixture
async def small_app(
    database_url: str, engine: AsyncEngine, connection: AsyncConnection
) -> AsyncIterator[FastAPI]:
    runtime = make_runtime(database_url, max_request_bytes=LIMIT)
    app = bound_app(runtime, engine, connection)
    async with running(app):
        yield app


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks_read: int
    bytes_read: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Receiver:
    chunks: list[bytes]
    read: list[int] = field(default_factory=list)

    async def __call__(self) -> Message:
        if len(self.read) < len(self.chunks):
            chunk = self.chunks[len(self.read)]
            self.read.append(len(chunk))
            return {
                "type": "http.request",
                "body": chunk,
                "more_body": len(self.read) < len(self.chunks),
            }
        return {"type": "http.disconnect"}


async def call(
    app: FastAPI,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    chunks: Iterable[bytes] = (b"",),
) -> Answer:
    """One request straight into the ASGI app; counts the body chunks the app asked for."""
    receiver = _Receiver(list(chunks))
    started: dict[str, Any] = {}
    body = bytearray()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            started["status"] = message["status"]
            started["headers"] = {
                k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]
            }
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await app(scope, receiver, send)
    return Answer(
        started["status"], started["headers"], bytes(body), len(receiver.read), sum(receiver.read)
    )


def _problem(answer: Answer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = answer.json()
    assert problem["code"] == code, problem
    return problem


@pytest.mark.parametrize("path", [EXPORTS, WEBHOOK])
async def test_a_body_declared_too_large_is_refused_unread_and_before_any_token_or_signature(
    small_app: FastAPI, db: AsyncSession, path: str
) -> None:
    # 200 MB declared, no token, no signature: the answer comes from the headers alone.
    answer = await call(
        small_app,
        "POST",
        path,
        headers={"content-type": "application/json", "content-length": str(200_000_000)},
        chunks=[b"{" * 65536] * 4,
    )

    problem = _problem(answer, 413, "payload_too_large")
    assert problem["max_bytes"] == LIMIT
    assert answer.chunks_read == 0
    assert answer.headers["connection"] == "close"
    assert await count_exports(db, "acme") == 0


async def test_other_routes_take_a_small_body_while_the_intake_routes_take_the_large_one(
    small_app: FastAPI,
) -> None:
    declared = {"content-type": "application/json", "content-length": str(SMALL_BODY_BYTES + 1)}

    settings = await call(
        small_app, "PUT", "/v1/companies/acme/dinero/settings", headers=declared | bearer()
    )
    # The same length is within the export route's limit: refused for having no token instead.
    exports = await call(small_app, "POST", EXPORTS, headers=declared)

    assert _problem(settings, 413, "payload_too_large")["max_bytes"] == SMALL_BODY_BYTES
    _problem(exports, 401, "token_missing")
    assert (settings.chunks_read, exports.chunks_read) == (0, 0)


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    small_app: FastAPI, db: AsyncSession
) -> None:
    chunk = b" " * (256 * 1024)
    body = json.dumps({"items": [card("exp_1")]}).encode()
    chunks = [body[:-1], *([chunk] * 40), body[-1:]]  # ~10 MB, no Content-Length

    answer = await call(
        small_app,
        "POST",
        EXPORTS,
        headers={"content-type": "application/json"} | bearer(),
        chunks=chunks,
    )

    _problem(answer, 413, "payload_too_large")
    assert LIMIT < answer.bytes_read <= LIMIT + len(chunk) + len(body)
    assert await count_exports(db, "acme") == 0


async def test_the_export_route_checks_the_token_and_company_before_reading_the_body(
    small_app: FastAPI,
) -> None:
    body = json.dumps({"items": [card("exp_1")]}).encode()
    declared = {"content-type": "application/json", "content-length": str(len(body))}
    for token, status, code in [
        ({}, 401, "token_missing"),
        ({"authorization": "Bearer not-a-jwt"}, 401, "token_invalid"),
        (bearer("globex"), 404, "company_not_found"),
    ]:
        answer = await call(small_app, "POST", EXPORTS, headers=declared | token, chunks=[body])

        _problem(answer, status, code)
        assert answer.chunks_read == 0, token


async def test_a_member_token_is_verified_once_and_the_export_still_goes_through(
    small_app: FastAPI, db: AsyncSession
) -> None:
    body = json.dumps({"items": [card("exp_1")]}).encode()
    headers = {"content-type": "application/json", "content-length": str(len(body))}

    member = await call(small_app, "POST", EXPORTS, headers=headers | bearer("acme", "member"))
    admin = await call(small_app, "POST", EXPORTS, headers=headers | bearer(), chunks=[body])

    _problem(member, 403, "admin_required")
    assert admin.status == 202, admin.body
    assert await count_exports(db, "acme") == 1


async def test_the_webhook_headers_are_checked_before_the_body_is_read(
    small_app: FastAPI, db: AsyncSession
) -> None:
    changes: list[tuple[dict[str, str | None], str]] = [
        ({"webhook-signature": None}, "webhook_headers_missing"),
        ({"webhook-timestamp": "1" + "0" * 300}, "webhook_timestamp_invalid"),  # overflows
        ({"webhook-timestamp": "9" * 5000}, "webhook_timestamp_invalid"),
        ({"webhook-timestamp": "-5"}, "webhook_timestamp_invalid"),
        ({"webhook-timestamp": "1.7e9"}, "webhook_timestamp_invalid"),
        ({"webhook-timestamp": "1000000000"}, "webhook_timestamp_stale"),
        ({"webhook-id": "msg 1"}, "webhook_id_invalid"),
        ({"webhook-id": "m" * 256}, "webhook_id_invalid"),
        ({"webhook-id": "msg_\x00"}, "webhook_id_invalid"),
    ]
    for change, code in changes:
        raw, headers = signed(webhook_body("acme", card("exp_1")))
        headers |= {"content-length": str(len(raw))}
        for name, value in change.items():
            if value is None:
                del headers[name]
            else:
                headers[name] = value

        answer = await call(small_app, "POST", WEBHOOK, headers=headers, chunks=[raw])

        _problem(answer, 400, code)
        assert answer.chunks_read == 0, change
    assert await count_exports(db, "acme") == 0


async def test_a_signed_webhook_within_the_limit_is_still_read_and_stored(
    small_app: FastAPI, db: AsyncSession
) -> None:
    raw, headers = signed(webhook_body("acme", card("exp_1")))

    answer = await call(
        small_app,
        "POST",
        WEBHOOK,
        headers=headers | {"content-length": str(len(raw))},
        chunks=[raw[:10], raw[10:]],
    )

    assert answer.status == 202, answer.body
    assert answer.chunks_read == 2
    assert await count_exports(db, "acme") == 1


async def test_the_default_limit_is_the_largest_legitimate_export(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Ten inline receipts at the 10 MB cap, in base64, plus 1 MiB of JSON (README says so)."""
    from app.config import DEFAULT_MAX_REQUEST_BYTES
    from app.exports.schemas import MAX_RECEIPTS_PER_ITEM
    from app.exports.validation import MAX_RECEIPT_BYTES

    base64_size = 4 * -(-MAX_RECEIPT_BYTES // 3)
    assert MAX_RECEIPTS_PER_ITEM * base64_size + 1024 * 1024 == DEFAULT_MAX_REQUEST_BYTES
    declared = {"content-type": "application/json"} | bearer()

    over = await call(
        app,
        "POST",
        EXPORTS,
        headers=declared | {"content-length": str(DEFAULT_MAX_REQUEST_BYTES + 1)},
    )
    at = await call(
        app, "POST", EXPORTS, headers=declared | {"content-length": str(DEFAULT_MAX_REQUEST_BYTES)}
    )

    assert _problem(over, 413, "payload_too_large")["max_bytes"] == DEFAULT_MAX_REQUEST_BYTES
    assert at.status != 413  # read (an empty body here: refused as malformed, not as too large)
