"""The intake's store statement finds a request's items by their unique key, however many items
the company has: a lookup per request item, never a read of every item of the company's."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.exports import intake_store
from tests.exports.intake_support import add_category

HISTORY = 2000


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def _params(company: str, category: uuid.UUID) -> dict[str, Any]:
    item_id = str(uuid.uuid4())
    row = {
        "id": item_id,
        "external_id": "exp_new",
        "type": "card_expense",
        "voucher_date": "2026-11-03",
        "description": "Taxa",
        "currency": "DKK",
        "amount_minor": 24500,
        "dkk_amount_minor": 24500,
        "lines": [],
        "employee": {},
        "receipts": [],
        "category_ids": [str(category)],
    }
    return {
        "run_lock": jobs.export_run_lock(company),
        "company_id": company,
        "category_ids": "{" + str(category) + "}",
        "export_id": uuid.uuid4(),
        "source": "webhook",
        "idempotency_key": None,
        "request_hash": "h",
        "webhook_id": "msg_new",
        "item_ids": json.dumps([item_id]),
        "rejected": "[]",
        "response": "{}",
        "created_at": datetime.now(UTC),
        "items": json.dumps([row]),
        "blobs": "[]",
    }


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh statistics", "analyzed"])
@pytest.mark.parametrize(
    "statement",
    [intake_store._STORE_AT_ONCE, intake_store._STORE],
    ids=["store at once", "store"],
)
async def test_a_companys_items_are_looked_up_by_key_not_read_all(
    db: AsyncSession, statement: Any, analyzed: bool
) -> None:
    company = f"co-{uuid.uuid4().hex[:8]}"
    category = await add_category(db, company)
    await db.execute(
        text(
            "WITH old AS (INSERT INTO exports (id, company_id, source, item_ids, rejected, "
            "created_at) VALUES (gen_random_uuid(), :c, 'api', '[]', '[]', now()) RETURNING id) "
            "INSERT INTO export_items (id, company_id, export_id, external_id, type, status, "
            "step, voucher_date, description, currency, amount_minor, dkk_amount_minor, lines, "
            "employee, receipts, attempts, created_at, updated_at) "
            "SELECT gen_random_uuid(), :c, old.id, 'old_' || n, 'card_expense', 'booked', "
            "'booked', DATE '2026-06-01', 'Taxa', 'DKK', 100, 100, '[]', '{}', '[]', 1, "
            "now() - interval '90 days' + n * interval '1 minute', now() "
            "FROM old, generate_series(1, :n) AS n"
        ),
        {"c": company, "n": HISTORY},
    )
    if analyzed:
        await db.execute(text("ANALYZE export_items"))

    explained = await db.execute(
        text("EXPLAIN (FORMAT JSON) " + statement.text), _params(company, category)
    )
    [document] = explained.scalar_one()
    nodes = _nodes(document["Plan"])
    reads = [
        n
        for n in nodes
        if n.get("Relation Name") == "export_items" and n["Node Type"] != "ModifyTable"
    ]
    assert {(n["Node Type"], n.get("Index Name")) for n in reads} <= {
        ("Index Only Scan", "uq_export_items_company_id_type_external_id"),
        ("Index Scan", "uq_export_items_company_id_type_external_id"),
        # the burst check: the company's newest items, by creation time
        ("Index Only Scan", "ix_export_items_company_created"),
        ("Index Scan", "ix_export_items_company_created"),
    }, json.dumps(document["Plan"], indent=1)[:3000]
