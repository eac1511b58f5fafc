"""Database: the embedded PostgreSQL for development, the engine, sessions and the model base."""

from __future__ import annotations

import contextlib
import json
import re
import select
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import structlog
from sqlalchemy import DateTime, MetaData, event, func, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

log = structlog.get_logger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

EMBEDDED_DATABASE = "dinero_bridge"


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints predictably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


HANDLES_FILE = ".handle_pids.json"
"""pgserver's list of the processes using a data directory's server (the last one stops it)."""


def forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop the processes that died without saying so from pgserver's list of users; returns them.

    pgserver stops the server when its last user exits, and knows its users only from this
    list. A process killed (SIGKILL, a crash, a lost terminal) stays in it for good, so the
    server would never be stopped again. A pid that is gone, or that now belongs to a process
    started after the list was last written (a reused pid), is no user. Called before joining,
    under pgserver's own lock.
    """
    import psutil  # type: ignore[import-untyped]  # pgserver's dependency, no stubs
    from pgserver.postgres_server import PostgresServer

    path = pgdata / HANDLES_FILE
    with PostgresServer._lock:
        if not path.exists():
            return []
        try:
            pids = [int(pid) for pid in json.loads(path.read_text())]
        except (ValueError, TypeError):
            pids = []
        written_at = path.stat().st_mtime
        alive: list[int] = []
        for pid in pids:
            try:
                if psutil.Process(pid).create_time() <= written_at + 1:
                    alive.append(pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        dead = [pid for pid in pids if pid not in alive]
        if dead:
            path.write_text(json.dumps(alive))
        return dead


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL in `data_dir/postgres`; return a libpq URL.

    pgserver keeps one server per data directory and shares it between processes; it is
    stopped when the last process using it exits. A server left running by a process that was
    killed is reused, and (its dead user forgotten) stopped when this process exits.
    """
    import pgserver

    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    dead = forget_dead_handles(pgdata)
    if dead:
        log.warning(
            "embedded_postgres_left_running",
            detail="processes that exited uncleanly were still listed as its users; the "
            "server is reused and stopped when the last process using it exits",
            dead_pids=dead,
        )
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    exists = server.psql(
        f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';"  # noqa: S608
    )
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    uri: str = server.get_uri(EMBEDDED_DATABASE)
    return uri


def sqlalchemy_url(url: str) -> str:
    """Any postgres URL → the SQLAlchemy URL using psycopg 3 (async-capable)."""
    return re.sub(r"^postgres(ql)?(\+[a-z0-9]+)?://", "postgresql+psycopg://", url)


def libpq_url(url: str) -> str:
    """Any postgres URL → a plain libpq URL (for psycopg and procrastinate)."""
    return re.sub(r"^postgres(ql)?(\+[a-z0-9]+)?://", "postgresql://", url)


def redacted(url: str) -> str:
    """The URL with its password hidden, for log lines."""
    return make_url(sqlalchemy_url(url)).render_as_string(hide_password=True)


def _closed_by_server(driver_connection: Any) -> bool:
    """Whether an idle pooled connection was closed by the server, found without a round trip.

    An idle connection has nothing to read: once the server ended it (a restart, a failover,
    `pg_terminate_backend`, an idle timeout) its socket holds the server's last error message
    or end-of-file, so it polls readable (or psycopg already knows it is broken).
    """
    try:
        if driver_connection.closed or driver_connection.broken:
            return True
        fd = driver_connection.pgconn.socket
    except psycopg.Error:  # raised when the connection is unusable
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _replace_if_closed(_dbapi: Any, record: Any, _proxy: Any) -> None:
    if _closed_by_server(record.driver_connection):
        # The pool drops this connection and checks out another (a fresh one if need be).
        raise DisconnectionError("the server closed this pooled connection")


class KeepPreparedConnection(psycopg.AsyncConnection[Any]):
    """psycopg's connection, except that a rollback keeps the statements it has prepared.

    psycopg forgets every statement prepared on a connection at each rollback (and sends
    DEALLOCATE ALL), in case the transaction created or dropped what they name. The engine's
    connections never change the schema (migrations run on connections of their own, see
    migrations/env.py), and every session that only read ends with a rollback (SQLAlchemy's
    close): each one made the busiest statements on that connection, the webhook's store among
    them, be parsed and planned again for their next five uses (`prepare_threshold`).
    PostgreSQL keeps prepared statements through a rollback, so both sides stay in step.
    """

    async def rollback(self) -> None:
        # `_prepared` is psycopg's own statement cache (its PrepareManager; psycopg is pinned in
        # pyproject.toml, and tests/test_db_pool.py fails should it change). The rollback
        # clears an empty manager of the same kind instead, then ours is back.
        kept = self._prepared
        self._prepared = type(kept)()
        try:
            await super().rollback()
        finally:
            self._prepared = kept


POOL_SIZE = 20
"""Connections kept open: more than a busy request load holds at once on a small machine, so
connections are not opened and closed under load (each open costs a PostgreSQL backend)."""


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # hide_parameters: an error's message (and so its log line) names the statement, never the
    # values bound to it (employee names, descriptions, receipt bytes, tokens).
    # Instead of pool_pre_ping (a SELECT 1 round trip on every checkout), a connection the server
    # closed is found at checkout by polling its socket, and replaced (_replace_if_closed).
    options: dict[str, Any] = {
        "pool_size": POOL_SIZE,
        "max_overflow": 10,
        "pool_recycle": 30 * 60,
        "hide_parameters": True,
        # SQLAlchemy's psycopg dialect opens each connection with this (its connect arguments
        # from the URL, its adapters) in place of psycopg.AsyncConnection.connect.
        "connect_args": {"async_creator_fn": KeepPreparedConnection.connect},
    }
    connect_args = {**options["connect_args"], **kwargs.pop("connect_args", {})}
    options.update(kwargs, connect_args=connect_args)
    engine = create_async_engine(sqlalchemy_url(url), **options)
    if not options.get("pool_pre_ping"):
        event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def release_transaction(session: AsyncSession) -> None:
    """Commit a request's transaction that has only read so far, before a slow call outside the
    database (Dinero): no transaction, row lock or pooled connection is held while it answers.
    The handler's next statement begins a new transaction, committed or rolled back as usual.

    Only for reads: objects added or changed but not yet flushed are refused (a write already
    flushed would be committed early, so call this before writing anything).
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("release_transaction: the session holds unflushed writes")
    await session.commit()


@contextlib.asynccontextmanager
async def try_advisory_lock(engine: AsyncEngine, namespace: int, key: str) -> AsyncIterator[bool]:
    """Take a session-level advisory lock on a connection of its own, if it is free.

    Yields whether it was taken. No transaction is open while it is held (so the holder may
    wait on Dinero), and a worker that dies releases it with its connection. The connection is
    in autocommit: taking the lock and releasing it are one round trip each, no BEGIN or COMMIT
    around them.
    """
    params = {"ns": namespace, "key": key}
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        got = bool(
            (
                await conn.execute(text("SELECT pg_try_advisory_lock(:ns, hashtext(:key))"), params)
            ).scalar_one()
        )
        try:
            yield got
        finally:
            if got:
                await conn.execute(text("SELECT pg_advisory_unlock(:ns, hashtext(:key))"), params)
