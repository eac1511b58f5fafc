"""Visma Connect (authorization code + PKCE), refresh, revoke, and the legacy API-key grant."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from pydantic import SecretStr

from app.dinero import (
    ApiKeyTokenProvider,
    DineroInvalidGrant,
    DineroOAuthError,
    DineroOutcomeUnknown,
    DineroTransportError,
    LegacyApiKeyAuth,
    TokenProvider,
    VismaConnectOAuth,
)
from app.dinero.oauth import code_challenge_s256, new_code_verifier

AUTHORIZE_URL = "https://connect.visma.test/connect/authorize"
TOKEN_URL = "https://connect.visma.test/connect/token"
REVOKE_URL = "https://connect.visma.test/connect/revocation"
LEGACY_URL = "https://authz.dinero.test/dineroapi/oauth/token"
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def idp() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def _oauth(http: httpx.AsyncClient, **kwargs: object) -> VismaConnectOAuth:
    return VismaConnectOAuth(
        http,
        client_id="isv_bridge",
        client_secret=SecretStr("s3cret+/="),
        authorize_url=AUTHORIZE_URL,
        token_url=TOKEN_URL,
        redirect_uri="https://bridge.test/v1/dinero/oauth/callback",
        now=lambda: NOW,
        **kwargs,  # type: ignore[arg-type]
    )


def _form(request: httpx.Request) -> dict[str, str]:
    parsed = parse_qs(request.content.decode(), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def _b64url_sha256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def test_pkce_pair_is_s256() -> None:
    verifier = new_code_verifier()
    assert 43 <= len(verifier) <= 128
    assert set(verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    assert code_challenge_s256(verifier) == _b64url_sha256(verifier)
    # RFC 7636 appendix B test vector
    assert (
        code_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


async def test_authorization_url_carries_everything_visma_connect_needs() -> None:
    async with httpx.AsyncClient() as http:
        request = _oauth(http).authorization_url(state="st4te")
    url = urlsplit(request.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == AUTHORIZE_URL
    params = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert params == {
        "client_id": "isv_bridge",
        "response_type": "code",
        "response_mode": "form_post",
        "redirect_uri": "https://bridge.test/v1/dinero/oauth/callback",
        "scope": "openid offline_access dineropublicapi:read dineropublicapi:write",
        "state": "st4te",
        "code_challenge": _b64url_sha256(request.code_verifier),
        "code_challenge_method": "S256",
        "ui_locales": "da-DK",
    }
    assert request.state == "st4te"
    assert request.code_verifier not in repr(request)


async def test_each_authorization_gets_fresh_state_and_verifier() -> None:
    async with httpx.AsyncClient() as http:
        oauth = _oauth(http)
        first, second = oauth.authorization_url(), oauth.authorization_url()
    assert first.state != second.state
    assert first.code_verifier != second.code_verifier
    assert len(first.state) >= 32


async def test_code_exchange_posts_the_grant_with_client_secret_post(
    idp: respx.MockRouter,
) -> None:
    route = idp.post(TOKEN_URL).respond(
        200,
        json={
            "access_token": "at-1",
            "refresh_token": "rt-1",
            "expires_in": 3600,
            "token_type": "Bearer",
            "scope": "openid offline_access dineropublicapi:read dineropublicapi:write",
        },
    )
    async with httpx.AsyncClient() as http:
        tokens = await _oauth(http).exchange_code("the-code", "the-verifier")

    request = route.calls.last.request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in request.headers
    assert _form(request) == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "https://bridge.test/v1/dinero/oauth/callback",
        "code_verifier": "the-verifier",
        "client_id": "isv_bridge",
        "client_secret": "s3cret+/=",
    }
    assert tokens.access_token.get_secret_value() == "at-1"
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == "rt-1"
    assert tokens.expires_at == NOW + timedelta(hours=1)
    assert tokens.expires_at.tzinfo is not None
    assert tokens.scope == "openid offline_access dineropublicapi:read dineropublicapi:write"
    assert "at-1" not in repr(tokens)
    assert "rt-1" not in str(tokens)


async def test_code_exchange_with_basic_client_auth(idp: respx.MockRouter) -> None:
    route = idp.post(TOKEN_URL).respond(200, json={"access_token": "at", "expires_in": 60})
    async with httpx.AsyncClient() as http:
        await _oauth(http, client_auth="client_secret_basic").exchange_code("c", "v")
    request = route.calls.last.request
    expected = base64.b64encode(b"isv_bridge:s3cret%2B%2F%3D").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert "client_secret" not in _form(request)


async def test_refresh_rotates_or_keeps_the_refresh_token(idp: respx.MockRouter) -> None:
    route = idp.post(TOKEN_URL)
    route.side_effect = [
        httpx.Response(
            200, json={"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 300}
        ),
        httpx.Response(200, json={"access_token": "at-3", "expires_in": 300}),
    ]
    async with httpx.AsyncClient() as http:
        oauth = _oauth(http)
        rotated = await oauth.refresh(SecretStr("rt-1"))
        kept = await oauth.refresh("rt-2")

    assert _form(route.calls[0].request) == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-1",
        "client_id": "isv_bridge",
        "client_secret": "s3cret+/=",
    }
    assert rotated.refresh_token is not None
    assert rotated.refresh_token.get_secret_value() == "rt-2"
    assert rotated.expires_at == NOW + timedelta(seconds=300)
    assert kept.access_token.get_secret_value() == "at-3"
    assert kept.refresh_token is not None
    assert kept.refresh_token.get_secret_value() == "rt-2"


async def test_invalid_grant_is_typed(idp: respx.MockRouter) -> None:
    idp.post(TOKEN_URL).respond(
        400, json={"error": "invalid_grant", "error_description": "Refresh token is expired"}
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(DineroInvalidGrant) as caught:
            await _oauth(http).refresh("rt-old")
    assert caught.value.error == "invalid_grant"
    assert caught.value.dinero_message == "Refresh token is expired"
    assert caught.value.status == 400


async def test_other_token_errors(idp: respx.MockRouter) -> None:
    idp.post(TOKEN_URL).respond(401, json={"error": "invalid_client"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(DineroOAuthError) as caught:
            await _oauth(http).exchange_code("c", "v")
    assert not isinstance(caught.value, DineroInvalidGrant)
    assert caught.value.error == "invalid_client"


async def test_a_200_without_token_is_an_error(idp: respx.MockRouter) -> None:
    idp.post(TOKEN_URL).respond(200, text="<html>login</html>")
    async with httpx.AsyncClient() as http:
        with pytest.raises(DineroOAuthError, match="invalid_response"):
            await _oauth(http).exchange_code("c", "v")


async def test_token_endpoint_failures(idp: respx.MockRouter) -> None:
    route = idp.post(TOKEN_URL)
    route.side_effect = [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")]
    async with httpx.AsyncClient() as http:
        oauth = _oauth(http)
        with pytest.raises(DineroTransportError) as unreachable:
            await oauth.refresh("rt")
        assert unreachable.value.sent is False
        with pytest.raises(DineroOutcomeUnknown):
            await oauth.refresh("rt")  # the refresh token may have been used up


async def test_revoke(idp: respx.MockRouter) -> None:
    route = idp.post(REVOKE_URL).respond(200)
    async with httpx.AsyncClient() as http:
        assert await _oauth(http, revoke_url=REVOKE_URL).revoke(SecretStr("rt-9")) is True
        assert await _oauth(http).revoke("rt-9") is False  # nothing configured: nothing sent
    assert route.call_count == 1
    assert _form(route.calls.last.request) == {
        "token": "rt-9",
        "token_type_hint": "refresh_token",
        "client_id": "isv_bridge",
        "client_secret": "s3cret+/=",
    }


def _legacy(http: httpx.AsyncClient) -> LegacyApiKeyAuth:
    return LegacyApiKeyAuth(
        http,
        client_id="personal-client",
        client_secret=SecretStr("personal-secret"),
        token_url=LEGACY_URL,
        now=lambda: NOW,
    )


async def test_legacy_password_grant(idp: respx.MockRouter) -> None:
    route = idp.post(LEGACY_URL).respond(
        200, json={"access_token": "legacy-at", "token_type": "bearer", "expires_in": 3600}
    )
    async with httpx.AsyncClient() as http:
        tokens = await _legacy(http).password_grant(SecretStr("api-key-123"))

    request = route.calls.last.request
    expected = base64.b64encode(b"personal-client:personal-secret").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert _form(request) == {
        "grant_type": "password",
        "scope": "read write",
        "username": "api-key-123",
        "password": "api-key-123",
    }
    assert tokens.access_token.get_secret_value() == "legacy-at"
    assert tokens.refresh_token is None
    assert tokens.expires_at == NOW + timedelta(hours=1)
    assert tokens.scope == "read write"


async def test_legacy_bad_key(idp: respx.MockRouter) -> None:
    idp.post(LEGACY_URL).respond(
        400, json={"error": "invalid_grant", "error_description": "Invalid API key"}
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(DineroInvalidGrant, match="Invalid API key"):
            await _legacy(http).password_grant("wrong")


async def test_api_key_token_provider_caches_and_refreshes(idp: respx.MockRouter) -> None:
    route = idp.post(LEGACY_URL)
    route.side_effect = [
        httpx.Response(200, json={"access_token": "t1", "expires_in": 3600}),
        httpx.Response(200, json={"access_token": "t2", "expires_in": 3600}),
        httpx.Response(200, json={"access_token": "t3", "expires_in": 3600}),
    ]
    clock = [NOW]
    async with httpx.AsyncClient() as http:
        provider = ApiKeyTokenProvider(_legacy(http), "key", now=lambda: clock[0])
        assert isinstance(provider, TokenProvider)
        assert await provider.get() == "t1"
        assert await provider.get() == "t1"
        assert await provider.get(force_refresh=True) == "t2"
        clock[0] = NOW + timedelta(minutes=59)  # within the refresh margin
        assert await provider.get() == "t3"
    assert route.call_count == 3
    assert "key" not in repr(provider).replace("api_key", "")
