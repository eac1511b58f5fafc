"""The intake's store: a whole request written in one statement, one round trip.

The company (first sight), the export (ON CONFLICT: a webhook id or Idempotency-Key seen before
stores nothing), the items whose categories all exist (ON CONFLICT: a repeated item stays as it
is) and their inline receipts, in one statement; whether the company's export runner is already
waiting to start comes back with it (`app.jobs.hold_waiting_job_sql`), so the common request
needs no defer of its own.

The statement is sent on the session's psycopg connection in pipeline mode: the transaction's
BEGIN goes in the same round trip (SQLAlchemy's execute waits for BEGIN's answer first), and
psycopg prepares the statement on each connection after a few uses.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from sqlalchemy import Table, select, text, tuple_
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.exports.models import ExportItem, ItemStatus, ItemType
from app.exports.schemas import ExportAccepted
from app.exports.validation import Candidate

# Core tables: this path is hot (benchmarked); Core skips the ORM's unit of work.
_items = cast(Table, ExportItem.__table__)

# Sorted by the items' unique key so concurrent batches take the key locks in the same order.
# Foreign keys between rows inserted by one statement are checked at its end, so they hold.
#
# `queued_run` saves the wake-up (a savepoint and two more round trips) when the company's
# runner is already waiting to start: that job is held until this transaction commits, so the
# runner cannot start before these items are visible to it. A job being claimed at this very
# moment is re-checked after its claim commits ('doing': no longer waiting), and then the
# caller wakes the runner as usual.
_STORE = text(
    f"""
WITH queued_run AS ({jobs.hold_waiting_job_sql("run_lock")}),
new_company AS (
    INSERT INTO companies (id) VALUES (:company_id) ON CONFLICT (id) DO NOTHING
),
known_categories AS (
    SELECT id FROM categories
    WHERE company_id = :company_id AND id = ANY(CAST(:category_ids AS uuid[]))
),
new_export AS (
    INSERT INTO exports (id, company_id, source, idempotency_key, request_hash, webhook_id,
                         item_ids, rejected, response, created_at)
    VALUES (:export_id, :company_id, :source, :idempotency_key, :request_hash, :webhook_id,
            CAST(:item_ids AS jsonb), CAST(:rejected AS jsonb), CAST(:response AS jsonb),
            :created_at)
    ON CONFLICT DO NOTHING
    RETURNING id
),
new_items AS (
    INSERT INTO export_items (id, company_id, export_id, external_id, type, status, step,
                              voucher_date, description, currency, amount_minor,
                              dkk_amount_minor, lines, employee, receipts, attempts)
    SELECT r.id, :company_id, new_export.id, r.external_id, r.type, 'queued', 'new',
           r.voucher_date, r.description, r.currency, r.amount_minor, r.dkk_amount_minor,
           r.lines, r.employee, r.receipts, 0
    FROM new_export, jsonb_to_recordset(CAST(:items AS jsonb)) AS r(
        id uuid, external_id text, type export_item_type, voucher_date date, description text,
        currency text, amount_minor bigint, dkk_amount_minor bigint, lines jsonb,
        employee jsonb, receipts jsonb, category_ids uuid[])
    WHERE r.category_ids <@ ARRAY(SELECT id FROM known_categories)
    ORDER BY r.type, r.external_id
    ON CONFLICT (company_id, type, external_id) DO NOTHING
    RETURNING id
),
new_blobs AS (
    INSERT INTO export_receipt_blobs (id, item_id, content, created_at)
    SELECT b.id, b.item_id, b.content, :created_at
    FROM unnest(CAST(:blob_ids AS uuid[]), CAST(:blob_item_ids AS uuid[]),
                CAST(:blob_contents AS bytea[])) AS b(id, item_id, content)
    WHERE b.item_id IN (SELECT id FROM new_items)
)
SELECT EXISTS (SELECT FROM new_export) AS stored,
       ARRAY(SELECT id FROM new_items) AS inserted,
       ARRAY(SELECT id FROM known_categories) AS known,
       EXISTS (SELECT FROM queued_run) AS run_queued
"""  # noqa: S608 - the only interpolation is app.jobs' constant fragment
)
_STORE_SQL = str(_STORE.compile(dialect=psycopg_dialect()))  # type: ignore[no-untyped-call]
"""The statement with psycopg's `%(name)s` placeholders, compiled once."""


@dataclass(frozen=True)
class Stored:
    stored: bool
    """False: the webhook id or Idempotency-Key is known already; nothing was stored."""
    inserted: set[uuid.UUID]
    known_categories: set[uuid.UUID]
    run_queued: bool
    """The company's runner is waiting to start (and cannot start before this commits)."""


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def store(
    session: AsyncSession,
    *,
    body: ExportAccepted,
    answer: dict[str, Any],
    company_id: str,
    candidates: list[Candidate],
    request_hash: str,
    idempotency_key: str | None,
    webhook_id: str | None,
) -> Stored:
    blobs = [(blob_id, c.id, content) for c in candidates for blob_id, content in c.blobs]
    params = {
        "run_lock": jobs.export_run_lock(company_id),
        "company_id": company_id,
        "category_ids": sorted(set().union(*(c.category_ids for c in candidates))),
        "export_id": body.id,
        "source": body.source,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "webhook_id": webhook_id,
        "item_ids": dumps([item["id"] for item in answer["items"]]),
        "rejected": dumps(answer["rejected"]),
        "response": dumps(answer),
        "created_at": body.created_at,
        "items": dumps([c.row for c in candidates]),
        "blob_ids": [b[0] for b in blobs],
        "blob_item_ids": [b[1] for b in blobs],
        "blob_contents": [b[2] for b in blobs],
    }
    # The session's own connection and transaction (committed or rolled back with the request).
    raw = await (await session.connection()).get_raw_connection()
    driver = cast(psycopg.AsyncConnection[Any], raw.driver_connection)
    async with driver.pipeline(), driver.cursor() as cursor:
        await cursor.execute(_STORE_SQL, params)
        found = await cursor.fetchone()
    assert found is not None  # the statement's last SELECT gives one row
    stored, inserted, known, run_queued = found
    return Stored(
        stored=stored, inserted=set(inserted), known_categories=set(known), run_queued=run_queued
    )


async def existing_items(
    session: AsyncSession, company_id: str, keys: list[tuple[ItemType, str]]
) -> dict[tuple[ItemType, str], tuple[uuid.UUID, ItemStatus]]:
    if not keys:
        return {}
    result = await session.execute(
        select(_items.c.type, _items.c.external_id, _items.c.id, _items.c.status).where(
            _items.c.company_id == company_id,
            tuple_(_items.c.type, _items.c.external_id).in_(keys),
        )
    )
    return {(kind, ext): (item_id, status) for kind, ext, item_id, status in result.tuples()}
