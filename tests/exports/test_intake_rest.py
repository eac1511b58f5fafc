"""Export intake over REST: what is stored, what is refused and why, and idempotency."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.exports.allocation import allocate
from app.exports.intake_store import BURST, LINGER, linger
from app.exports.models import Export, ExportItem, ItemStatus, Step
from app.runtime import Runtime
from tests.conftest import bearer, make_runtime
from tests.exports.intake_support import (
    PNG,
    RECEIPT_HOST,
    add_category,
    blobs_of,
    card,
    count_exports,
    inline_receipt,
    items_of,
    queued_runs,
    reimbursement,
    waiting_runs,
)
from tests.stored import line

EXPORTS = "/v1/companies/acme/exports"


@pytest.fixture(scope="module")
def runtime(database_url: str) -> Runtime:
    return make_runtime(database_url, receipt_allowed_hosts=[RECEIPT_HOST])


async def post(
    client: httpx.AsyncClient, *items: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = bearer("acme")
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(EXPORTS, json={"items": list(items)}, headers=headers)


async def test_items_are_stored_queued_and_answered_202(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    top_up = {**reimbursement("tu_1", -20000), "type": "wallet_top_up"}
    expense = card("exp_1", receipts=[inline_receipt()])
    expense["receipts"].append(
        {"url": f"https://{RECEIPT_HOST}/r/1.pdf?sig=abc", "filename": "1.pdf"}
    )

    response = await post(client, expense, reimbursement(), top_up)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted"
    assert body["source"] == "api"
    assert body["rejected"] == []
    assert [(i["external_id"], i["type"], i["status"], i["repeated"]) for i in body["items"]] == [
        ("exp_1", "card_expense", "queued", False),
        ("rb_1", "reimbursement", "queued", False),
        ("tu_1", "wallet_top_up", "queued", False),
    ]

    stored = {item.external_id: item for item in await items_of(db, "acme")}
    assert set(stored) == {"exp_1", "rb_1", "tu_1"}
    exp = stored["exp_1"]
    assert str(exp.id) == body["items"][0]["id"]
    assert (exp.status, exp.step, exp.attempts) == (ItemStatus.QUEUED, Step.NEW, 0)
    assert str(exp.voucher_date) == "2026-11-03"
    assert exp.description == "Taxa Nord, client visit"
    assert (exp.currency, exp.amount_minor, exp.dkk_amount_minor) == ("DKK", 24500, 24500)
    assert exp.lines == [line(7000, 24500)]
    assert exp.employee == {"id": "emp_7", "name": "Mette Jensen"}
    inline, link = exp.receipts
    assert (inline["filename"], inline["content_type"]) == ("taxa.png", "image/png")
    assert await blobs_of(db, exp.id) == [PNG]
    assert link == {
        "url": f"https://{RECEIPT_HOST}/r/1.pdf?sig=abc",
        "filename": "1.pdf",
        "content_type": None,
    }
    assert (stored["tu_1"].amount_minor, stored["tu_1"].lines) == (-20000, [])

    export = (await db.execute(select(Export))).scalar_one()
    assert str(export.id) == body["id"]
    assert export.source == "api"
    assert export.item_ids == [i["id"] for i in body["items"]]
    assert export.response == body
    assert export.rejected == []
    assert await queued_runs(db, "acme") == 1


async def test_foreign_currency_lines_share_the_settled_dkk_amount_exactly(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    eur = card(
        "exp_eur",
        value=10000,
        amount={"value": 10000, "currency": "EUR"},
        settled_amount={"value": 74599, "currency": "DKK"},
        lines=[
            {"account_number": 7000, "tax_code": "I25", "amount": 3333},
            {"account_number": 7010, "tax_code": "I25", "amount": 3333},
            {"account_number": 7020, "tax_code": "none", "amount": 3334},
        ],
    )
    refund = card(
        "exp_refund",
        amount={"value": -10000, "currency": "EUR"},
        settled_amount={"value": -74599, "currency": "DKK"},
        lines=[
            {"account_number": 7000, "amount": -5000},
            {"account_number": 7010, "amount": -5000},
        ],
    )
    response = await post(client, eur, refund)
    assert response.status_code == 202, response.text

    stored = {item.external_id: item for item in await items_of(db, "acme")}
    item = stored["exp_eur"]
    assert (item.currency, item.amount_minor, item.dkk_amount_minor) == ("EUR", 10000, 74599)
    assert [line["amount"] for line in item.lines] == [3333, 3333, 3334]
    assert [line["dkk_amount"] for line in item.lines] == [24864, 24864, 24871]
    back = stored["exp_refund"]
    assert [line["dkk_amount"] for line in back.lines] == [-37299, -37300]
    assert sum(line["dkk_amount"] for line in back.lines) == -74599

    detail = await client.get(
        f"/v1/companies/acme/export-items/{item.id}", headers=bearer("acme", "member")
    )
    assert detail.status_code == 200
    assert detail.json()["amount"] == {"value": 10000, "currency": "EUR"}
    assert detail.json()["settled_amount"] == {"value": 74599, "currency": "DKK"}


@pytest.mark.parametrize(
    ("total", "weights"),
    [(100, [1, 1, 1]), (-100, [1, 1, 1]), (74599, [3333, 3333, 3334]), (10, [7, -2]), (1, [5])],
)
def test_allocation_always_sums_to_the_total(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - total * weight / sum(weights)) < 1


async def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    first = await post(client, card("exp_1"), {"external_id": ""}, key="k-1")
    assert first.status_code == 202

    # The same body, keys in another order: the same request.
    again = await client.post(
        EXPORTS,
        json={"items": [dict(reversed(card("exp_1").items())), {"external_id": ""}]},
        headers={**bearer("acme"), "Idempotency-Key": "k-1"},
    )
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await count_exports(db, "acme") == 1
    assert len(await items_of(db, "acme")) == 1

    # A replay shows the items' statuses as they are now.
    await db.execute(update(ExportItem).values(status=ItemStatus.BOOKED))
    later = await post(client, card("exp_1"), {"external_id": ""}, key="k-1")
    assert later.json()["id"] == first.json()["id"]
    assert later.json()["items"][0]["status"] == "booked"
    assert later.json()["status"] == "completed"
    assert later.json()["rejected"] == first.json()["rejected"]

    other = await post(client, card("exp_1", value=100), key="k-1")
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"
    assert await count_exports(db, "acme") == 1

    fresh = await post(client, card("exp_2"), key="k-2")
    assert fresh.status_code == 202
    assert "Idempotent-Replayed" not in fresh.headers


async def test_a_repeated_item_points_at_the_existing_one(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    first = await post(client, card("exp_1"))
    first_id = first.json()["items"][0]["id"]
    await db.execute(update(ExportItem).values(status=ItemStatus.AWAITING_APPROVAL))

    # Sent again (even with another amount), with a new one and one of another type.
    second = await post(
        client,
        card("exp_1", value=999),
        card("exp_2"),
        reimbursement("exp_1"),
    )

    assert second.status_code == 202
    body = second.json()
    assert body["id"] != first.json()["id"]
    assert [(i["external_id"], i["type"], i["status"], i["repeated"]) for i in body["items"]] == [
        ("exp_1", "card_expense", "awaiting_approval", True),
        ("exp_2", "card_expense", "queued", False),
        ("exp_1", "reimbursement", "queued", False),
    ]
    assert body["items"][0]["id"] == first_id
    stored = await items_of(db, "acme")
    assert len(stored) == 3
    original = next(i for i in stored if str(i.id) == first_id)
    assert original.amount_minor == 24500
    assert await count_exports(db, "acme") == 2


def _bad_items(category: uuid.UUID) -> list[tuple[Any, str, str]]:
    """(item, expected code, a field named in its errors)."""
    eur = {"value": 1000, "currency": "EUR"}
    too_big = base64.b64encode(b"x" * (10 * 1024 * 1024 + 1)).decode()
    return [
        (card("a1", amount={"value": 245.0, "currency": "DKK"}), "invalid_item", "amount.value"),
        (card("a2", amount={"value": "24500", "currency": "DKK"}), "invalid_item", "amount.value"),
        (card("a3", amount={"value": True, "currency": "DKK"}), "invalid_item", "amount.value"),
        (card("a4", date="2026-02-30"), "invalid_item", "date"),
        (card("a5", date="03-11-2026"), "invalid_item", "date"),
        (card("a6", amount={"value": 24500, "currency": "dkk"}), "invalid_item", "amount.currency"),
        (card(""), "invalid_item", "external_id"),
        (card("x" * 256), "invalid_item", "external_id"),
        (card("a9", type="gift_card"), "invalid_item", "type"),
        (card("b1", amount=eur, lines=[{"account_number": 1, "amount": 1000}]),
         "settled_amount_required", "settled_amount"),
        (card("b2", amount=eur, settled_amount=eur, lines=[{"account_number": 1, "amount": 1000}]),
         "settled_amount_invalid", "settled_amount.currency"),
        (card("b3", amount=eur, settled_amount={"value": -7460, "currency": "DKK"},
              lines=[{"account_number": 1, "amount": 1000}]),
         "settled_amount_invalid", "settled_amount.value"),
        (card("b4", settled_amount={"value": 100, "currency": "DKK"}),
         "settled_amount_invalid", "settled_amount.value"),
        (card("c1", lines=[]), "lines_required", "lines"),
        (card("c2", lines=[{"account_number": 7000, "amount": 24400}]),
         "lines_sum_mismatch", "lines"),
        ({**reimbursement("c3"), "lines": [{"account_number": 7000, "amount": 50000}]},
         "lines_not_allowed", "lines"),
        (reimbursement("c4", 0), "amount_zero", "amount.value"),
        (card("c5", lines=[{"account_number": 7000, "category_id": str(category),
                            "amount": 24500}]), "invalid_item", "lines.0"),
        (card("c6", lines=[{"category_id": "not-a-uuid", "amount": 24500}]),
         "invalid_item", "lines.0.category_id"),
        (card("c7", lines=[{"category_id": str(uuid.uuid4()), "amount": 24500}]),
         "category_unknown", "lines.0.category_id"),
        (card("d1", receipts=[{"url": "https://evil.example.net/r.pdf"}]),
         "receipt_host_not_allowed", "receipts.0.url"),
        (card("d2", receipts=[{"url": f"http://{RECEIPT_HOST}/r.pdf"}]),
         "receipt_host_not_allowed", "receipts.0.url"),
        (card("d3", receipts=[{"content_base64": "not base64!"}]),
         "receipt_unreadable", "receipts.0.content_base64"),
        (card("d4", receipts=[{"content_base64": too_big}]),
         "receipt_too_large", "receipts.0.content_base64"),
        (card("d5", receipts=[{"url": f"https://{RECEIPT_HOST}/r.pdf", "content_base64": "AA=="}]),
         "invalid_item", "receipts.0"),
        (card("d6", receipts=[inline_receipt()] * 11), "invalid_item", "receipts"),
        (card("ok"), "duplicate_in_batch", "external_id"),
        ("not an object", "invalid_item", "item"),
    ]  # fmt: skip


async def test_each_bad_item_is_refused_by_itself_with_its_reason(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    category = await add_category(db, "acme", 7000)
    bad = _bad_items(category)
    good = [
        card("ok"),
        card("ok-category", lines=[{"category_id": str(category), "amount": 24500}]),
    ]

    response = await post(client, *good, *(item for item, _, _ in bad))

    assert response.status_code == 202, response.text
    body = response.json()
    assert [i["external_id"] for i in body["items"]] == ["ok", "ok-category"]
    rejected = body["rejected"]
    assert [r["index"] for r in rejected] == list(range(2, 2 + len(bad)))
    for refusal, (item, code, field) in zip(rejected, bad, strict=True):
        expected_id = item.get("external_id") if isinstance(item, dict) else None
        if expected_id is not None and not 0 < len(expected_id) <= 255:
            expected_id = None
        assert (refusal["external_id"], refusal["code"]) == (expected_id, code), refusal
        assert field in refusal["errors"], refusal
        assert refusal["message"]
    # Only the good items were stored; the refusals are kept with the export.
    assert [i.external_id for i in await items_of(db, "acme")] == ["ok", "ok-category"]
    export = (await db.execute(select(Export))).scalar_one()
    assert export.rejected == rejected


async def test_no_acceptable_item_is_422_and_nothing_is_stored(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await post(
        client,
        card("a", amount={"value": 1.5, "currency": "DKK"}),
        card("b", lines=[]),
        key="k-bad",
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "items_rejected"
    assert problem["errors"] == {
        "items.0.amount.value": problem["rejected"][0]["errors"]["amount.value"],
        "items.1.lines": problem["rejected"][1]["errors"]["lines"],
    }
    assert [(r["index"], r["code"]) for r in problem["rejected"]] == [
        (0, "invalid_item"),
        (1, "lines_required"),
    ]
    assert await count_exports(db, "acme") == 0
    assert await items_of(db, "acme") == []
    assert await queued_runs(db, "acme") == 0

    # The key was not used up by a refused request.
    fixed = await post(client, card("a"), key="k-bad")
    assert fixed.status_code == 202


@pytest.mark.parametrize(
    "body",
    [{}, {"items": []}, {"items": "exp_1"}, {"items": [card()] * 501}],
)
async def test_a_malformed_request_is_422(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post(EXPORTS, json=body, headers=bearer("acme"))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "items" in response.json()["errors"]


async def test_an_idempotency_key_that_cannot_be_stored_is_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await post(client, card("exp_1"), key="k\x00-1")
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "Idempotency-Key" in response.json()["errors"]
    assert await items_of(db, "acme") == []


async def test_only_admins_export_and_only_their_own_company(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    member = await client.post(EXPORTS, json={"items": [card()]}, headers=bearer("acme", "member"))
    assert member.status_code == 403
    assert member.json()["code"] == "admin_required"
    other = await client.post(EXPORTS, json={"items": [card()]}, headers=bearer("globex"))
    assert other.status_code == 404
    anonymous = await client.post(EXPORTS, json={"items": [card()]})
    assert anonymous.status_code == 401
    assert await items_of(db, "acme") == []


async def test_a_burst_of_items_is_exported_by_one_run_that_waits_for_the_burst(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    # The first items after a quiet moment: the runner is woken to start at once.
    await post(client, card("exp_1"))
    assert await waiting_runs(db, "acme") == [None]
    # It started (and may miss what comes next)...
    await db.execute(
        text("UPDATE procrastinate_jobs SET status = 'doing' WHERE args->>'company_id' = 'acme'")
    )
    # ...and items keep coming: the next run waits a moment, and the burst rides on it.
    before = datetime.now(UTC)
    await post(client, card("exp_2"))
    after = datetime.now(UTC)
    await post(client, card("exp_3"))
    [at] = await waiting_runs(db, "acme")
    assert at is not None
    assert before + LINGER / 2 <= at <= after + LINGER
    assert [i.external_id for i in await items_of(db, "acme")] == ["exp_1", "exp_2", "exp_3"]

    # A quiet moment later, the next item wakes the runner at once again.
    await db.execute(
        text("UPDATE export_items SET created_at = created_at - :quiet WHERE company_id = 'acme'"),
        {"quiet": BURST * 2},
    )
    await db.execute(text("DELETE FROM procrastinate_jobs WHERE args->>'company_id' = 'acme'"))
    await post(client, card("exp_4"))
    assert await waiting_runs(db, "acme") == [None]


async def test_a_change_that_may_let_items_go_does_not_wait_out_a_burst(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    category = await add_category(db, "acme")
    await post(client, card("exp_1"))
    await db.execute(
        text("UPDATE procrastinate_jobs SET status = 'doing' WHERE args->>'company_id' = 'acme'")
    )
    await post(client, card("exp_2"))  # within the burst: the next run lingers
    [at] = await waiting_runs(db, "acme")
    assert at is not None

    # An admin renames the category the waiting items need: the lingering run starts now.
    response = await client.patch(
        f"/v1/companies/acme/categories/{category}", json={"name": "Taxi"}, headers=bearer("acme")
    )

    assert response.status_code == 200, response.text
    assert await waiting_runs(db, "acme") == [None]


def test_the_waits_of_bursts_are_spread_so_companies_do_not_move_in_step() -> None:
    waits = [linger() for _ in range(50)]
    assert all(LINGER / 2 <= wait <= LINGER for wait in waits)
    assert max(waits) - min(waits) > LINGER / 4


async def test_the_runner_is_queued_once_and_again_once_it_has_started(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await post(client, card("exp_1"))
    await post(client, card("exp_2"))
    assert await queued_runs(db, "acme") == 1

    # The runner started: the next item needs a new run (it may not see the new item).
    await db.execute(
        text("UPDATE procrastinate_jobs SET status = 'doing' WHERE args->>'company_id' = 'acme'")
    )
    await post(client, card("exp_3"))
    assert await queued_runs(db, "acme") == 1

    # Only repeats: nothing new to export, no run.
    await db.execute(text("DELETE FROM procrastinate_jobs WHERE status = 'todo'"))
    await post(client, card("exp_3"))
    assert await queued_runs(db, "acme") == 0
