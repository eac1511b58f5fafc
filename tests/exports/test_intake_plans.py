"""The intake's store statements find a request's items by their unique key and its company's
waiting runner by its queueing lock, however many items, exports and waiting jobs there are: a
lookup per key, never a read of every item or export of the company's; in the plan for the
values at hand and in the generic plan a prepared statement settles on after a few uses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import TextClause, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as numbered_dialect
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


_OTHERS_WAITING = text(
    """
INSERT INTO procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args, status)
SELECT 'exports', 'exports.run', 'export-run:other-' || n, 'export-run:other-' || n,
       jsonb_build_object('company_id', 'other-' || n), 'todo'
FROM generate_series(1, :runners) AS n
"""
)
"""Other companies' runners waiting to start (a burst's linger, each)."""


async def _plan(
    db: AsyncSession, statement: TextClause, params: dict[str, Any], *, generic: bool
) -> dict[str, Any]:
    """The statement's plan for these values, or (`generic`) the plan PostgreSQL settles on for
    a prepared statement whatever its values, as psycopg's prepared statements get it."""
    if not generic:
        explained = await db.execute(text("EXPLAIN (FORMAT JSON) " + statement.text), params)
        [document] = explained.scalar_one()
        return cast(dict[str, Any], document["Plan"])
    compiled = statement.compile(dialect=numbered_dialect())  # type: ignore[no-untyped-call]
    names = list(compiled.positiontup or [])
    raw = await (await db.connection()).get_raw_connection()
    driver = cast(psycopg.AsyncConnection[Any], raw.driver_connection)
    await driver.execute(f"PREPARE intake_probe AS {compiled}")
    try:
        found = await (
            await driver.execute(
                "SELECT parameter_types FROM pg_prepared_statements WHERE name = 'intake_probe'"
            )
        ).fetchone()
        assert found is not None
        # EXECUTE's arguments take no bind parameters: the values go in as literals.
        arguments = sql.SQL(", ").join(
            sql.SQL("CAST({} AS {})").format(sql.Literal(params[name]), sql.SQL(kind))
            for name, kind in zip(names, found[0], strict=True)
        )
        await driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor = await driver.execute(
            sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE intake_probe({})").format(arguments)
        )
        row = await cursor.fetchone()
        await driver.execute("SET LOCAL plan_cache_mode = auto")
        assert row is not None
        [document] = row[0]
        return cast(dict[str, Any], document["Plan"])
    finally:
        await driver.execute("DEALLOCATE intake_probe")


def _reads(plan: dict[str, Any], table: str) -> list[dict[str, Any]]:
    return [
        n
        for n in _nodes(plan)
        if n.get("Relation Name") == table and n["Node Type"] != "ModifyTable"
    ]


def _summary(plan: dict[str, Any]) -> str:
    """The plan's table reads, for a failing assertion's message."""
    keys = ("Node Type", "Relation Name", "Index Name", "Index Cond", "Filter")
    reads = [{k: n.get(k) for k in keys} for n in _nodes(plan) if n.get("Relation Name")]
    return json.dumps(reads, indent=1)


# The generic plan is checked on analyzed tables, the state autovacuum keeps them in: before a
# table's first analysis, with no statistics to go by, PostgreSQL's generic plan may take any
# index on the company (while the table is still new, and small).
@pytest.mark.parametrize(
    ("analyzed", "generic"),
    [(False, False), (True, False), (True, True)],
    ids=["fresh statistics", "analyzed", "analyzed, generic plan"],
)
@pytest.mark.parametrize(
    "statement",
    [intake_store._STORE_AT_ONCE, intake_store._STORE],
    ids=["store at once", "store"],
)
async def test_a_companys_items_and_exports_are_looked_up_by_key_not_read_all(
    db: AsyncSession, statement: TextClause, analyzed: bool, generic: bool
) -> None:
    company = f"co-{uuid.uuid4().hex[:8]}"
    category = await add_category(db, company)
    await add_booked_history(db, [company], HISTORY)
    await db.execute(_OTHERS_WAITING, {"runners": HISTORY})
    if analyzed:
        await db.execute(text("ANALYZE export_items"))
        await db.execute(text("ANALYZE exports"))
        await db.execute(text("ANALYZE procrastinate_jobs"))

    plan = await _plan(db, statement, await _params(company, category), generic=generic)

    shown = _summary(plan)
    assert {(n["Node Type"], n.get("Index Name")) for n in _reads(plan, "export_items")} <= {
        ("Index Only Scan", "uq_export_items_company_id_type_external_id"),
        ("Index Scan", "uq_export_items_company_id_type_external_id"),
        # the burst check: the company's newest items, by creation time
        ("Index Only Scan", "ix_export_items_company_created"),
        ("Index Scan", "ix_export_items_company_created"),
    }, shown
    # A webhook id or Idempotency-Key seen before is found by the export's INSERT (its unique
    # indexes), never by a read that could go over the company's exports.
    assert _reads(plan, "exports") == [], shown
    # The company's waiting runner: by its queueing lock, not among every waiting job.
    [runner] = _reads(plan, "procrastinate_jobs")
    assert runner.get("Index Name") == "procrastinate_jobs_queueing_lock_idx_v1", shown
