"""Dinero access tokens: Visma Connect (authorization code + PKCE) and the legacy API key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from app.dinero.errors import (
    DineroOAuthError,
    DineroOutcomeUnknown,
    DineroTransportError,
    oauth_error_from_response,
)

logger = logging.getLogger(__name__)

_TOKEN_CHARACTERS = string.ascii_letters + string.digits

DINERO_SCOPES = "dineropublicapi:read dineropublicapi:write"
DEFAULT_SCOPE = f"openid offline_access {DINERO_SCOPES}"
LEGACY_SCOPE = "read write"
DEFAULT_EXPIRES_IN = 3600
"""Used when a token response carries no `expires_in` (both flows issue ~1 hour tokens)."""

ClientAuth = Literal["client_secret_post", "client_secret_basic"]
Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _secret(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class TokenSet(BaseModel):
    """Tokens from one grant; secrets stay SecretStr so they never reach a log by accident."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    expires_at: datetime
    """When the access token expires (UTC)."""
    scope: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret

    def expires_within(self, seconds: float, *, now: datetime | None = None) -> bool:
        """True when the access token expires within `seconds` from now."""
        current = now or _utcnow()
        return self.expires_at - current <= timedelta(seconds=seconds)


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the admin, and what to keep server-side until the callback."""

    url: str
    state: str
    code_verifier: str = field(repr=False)
    """PKCE verifier; store it with `state` and pass it to `exchange_code`."""


def new_code_verifier() -> str:
    """A fresh PKCE code verifier (RFC 7636: 43-128 unreserved characters)."""
    return _token(64)


def _token(length: int) -> str:
    """A random string of letters and digits from the system's secure source."""
    return "".join(secrets.choice(_TOKEN_CHARACTERS) for _ in range(length))


def code_challenge_s256(code_verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) without padding, as Visma Connect expects for S256."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def basic_auth_header(client_id: str, client_secret: str, *, form_encode: bool) -> str:
    """`Basic base64(id:secret)`; RFC 6749 form-encodes both parts first, the legacy server not."""
    if form_encode:
        client_id, client_secret = quote(client_id, safe=""), quote(client_secret, safe="")
    raw = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


async def _post_form(
    http: httpx.AsyncClient,
    url: str,
    form: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    endpoint: str,
) -> httpx.Response:
    """POST a form to an OAuth endpoint, asking for JSON. An endpoint that cannot be reached
    raises DineroTransportError (nothing was sent); any other httpx.TransportError (sent, no
    answer) is the caller's to judge."""
    try:
        return await http.post(
            url, data=dict(form), headers={"Accept": "application/json", **headers}
        )
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise DineroTransportError(
            f"{endpoint} unreachable ({type(exc).__name__})", sent=False
        ) from exc


async def _token_request(
    http: httpx.AsyncClient,
    url: str,
    form: Mapping[str, str],
    *,
    headers: Mapping[str, str] | None = None,
    now: Now,
    default_scope: str | None,
    previous_refresh_token: SecretStr | None = None,
) -> TokenSet:
    """POST a grant to a token endpoint and read the answer into a TokenSet."""
    try:
        response = await _post_form(http, url, form, headers or {}, endpoint="token endpoint")
    except httpx.TransportError as exc:
        # A grant may have been consumed (rotating refresh tokens): the caller decides.
        raise DineroOutcomeUnknown(
            f"no answer from the token endpoint ({type(exc).__name__})",
            method="POST",
            path=httpx.URL(url).path,
        ) from exc
    if response.status_code != 200:
        error = oauth_error_from_response(response.status_code, response.content)
        logger.info(
            "dinero token request refused",
            extra={"status": response.status_code, "oauth_error": error.error},
        )
        raise error
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        raise oauth_error_from_response(response.status_code, response.content)
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise DineroOAuthError(
            "invalid_response", "token endpoint answered 200 without an access_token", status=200
        )
    expires_in = body.get("expires_in")
    try:
        seconds = int(expires_in) if expires_in is not None else DEFAULT_EXPIRES_IN
    except (TypeError, ValueError):
        seconds = DEFAULT_EXPIRES_IN
    refresh = body.get("refresh_token")
    return TokenSet(
        access_token=SecretStr(body["access_token"]),
        refresh_token=SecretStr(refresh) if isinstance(refresh, str) else previous_refresh_token,
        expires_at=now() + timedelta(seconds=seconds),
        scope=body.get("scope") if isinstance(body.get("scope"), str) else default_scope,
        token_type=str(body.get("token_type") or "Bearer"),
    )


class _TokenClient:
    """A registered client of a token endpoint: its id, its secret (kept as a SecretStr), the
    endpoint, and the clock that dates the tokens it gets."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        client_id: str,
        client_secret: SecretStr | str,
        token_url: str,
        now: Now = _utcnow,
    ) -> None:
        self._http = http
        self.client_id = client_id
        self._client_secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self.token_url = token_url
        self._now = now


class VismaConnectOAuth(_TokenClient):
    """Visma Connect, Dinero's OAuth server: authorization code with PKCE, refresh, revoke."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        client_id: str,
        client_secret: SecretStr | str,
        authorize_url: str,
        token_url: str,
        redirect_uri: str,
        revoke_url: str | None = None,
        scope: str = DEFAULT_SCOPE,
        client_auth: ClientAuth = "client_secret_post",
        now: Now = _utcnow,
    ) -> None:
        super().__init__(
            http, client_id=client_id, client_secret=client_secret, token_url=token_url, now=now
        )
        self.authorize_url = authorize_url
        self.redirect_uri = redirect_uri
        self.revoke_url = revoke_url
        self.scope = scope
        self.client_auth: ClientAuth = client_auth

    def authorization_url(
        self,
        *,
        state: str | None = None,
        code_verifier: str | None = None,
        ui_locales: str = "da-DK",
        extra_params: Mapping[str, str] | None = None,
    ) -> AuthorizationRequest:
        """Build the URL the admin approves at ("Godkend"), with a fresh state and PKCE pair."""
        state = state or _token(32)
        verifier = code_verifier or new_code_verifier()
        params: dict[str, str] = {
            "client_id": self.client_id,
            "response_type": "code",
            "response_mode": "form_post",
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": state,
            "code_challenge": code_challenge_s256(verifier),
            "code_challenge_method": "S256",
            "ui_locales": ui_locales,
            **(extra_params or {}),
        }
        url = httpx.URL(self.authorize_url).copy_merge_params(params)
        return AuthorizationRequest(url=str(url), state=state, code_verifier=verifier)

    def _client_auth(self, form: dict[str, str]) -> dict[str, str]:
        """Add client authentication to the form, or return a Basic header."""
        secret = self._client_secret.get_secret_value()
        if self.client_auth == "client_secret_basic":
            header = basic_auth_header(self.client_id, secret, form_encode=True)
            return {"Authorization": header}
        form["client_id"] = self.client_id
        form["client_secret"] = secret
        return {}

    async def _grant(
        self, form: dict[str, str], *, previous_refresh_token: SecretStr | None = None
    ) -> TokenSet:
        """Send a grant, authenticated as the client, to the token endpoint."""
        return await _token_request(
            self._http,
            self.token_url,
            form,
            headers=self._client_auth(form),
            now=self._now,
            default_scope=self.scope,
            previous_refresh_token=previous_refresh_token,
        )

    async def exchange_code(
        self, code: str, code_verifier: str, *, redirect_uri: str | None = None
    ) -> TokenSet:
        """Trade the callback's `code` (with the stored PKCE verifier) for tokens."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri or self.redirect_uri,
            "code_verifier": code_verifier,
        }
        return await self._grant(form)

    async def refresh(self, refresh_token: SecretStr | str) -> TokenSet:
        """Use a refresh token; keeps the old one when the server does not rotate it."""
        old = refresh_token if isinstance(refresh_token, SecretStr) else SecretStr(refresh_token)
        form = {"grant_type": "refresh_token", "refresh_token": old.get_secret_value()}
        return await self._grant(form, previous_refresh_token=old)

    async def revoke(
        self,
        token: SecretStr | str,
        *,
        token_type_hint: str = "refresh_token",  # noqa: S107
    ) -> bool:
        """Revoke a token (RFC 7009) when a revocation URL is configured; False when none is."""
        if not self.revoke_url:
            return False
        form = {"token": _secret(token), "token_type_hint": token_type_hint}
        headers = self._client_auth(form)
        try:
            response = await _post_form(
                self._http, self.revoke_url, form, headers, endpoint="revocation endpoint"
            )
        except httpx.TransportError as exc:
            raise DineroTransportError(
                f"no answer from the revocation endpoint ({type(exc).__name__})", sent=True
            ) from exc
        if response.status_code != 200:
            raise oauth_error_from_response(response.status_code, response.content)
        return True


class LegacyApiKeyAuth(_TokenClient):
    """Dinero's "personal integration": password grant with the organization's API key."""

    async def password_grant(self, api_key: SecretStr | str) -> TokenSet:
        """Exchange the API key for a ~1 hour access token (username = password = API key)."""
        key = _secret(api_key)
        form = {"grant_type": "password", "scope": LEGACY_SCOPE, "username": key, "password": key}
        header = basic_auth_header(
            self.client_id, self._client_secret.get_secret_value(), form_encode=False
        )
        return await _token_request(
            self._http,
            self.token_url,
            form,
            headers={"Authorization": header},
            now=self._now,
            default_scope=LEGACY_SCOPE,
        )


class ApiKeyTokenProvider:
    """TokenProvider for one API-key connection, caching the token in this process."""

    def __init__(
        self,
        auth: LegacyApiKeyAuth,
        api_key: SecretStr | str,
        *,
        refresh_margin_seconds: float = 120.0,
        now: Now = _utcnow,
    ) -> None:
        self._auth = auth
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self._margin = refresh_margin_seconds
        self._now = now
        self._tokens: TokenSet | None = None
        self._lock = asyncio.Lock()

    async def get(self, force_refresh: bool = False) -> str:
        """Return the cached token, fetching a new one when forced or close to expiry."""
        async with self._lock:
            tokens = self._tokens
            if (
                force_refresh
                or tokens is None
                or tokens.expires_within(self._margin, now=self._now())
            ):
                tokens = await self._auth.password_grant(self._api_key)
                self._tokens = tokens
            return tokens.access_token.get_secret_value()

    def __repr__(self) -> str:
        return "ApiKeyTokenProvider(api_key=**********)"


__all__ = [
    "DEFAULT_SCOPE",
    "DINERO_SCOPES",
    "LEGACY_SCOPE",
    "ApiKeyTokenProvider",
    "AuthorizationRequest",
    "LegacyApiKeyAuth",
    "TokenSet",
    "VismaConnectOAuth",
    "basic_auth_header",
    "code_challenge_s256",
    "new_code_verifier",
]
