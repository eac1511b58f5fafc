"""Everything needed to talk to Dinero for a connection: OAuth, tokens, pacing, the client."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.connection.models import ConnectionMethod, ConnectionStatus, DineroConnection
from app.crypto import TokenCipher
from app.dinero.client import DineroClient
from app.dinero.errors import DineroError, DineroOAuthError
from app.dinero.oauth import LegacyApiKeyAuth, TokenSet, VismaConnectOAuth
from app.dinero.pacing import (
    MARGIN_SECONDS,
    WINDOW_SECONDS,
    Claim,
    Lane,
    Pacer,
    PacerBusy,
    PacingRules,
    Reservation,
    Sleep,
    plan_slot,
)
from app.dinero.tokens import TokenProvider
from app.errors import AppError
from app.ops.metrics import DINERO_PACER_LATE, DINERO_PACER_WAIT, DINERO_RATE_LIMITED
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


REFUSED_CREDENTIALS = "Dinero refused the stored credentials; reconnect."


def require_connected(
    connection: DineroConnection | None, *, before: str, reauth: str | None = None
) -> DineroConnection:
    """The company's connection, or 409: `not_connected` ("Connect Dinero before …") when
    there is none or it is still pending, `reauth_required` when Dinero refused its credentials
    (`reauth`, or else the stored problem message, says what to do)."""
    if connection is None or connection.status in (
        ConnectionStatus.NOT_CONNECTED,
        ConnectionStatus.PENDING,
    ):
        raise NotConnected(f"Connect Dinero before {before}.")
    if connection.status == ConnectionStatus.REAUTH_REQUIRED:
        raise ReauthRequired(reauth or connection.problem_message or REFUSED_CREDENTIALS)
    return connection


LOCK_NAMESPACE = 0x50414345  # "PACE": advisory-lock namespace of the request pacer


def pacer_lock_key(organization_id: int) -> int:
    """The organization folded into a signed int4: the second key of the pacer's lock.

    Two organizations sharing a key (only if they differ above bit 32) merely share a lock.
    """
    folded = (organization_id ^ (organization_id >> 32)) & 0xFFFFFFFF
    return folded - (1 << 32) if folded >= 1 << 31 else folded


@dataclass(frozen=True)
class _Attempt:
    """One look at an organization's budget (times are the database's)."""

    now: datetime
    slot_id: int | None = None
    slot_at: datetime | None = None
    wait: float = 0.0
    """Seconds to sleep: until the reserved slot, or (no slot) until it is worth looking again."""
    busy: bool = False


def _lane(value: str) -> Lane:
    try:
        return Lane(value)
    except ValueError:  # written by a newer release: count it like an export
        return Lane.EXPORT


class PostgresPacer:
    """The exact sliding-window pacer of app/dinero/pacing.py, shared by every worker.

    Reservations are rows of `dinero_request_slots`. One is made in a short transaction holding
    `pg_advisory_xact_lock(LOCK_NAMESPACE, pacer_lock_key(organization_id))` (the two-int4 key
    space, which does not overlap the single-bigint keys such as the migrations lock; other
    two-key users pick other namespaces, e.g. the chart sync's "CHRT"); the caller then sleeps
    until its slot outside any transaction. All times come from the database's
    `clock_timestamp()`. Rows older than two windows are deleted by each reservation (an index
    range scan on the organization's oldest rows).

    A 429 sets `dinero_rate_budgets.paused_until`. New reservations start after it; a request
    that was already sleeping towards a slot the pause now covers reserves again instead of
    going out, so a 429 cannot cascade.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        limit_per_minute: int,
        *,
        window_seconds: float = WINDOW_SECONDS,
        margin_seconds: float = MARGIN_SECONDS,
        follow_up_share: float = 0.10,
        data_source_share: float = 0.5,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._engine = engine
        self.rules = PacingRules(
            limit=limit_per_minute,
            window=window_seconds,
            margin=margin_seconds,
            shares={Lane.FOLLOW_UP: follow_up_share, Lane.DATA_SOURCE: data_source_share},
        )
        self._sleep = sleep

    async def acquire(
        self, organization_id: int, lane: Lane = Lane.EXPORT, *, max_wait: float | None = None
    ) -> Claim:
        started: datetime | None = None
        replacing: int | None = None
        while True:
            attempt = await self._attempt(
                organization_id, lane, replacing=replacing, started=started, max_wait=max_wait
            )
            began = time.monotonic() + max(attempt.wait, 0.0)
            started = started or attempt.now
            replacing = None
            if attempt.busy:
                raise PacerBusy(organization_id, lane, attempt.wait)
            if attempt.slot_id is None or attempt.slot_at is None:
                await self._sleep(attempt.wait)  # a background lane: look again then
                continue
            if attempt.wait > 0:
                await self._sleep(attempt.wait)
                if await self._paused_past(organization_id, attempt.slot_at):
                    replacing = attempt.slot_id
                    continue
            waited = (attempt.slot_at - started).total_seconds()
            DINERO_PACER_WAIT.labels(lane=lane.value).observe(max(waited, 0.0))
            return Claim(organization_id, attempt.slot_id, began)

    async def answered(self, claim: Claim) -> None:
        if time.monotonic() - claim.began <= self.rules.margin:
            return  # the common case: no statement
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE dinero_request_slots"
                        " SET slot_at = greatest(slot_at, clock_timestamp()) WHERE id = :id"
                    ),
                    {"id": claim.handle},
                )
        except SQLAlchemyError as exc:  # the answer stands; only the window is less exact
            log.warning(
                "pacer_slot_not_moved", organization_id=claim.organization_id, error=str(exc)
            )
            return
        DINERO_PACER_LATE.inc()

    async def _attempt(
        self,
        organization_id: int,
        lane: Lane,
        *,
        replacing: int | None,
        started: datetime | None,
        max_wait: float | None,
    ) -> _Attempt:
        """Under the organization's lock: reserve a slot, or say when to look again."""
        org = {"org": organization_id}
        async with self._engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                {"ns": LOCK_NAMESPACE, "key": pacer_lock_key(organization_id)},
            )
            if replacing is not None:
                await conn.execute(
                    text("DELETE FROM dinero_request_slots WHERE id = :id"), {"id": replacing}
                )
            rows = (
                await conn.execute(
                    text(
                        """
                        SELECT n.now, b.paused_until, s.slot_at, s.lane
                        FROM (SELECT clock_timestamp() AS now) AS n
                        LEFT JOIN dinero_rate_budgets AS b ON b.organization_id = :org
                        LEFT JOIN LATERAL (
                            SELECT slot_at, lane FROM dinero_request_slots
                            WHERE organization_id = :org
                            ORDER BY slot_at DESC
                            LIMIT :limit
                        ) AS s ON true
                        ORDER BY s.slot_at DESC
                        """
                    ),
                    {**org, "limit": self.rules.limit},
                )
            ).all()
            now: datetime = rows[0].now

            def rel(moment: datetime) -> float:
                return (moment - now).total_seconds()

            paused = rows[0].paused_until
            plan = plan_slot(
                self.rules,
                lane,
                now=0.0,
                paused_until=None if paused is None else rel(paused),
                recent=[
                    Reservation(rel(r.slot_at), _lane(r.lane))
                    for r in rows
                    if r.slot_at is not None
                ],
            )
            if max_wait is not None and plan.eligible_at > rel(started or now) + max_wait:
                return _Attempt(now=now, wait=plan.eligible_at, busy=True)
            if plan.slot is None:
                return _Attempt(now=now, wait=plan.eligible_at)
            slot_at = now + timedelta(seconds=plan.slot)
            row = (
                await conn.execute(
                    text(
                        """
                        WITH expired AS (
                            DELETE FROM dinero_request_slots
                            WHERE organization_id = :org AND slot_at < clock_timestamp() - :keep
                        )
                        INSERT INTO dinero_request_slots (organization_id, slot_at, lane)
                        VALUES (:org, :slot_at, :lane)
                        RETURNING id, extract(epoch FROM slot_at - clock_timestamp()) AS wait
                        """
                    ),
                    {
                        **org,
                        "slot_at": slot_at,
                        "lane": lane.value,
                        "keep": timedelta(seconds=2 * self.rules.span),
                    },
                )
            ).one()
        return _Attempt(now=now, slot_id=row.id, slot_at=slot_at, wait=float(row.wait))

    async def _paused_past(self, organization_id: int, slot_at: datetime) -> bool:
        """Did a 429 pause the organization beyond this slot while we slept towards it?"""
        async with self._engine.connect() as conn:
            paused = (
                await conn.execute(
                    text(
                        "SELECT paused_until FROM dinero_rate_budgets WHERE organization_id = :org"
                    ),
                    {"org": organization_id},
                )
            ).scalar_one_or_none()
        return paused is not None and paused > slot_at

    async def penalize(self, organization_id: int, seconds: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    """
                    INSERT INTO dinero_rate_budgets AS b (organization_id, paused_until)
                    VALUES (:org, clock_timestamp() + :pause)
                    ON CONFLICT (organization_id) DO UPDATE
                    SET paused_until = greatest(b.paused_until, excluded.paused_until)
                    """
                ),
                {"org": organization_id, "pause": timedelta(seconds=seconds)},
            )
        DINERO_RATE_LIMITED.inc()
        log.warning("dinero_rate_limited", organization_id=organization_id, pause_seconds=seconds)


@dataclass
class DineroGateway:
    """Built once per process; hands out clients bound to one connection."""

    http: httpx.AsyncClient
    endpoints: DineroEndpoints
    cipher: TokenCipher
    sessionmaker: async_sessionmaker[AsyncSession]
    pacer: Pacer

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

    def client(
        self,
        organization_id: int,
        tokens: TokenProvider,
        lane: Lane = Lane.EXPORT,
        *,
        max_wait: float | None = None,
    ) -> DineroClient:
        return DineroClient(
            self.http,
            self.endpoints.api_url,
            organization_id,
            tokens,
            self.pacer,
            lane=lane,
            max_wait=max_wait,
        )

    def client_for(
        self,
        connection: DineroConnection,
        lane: Lane = Lane.EXPORT,
        *,
        max_wait: float | None = None,
    ) -> DineroClient:
        """A client for a connected company, refreshing its tokens as needed.

        `lane` says who waits for the requests (app.dinero.pacing.Lane); with `max_wait`, a
        request that cannot get a slot in time raises PacerBusy instead of waiting.
        """
        if connection.status == ConnectionStatus.REAUTH_REQUIRED:
            raise ReauthRequired(
                connection.problem_message or REFUSED_CREDENTIALS,
            )
        if connection.status != ConnectionStatus.CONNECTED or connection.organization_id is None:
            raise NotConnected("Connect Dinero first.")
        return self.client(
            connection.organization_id,
            ConnectionTokens(gateway=self, connection_id=connection.id),
            lane,
            max_wait=max_wait,
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
    "PacerBusy",
    "PostgresPacer",
    "ReauthRequired",
]
