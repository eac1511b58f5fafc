"""The webhook fast path (`WebhookFastPath`) answers exactly as FastAPI's route does.

The same deliveries go to two apps on the test's transaction: one whose webhooks the fast path
answers, and one where an override of the receipt-rules dependency (by itself) makes the fast
path step aside, so FastAPI's routing and dependency solving answer with the route.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.exports.router import _session_opener, get_receipt_rules
from tests.conftest import bound_app, log_lines, make_runtime, running
from tests.exports.intake_support import WEBHOOK, card, count_exports, signed, webhook_body

LIMIT = 64 * 1024
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z?")


@pytest.fixture
async def apps(
    database_url: str, engine: AsyncEngine, connection: AsyncConnection
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    runtime = make_runtime(database_url, max_request_bytes=LIMIT)
    fast = bound_app(runtime, engine, connection)
    routed = bound_app(runtime, engine, connection)
    routed.dependency_overrides[get_receipt_rules] = get_receipt_rules
    assert _session_opener(fast) is not None
    assert _session_opener(routed) is None
    async with running(fast) as fast_client, running(routed) as routed_client:
        yield {"fast": fast_client, "route": routed_client}


def _seen(response: httpx.Response, company: str) -> tuple[Any, ...]:
    """What a sender sees, with the ids and the company (they differ between the two apps) out."""
    text = _TIME.sub("<time>", _UUID.sub("<id>", response.text)).replace(company, "<company>")
    return (
        response.status_code,
        response.headers.get("content-type"),
        response.headers.get("idempotent-replayed"),
        response.headers.get("connection"),
        bool(response.headers.get("x-request-id")),
        text,
    )


async def _deliveries(client: httpx.AsyncClient, company: str) -> list[tuple[Any, ...]]:
    body = webhook_body(company, card("exp_1"), card(""))
    raw, headers = signed(body, webhook_id=f"msg_{company}")
    seen = [_seen(await client.post(WEBHOOK, content=raw, headers=headers), company)]
    # The replay, then the same id with another body.
    seen.append(_seen(await client.post(WEBHOOK, content=raw, headers=headers), company))
    other, other_headers = signed(webhook_body(company, card("exp_2")), webhook_id=f"msg_{company}")
    seen.append(_seen(await client.post(WEBHOOK, content=other, headers=other_headers), company))
    refusals: list[tuple[bytes, dict[str, str]]] = [
        signed({"type": "expense.deleted", "expense_id": "exp_1"}),
        signed({"type": "x" * 500, "company_id": company}),
        signed(b"{not json"),
        signed({"type": "export.requested", "items": [card()]}),
        signed(webhook_body(company, card(lines=[]))),
        (raw.replace(b"24500", b"94500"), signed(raw)[1]),  # the signature does not match
        (raw, {k: v for k, v in headers.items() if k != "webhook-signature"}),
        (b"x" * (LIMIT + 1), {"content-type": "application/json"}),  # declared too large
    ]
    for content, refusal_headers in refusals:
        answer = await client.post(WEBHOOK, content=content, headers=refusal_headers)
        seen.append(_seen(answer, company))

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: refused as it passes
        for _ in range(4):
            yield b" " * (LIMIT // 2)

    _, stream_headers = signed(body)
    answer = await client.post(WEBHOOK, content=streamed(), headers=stream_headers)
    seen.append(_seen(answer, company))
    seen.append(_seen(await client.get(WEBHOOK), company))
    return seen


async def test_the_fast_path_answers_every_delivery_as_the_route_does(
    apps: dict[str, httpx.AsyncClient], db: AsyncSession
) -> None:
    fast = await _deliveries(apps["fast"], "fast-co")
    route = await _deliveries(apps["route"], "route-co")

    assert fast == route
    statuses = [status for status, *_ in fast]
    assert statuses == [202, 202, 409, 202, 422, 422, 422, 422, 401, 400, 413, 413, 405]
    assert [type_ for _, type_, *_ in fast][2:] == [
        "application/problem+json" if s >= 400 else "application/json" for s in statuses[2:]
    ]
    assert (await count_exports(db, "fast-co"), await count_exports(db, "route-co")) == (1, 1)


async def test_the_fast_path_counts_and_logs_the_request_under_the_route(
    apps: dict[str, httpx.AsyncClient], json_logs: io.StringIO
) -> None:
    labels = {"method": "POST", "route": WEBHOOK, "status": "202"}
    before = REGISTRY.get_sample_value("dinero_bridge_http_requests_total", labels) or 0.0
    raw, headers = signed(webhook_body("acme", card("exp_1")))

    answer = await apps["fast"].post(
        WEBHOOK, content=raw, headers=headers | {"X-Request-ID": "r-7"}
    )

    assert answer.status_code == 202, answer.text
    assert answer.headers["x-request-id"] == "r-7"
    after = REGISTRY.get_sample_value("dinero_bridge_http_requests_total", labels)
    assert after == before + 1
    access = [line for line in log_lines(json_logs) if line.get("event") == "request"]
    assert access[-1] | {"duration_ms": 0} == access[-1] | {
        "method": "POST",
        "path": WEBHOOK,
        "status": 202,
        "request_id": "r-7",
        "duration_ms": 0,
    }


def test_the_fast_path_steps_aside_for_an_override_it_does_not_take(
    runtime: Any, engine: AsyncEngine, connection: AsyncConnection
) -> None:
    from app.deps import get_session

    application: FastAPI = bound_app(runtime, engine, connection)
    assert _session_opener(application) is not None  # the tests' own override (no parameters)

    async def with_a_parameter(request: Any) -> AsyncIterator[Any]:
        yield None

    application.dependency_overrides[get_session] = with_a_parameter
    assert _session_opener(application) is None
    application.dependency_overrides[get_session] = lambda: None
    assert _session_opener(application) is None
