"""The intake's store: a whole request written in one statement, one round trip.

The company (first sight), the export (ON CONFLICT: a webhook id or Idempotency-Key seen before
stores nothing), the items whose categories all exist (ON CONFLICT: a repeated item stays as it
is) and their inline receipts, in one statement; whether the company's export runner is already
waiting to start comes back with it (`app.jobs.hold_waiting_job_sql`), so the common request
needs no defer of its own.

The statement goes straight to the request's psycopg connection (`Link.driver`), prepared by
psycopg on each connection after a few uses; not in pipeline mode, whose machinery costs more
CPU than the BEGIN round trip it would save. The webhook's fast path holds a pooled connection
without an SQLAlchemy session (`OnConnection`): the common request (nothing seen before, every
category known, the company's runner waiting) is stored by one statement in autocommit, its own
transaction (`_STORE_AT_ONCE`: one round trip, no BEGIN or COMMIT); any other stores nothing
there and goes through BEGIN, `_STORE` and COMMIT, with a session on the same connection and
transaction made only for what follows in the rarer cases (a replay, a repeated item, an
unknown category, the runner's wake-up).
"""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from base64 import b64encode
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, cast

import psycopg
from psycopg import pq
from sqlalchemy import Table, select, text, tuple_
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from app import jobs
from app.exports.models import ExportItem, ItemStatus, ItemType
from app.exports.schemas import ExportAccepted
from app.exports.validation import Candidate

BURST = timedelta(seconds=1)
"""A company's items stored within this of its previous ones are a burst: the runner's wake-up
then waits `LINGER`, so the burst's next items are exported by the same pass (one pass every
few seconds of a burst, not one a request); the first items after a quiet moment wake it at
once."""

LINGER = timedelta(seconds=5)
"""How long a wake-up within a burst waits. A pass costs the worker ~3.5-4 ms of CPU and
PostgreSQL ~1.5 ms whatever it exports (`bench.job_cost`), and a plain `serve` runs it in the
API's event loop: at 1 s, `bench.webhook_intake` had a pass for every ~23 webhooks; at 5 s, one
for every ~50-60. A burst's items reach Dinero at most this much later. Export throughput is
unaffected: a burst that outpaces the company's exports finds the next pass waiting when the
running one ends."""


def linger() -> timedelta:
    """This burst's wait: between half of `LINGER` and all of it, at random.

    With one wait for all, companies in a burst moved in step: a worker starts the passes that
    are due at its next poll (`WORKER_POLL_SECONDS`), so the bench's twenty companies' passes
    started together, then their next wake-ups came together, and so on, and each such clump
    held a plain `serve`'s event loop for ~100 ms. Spread, they drift apart within a few
    passes and a poll starts a few of them.
    """
    return LINGER * random.uniform(0.5, 1.0)  # noqa: S311 - spreading, not a secret


# Core tables: this path is hot (benchmarked); Core skips the ORM's unit of work.
_items = cast(Table, ExportItem.__table__)

# The parts both statements share: the request's known categories, its items as a record set,
# the items' INSERT (selecting from `r`, the record set, and `new_export`) and the receipts'.
_KNOWN_CATEGORIES = """known_categories AS (
    SELECT id FROM categories
    WHERE company_id = :company_id AND id = ANY(CAST(:category_ids AS uuid[]))
),"""
_ITEM_RECORD = """AS r(
        id uuid, external_id text, type export_item_type, voucher_date date, description text,
        currency text, amount_minor bigint, dkk_amount_minor bigint, lines jsonb,
        employee jsonb, receipts jsonb, category_ids uuid[])"""
_INSERT_ITEMS = """\
    INSERT INTO export_items (id, company_id, export_id, external_id, type, status, step,
                              voucher_date, description, currency, amount_minor,
                              dkk_amount_minor, lines, employee, receipts, attempts)
    SELECT r.id, :company_id, new_export.id, r.external_id, r.type, 'queued', 'new',
           r.voucher_date, r.description, r.currency, r.amount_minor, r.dkk_amount_minor,
           r.lines, r.employee, r.receipts, 0
"""
_NEW_BLOBS = """new_blobs AS (
    INSERT INTO export_receipt_blobs (id, item_id, content, created_at)
    SELECT b.id, b.item_id, decode(b.content, 'base64'), :created_at
    FROM json_to_recordset(CAST(:blobs AS json)) AS b(id uuid, item_id uuid, content text)
    WHERE b.item_id IN (SELECT id FROM new_items)
)"""

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
{_KNOWN_CATEGORIES}
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
{_INSERT_ITEMS}    FROM new_export, jsonb_to_recordset(CAST(:items AS jsonb)) {_ITEM_RECORD}
    WHERE r.category_ids <@ ARRAY(SELECT id FROM known_categories)
    ORDER BY r.type, r.external_id
    ON CONFLICT (company_id, type, external_id) DO NOTHING
    RETURNING id
),
{_NEW_BLOBS}
SELECT EXISTS (SELECT FROM new_export) AS stored,
       ARRAY(SELECT id FROM new_items) AS inserted,
       ARRAY(SELECT id FROM known_categories) AS known,
       EXISTS (SELECT FROM queued_run) AS run_queued,
       EXISTS (SELECT FROM export_items
               WHERE company_id = :company_id
                 AND created_at > now() - make_interval(secs => {BURST.total_seconds()})
       ) AS in_burst
"""  # noqa: S608 - the only interpolations are app.jobs' constant fragment and BURST
)
_STORE_SQL = str(_STORE.compile(dialect=psycopg_dialect()))  # type: ignore[no-untyped-call]
"""The statement with psycopg's `%(name)s` placeholders, compiled once."""

# The common request, in one statement that is its own transaction (autocommit): it stores
# the request only when nothing more is to be done for it (the webhook id or Idempotency-Key
# not seen, every category known, no item stored before, the company's runner waiting to
# start and held until the statement's commit), and nothing otherwise (false); then the
# request goes through `_STORE` and what follows it, in a transaction, as if this had not
# been tried. A webhook id or Idempotency-Key seen before is left to the export's INSERT (ON
# CONFLICT DO NOTHING: no export, so no items, and false): its unique indexes are probed by
# the INSERT anyway, and a lookup of its own depended on the plan (as one OR over both keys,
# the generic plan read every export the company had made; as two, one of them still did
# while the table's statistics were from when it was small). The items are a plain INSERT: a
# request storing the same item at this moment makes this one fail (unique violation, nothing
# stored) instead of storing an answer that would need correcting.
_STORE_AT_ONCE = text(
    f"""
WITH queued_run AS ({jobs.hold_waiting_job_sql("run_lock")}),
{_KNOWN_CATEGORIES}
request_items AS (
    SELECT * FROM jsonb_to_recordset(CAST(:items AS jsonb)) {_ITEM_RECORD}
),
at_once AS (
    SELECT EXISTS (SELECT FROM queued_run)
       AND (SELECT count(*) FROM known_categories)
           = cardinality(CAST(:category_ids AS uuid[]))
       -- Each request item looked up by the items' unique key (LATERAL ... LIMIT 1 keeps it
       -- a lookup per item: as a join, the planner hashed every item the company has).
       AND NOT EXISTS (
           SELECT FROM request_items r, LATERAL (
               SELECT FROM export_items e
               WHERE e.company_id = :company_id AND e.type = r.type
                 AND e.external_id = r.external_id
               LIMIT 1) AS seen)
       AS go
),
new_company AS (
    INSERT INTO companies (id) SELECT :company_id FROM at_once WHERE go
    ON CONFLICT (id) DO NOTHING
),
new_export AS (
    INSERT INTO exports (id, company_id, source, idempotency_key, request_hash, webhook_id,
                         item_ids, rejected, response, created_at)
    SELECT :export_id, :company_id, :source, :idempotency_key, :request_hash, :webhook_id,
           CAST(:item_ids AS jsonb), CAST(:rejected AS jsonb), CAST(:response AS jsonb),
           :created_at
    FROM at_once WHERE go
    ON CONFLICT DO NOTHING
    RETURNING id
),
new_items AS (
{_INSERT_ITEMS}    FROM new_export, request_items AS r
    ORDER BY r.type, r.external_id
    RETURNING id
),
{_NEW_BLOBS}
SELECT EXISTS (SELECT FROM new_export)
"""  # noqa: S608 - the only interpolation is app.jobs' constant fragment
)
_STORE_AT_ONCE_SQL = str(_STORE_AT_ONCE.compile(dialect=psycopg_dialect()))  # type: ignore[no-untyped-call]


async def _stored_at_once(link: OnConnection, params: dict[str, Any]) -> bool:
    """`_STORE_AT_ONCE` on the link's connection in autocommit (one round trip, no BEGIN or
    COMMIT of its own): whether it stored the request, committed."""
    driver = await link.driver()
    await driver.set_autocommit(True)
    try:
        found = await (await driver.execute(_STORE_AT_ONCE_SQL, params)).fetchone()
    except psycopg.errors.UniqueViolation:
        return False  # stored by another request at this moment: sorted out by `_STORE`
    finally:
        await link.end_autocommit()
    return bool(found and found[0])


@dataclass(frozen=True)
class Stored:
    stored: bool
    """False: the webhook id or Idempotency-Key is known already; nothing was stored."""
    inserted: set[uuid.UUID]
    known_categories: set[uuid.UUID]
    run_queued: bool
    """The company's runner is waiting to start (and cannot start before this commits)."""
    in_burst: bool = False
    """Items of the company's were stored within `BURST` before these (app/exports/intake.py:
    the runner's wake-up then waits for the burst's next items)."""


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Link(Protocol):
    """The request's transaction: its psycopg connection, and a session in the same transaction."""

    async def driver(self) -> psycopg.AsyncConnection[Any]: ...

    async def session(self) -> AsyncSession: ...


class OnSession:
    """A session's transaction (the routes' `SessionDep`, committed or rolled back by it)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def driver(self) -> psycopg.AsyncConnection[Any]:
        raw = await (await self._session.connection()).get_raw_connection()
        return cast(psycopg.AsyncConnection[Any], raw.driver_connection)

    async def session(self) -> AsyncSession:
        return self._session


class OnConnection:
    """A pooled connection's own transaction, begun by psycopg at the first statement; a session
    joins it only when asked for one (`session`)."""

    def __init__(
        self,
        connection: AsyncConnection,
        driver: psycopg.AsyncConnection[Any],
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        self._connection = connection
        self._driver = driver
        self._sessionmaker = sessionmaker
        self._session: AsyncSession | None = None

    async def driver(self) -> psycopg.AsyncConnection[Any]:
        return self._driver

    async def session(self) -> AsyncSession:
        if self._session is None:
            # SQLAlchemy's BEGIN is no statement for psycopg: the session's statements go on in
            # the transaction psycopg began, and its commit is that transaction's.
            self._session = self._sessionmaker(bind=self._connection)
        return self._session

    def untouched(self) -> bool:
        """No statement has run on the connection for this request yet."""
        return (
            self._session is None
            and self._driver.pgconn.transaction_status == pq.TransactionStatus.IDLE
        )

    async def end_autocommit(self) -> None:
        try:
            await self._driver.set_autocommit(False)
        except psycopg.Error:
            # Not given back to the pool in autocommit: a connection that cannot leave it is
            # dropped (the request's error, if any, stands).
            await self._connection.invalidate()
            raise

    async def commit(self) -> None:
        if self._session is not None:
            await self._session.commit()
        else:
            await self._driver.commit()

    async def rollback(self) -> None:
        if self._session is not None:
            await self._session.close()  # rolls its transaction back
        if self._driver.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            # A connection broken meanwhile cannot roll back: the pool drops it when it is
            # given back (its own rollback fails), and the request's error stands.
            with contextlib.suppress(psycopg.Error):
                await self._driver.rollback()


@contextlib.asynccontextmanager
async def on_connection(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[OnConnection]:
    """A connection from the engine's pool: committed when the block ends, rolled back if it
    raises, then given back to the pool. A session, when one is needed, is `sessionmaker`'s."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        link = OnConnection(
            connection, cast(psycopg.AsyncConnection[Any], raw.driver_connection), sessionmaker
        )
        try:
            yield link
            await link.commit()
        except BaseException:
            await link.rollback()
            raise


def parameters(
    *,
    body: ExportAccepted,
    answer: dict[str, Any],
    answer_text: str,
    company_id: str,
    candidates: list[Candidate],
    request_hash: str,
    idempotency_key: str | None,
    webhook_id: str | None,
) -> dict[str, Any]:
    """Both store statements' parameters for a request."""
    # Every value as text (arrays as array literals, the receipts as JSON with base64 contents):
    # psycopg's array dumpers cost ~0.15 ms per request for the four arrays this once took
    # (uuid[] x 3 and bytea[]), text ~0.01 ms.
    blobs = [
        {"id": str(blob_id), "item_id": str(c.id), "content": b64encode(content).decode("ascii")}
        for c in candidates
        for blob_id, content in c.blobs
    ]
    return {
        "run_lock": jobs.export_run_lock(company_id),
        "company_id": company_id,
        "category_ids": "{" + ",".join(str(c) for c in _category_ids(candidates)) + "}",
        "export_id": body.id,
        "source": body.source,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "webhook_id": webhook_id,
        "item_ids": dumps([item["id"] for item in answer["items"]]),
        "rejected": dumps(answer["rejected"]),
        "response": answer_text,
        "created_at": body.created_at,
        "items": dumps([c.row for c in candidates]),
        "blobs": dumps(blobs),
    }


def _category_ids(candidates: list[Candidate]) -> list[uuid.UUID]:
    return sorted(set().union(*(c.category_ids for c in candidates)))


async def store(link: Link, params: dict[str, Any], candidates: list[Candidate]) -> Stored:
    """The request (`parameters`, made of these candidates) in one statement on the link."""
    if isinstance(link, OnConnection) and link.untouched() and await _stored_at_once(link, params):
        return Stored(
            stored=True,
            inserted={c.id for c in candidates},
            known_categories=set(_category_ids(candidates)),
            run_queued=True,
        )
    # The request's own connection and transaction (committed or rolled back with the request).
    cursor = await (await link.driver()).execute(_STORE_SQL, params)
    found = await cursor.fetchone()
    assert found is not None  # the statement's last SELECT gives one row
    stored, inserted, known, run_queued, in_burst = found
    return Stored(
        stored=stored,
        inserted=set(inserted),
        known_categories=set(known),
        run_queued=run_queued,
        in_burst=in_burst,
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
