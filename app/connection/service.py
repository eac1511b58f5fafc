"""Connecting, checking and disconnecting a company's Dinero organization."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.connection.gateway import DineroGateway
from app.connection.models import (
    ConnectionMethod,
    ConnectionStatus,
    DineroConnection,
    OAuthState,
    get_connection,
)
from app.crypto import DecryptionFailed
from app.db import release_transaction
from app.dinero.errors import DineroError, DineroNotPro, DineroOAuthError
from app.dinero.models import Organization
from app.dinero.oauth import TokenSet, new_code_verifier
from app.dinero.pacing import INTERACTIVE_MAX_WAIT_SECONDS, Lane, PacerBusy
from app.dinero.tokens import StaticTokenProvider
from app.errors import AppError, Conflict, DineroBusy

log = structlog.get_logger(__name__)

STATE_TTL = timedelta(minutes=15)


class ConnectError(AppError):
    """Connecting failed; the code says why in a way the admin can act on."""

    status = 400
    code = "connect_failed"
    title = "Dinero could not be connected"
    company_id: str | None = None


class ExportHistory(Protocol):
    """Has any of the company's exports gone to Dinero? The exports answer this
    (`app.exports.readiness.exported_to_dinero`, handed in by `create_app`), so the connection
    need not know export items."""

    async def __call__(self, session: AsyncSession, company_id: str) -> bool: ...


def _hash_state(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


async def _check_switch(
    session: AsyncSession,
    existing: DineroConnection | None,
    organization_id: int,
    *,
    confirm_switch: bool,
    exported: ExportHistory,
) -> None:
    """Refuse to point a company whose exports are in Dinero at other books, unless confirmed."""
    if (
        existing is None
        or existing.organization_id is None
        or existing.organization_id == organization_id
        or confirm_switch
    ):
        return
    if await exported(session, existing.company_id):
        raise Conflict(
            f"This company's exports are in Dinero organization {existing.organization_id}. "
            f"Connecting it to {organization_id} sends future exports to other books; "
            'send "confirm_switch": true if that is intended.',
            code="organization_switch_requires_confirmation",
            extra={"current_organization_id": existing.organization_id},
        )


async def start_oauth(
    *,
    session: AsyncSession,
    gateway: DineroGateway,
    company_id: str,
    organization_id: int,
    confirm_switch: bool,
    exported: ExportHistory,
) -> tuple[DineroConnection, str]:
    """Record a single-use, expiring state bound to the company; return the approval URL."""
    existing = await get_connection(session=session, company_id=company_id)
    await _check_switch(
        session, existing, organization_id, confirm_switch=confirm_switch, exported=exported
    )
    state = secrets.token_urlsafe(32)
    verifier = new_code_verifier()
    session.add(
        OAuthState(
            state_hash=_hash_state(state),
            company_id=company_id,
            organization_id=organization_id,
            code_verifier_enc=gateway.cipher.encrypt(verifier),
            confirm_switch=confirm_switch,
            expires_at=datetime.now(UTC) + STATE_TTL,
        )
    )
    if existing is None:
        existing = DineroConnection(company_id=company_id, status=ConnectionStatus.PENDING)
        session.add(existing)
    elif existing.status == ConnectionStatus.NOT_CONNECTED:
        existing.status = ConnectionStatus.PENDING
    await session.flush()
    request = gateway.oauth.authorization_url(state=state, code_verifier=verifier)
    return existing, request.url


async def verify_organization(
    *, gateway: DineroGateway, organization_id: int, tokens: TokenSet
) -> Organization:
    """The approved login must reach the organization, and the organization must have Pro."""
    client = gateway.client(
        organization_id,
        StaticTokenProvider(tokens.access_token),
        Lane.INTERACTIVE,
        max_wait=INTERACTIVE_MAX_WAIT_SECONDS,
    )
    try:
        organizations = await client.list_organizations()
        organization = next((o for o in organizations if o.id == organization_id), None)
        if organization is None:
            raise ConnectError(
                f"The Dinero login that approved the connection has no access to organization "
                f"(Firma ID) {organization_id}. Sign in to Dinero with a user of that "
                "organization, or check the Firma ID shown bottom-left in Dinero.",
                code="organization_not_accessible",
            )
        if organization.is_pro is False:
            raise ConnectError(
                f"Dinero organization {organization_id} ({organization.name}) does not have "
                "Dinero Pro, which Dinero requires for integrations. Upgrade it in Dinero, "
                "then connect again.",
                code="organization_not_pro",
                status=403,
            )
        # An organization-scoped call proves the token really works there (and Pro again).
        await client.accounting_years()
    except DineroNotPro as exc:
        raise ConnectError(
            f"Dinero organization {organization_id} does not have Dinero Pro, which Dinero "
            "requires for integrations.",
            code="organization_not_pro",
            status=403,
            extra={"dinero_message": exc.dinero_message},
        ) from exc
    except PacerBusy as busy:
        # An AppError, so the OAuth callback shows it like its other refusals.
        raise DineroBusy.of(busy) from busy
    except DineroError as exc:
        raise ConnectError(
            f"Dinero could not be reached to check organization {organization_id}: {exc}",
            code="dinero_unavailable",
            status=503,
            extra={"dinero_message": exc.dinero_message},
        ) from exc
    return organization


async def _store_connected(
    session: AsyncSession,
    existing: DineroConnection | None,
    company_id: str,
    *,
    gateway: DineroGateway,
    method: ConnectionMethod,
    organization: Organization,
    tokens: TokenSet,
    api_key: SecretStr | None,
) -> DineroConnection:
    """The company's connection (a new row when it has none) connected to `organization`
    with these tokens (encrypted), flushed, and a chart sync requested."""
    conn = existing or DineroConnection(company_id=company_id)
    if existing is None:
        session.add(conn)
    cipher = gateway.cipher
    conn.status = ConnectionStatus.CONNECTED
    conn.method = method
    conn.organization_id = organization.id
    conn.organization_name = organization.name
    conn.connected_at = datetime.now(UTC)
    conn.problem_code = None
    conn.problem_message = None
    _clear_refused_attempt(conn)
    conn.access_token_enc = cipher.encrypt(tokens.access_token)
    conn.access_expires_at = tokens.expires_at
    conn.refresh_token_enc = (
        cipher.encrypt(tokens.refresh_token)
        if tokens.refresh_token is not None and method == ConnectionMethod.OAUTH
        else None
    )
    conn.api_key_enc = cipher.encrypt(api_key) if api_key is not None else None
    conn.token_generation = (conn.token_generation or 0) + 1
    await session.flush()
    await jobs.request_chart_sync(session, company_id)
    log.info("dinero_connected", company_id=company_id, organization_id=organization.id)
    return conn


async def connect_api_key(
    *,
    session: AsyncSession,
    gateway: DineroGateway,
    company_id: str,
    organization_id: int,
    api_key: SecretStr,
    confirm_switch: bool,
    exported: ExportHistory,
) -> DineroConnection:
    """Check the key against the organization at once; store it only if everything holds."""
    existing = await get_connection(session=session, company_id=company_id)
    await _check_switch(
        session, existing, organization_id, confirm_switch=confirm_switch, exported=exported
    )
    await release_transaction(session)  # only read so far: none stays open while Dinero answers
    try:
        tokens = await gateway.legacy.password_grant(api_key)
    except DineroOAuthError as exc:
        raise ConnectError(
            "Dinero did not accept this API key. Create a new key in Dinero "
            "(Indstillinger > Integrationer) for this organization and try again.",
            code="api_key_rejected",
            extra={"dinero_message": exc.dinero_message},
        ) from exc
    except DineroError as exc:
        raise ConnectError(
            f"Dinero could not be reached to check the API key: {exc}",
            code="dinero_unavailable",
            status=503,
        ) from exc
    try:
        organization = await verify_organization(
            gateway=gateway, organization_id=organization_id, tokens=tokens
        )
    except ConnectError as exc:
        if exc.code == "organization_not_accessible":
            exc.code = "api_key_wrong_organization"
            exc.detail = (
                f"This API key belongs to a different Dinero organization than {organization_id}."
            )
        raise
    return await _store_connected(
        session,
        existing,
        company_id,
        gateway=gateway,
        method=ConnectionMethod.API_KEY,
        organization=organization,
        tokens=tokens,
        api_key=api_key,
    )


@dataclass(frozen=True)
class ConsumedState:
    company_id: str
    organization_id: int
    code_verifier: SecretStr
    confirm_switch: bool


async def consume_state(
    *, session: AsyncSession, gateway: DineroGateway, state: str | None
) -> ConsumedState:
    """Use up the state once: unknown, expired and reused states are refused."""
    if not state:
        raise ConnectError("The callback carries no state.", code="oauth_state_unknown")
    state_hash = _hash_state(state)
    now = datetime.now(UTC)
    row = (
        await session.execute(
            update(OAuthState)
            .where(OAuthState.state_hash == state_hash, OAuthState.used_at.is_(None))
            .values(used_at=now)
            .returning(OAuthState)
        )
    ).scalar_one_or_none()
    if row is None:
        known = (
            await session.execute(select(OAuthState).where(OAuthState.state_hash == state_hash))
        ).scalar_one_or_none()
        if known is None:
            raise ConnectError(
                "This approval link is unknown. Start connecting Dinero again.",
                code="oauth_state_unknown",
            )
        reused = ConnectError(
            "This approval was already used. Start connecting Dinero again.",
            code="oauth_state_reused",
        )
        reused.company_id = known.company_id
        raise reused
    if row.expires_at <= now:
        expired = ConnectError(
            "The approval took too long and has expired. Start connecting Dinero again.",
            code="oauth_state_expired",
        )
        expired.company_id = row.company_id
        raise expired
    return ConsumedState(
        company_id=row.company_id,
        organization_id=row.organization_id,
        code_verifier=gateway.cipher.decrypt(row.code_verifier_enc),
        confirm_switch=row.confirm_switch,
    )


async def finish_oauth(
    *,
    session: AsyncSession,
    gateway: DineroGateway,
    consumed: ConsumedState,
    organization: Organization,
    tokens: TokenSet,
    exported: ExportHistory,
) -> DineroConnection:
    existing = await get_connection(session=session, company_id=consumed.company_id)
    await _check_switch(
        session,
        existing,
        consumed.organization_id,
        confirm_switch=consumed.confirm_switch,
        exported=exported,
    )
    return await _store_connected(
        session,
        existing,
        consumed.company_id,
        gateway=gateway,
        method=ConnectionMethod.OAUTH,
        organization=organization,
        tokens=tokens,
        api_key=None,
    )


async def abandon_pending(*, session: AsyncSession, company_id: str) -> None:
    """A failed approval leaves nothing half-connected behind."""
    conn = await get_connection(session=session, company_id=company_id)
    if conn is not None and conn.status == ConnectionStatus.PENDING:
        conn.status = ConnectionStatus.NOT_CONNECTED
        await session.flush()


MAX_ATTEMPT_TEXT = 2000
"""Refusal texts may quote what the callback carried (error_description): kept bounded."""


async def record_refused_attempt(
    *,
    session: AsyncSession,
    company_id: str,
    code: str,
    message: str,
    dinero_message: str | None,
) -> None:
    """Keep why the company's last attempt to connect was refused, until one succeeds.

    Only the attempt is recorded: the status, credentials and organization stay as they were,
    so a working connection keeps working. A company that never started connecting has no row
    and nothing to record.
    """
    conn = await get_connection(session=session, company_id=company_id)
    if conn is None:
        return
    conn.attempt_failed_at = datetime.now(UTC)
    conn.attempt_problem_code = code
    conn.attempt_problem_message = message[:MAX_ATTEMPT_TEXT]
    conn.attempt_dinero_message = dinero_message[:MAX_ATTEMPT_TEXT] if dinero_message else None
    await session.flush()


def _clear_refused_attempt(conn: DineroConnection) -> None:
    conn.attempt_failed_at = None
    conn.attempt_problem_code = None
    conn.attempt_problem_message = None
    conn.attempt_dinero_message = None


async def disconnect(
    *, session: AsyncSession, gateway: DineroGateway, company_id: str
) -> SecretStr | None:
    """Destroy the credentials; keep the history. Returns the refresh token to revoke.

    Nothing is sent to Dinero here: the caller commits first, then hands the token to
    `revoke_after_disconnect`, so a revocation never happens for a disconnect that did not
    commit, and a slow Dinero never holds the row's transaction open.
    """
    conn = await get_connection(session=session, company_id=company_id)
    if conn is None:
        return None
    refresh = conn.refresh_token_enc
    conn.status = ConnectionStatus.NOT_CONNECTED
    conn.access_token_enc = None
    conn.refresh_token_enc = None
    conn.api_key_enc = None
    conn.access_expires_at = None
    conn.problem_code = None
    conn.problem_message = None
    _clear_refused_attempt(conn)
    await session.execute(
        update(OAuthState)
        .where(OAuthState.company_id == company_id, OAuthState.used_at.is_(None))
        .values(used_at=datetime.now(UTC))
    )
    await session.flush()
    log.info("dinero_disconnected", company_id=company_id)
    if refresh is None:
        return None
    try:
        return gateway.cipher.decrypt(refresh)
    except DecryptionFailed:
        # A lost key must not block disconnecting; the token cannot be revoked then.
        log.warning("dinero_revoke_skipped", company_id=company_id, reason="undecryptable")
        return None


async def revoke_after_disconnect(
    *, gateway: DineroGateway, company_id: str, refresh_token: SecretStr
) -> None:
    """Best effort, after the disconnect committed: ask Dinero to revoke the refresh token.

    Never raises: the token is already gone from our side, and Dinero expires it on its own.
    """
    try:
        revoked = await gateway.oauth.revoke(refresh_token)
    except DineroError as exc:
        log.warning("dinero_revoke_failed", company_id=company_id, error=str(exc))
        return
    except Exception as exc:  # a background task must not fail after the response was sent
        log.exception("dinero_revoke_failed", company_id=company_id, error=repr(exc))
        return
    if revoked:
        log.info("dinero_token_revoked", company_id=company_id)
