"""The pool replaces a connection the server ended while it was idle, before a request uses it."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from app.db import create_engine


async def test_a_connection_ended_by_the_server_is_replaced_at_checkout(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    other = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # As a restart, a failover or an idle timeout ends it: the pooled connection is dead.
        async with other.connect() as admin:
            ended = await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            assert ended.scalar_one() is True
            await admin.commit()
            gone = text("SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = :pid)")
            while not (await admin.execute(gone, {"pid": first})).scalar_one():
                await admin.commit()  # a new snapshot of pg_stat_activity
                await asyncio.sleep(0.01)
        # The next request still gets an answer, from a new backend.
        async with engine.connect() as conn:
            second = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert (await conn.execute(text("SELECT 41 + 1"))).scalar_one() == 42
        assert second != first
    finally:
        await engine.dispose()
        await other.dispose()
