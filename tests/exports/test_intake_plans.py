"""The intake's store statement finds a request's items by their unique key, however many items
the company has: a lookup per request item, never a read of every item of the company's."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.exports import intake, intake_store
from app.exports.validation import ReceiptRules, check_items
from app.receipts import ReceiptFetcher
from tests.exports.intake_support import add_category, card
from tests.stored import add_booked_history

HISTORY = 2000


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


async def _params(company: str, category: uuid.UUID) -> dict[str, Any]:
    """What the intake sends for one new card expense (its own checks and encoding)."""
    line = {"category_id": str(category), "tax_code": "I25", "amount": 24500}
    async with httpx.AsyncClient() as http:
        rules = ReceiptRules(fetcher=ReceiptFetcher(http, []))
        candidates, refusals = await check_items(
            [card("exp_new", lines=[line])], company_id=company, rules=rules
        )
    assert refusals == []
    body = intake._answer(
        export_id=uuid.uuid4(),
        source="webhook",
        created_at=datetime.now(UTC),
        candidates=candidates,
        refusals=refusals,
        repeated={},
    )
    answer = body.model_dump(mode="json")
    return intake_store.parameters(
        body=body,
        answer=answer,
        answer_text=intake_store.dumps(answer),
        company_id=company,
        candidates=candidates,
        request_hash="h",
        idempotency_key=None,
        webhook_id="msg_new",
    )


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
    await add_booked_history(db, [company], HISTORY)
    if analyzed:
        await db.execute(text("ANALYZE export_items"))

    explained = await db.execute(
        text("EXPLAIN (FORMAT JSON) " + statement.text), await _params(company, category)
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
