"""Tokens kept fresh: one refresh at a time across workers, reauth on refusal, key rotation,
and the shared per-organization request budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.companies.models import Company
from app.connection.gateway import (
    ConnectionTokens,
    DineroGateway,
    PostgresPacer,
    ReauthRequired,
)
from app.connection.models import ConnectionMethod, ConnectionStatus, DineroConnection
from app.crypto import TokenCipher
from app.db import create_engine, create_sessionmaker
from app.runtime import DineroEndpoints

TOKEN_URL = "https://connect.dinero.test/connect/token"
OLD_KEY = SecretStr(Fernet.generate_key().decode())
NEW_KEY = SecretStr(Fernet.generate_key().decode())


def endpoints() -> DineroEndpoints:
    return DineroEndpoints(
        api_url="https://api.dinero.test",
        authorize_url="https://connect.dinero.test/connect/authorize",
        token_url=TOKEN_URL,
        legacy_token_url="https://authz.dinero.test/token",
        revocation_url=None,
        client_id="isv_test",
        client_secret=SecretStr("s"),
        redirect_uri="http://testserver/cb",
        sandbox=False,
    )


@pytest.fixture(scope="module")
async def committed_engine(make_migrated_database: Callable[[], str]) -> AsyncIterator[AsyncEngine]:
    """A database of its own: these tests need real, committed, concurrent transactions."""
    url = make_migrated_database()
    engine = create_engine(url)
    yield engine
    await engine.dispose()


async def _connection(
    sessionmaker: async_sessionmaker[AsyncSession], cipher: TokenCipher, *, expired: bool
) -> DineroConnection:
    async with sessionmaker() as session, session.begin():
        company = f"co-{time.monotonic_ns()}"
        session.add(Company(id=company))
        await session.flush()
        conn = DineroConnection(
            company_id=company,
            status=ConnectionStatus.CONNECTED,
            method=ConnectionMethod.OAUTH,
            organization_id=100001,
            organization_name="Sandbox ApS",
            connected_at=datetime.now(UTC),
            access_token_enc=cipher.encrypt("old-access"),
            refresh_token_enc=cipher.encrypt("old-refresh"),
            access_expires_at=datetime.now(UTC) + timedelta(seconds=-5 if expired else 3600),
        )
        session.add(conn)
    return conn


def _gateway(engine: AsyncEngine, http: httpx.AsyncClient, keys: list[SecretStr]) -> DineroGateway:
    return DineroGateway(
        http=http,
        endpoints=endpoints(),
        cipher=TokenCipher(keys),
        sessionmaker=create_sessionmaker(engine),
        pacer=PostgresPacer(engine, 100),
    )


async def test_two_workers_refreshing_at_once_refresh_exactly_once(
    committed_engine: AsyncEngine,
) -> None:
    async with httpx.AsyncClient() as http:
        worker_a = _gateway(committed_engine, http, [OLD_KEY])
        worker_b = _gateway(committed_engine, http, [OLD_KEY])
        conn = await _connection(worker_a.sessionmaker, worker_a.cipher, expired=True)

        async def slow_refresh(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0.3)  # both workers are waiting on the row lock meanwhile
            return httpx.Response(
                200,
                json={
                    "access_token": "new-access",
                    "refresh_token": "new-refresh",
                    "expires_in": 3600,
                },
            )

        with respx.mock() as mock:
            route = mock.post(TOKEN_URL).mock(side_effect=slow_refresh)
            tokens = await asyncio.gather(
                ConnectionTokens(gateway=worker_a, connection_id=conn.id).get(),
                ConnectionTokens(gateway=worker_b, connection_id=conn.id).get(),
            )
    assert list(tokens) == ["new-access", "new-access"]
    assert route.call_count == 1
    assert b"old-refresh" in route.calls.last.request.content
    async with worker_a.sessionmaker() as session:
        stored = (
            await session.execute(select(DineroConnection).where(DineroConnection.id == conn.id))
        ).scalar_one()
    assert stored.refresh_token_enc is not None
    assert worker_a.cipher.decrypt(stored.refresh_token_enc).get_secret_value() == "new-refresh"


async def test_refused_refresh_marks_reauth_required(committed_engine: AsyncEngine) -> None:
    async with httpx.AsyncClient() as http:
        gateway = _gateway(committed_engine, http, [OLD_KEY])
        conn = await _connection(gateway.sessionmaker, gateway.cipher, expired=True)
        with respx.mock() as mock:
            mock.post(TOKEN_URL).respond(
                400, json={"error": "invalid_grant", "error_description": "token reused"}
            )
            with pytest.raises(ReauthRequired):
                await ConnectionTokens(gateway=gateway, connection_id=conn.id).get()
            # Later callers are told at once, without asking Dinero again.
            with pytest.raises(ReauthRequired):
                await ConnectionTokens(gateway=gateway, connection_id=conn.id).get()
            assert mock.calls.call_count == 1
    async with gateway.sessionmaker() as session:
        stored = (
            await session.execute(select(DineroConnection).where(DineroConnection.id == conn.id))
        ).scalar_one()
    assert stored.status == ConnectionStatus.REAUTH_REQUIRED
    assert stored.problem_message is not None
    assert "token reused" in stored.problem_message


async def test_key_rotation_reencrypts_on_use(committed_engine: AsyncEngine) -> None:
    async with httpx.AsyncClient() as http:
        old = _gateway(committed_engine, http, [OLD_KEY])
        conn = await _connection(old.sessionmaker, old.cipher, expired=False)
        rotated = _gateway(committed_engine, http, [NEW_KEY, OLD_KEY])
        token = await ConnectionTokens(gateway=rotated, connection_id=conn.id).get()
    assert token == "old-access"
    async with rotated.sessionmaker() as session:
        stored = (
            await session.execute(select(DineroConnection).where(DineroConnection.id == conn.id))
        ).scalar_one()
    new_only = TokenCipher([NEW_KEY])
    assert stored.access_token_enc is not None
    assert stored.refresh_token_enc is not None
    assert new_only.decrypt(stored.access_token_enc).get_secret_value() == "old-access"
    assert new_only.decrypt(stored.refresh_token_enc).get_secret_value() == "old-refresh"


async def test_pacer_budget_is_shared_across_workers(committed_engine: AsyncEngine) -> None:
    """A sliding window per organization, one for every worker (details: test_pacing_postgres)."""
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    first = PostgresPacer(committed_engine, 3, sleep=record)
    second = PostgresPacer(committed_engine, 3, sleep=record)
    org = 900_000 + time.monotonic_ns() % 1000
    await asyncio.gather(*(p.acquire(org) for p in [first, second] * 3))
    # Three go at once, three a window (60 s + 0.5 s margin) later, whichever worker asks.
    assert len(waits) == 3
    assert all(60.0 < wait <= 60.5 for wait in waits)
    await first.penalize(org, 300.0)
    await second.acquire(org)
    assert 299.0 < waits[-1] <= 300.0
