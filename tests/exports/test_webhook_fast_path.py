"""The webhook fast path (`WebhookFastPath`) answers exactly as FastAPI's route does.

The same deliveries go to two apps on the test's transaction: one whose webhooks the fast path
answers, and one where an override of the receipt-rules dependency (by itself) makes the fast
path step aside, so FastAPI's routing and dependency solving answer with the route.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app import jobs
from app.db import POOL_SIZE, create_engine
from app.exports import intake, intake_store, validation
from app.exports.router import _link_opener, _open_connection, get_receipt_rules
from app.main import create_app
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
    assert _link_opener(fast) is not None
    assert _link_opener(routed) is None
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
        # What the export_accepted line said before (no line of its own any more).
        "export_id": answer.json()["id"],
        "company_id": "acme",
        "items_new": 1,
        "items_repeated": 0,
        "items_rejected": 0,
    }
    assert not [line for line in log_lines(json_logs) if line.get("event") == "export_accepted"]


def test_the_fast_path_steps_aside_for_an_override_it_does_not_take(
    runtime: Any, engine: AsyncEngine, connection: AsyncConnection
) -> None:
    from app.deps import get_session

    application: FastAPI = bound_app(runtime, engine, connection)
    assert _link_opener(application) is not None  # the tests' own override (no parameters)

    async def with_a_parameter(request: Any) -> AsyncIterator[Any]:
        yield None

    application.dependency_overrides[get_session] = with_a_parameter
    assert _link_opener(application) is None
    application.dependency_overrides[get_session] = lambda: None
    assert _link_opener(application) is None


# --- On a database where requests commit: the fast path's own pooled connection ---------------


@pytest.fixture(scope="module")
def committed_db(make_migrated_database: Callable[[], str]) -> str:
    url: str = make_migrated_database()
    return url


@pytest.fixture
async def live_apps(committed_db: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Both apps on their own engines, unbound: the fast path takes a pooled connection without
    a session (`intake_store.on_connection`), the route `get_session`'s session."""
    runtime = make_runtime(committed_db, max_request_bytes=LIMIT)
    fast = create_app(runtime, open_job_queue=False, mount_sandbox=False)
    routed = create_app(runtime, open_job_queue=False, mount_sandbox=False)
    routed.dependency_overrides[get_receipt_rules] = get_receipt_rules
    assert _link_opener(fast) is _open_connection
    assert _link_opener(routed) is None
    async with _answering(fast) as fast_client, _answering(routed) as routed_client:
        yield {"fast": fast_client, "route": routed_client}


@contextlib.asynccontextmanager
async def _answering(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """As `running`, and an unexpected error is the 500 a sender gets, not raised here."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def _stored(url: str, company: str) -> tuple[int, int, int]:
    """The company's exports, items and queued runs, as committed."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            counts = await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM exports WHERE company_id = :c), "
                    "(SELECT count(*) FROM export_items WHERE company_id = :c), "
                    "(SELECT count(*) FROM procrastinate_jobs WHERE args->>'company_id' = :c)"
                ),
                {"c": company},
            )
            exports, items, runs = counts.one()
            return int(exports), int(items), int(runs)
    finally:
        await engine.dispose()


async def test_on_its_own_connection_the_fast_path_answers_as_the_route_does(
    live_apps: dict[str, httpx.AsyncClient], committed_db: str
) -> None:
    fast_co, route_co = f"fast-{uuid.uuid4().hex[:8]}", f"route-{uuid.uuid4().hex[:8]}"

    fast = await _deliveries(live_apps["fast"], fast_co)
    route = await _deliveries(live_apps["route"], route_co)

    assert fast == route
    assert [status for status, *_ in fast] == [
        *(202, 202, 409, 202, 422, 422, 422, 422, 401, 400, 413, 413, 405)
    ]
    # One export with its item, and the runner's wake-up, committed with it.
    assert await _stored(committed_db, fast_co) == await _stored(committed_db, route_co)
    assert await _stored(committed_db, fast_co) == (1, 1, 1)


async def test_on_its_own_connection_a_repeated_item_and_an_unknown_category_answer_as_the_route(
    live_apps: dict[str, httpx.AsyncClient], committed_db: str
) -> None:
    """The rarer cases, whose statements after the store go on in a session on the same
    connection and transaction."""
    seen: dict[str, list[tuple[Any, ...]]] = {}
    for name, client in live_apps.items():
        company = f"{name}-{uuid.uuid4().hex[:8]}"
        unknown = card("exp_9", lines=[{"category_id": str(uuid.uuid4()), "amount": 24500}])
        bodies = [
            webhook_body(company, card("exp_1")),
            webhook_body(company, card("exp_1"), card("exp_2")),  # one repeated
            webhook_body(company, card("exp_3"), unknown),  # one refused by the database
            webhook_body(company, unknown),  # all refused: nothing stored
        ]
        seen[name] = [
            _seen(await client.post(WEBHOOK, content=raw, headers=headers), company)
            for raw, headers in (signed(body) for body in bodies)
        ]
        assert await _stored(committed_db, company) == (3, 3, 1)
    assert seen["fast"] == seen["route"]
    assert [status for status, *_ in seen["fast"]] == [202, 202, 202, 422]


@pytest.mark.parametrize("failing", ["split_by_category", "wake_exports"])
async def test_an_error_after_the_store_rolls_the_whole_request_back(
    live_apps: dict[str, httpx.AsyncClient],
    committed_db: str,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
) -> None:
    """An unexpected error after the store statement (before any session: the category split;
    in the session made for the runner's wake-up) is a 500 with nothing stored, and the pooled
    connection goes back clean: the next webhook is stored."""
    company = f"fail-{uuid.uuid4().hex[:8]}"

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("broken on purpose")

    target = intake if failing == "split_by_category" else jobs
    monkeypatch.setattr(target, failing, broken)
    raw, headers = signed(webhook_body(company, card("exp_1")))
    # As many as the pool holds, so a connection left in a transaction would be met again.
    for _ in range(POOL_SIZE + 1):
        answer = await live_apps["fast"].post(WEBHOOK, content=raw, headers=headers)
        assert answer.status_code == 500, answer.text
    assert await _stored(committed_db, company) == (0, 0, 0)

    monkeypatch.undo()
    for n in range(POOL_SIZE + 1):
        raw, headers = signed(webhook_body(company, card(f"exp_{n}")))
        answer = await live_apps["fast"].post(WEBHOOK, content=raw, headers=headers)
        assert answer.status_code == 202, answer.text
    assert await _stored(committed_db, company) == (POOL_SIZE + 1, POOL_SIZE + 1, 1)


async def test_the_202_is_the_text_stored_with_the_export_as_json_response_renders_it(
    live_apps: dict[str, httpx.AsyncClient], committed_db: str
) -> None:
    """The 202 is sent as the JSON text stored for replays (not serialized a second time):
    byte for byte what JSONResponse renders (compact, UTF-8 as is), and what a replay answers."""
    company = f"text-{uuid.uuid4().hex[:8]}"
    raw, headers = signed(webhook_body(company, card("exp_ø"), card(lines=[])))

    answer = await live_apps["fast"].post(WEBHOOK, content=raw, headers=headers)
    replay = await live_apps["fast"].post(WEBHOOK, content=raw, headers=headers)

    assert answer.status_code == 202, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.content == JSONResponse(answer.json()).body
    assert "exp_ø".encode() in answer.content
    assert replay.json() == answer.json()
    engine = create_engine(committed_db)
    try:
        async with engine.connect() as conn:
            stored = await conn.scalar(
                text("SELECT response FROM exports WHERE company_id = :c"), {"c": company}
            )
    finally:
        await engine.dispose()
    assert stored == answer.json()


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    raw, headers = signed(body)
    return await client.post(WEBHOOK, content=raw, headers=headers)


@pytest.fixture
def at_once(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each store tried in one statement of its own stored the request."""
    tried: list[bool] = []
    stored_at_once = intake_store._stored_at_once

    async def counted(link: intake_store.OnConnection, params: dict[str, Any]) -> bool:
        stored = await stored_at_once(link, params)
        tried.append(stored)
        return stored

    monkeypatch.setattr(intake_store, "_stored_at_once", counted)
    return tried


async def test_the_common_webhook_is_stored_in_one_statement_the_others_in_a_transaction(
    live_apps: dict[str, httpx.AsyncClient], committed_db: str, at_once: list[bool]
) -> None:
    """The first webhook of a company finds no runner waiting (it wakes one, in a
    transaction); the next ones are stored in one statement of their own; a repeated item, an
    unknown category and a replay are stored (or not) in a transaction as before."""
    company = f"once-{uuid.uuid4().hex[:8]}"
    client = live_apps["fast"]
    first = await _post(client, webhook_body(company, card("exp_1")))
    second = await _post(client, webhook_body(company, card("exp_2")))
    assert (first.status_code, second.status_code) == (202, 202)
    assert at_once == [False, True]
    assert await _stored(committed_db, company) == (2, 2, 1)

    unknown = card("exp_9", lines=[{"category_id": str(uuid.uuid4()), "amount": 24500}])
    raw, headers = signed(webhook_body(company, card("exp_3")))
    answers = [
        await _post(client, webhook_body(company, card("exp_2"))),
        await _post(client, webhook_body(company, card("exp_4"), unknown)),
        await client.post(WEBHOOK, content=raw, headers=headers),
        await client.post(WEBHOOK, content=raw, headers=headers),  # the replay
    ]
    assert [a.status_code for a in answers] == [202, 202, 202, 202]
    assert answers[0].json()["items"][0]["repeated"] is True
    assert [r["external_id"] for r in answers[1].json()["rejected"]] == ["exp_9"]
    assert answers[3].headers["idempotent-replayed"] == "true"
    assert answers[3].json() == answers[2].json()
    assert at_once == [False, True, False, False, True, False]
    assert await _stored(committed_db, company) == (5, 4, 1)


@pytest.mark.parametrize("same_webhook", [True, False])
async def test_two_deliveries_at_once_with_a_runner_waiting_store_each_item_once(
    live_apps: dict[str, httpx.AsyncClient],
    committed_db: str,
    at_once: list[bool],
    monkeypatch: pytest.MonkeyPatch,
    same_webhook: bool,
) -> None:
    """Two requests storing the same webhook, or the same item, at the same moment, both in
    one statement: one stores it, the other fails on the unique key (nothing stored) and is
    then answered in a transaction as before (a replay, or the item repeated)."""
    company = f"race-{uuid.uuid4().hex[:8]}"
    client = live_apps["fast"]
    raw, headers = signed(webhook_body(company, card("exp_0")))
    assert (await client.post(WEBHOOK, content=raw, headers=headers)).status_code == 202
    barrier = asyncio.Barrier(2)
    check_items = validation.check_items

    async def checked_together(*args: Any, **kwargs: Any) -> Any:
        outcome = await check_items(*args, **kwargs)
        await asyncio.wait_for(barrier.wait(), timeout=10)
        return outcome

    monkeypatch.setattr(intake, "check_items", checked_together)
    one = signed(webhook_body(company, card("exp_1"), card("exp_2")))
    other = one if same_webhook else signed(webhook_body(company, card("exp_2"), card("exp_3")))

    first, second = await asyncio.gather(
        client.post(WEBHOOK, content=one[0], headers=one[1]),
        client.post(WEBHOOK, content=other[0], headers=other[1]),
    )

    assert (first.status_code, second.status_code) == (202, 202), (first.text, second.text)
    assert at_once[0] is False  # the first webhook woke the runner
    assert sorted(at_once[1:]) == [False, True]
    if same_webhook:
        assert first.json() == second.json()
        replayed = sorted(str(a.headers.get("idempotent-replayed")) for a in (first, second))
        assert replayed == ["None", "true"]
        assert await _stored(committed_db, company) == (2, 3, 1)
    else:
        ids = {i["external_id"]: i["id"] for i in first.json()["items"]}
        ids |= {i["external_id"]: i["id"] for i in second.json()["items"]}
        both = first.json()["items"] + second.json()["items"]
        assert {i["id"] for i in both if i["external_id"] == "exp_2"} == {ids["exp_2"]}
        assert sorted(i["repeated"] for i in both) == [False, False, False, True]
        assert await _stored(committed_db, company) == (3, 4, 1)
