"""Test set-up: one real PostgreSQL per session, schema built by the migrations, each test in a
transaction that is rolled back.

The database is, in order of preference: `TEST_DATABASE_URL` (a fresh database is created on
that server and dropped afterwards), a testcontainers PostgreSQL when a Docker engine answers,
or an embedded PostgreSQL (pgserver) in a temporary directory.

The real Alembic migrations run once per session, into a template database; every migrated
database a test or module asks for (`make_migrated_database`) is a copy of it (`CREATE
DATABASE ... TEMPLATE`). `make_database` still gives an empty one, for the tests that run the
migrations themselves (tests/test_migrations.py, the multi-process tests' `migrate`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import sql
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.auth import Role, issue_token
from app.config import Settings
from app.db import create_engine, libpq_url
from app.deps import get_session, get_session_factory, unit_of_work
from app.logging import configure_logging
from app.main import create_app
from app.migrations_util import upgrade_to_head
from app.runtime import Runtime, resolve

JWT_SECRET = SecretStr("test-secret-that-is-long-enough-for-hs256")
WEBHOOK_SECRET = SecretStr("whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3OA==")
ENCRYPTION_KEY = SecretStr("r6Q3pJcTtH2kqC0m6bJXc6GJw8b8a2mXq0L0c5bQ8yI=")


def _share_ssl_contexts() -> None:
    """One SSLContext per trust setting for every httpx client the tests build.

    httpx builds a new context for each client that is given no transport, reading the whole CA
    bundle each time (~25 ms). Each app lifespan builds two such clients (Dinero's and the
    receipt downloads'), and the suite starts a few hundred apps: ~10 s of a run went to
    re-reading the same certificates. httpx documents a shared context as the way to avoid
    this (`verify=ssl_context`); the context is the one httpx would build, keyed by everything
    its construction reads (`trust_env` and, when trusted, SSL_CERT_FILE / SSL_CERT_DIR), so
    verification is unchanged. Anything but the default `verify=True` without `cert` is built
    as before.
    """
    from httpx._config import create_ssl_context as build
    from httpx._transports import default as transports

    shared: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}

    def create_ssl_context(
        verify: ssl.SSLContext | str | bool = True, cert: Any = None, trust_env: bool = True
    ) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        key = (
            trust_env,
            os.environ.get("SSL_CERT_FILE") if trust_env else None,
            os.environ.get("SSL_CERT_DIR") if trust_env else None,
        )
        context = shared.get(key)
        if context is None:
            context = shared[key] = build(verify=True, trust_env=trust_env)
        return context

    transports.create_ssl_context = create_ssl_context  # type: ignore[attr-defined]


_share_ssl_contexts()


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


def _admin_url(url: str, dbname: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(libpq_url(url)).set(database=dbname).render_as_string(hide_password=False)


@contextlib.contextmanager
def _fresh_database_on(server_url: str, *, template: str | None = None) -> Iterator[str]:
    """Create a throw-away database on an existing server (empty, or a copy of `template`);
    drop it afterwards."""
    from sqlalchemy.engine import make_url

    name = f"dinero_bridge_test_{uuid.uuid4().hex[:10]}"
    maintenance = _admin_url(server_url, "postgres")
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(create)
    try:
        yield (
            make_url(libpq_url(server_url)).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def _postgres_server() -> Iterator[str]:
    """A server URL whose `postgres` database we may use to create test databases."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    if os.environ.get("TEST_USE_DOCKER", "auto") != "never" and _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    import pgserver

    tmp = tempfile.mkdtemp(prefix="dinero-bridge-test-pg-")
    server = pgserver.get_server(tmp, cleanup_mode="delete")
    try:
        _without_durability(server.get_uri())
        yield server.get_uri()
    finally:
        server.cleanup()


def _without_durability(url: str) -> None:
    """The embedded cluster is deleted after the session: it needs no crash safety.

    PostgreSQL's "non-durable settings": no fsync, commits acknowledged before their WAL is
    flushed, no full-page images. What every session sees is unchanged (a commit is visible
    at once either way); only a crash of PostgreSQL itself could lose data. Creating, copying
    and dropping the tests' databases and the final shutdown stop waiting for the disk
    (~2.5 s of fsyncs at the end of a run alone).
    """
    with psycopg.connect(url, autocommit=True) as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
        conn.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with _postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def migrated_template(postgres_server: str) -> Iterator[str]:
    """The name of a database the real Alembic migrations brought to head, copied by
    `make_migrated_database` and never used itself (a template may have no connections)."""
    from sqlalchemy.engine import make_url

    with _fresh_database_on(postgres_server) as url:
        upgrade_to_head(url)
        name = make_url(url).database
        assert name is not None
        yield name


@pytest.fixture(scope="session")
def make_migrated_database(
    postgres_server: str, migrated_template: str
) -> Iterator[Callable[[], str]]:
    """Factory for fresh databases at head: copies of the migrated template, dropped at the end."""
    stack = contextlib.ExitStack()

    def make() -> str:
        return stack.enter_context(_fresh_database_on(postgres_server, template=migrated_template))

    with stack:
        yield make


@pytest.fixture(scope="session")
def database_url(make_migrated_database: Callable[[], str]) -> str:
    """A database migrated to head (a copy of the template the real migrations built)."""
    return make_migrated_database()


@pytest.fixture(scope="session")
def make_database(postgres_server: str) -> Iterator[Any]:
    """Factory for extra empty databases (migration tests, readiness, `migrate`)."""
    stack = contextlib.ExitStack()

    def make() -> str:
        return stack.enter_context(_fresh_database_on(postgres_server))

    with stack:
        yield make


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_env": "development",
        "auth_jwt_secret": JWT_SECRET,
        "webhook_secret": WEBHOOK_SECRET,
        "token_encryption_keys": ENCRYPTION_KEY,
        "log_format": "console",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def make_runtime(database_url: str, **overrides: Any) -> Runtime:
    settings = make_settings(database_url=SecretStr(database_url), **overrides)
    return resolve(settings, database_url=None, public_url="http://testserver")


@pytest.fixture(scope="session")
def runtime(database_url: str) -> Runtime:
    return make_runtime(database_url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    db_engine = create_engine(database_url)
    yield db_engine
    await db_engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """The test's connection, inside an outer transaction that is always rolled back."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            if transaction.is_active:
                await transaction.rollback()


@pytest.fixture
async def db(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session on the test's connection; its commits become savepoints."""
    session = AsyncSession(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    try:
        yield session
    finally:
        await session.close()


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give a client talking to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def bind_to_connection(app: FastAPI, connection: AsyncConnection) -> None:
    """Every request's session joins the test's rolled-back transaction."""

    async def session_override() -> AsyncIterator[AsyncSession]:
        async with factory() as session, unit_of_work(session):
            yield session

    def factory() -> AsyncSession:
        return AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )

    app.dependency_overrides[get_session] = session_override
    app.dependency_overrides[get_session_factory] = lambda: factory


def bound_app(runtime: Runtime, engine: AsyncEngine, connection: AsyncConnection) -> FastAPI:
    """The app on the test's engine (no job queue, no sandbox), its sessions joining the
    test's rolled-back transaction."""
    application = create_app(runtime, engine=engine, open_job_queue=False, mount_sandbox=False)
    bind_to_connection(application, connection)
    return application


@pytest.fixture
async def app(runtime: Runtime, engine: AsyncEngine, connection: AsyncConnection) -> FastAPI:
    return bound_app(runtime, engine, connection)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as http:
        yield http


def bearer(company_id: str = "acme", role: Role = "admin", **kwargs: Any) -> dict[str, str]:
    token = issue_token(secret=JWT_SECRET, company_id=company_id, role=role, **kwargs)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
async def committed(
    make_migrated_database: Callable[[], str],
) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A database of the test module's own, where requests really commit: its URL and engine."""
    url = make_migrated_database()
    engine = create_engine(url)
    yield url, engine
    await engine.dispose()


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The service's logs, as JSON lines, written to this stream while the test runs."""
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    yield stream
    configure_logging("INFO", "console")


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """The JSON log lines written to `stream`, parsed."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
