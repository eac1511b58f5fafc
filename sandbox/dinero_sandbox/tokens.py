"""Tokens as Visma Connect and Dinero's legacy authz server issue them.

A *grant* is one approval (a login consenting for a client, or an API key exchanged); access
tokens, refresh tokens and the authorization code all belong to one grant, so revoking a grant
(code reuse, revocation endpoint) ends them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from dinero_sandbox.config import Clock, SandboxConfig
from dinero_sandbox.errors import OAuthError

READ_SCOPE = "dineropublicapi:read"
WRITE_SCOPE = "dineropublicapi:write"
OFFLINE_SCOPE = "offline_access"
OIDC_SCOPES = frozenset({"openid", "profile", "email"})
KNOWN_SCOPES = frozenset({READ_SCOPE, WRITE_SCOPE, OFFLINE_SCOPE}) | OIDC_SCOPES
LEGACY_SCOPES = frozenset({"read", "write"})


@dataclass
class Grant:
    """One approval: who (login or API key), for which client, with which scopes."""

    id: str
    client_id: str
    scopes: frozenset[str]
    kind: Literal["oauth", "legacy"]
    login_email: str | None = None
    organization_id: int | None = None  # legacy: the API key's organization
    revoked: bool = False

    @property
    def can_read(self) -> bool:
        return READ_SCOPE in self.scopes or "read" in self.scopes

    @property
    def can_write(self) -> bool:
        return WRITE_SCOPE in self.scopes or "write" in self.scopes


@dataclass
class AccessToken:
    token: str
    grant: Grant
    expires_at: datetime
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    grant: Grant
    expires_at: datetime
    used_at: datetime | None = None
    revoked: bool = False
    children: list[str] = field(default_factory=list)


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    login_email: str
    code_challenge: str | None
    expires_at: datetime
    nonce: str | None = None
    used: bool = False
    grant: Grant | None = None


def pkce_s256(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) without padding (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenStore:
    """Issues, checks, rotates and revokes tokens."""

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.grants: dict[str, Grant] = {}

    def clear(self) -> None:
        self.codes.clear()
        self.access.clear()
        self.refresh.clear()
        self.grants.clear()

    # ---------------------------------------------------------------------------------------
    # Issuing

    def new_grant(
        self,
        *,
        client_id: str,
        scopes: frozenset[str],
        kind: Literal["oauth", "legacy"],
        login_email: str | None = None,
        organization_id: int | None = None,
    ) -> Grant:
        grant = Grant(
            id=secrets.token_hex(8),
            client_id=client_id,
            scopes=scopes,
            kind=kind,
            login_email=login_email,
            organization_id=organization_id,
        )
        self.grants[grant.id] = grant
        return grant

    def issue_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        scopes: frozenset[str],
        login_email: str,
        code_challenge: str | None,
        nonce: str | None,
    ) -> str:
        code = secrets.token_urlsafe(32)
        self.codes[code] = AuthorizationCode(
            code=code,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            login_email=login_email,
            code_challenge=code_challenge,
            expires_at=self.clock.now()
            + timedelta(seconds=self.config.authorization_code_lifetime_seconds),
            nonce=nonce,
        )
        return code

    def issue_access(self, grant: Grant, lifetime: int | None = None) -> AccessToken:
        seconds = lifetime if lifetime is not None else self._access_lifetime(grant)
        token = AccessToken(
            token=secrets.token_urlsafe(32),
            grant=grant,
            expires_at=self.clock.now() + timedelta(seconds=seconds),
        )
        self.access[token.token] = token
        return token

    def issue_refresh(self, grant: Grant) -> RefreshToken:
        token = RefreshToken(
            token=secrets.token_urlsafe(48),
            grant=grant,
            expires_at=self.clock.now()
            + timedelta(seconds=self.config.refresh_token_lifetime_seconds),
        )
        self.refresh[token.token] = token
        return token

    def _access_lifetime(self, grant: Grant) -> int:
        if grant.kind == "legacy":
            return self.config.legacy_token_lifetime_seconds
        return self.config.access_token_lifetime_seconds

    def token_response(
        self,
        grant: Grant,
        *,
        refresh: RefreshToken | None,
        issuer: str,
        nonce: str | None = None,
        client_secret: str | None = None,
    ) -> dict[str, Any]:
        access = self.issue_access(grant)
        body: dict[str, Any] = {
            "access_token": access.token,
            "token_type": "Bearer",
            "expires_in": self._access_lifetime(grant),
        }
        if grant.kind == "oauth":
            body["scope"] = " ".join(sorted(grant.scopes))
        if refresh is not None:
            body["refresh_token"] = refresh.token
        if "openid" in grant.scopes and client_secret is not None and grant.login_email:
            body["id_token"] = self._id_token(grant, issuer, nonce, client_secret)
        return body

    def _id_token(self, grant: Grant, issuer: str, nonce: str | None, secret: str) -> str:
        """An OpenID Connect ID token signed HS256 with the client secret."""
        now = int(self.clock.now().timestamp())
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": hashlib.sha256((grant.login_email or "").encode()).hexdigest()[:32],
            "aud": grant.client_id,
            "iat": now,
            "exp": now + self.config.access_token_lifetime_seconds,
            "email": grant.login_email,
        }
        if nonce:
            claims["nonce"] = nonce
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(
            secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256
        ).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    # ---------------------------------------------------------------------------------------
    # Grants at the token endpoint

    def redeem_code(
        self, *, client_id: str, code: str, redirect_uri: str | None, verifier: str | None
    ) -> tuple[AuthorizationCode, Grant]:
        """`authorization_code` grant: single use, short-lived, PKCE-checked."""
        entry = self.codes.get(code)
        if entry is None:
            raise OAuthError("invalid_grant", "The authorization code is invalid")
        if entry.used:
            # RFC 6749 §4.1.2: a reused code revokes what it was exchanged for.
            if entry.grant is not None:
                self.revoke_grant(entry.grant)
            raise OAuthError("invalid_grant", "The authorization code has already been used")
        if entry.client_id != client_id:
            raise OAuthError("invalid_grant", "The authorization code was issued to another client")
        if self.clock.now() >= entry.expires_at:
            raise OAuthError("invalid_grant", "The authorization code has expired")
        if redirect_uri != entry.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorize request")
        if entry.code_challenge is not None:
            if not verifier:
                raise OAuthError("invalid_grant", "code_verifier is required (PKCE)")
            if not 43 <= len(verifier) <= 128:
                raise OAuthError("invalid_grant", "code_verifier must be 43-128 characters")
            if not hmac.compare_digest(pkce_s256(verifier), entry.code_challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        elif verifier:
            raise OAuthError("invalid_grant", "code_verifier given but no code_challenge was sent")
        entry.used = True
        grant = self.new_grant(
            client_id=client_id,
            scopes=entry.scopes,
            kind="oauth",
            login_email=entry.login_email,
        )
        entry.grant = grant
        return entry, grant

    def rotate(self, *, client_id: str, token: str) -> tuple[Grant, RefreshToken]:
        """`refresh_token` grant: one-time tokens rotate (with grace), reusable ones stay."""
        now = self.clock.now()
        entry = self.refresh.get(token)
        if entry is None or entry.revoked or entry.grant.revoked:
            raise OAuthError("invalid_grant", "The refresh token is invalid or revoked")
        if entry.grant.client_id != client_id:
            raise OAuthError("invalid_grant", "The refresh token was issued to another client")
        if now >= entry.expires_at:
            raise OAuthError("invalid_grant", "The refresh token has expired")
        if self.config.refresh_token_mode == "reusable":  # noqa: S105 - a mode, not a secret
            return entry.grant, entry
        if entry.used_at is not None:
            grace = timedelta(seconds=self.config.rotation_grace_seconds)
            if now - entry.used_at > grace or grace.total_seconds() == 0:
                if self.config.revoke_grant_on_refresh_reuse:
                    self.revoke_grant(entry.grant)
                raise OAuthError("invalid_grant", "The refresh token has already been used")
        else:
            entry.used_at = now
        child = self.issue_refresh(entry.grant)
        entry.children.append(child.token)
        return entry.grant, child

    # ---------------------------------------------------------------------------------------
    # Checking and revoking

    def authenticate(self, token: str) -> AccessToken | None:
        """The live access token, or None (unknown, expired, revoked)."""
        entry = self.access.get(token)
        if entry is None or entry.revoked or entry.grant.revoked:
            return None
        if self.clock.now() >= entry.expires_at:
            return None
        return entry

    def revoke_grant(self, grant: Grant) -> None:
        grant.revoked = True

    def revoke_token(self, *, client_id: str, token: str) -> None:
        """RFC 7009: revoking a refresh token ends its grant; an access token just itself."""
        refresh = self.refresh.get(token)
        if refresh is not None and refresh.grant.client_id == client_id:
            refresh.revoked = True
            self.revoke_grant(refresh.grant)
            return
        access = self.access.get(token)
        if access is not None and access.grant.client_id == client_id:
            access.revoked = True

    def expire_access_tokens(self) -> int:
        """Make every access token expired now (the client must refresh)."""
        now = self.clock.now()
        count = 0
        for entry in self.access.values():
            if entry.expires_at > now:
                entry.expires_at = now
                count += 1
        return count

    def revoke_all(self) -> None:
        for grant in self.grants.values():
            grant.revoked = True
