"""Everything needed to talk to Dinero for a connection: OAuth, tokens, pacing, the client."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.connection.models import ConnectionMethod, ConnectionStatus, DineroConnection
from app.crypto import TokenCipher
from app.dinero.client import DineroClient
from app.dinero.errors import DineroError, DineroOAuthError
from app.dinero.oauth import LegacyApiKeyAuth, TokenSet, VismaConnectOAuth
from app.dinero.tokens import TokenProvider
from app.errors import AppError
from app.runtime import DineroEndpoints

log = structlog.get_logger(__name__)

# Refresh this long before Dinero's expiry, so a request never leaves with a dying token.
REFRESH_MARGIN = timedelta(seconds=120)


class ReauthRequired(AppError):
    status = 409
    code = "reauth_required"
    title = "Dinero must be reconnected"


class NotConnected(AppError):
    status = 409
    code = "not_connected"
    title = "Dinero is not connected"


class PostgresPacer:
    """Even spacing of requests per organization, shared by every worker through one row.

    Each request reserves the next free slot (`next_slot_at`) atomically and sleeps until it;
    a 429 pushes the organization's next slot past the penalty for everyone.
    """

    def __init__(self, engine: AsyncEngine, limit_per_minute: int) -> None:
        self._engine = engine
        self.interval = timedelta(seconds=60.0 / limit_per_minute)

    async def acquire(self, organization_id: int) -> None:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    text(
                        """
                        INSERT INTO dinero_rate_budgets AS b (organization_id, next_slot_at)
                        VALUES (:org, clock_timestamp() + :interval)
                        ON CONFLICT (organization_id) DO UPDATE
                        SET next_slot_at = greatest(b.next_slot_at, clock_timestamp()) + :interval
                        RETURNING extract(epoch FROM
                            (b.next_slot_at - :interval) - clock_timestamp()) AS wait
                        """
                    ),
                    {"org": organization_id, "interval": self.interval},
                )
            ).one()
        wait = float(row.wait)
        if wait > 0:
            await asyncio.sleep(wait)

    async def penalize(self, organization_id: int, seconds: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    """
                    INSERT INTO dinero_rate_budgets AS b (organization_id, next_slot_at)
                    VALUES (:org, clock_timestamp() + :pause)
                    ON CONFLICT (organization_id) DO UPDATE
                    SET next_slot_at = greatest(b.next_slot_at, clock_timestamp() + :pause)
                    """
                ),
                {"org": organization_id, "pause": timedelta(seconds=seconds)},
            )
        log.warning("dinero_rate_limited", organization_id=organization_id, pause_seconds=seconds)


@dataclass
class DineroGateway:
    """Built once per process; hands out clients bound to one connection."""

    http: httpx.AsyncClient
    endpoints: DineroEndpoints
    cipher: TokenCipher
    sessionmaker: async_sessionmaker[AsyncSession]
    pacer: PostgresPacer

    @property
    def oauth(self) -> VismaConnectOAuth:
        return VismaConnectOAuth(
            self.http,
            client_id=self.endpoints.client_id,
            client_secret=self.endpoints.client_secret,
            authorize_url=self.endpoints.authorize_url,
            token_url=self.endpoints.token_url,
            redirect_uri=self.endpoints.redirect_uri,
            revoke_url=self.endpoints.revocation_url,
        )

    @property
    def legacy(self) -> LegacyApiKeyAuth:
        return LegacyApiKeyAuth(
            self.http,
            client_id=self.endpoints.client_id,
            client_secret=self.endpoints.client_secret,
            token_url=self.endpoints.legacy_token_url,
        )

    def client(self, organization_id: int, tokens: TokenProvider) -> DineroClient:
        return DineroClient(self.http, self.endpoints.api_url, organization_id, tokens, self.pacer)

    def client_for(self, connection: DineroConnection) -> DineroClient:
        """A client for a connected company, refreshing its tokens as needed."""
        if connection.status == ConnectionStatus.REAUTH_REQUIRED:
            raise ReauthRequired(
                connection.problem_message or "Dinero refused the stored credentials; reconnect.",
            )
        if connection.status != ConnectionStatus.CONNECTED or connection.organization_id is None:
            raise NotConnected("Connect Dinero first.")
        return self.client(
            connection.organization_id, ConnectionTokens(gateway=self, connection_id=connection.id)
        )


class ConnectionTokens:
    """Access tokens of one stored connection, refreshed one at a time across all processes.

    The refresh happens while holding the connection's row lock (`SELECT … FOR UPDATE`), so a
    rotating refresh token is used exactly once: a second worker waits, then sees the new token
    generation and uses that instead of refreshing again.
    """

    def __init__(self, *, gateway: DineroGateway, connection_id: uuid.UUID) -> None:
        self._gateway = gateway
        self._id = connection_id
        self._token: SecretStr | None = None
        self._generation: int | None = None
        self._expires_at: datetime | None = None

    async def get(self, force_refresh: bool = False) -> str:
        now = datetime.now(UTC)
        if (
            not force_refresh
            and self._token is not None
            and self._expires_at is not None
            and self._expires_at - REFRESH_MARGIN > now
        ):
            return self._token.get_secret_value()
        return (await self._refresh_locked(force=force_refresh)).get_secret_value()

    async def _refresh_locked(self, *, force: bool) -> SecretStr:
        gateway = self._gateway
        cipher = gateway.cipher
        async with gateway.sessionmaker() as session, session.begin():
            conn = (
                await session.execute(
                    select(DineroConnection)
                    .where(DineroConnection.id == self._id)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if conn is None or conn.status == ConnectionStatus.NOT_CONNECTED:
                raise NotConnected("Dinero was disconnected.")
            if conn.status == ConnectionStatus.REAUTH_REQUIRED:
                raise ReauthRequired(conn.problem_message or "Reconnect Dinero.")
            now = datetime.now(UTC)
            fresh = (
                conn.access_token_enc is not None
                and conn.access_expires_at is not None
                and conn.access_expires_at - REFRESH_MARGIN > now
            )
            someone_else_refreshed = (
                self._generation is not None and conn.token_generation != self._generation
            )
            if fresh and (not force or someone_else_refreshed):
                assert conn.access_token_enc is not None
                self._remember(conn, cipher.decrypt(conn.access_token_enc))
                self._reencrypt_if_rotated(conn)
                assert self._token is not None
                return self._token
            try:
                tokens = await self._new_tokens(conn)
            except DineroOAuthError as exc:
                if exc.error in {"invalid_grant", "invalid_client", "unauthorized_client"}:
                    conn.status = ConnectionStatus.REAUTH_REQUIRED
                    conn.problem_code = "reauth_required"
                    conn.problem_message = (
                        "Dinero no longer accepts this connection's credentials "
                        f"({exc.dinero_message or 'invalid_grant'}); reconnect Dinero."
                    )
                    conn.access_token_enc = None
                    log.warning("dinero_reauth_required", connection_id=str(conn.id))
                    await session.flush()
                    # Commit the state change, then tell the caller.
                    await session.commit()
                    raise ReauthRequired(conn.problem_message) from exc
                raise
            conn.access_token_enc = cipher.encrypt(tokens.access_token)
            if tokens.refresh_token is not None and conn.method == ConnectionMethod.OAUTH:
                conn.refresh_token_enc = cipher.encrypt(tokens.refresh_token)
            conn.access_expires_at = tokens.expires_at
            conn.token_generation += 1
            self._reencrypt_if_rotated(conn)
            self._remember(conn, tokens.access_token)
            log.info("dinero_token_refreshed", connection_id=str(conn.id))
            return tokens.access_token

    async def _new_tokens(self, conn: DineroConnection) -> TokenSet:
        cipher = self._gateway.cipher
        if conn.method == ConnectionMethod.API_KEY:
            if conn.api_key_enc is None:
                raise NotConnected("No API key is stored; reconnect Dinero.")
            return await self._gateway.legacy.password_grant(cipher.decrypt(conn.api_key_enc))
        if conn.refresh_token_enc is None:
            raise ReauthRequired("No refresh token is stored; reconnect Dinero.")
        return await self._gateway.oauth.refresh(cipher.decrypt(conn.refresh_token_enc))

    def _remember(self, conn: DineroConnection, token: SecretStr) -> None:
        self._token = token
        self._generation = conn.token_generation
        self._expires_at = conn.access_expires_at

    def _reencrypt_if_rotated(self, conn: DineroConnection) -> None:
        """Key rotation: anything still under an old key is re-encrypted on use."""
        cipher = self._gateway.cipher
        for field in ("access_token_enc", "refresh_token_enc", "api_key_enc"):
            value: bytes | None = getattr(conn, field)
            if value is not None and not cipher.is_current(value):
                setattr(conn, field, cipher.rotate(value))


__all__ = [
    "ConnectionTokens",
    "DineroError",
    "DineroGateway",
    "NotConnected",
    "PostgresPacer",
    "ReauthRequired",
]
