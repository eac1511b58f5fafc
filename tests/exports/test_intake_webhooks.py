"""The platform's signed webhook: verified before anything is read, stored once however often
it is delivered (also twice at the same moment), refused clearly when it cannot be trusted."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.companies.models import Company
from app.db import create_engine
from app.exports import intake, validation
from app.exports.models import Export, ExportItem
from app.exports.validation import Candidate, ReceiptRules, Refusal
from app.main import create_app
from app.receipts import ReceiptFetcher
from tests.conftest import make_runtime, running
from tests.exports.intake_support import (
    PNG,
    WEBHOOK,
    blobs_of,
    card,
    count_exports,
    deliver,
    inline_receipt,
    items_of,
    queued_runs,
    signed,
    webhook_body,
)


async def test_a_signed_webhook_is_stored_for_a_company_never_seen(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    assert await db.get(Company, "newco") is None
    body = webhook_body("newco", card("exp_1", receipts=[inline_receipt()]), card(""))

    response = await deliver(client, body, webhook_id="msg_1")

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["source"] == "webhook"
    assert [(i["external_id"], i["status"]) for i in answer["items"]] == [("exp_1", "queued")]
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(1, "invalid_item")]
    assert await db.get(Company, "newco") is not None
    (item,) = await items_of(db, "newco")
    assert (item.amount_minor, item.lines[0]["dkk_amount"]) == (24500, 24500)
    assert await blobs_of(db, item.id) == [PNG]
    export = (await db.execute(select(Export))).scalar_one()
    assert (export.source, export.webhook_id, export.company_id) == ("webhook", "msg_1", "newco")
    assert await queued_runs(db, "newco") == 1


async def test_a_replayed_webhook_answers_the_first_202_and_stores_nothing(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    body = webhook_body("acme", card("exp_1"))
    first = await deliver(client, body, webhook_id="msg_1")
    again = await deliver(client, body, webhook_id="msg_1")

    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await count_exports(db, "acme") == 1
    assert len(await items_of(db, "acme")) == 1

    # A new delivery (new webhook id) of the same item: a new export, the same item.
    other = await deliver(client, body, webhook_id="msg_2")
    assert other.status_code == 202
    assert other.json()["id"] != first.json()["id"]
    assert other.json()["items"][0]["id"] == first.json()["items"][0]["id"]
    assert other.json()["items"][0]["repeated"] is True
    assert len(await items_of(db, "acme")) == 1


@pytest.mark.parametrize(
    ("tamper", "status", "code"),
    [
        ("other_secret", 401, "webhook_signature_invalid"),
        ("body_changed", 401, "webhook_signature_invalid"),
        ("garbled_signature", 401, "webhook_signature_invalid"),
        ("stale", 400, "webhook_timestamp_stale"),
        ("future", 400, "webhook_timestamp_stale"),
        ("no_signature", 400, "webhook_headers_missing"),
        ("timestamp_not_a_number", 400, "webhook_timestamp_invalid"),
    ],
)
async def test_an_untrusted_webhook_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, db: AsyncSession, tamper: str, status: int, code: str
) -> None:
    body = webhook_body("acme", card("exp_1"))
    raw, headers = signed(body)
    if tamper == "other_secret":
        raw, headers = signed(body, secret="whsec_" + "c29tZW9uZS1lbHNlcy1zZWNyZXQ=")
    elif tamper == "body_changed":
        raw = raw.replace(b"24500", b"94500")
    elif tamper == "garbled_signature":
        headers["webhook-signature"] = "v1,not-base64!! v2"
    elif tamper == "stale":
        raw, headers = signed(body, at=datetime.now(UTC) - timedelta(minutes=6))
    elif tamper == "future":
        raw, headers = signed(body, at=datetime.now(UTC) + timedelta(minutes=6))
    elif tamper == "no_signature":
        del headers["webhook-signature"]
    elif tamper == "timestamp_not_a_number":
        headers["webhook-timestamp"] = "yesterday"

    response = await client.post(WEBHOOK, content=raw, headers=headers)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert await items_of(db, "acme") == []
    assert (await db.execute(select(func.count()).select_from(Export))).scalar_one() == 0


async def test_a_slightly_old_webhook_is_still_accepted(client: httpx.AsyncClient) -> None:
    body = webhook_body("acme", card("exp_1"))
    response = await deliver(client, body, at=datetime.now(UTC) - timedelta(minutes=4))
    assert response.status_code == 202


async def test_another_webhook_type_is_acknowledged_and_ignored(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await deliver(client, {"type": "expense.deleted", "expense_id": "exp_1"})
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert response.json()["type"] == "expense.deleted"
    assert (await db.execute(select(func.count()).select_from(Export))).scalar_one() == 0


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"{not json", "invalid_json", "body"),
        ({"type": "export.requested", "items": [card()]}, "validation_error", "company_id"),
        (webhook_body("acme"), "validation_error", "items"),
        ({"company_id": "acme", "items": [card()]}, "validation_error", "type"),
        (webhook_body("fresh-co", card(lines=[])), "items_rejected", "items.0.lines"),
    ],
)  # fmt: skip
async def test_a_malformed_webhook_is_422_and_nothing_is_stored(
    client: httpx.AsyncClient, db: AsyncSession, body: Any, code: str, field: str
) -> None:
    response = await deliver(client, body)
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert field in response.json()["errors"]
    assert (await db.execute(select(func.count()).select_from(Export))).scalar_one() == 0
    assert await db.get(Company, "fresh-co") is None


# --- Two deliveries at the same moment, on a committed database ----------------------------


@pytest.fixture(scope="module")
def committed_db(make_migrated_database: Callable[[], str]) -> str:
    url = make_migrated_database()
    return url


@pytest.fixture
async def live(committed_db: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_runtime(committed_db), open_job_queue=False, mount_sandbox=False)
    async with running(app) as client:
        yield client


@pytest.fixture
def in_lockstep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both requests pass the "seen before?" lookup before either stores anything."""
    barrier = asyncio.Barrier(2)
    check_items = validation.check_items

    async def checked_together(
        raw_items: Sequence[object], *, company_id: str, rules: ReceiptRules
    ) -> tuple[list[Candidate], list[Refusal]]:
        outcome = await check_items(raw_items, company_id=company_id, rules=rules)
        await asyncio.wait_for(barrier.wait(), timeout=10)
        return outcome

    monkeypatch.setattr(intake, "check_items", checked_together)


async def _count(url: str, company: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            exports = await conn.scalar(
                select(func.count()).select_from(Export).where(Export.company_id == company)
            )
            items = await conn.scalar(
                select(func.count()).select_from(ExportItem).where(ExportItem.company_id == company)
            )
            runs = await conn.scalar(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'exports.run' "
                    "AND args->>'company_id' = :c"
                ),
                {"c": company},
            )
    finally:
        await engine.dispose()
    return int(exports or 0), int(items or 0), int(runs or 0)


@pytest.mark.usefixtures("in_lockstep")
async def test_the_same_webhook_delivered_twice_at_once_stores_one_export_and_item(
    live: httpx.AsyncClient, committed_db: str
) -> None:
    company = f"co-{uuid.uuid4().hex[:8]}"
    raw, headers = signed(webhook_body(company, card("exp_1", receipts=[inline_receipt()])))

    first, second = await asyncio.gather(
        live.post(WEBHOOK, content=raw, headers=headers),
        live.post(WEBHOOK, content=raw, headers=headers),
    )

    assert (first.status_code, second.status_code) == (202, 202), (first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["items"][0]["id"] == second.json()["items"][0]["id"]
    # One stored it; the other found it stored when it tried, and answered the same.
    replayed = [r.headers.get("Idempotent-Replayed") for r in (first, second)]
    assert replayed.count("true") == 1
    assert replayed.count(None) == 1
    assert await _count(committed_db, company) == (1, 1, 1)


@pytest.mark.usefixtures("in_lockstep")
async def test_one_item_in_two_webhooks_at_once_is_stored_once(
    live: httpx.AsyncClient, committed_db: str
) -> None:
    company = f"co-{uuid.uuid4().hex[:8]}"
    body = webhook_body(company, card("exp_1"), card("exp_2"))
    other = webhook_body(company, card("exp_2"), card("exp_1"))

    first, second = await asyncio.gather(deliver(live, body), deliver(live, other))

    assert (first.status_code, second.status_code) == (202, 202), (first.text, second.text)
    assert first.json()["id"] != second.json()["id"]
    ids = {i["external_id"]: i["id"] for i in first.json()["items"]}
    assert {i["external_id"]: i["id"] for i in second.json()["items"]} == ids
    repeated = [i["repeated"] for i in first.json()["items"] + second.json()["items"]]
    assert sorted(repeated) == [False, False, True, True]
    assert await _count(committed_db, company) == (2, 2, 1)


def test_signed_helper_matches_standard_webhooks() -> None:
    """The helper signs the bytes that are sent (guards the tests above against a false pass)."""
    raw, headers = signed({"a": 1}, webhook_id="msg_x")
    assert json.loads(raw) == {"a": 1}
    assert headers["webhook-signature"].startswith("v1,")


async def test_a_waiting_runner_cannot_start_before_the_new_items_are_committed(
    live: httpx.AsyncClient, committed_db: str
) -> None:
    """No second job is queued while one waits; the waiting one is held until the commit."""
    company = f"co-{uuid.uuid4().hex[:8]}"
    assert (await deliver(live, webhook_body(company, card("exp_1")))).status_code == 202
    engine = create_engine(committed_db)
    # How procrastinate's fetch claims a job (procrastinate_fetch_job_v2), for this company's.
    claim = text(
        "SELECT id FROM procrastinate_jobs WHERE status = 'todo' "
        "AND args->>'company_id' = :c FOR UPDATE SKIP LOCKED"
    ).bindparams(c=company)
    try:
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        async with sessionmaker() as intake_session, engine.connect() as worker:
            rules = ReceiptRules(fetcher=ReceiptFetcher(httpx.AsyncClient(), []))
            outcome = await intake.accept_export(
                session=intake_session,
                company_id=company,
                source="webhook",
                raw_items=[card("exp_2")],
                request_hash="x",
                rules=rules,
                webhook_id=f"msg_{uuid.uuid4().hex}",
            )
            assert outcome.body.items[0].status == "queued"
            # A worker looking for work now skips the company's waiting runner...
            assert (await worker.execute(claim)).all() == []
            await worker.rollback()
            await intake_session.commit()
            # ...and gets it once the new item is there to be seen.
            (job_id,) = (await worker.execute(claim)).one()
            assert job_id is not None
            await worker.rollback()
    finally:
        await engine.dispose()
    assert await _count(committed_db, company) == (2, 2, 1)
