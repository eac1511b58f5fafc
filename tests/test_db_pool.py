"""The pool replaces a connection the server ended while it was idle, before a request uses it."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine, create_sessionmaker


async def _end_backend(admin_engine: AsyncEngine, pid: int) -> None:
    """End a backend as the server would, and wait until it is gone."""
    async with admin_engine.connect() as admin:
        ended = await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert ended.scalar_one() is True
        await admin.commit()
        gone = text("SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = :pid)")
        while not (await admin.execute(gone, {"pid": pid})).scalar_one():
            await admin.commit()  # a new snapshot of pg_stat_activity
            await asyncio.sleep(0.01)


async def test_a_connection_ended_by_the_server_is_replaced_at_checkout(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    other = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # As a restart, a failover or an idle timeout ends it: the pooled connection is dead.
        await _end_backend(other, first)
        # The next request still gets an answer, from a new backend.
        async with engine.connect() as conn:
            second = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert (await conn.execute(text("SELECT 41 + 1"))).scalar_one() == 42
        assert second != first
    finally:
        await engine.dispose()
        await other.dispose()


async def test_a_rollback_keeps_the_statements_prepared_on_the_connection(
    database_url: str,
) -> None:
    """Every session that only read ends with a rollback; psycopg's own connection forgets what
    it prepared there (DEALLOCATE ALL), so the busiest statements were planned again and again.
    The engine's connections keep them, and go on using them."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    prepared = text("SELECT name FROM pg_prepared_statements WHERE statement LIKE '%41 + %'")
    uses = text(
        "SELECT generic_plans + custom_plans FROM pg_prepared_statements "
        "WHERE statement LIKE '%41 + %'"
    )
    busy = text("SELECT 41 + :n")
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            for _ in range(6):  # psycopg prepares a statement at its fifth use
                await session.execute(busy, {"n": 1})
            names = (await session.execute(prepared)).scalars().all()
            assert len(names) == 1
            used = (await session.execute(uses)).scalar_one()
        # The session closed without a commit: rolled back. Same connection (a pool of one):
        async with sessionmaker() as session:
            assert (await session.execute(prepared)).scalars().all() == names
            assert (await session.execute(busy, {"n": 2})).scalar_one() == 43
            # ...and that use ran the prepared statement, not a new one.
            assert (await session.execute(prepared)).scalars().all() == names
            assert (await session.execute(uses)).scalar_one() == used + 1
    finally:
        await engine.dispose()


async def test_psycopgs_own_connection_forgets_its_statements_at_a_rollback(
    database_url: str,
) -> None:
    """What the engine's connection class is for: without it the statements are gone."""
    import psycopg

    from app.db import libpq_url

    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        for _ in range(6):
            await conn.execute("SELECT 41 + %s", (1,))
        count = "SELECT count(*) FROM pg_prepared_statements"
        assert (await (await conn.execute(count)).fetchone()) == (1,)
        await conn.rollback()
        assert (await (await conn.execute(count)).fetchone()) == (0,)


async def test_the_job_pool_replaces_a_connection_ended_by_the_server(database_url: str) -> None:
    """The job pool hands out a new connection in place of one the server ended (a restart,
    a failover, an idle timeout), as the engine does."""
    from app import jobs
    from app.db import libpq_url

    pool = jobs.create_job_pool(libpq_url(database_url), max_size=1)
    other = create_engine(database_url, pool_size=1, max_overflow=0)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            first = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone() or [0])[0]
        await _end_backend(other, first)
        async with pool.connection() as conn:
            second = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone() or [0])[0]
        assert second not in (0, first)
    finally:
        await pool.close()
        await other.dispose()
