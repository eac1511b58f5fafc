"""Connecting a company to Dinero: OAuth approval, API key, refusals, switching, disconnecting.

Dinero is faked with respx here, at the wire level (the same shapes as Dinero's contract).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.connection.models import DineroConnection, OAuthState
from app.dinero.oauth import code_challenge_s256
from app.exports.models import ItemStatus, Step
from tests.conftest import bearer, bound_app, make_runtime, running
from tests.stored import store_item

API = "https://api.dinero.test"
CONNECT = "https://connect.dinero.test"
LEGACY = "https://authz.dinero.test/dineroapi/oauth/token"
ORG = 100001
ACCESS = "access-token-abcdef123456"
REFRESH = "refresh-token-zyxwvu987654"
API_KEY = "api-key-0123456789"

DINERO_SETTINGS = {
    "dinero_api_url": API,
    "dinero_authorize_url": f"{CONNECT}/connect/authorize",
    "dinero_token_url": f"{CONNECT}/connect/token",
    "dinero_legacy_token_url": LEGACY,
    "dinero_client_id": "isv_test",
    "dinero_client_secret": SecretStr("client-secret-xyz"),
    "dinero_redirect_uri": "http://testserver/v1/dinero/oauth/callback",
}
JSON = {"Accept": "application/json"}


def organizations(is_pro: bool = True, org: int = ORG) -> list[dict[str, object]]:
    return [{"Id": org, "Name": "Sandbox ApS", "IsPro": is_pro, "IsPayingPro": is_pro}]


YEARS = [{"Name": "2026", "FromDate": "2026-01-01", "ToDate": "2026-12-31"}]


@pytest.fixture
async def dinero_app(
    database_url: str, engine: AsyncEngine, connection: AsyncConnection
) -> FastAPI:
    runtime = make_runtime(database_url, **DINERO_SETTINGS)
    app = bound_app(runtime, engine, connection)
    return app


@pytest.fixture
async def api(dinero_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(dinero_app) as client:
        yield client


@pytest.fixture
def dinero() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="testserver").pass_through()
        yield mock


def _token_response(access: str = ACCESS, refresh: str | None = REFRESH) -> httpx.Response:
    body: dict[str, object] = {"access_token": access, "token_type": "Bearer", "expires_in": 3600}
    if refresh:
        body["refresh_token"] = refresh
    return httpx.Response(200, json=body)


async def _start_oauth(api: httpx.AsyncClient, org: int = ORG, **extra: object) -> dict[str, str]:
    response = await api.put(
        "/v1/companies/acme/dinero/connection",
        json={"organization_id": org, "method": "oauth", **extra},
        headers=bearer(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "pending"
    query = parse_qs(urlsplit(body["authorization_url"]).query)
    return {k: v[0] for k, v in query.items()}


async def test_oauth_approval_connects(
    api: httpx.AsyncClient, dinero: respx.MockRouter, db: AsyncSession
) -> None:
    params = await _start_oauth(api)
    assert params["client_id"] == "isv_test"
    assert params["code_challenge_method"] == "S256"
    assert {"dineropublicapi:read", "dineropublicapi:write", "offline_access"} <= set(
        params["scope"].split()
    )
    stored = (await db.execute(select(OAuthState))).scalar_one()
    assert stored.state_hash != params["state"]  # only a hash of the state is kept

    token = dinero.post(f"{CONNECT}/connect/token").mock(return_value=_token_response())
    dinero.get(f"{API}/v1/organizations").respond(200, json=organizations())
    dinero.get(f"{API}/v1/{ORG}/accountingyears").respond(200, json=YEARS)
    callback = await api.post(
        "/v1/dinero/oauth/callback", data={"code": "the-code", "state": params["state"]}
    )
    assert callback.status_code == 200
    assert "Sandbox ApS is now connected" in callback.text
    sent = parse_qs(token.calls.last.request.content.decode())
    assert sent["grant_type"] == ["authorization_code"]
    assert sent["code"] == ["the-code"]
    assert code_challenge_s256(sent["code_verifier"][0]) == params["code_challenge"]

    state = (await api.get("/v1/companies/acme/dinero/connection", headers=bearer())).json()
    assert state["status"] == "connected"
    assert state["organization_id"] == ORG
    assert state["organization_name"] == "Sandbox ApS"
    assert state["method"] == "oauth"
    assert ACCESS not in str(state)

    # Nothing in the database holds a token in plain text.
    dump = await db.execute(text("SELECT row_to_json(c)::text FROM dinero_connections c"))
    text_dump = " ".join(row[0] for row in dump)
    assert ACCESS not in text_dump
    assert REFRESH not in text_dump
    raw = (await db.execute(select(DineroConnection))).scalar_one()
    assert raw.access_token_enc is not None
    assert ACCESS.encode() not in raw.access_token_enc


async def test_state_is_single_use_unknown_and_expiring(
    api: httpx.AsyncClient, dinero: respx.MockRouter, db: AsyncSession
) -> None:
    unknown = await api.get(
        "/v1/dinero/oauth/callback", params={"code": "c", "state": "nope"}, headers=JSON
    )
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "oauth_state_unknown"

    params = await _start_oauth(api)
    dinero.post(f"{CONNECT}/connect/token").respond(400, json={"error": "invalid_grant"})
    first = await api.get(
        "/v1/dinero/oauth/callback", params={"code": "c", "state": params["state"]}, headers=JSON
    )
    assert first.json()["code"] == "oauth_code_rejected"
    reused = await api.get(
        "/v1/dinero/oauth/callback", params={"code": "c", "state": params["state"]}, headers=JSON
    )
    assert reused.status_code == 400
    assert reused.json()["code"] == "oauth_state_reused"

    params = await _start_oauth(api)
    await db.execute(
        update(OAuthState)
        .where(OAuthState.used_at.is_(None))
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    expired = await api.get(
        "/v1/dinero/oauth/callback", params={"code": "c", "state": params["state"]}, headers=JSON
    )
    assert expired.json()["code"] == "oauth_state_expired"
    state = (await api.get("/v1/companies/acme/dinero/connection", headers=bearer())).json()
    assert state["status"] == "not_connected"  # nothing half-connected


async def test_declined_and_frontend_redirect(
    database_url: str, engine: AsyncEngine, connection: AsyncConnection
) -> None:
    runtime = make_runtime(
        database_url, frontend_url="https://app.example/settings", **DINERO_SETTINGS
    )
    app = bound_app(runtime, engine, connection)
    async with running(app) as api:
        params = await _start_oauth(api)
        declined = await api.get(
            "/v1/dinero/oauth/callback",
            params={"error": "access_denied", "state": params["state"]},
        )
        state = (await api.get("/v1/companies/acme/dinero/connection", headers=bearer())).json()
    assert declined.status_code == 303
    location = urlsplit(declined.headers["location"])
    assert location.netloc == "app.example"
    assert parse_qs(location.query)["code"] == ["oauth_declined"]
    assert state["status"] == "not_connected"


@pytest.mark.parametrize(
    ("orgs", "code", "status"),
    [
        (organizations(is_pro=False), "organization_not_pro", 403),
        (organizations(org=999), "organization_not_accessible", 400),
    ],
)
async def test_oauth_refusals_for_the_organization(
    api: httpx.AsyncClient,
    dinero: respx.MockRouter,
    orgs: list[dict[str, object]],
    code: str,
    status: int,
) -> None:
    params = await _start_oauth(api)
    dinero.post(f"{CONNECT}/connect/token").mock(return_value=_token_response())
    dinero.get(f"{API}/v1/organizations").respond(200, json=orgs)
    response = await api.get(
        "/v1/dinero/oauth/callback", params={"code": "c", "state": params["state"]}, headers=JSON
    )
    assert response.status_code == status
    assert response.json()["code"] == code
    state = (await api.get("/v1/companies/acme/dinero/connection", headers=bearer())).json()
    assert state["status"] == "not_connected"


async def test_callback_signed_in_as_another_company_is_refused(
    api: httpx.AsyncClient, dinero: respx.MockRouter
) -> None:
    params = await _start_oauth(api)
    response = await api.get(
        "/v1/dinero/oauth/callback",
        params={"code": "c", "state": params["state"]},
        headers={**JSON, **bearer("globex")},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "oauth_company_mismatch"


async def test_api_key_connects_at_once(
    api: httpx.AsyncClient, dinero: respx.MockRouter, db: AsyncSession
) -> None:
    grant = dinero.post(LEGACY).mock(return_value=_token_response(refresh=None))
    dinero.get(f"{API}/v1/organizations").respond(200, json=organizations())
    dinero.get(f"{API}/v1/{ORG}/accountingyears").respond(200, json=YEARS)
    response = await api.put(
        "/v1/companies/acme/dinero/connection",
        json={"organization_id": ORG, "method": "api_key", "api_key": API_KEY},
        headers=bearer(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "connected"
    assert API_KEY not in response.text
    form = parse_qs(grant.calls.last.request.content.decode())
    assert form == {
        "grant_type": ["password"],
        "scope": ["read write"],
        "username": [API_KEY],
        "password": [API_KEY],
    }
    assert grant.calls.last.request.headers["authorization"].startswith("Basic ")
    dump = await db.execute(text("SELECT row_to_json(c)::text FROM dinero_connections c"))
    assert API_KEY not in " ".join(row[0] for row in dump)


async def test_bad_api_key_leaves_nothing(api: httpx.AsyncClient, dinero: respx.MockRouter) -> None:
    dinero.post(LEGACY).respond(400, json={"error": "invalid_grant"})
    response = await api.put(
        "/v1/companies/acme/dinero/connection",
        json={"organization_id": ORG, "method": "api_key", "api_key": "wrong"},
        headers=bearer(),
    )
    assert response.status_code == 400
    assert response.json()["code"] == "api_key_rejected"
    state = (await api.get("/v1/companies/acme/dinero/connection", headers=bearer())).json()
    assert state["status"] == "not_connected"


async def test_members_read_but_cannot_connect(api: httpx.AsyncClient) -> None:
    refused = await api.put(
        "/v1/companies/acme/dinero/connection",
        json={"organization_id": ORG, "method": "oauth"},
        headers=bearer(role="member"),
    )
    assert refused.status_code == 403
    read = await api.get("/v1/companies/acme/dinero/connection", headers=bearer(role="member"))
    assert read.json()["status"] == "not_connected"
    missing_key = await api.put(
        "/v1/companies/acme/dinero/connection",
        json={"organization_id": ORG, "method": "api_key"},
        headers=bearer(),
    )
    assert missing_key.status_code == 422


async def _exported_item(db: AsyncSession, company: str) -> None:
    """An item that reached Dinero (its voucher is in the current organization's books)."""
    await store_item(
        db,
        company,
        100,
        external_id="exp_1",
        status=ItemStatus.AWAITING_APPROVAL,
        step=Step.CREATED,
    )


async def test_switching_organization_needs_confirmation_and_disconnect_keeps_history(
    api: httpx.AsyncClient, dinero: respx.MockRouter, db: AsyncSession
) -> None:
    dinero.post(LEGACY).mock(return_value=_token_response(refresh=None))
    dinero.get(f"{API}/v1/organizations").respond(200, json=organizations())
    dinero.get(f"{API}/v1/{ORG}/accountingyears").respond(200, json=YEARS)
    await api.put(
        "/v1/companies/acme/dinero/connection",
        json={"organization_id": ORG, "method": "api_key", "api_key": API_KEY},
        headers=bearer(),
    )
    # With nothing exported yet, another organization may be chosen freely.
    free = await api.put(
        "/v1/companies/acme/dinero/connection",
        json={"organization_id": 200003, "method": "oauth"},
        headers=bearer(),
    )
    assert free.status_code == 200
    await _exported_item(db, "acme")
    switch = await api.put(
        "/v1/companies/acme/dinero/connection",
        json={"organization_id": 200002, "method": "oauth"},
        headers=bearer(),
    )
    assert switch.status_code == 409
    assert switch.json()["code"] == "organization_switch_requires_confirmation"
    confirmed = await api.put(
        "/v1/companies/acme/dinero/connection",
        json={"organization_id": 200002, "method": "oauth", "confirm_switch": True},
        headers=bearer(),
    )
    assert confirmed.status_code == 200
    # Until the new approval lands, the working connection stays as it was.
    assert confirmed.json()["organization_id"] == ORG

    deleted = await api.delete("/v1/companies/acme/dinero/connection", headers=bearer())
    assert deleted.status_code == 204
    conn = (await db.execute(select(DineroConnection))).scalar_one()
    await db.refresh(conn)
    assert conn.status == "not_connected"
    assert conn.access_token_enc is None
    assert conn.api_key_enc is None
    assert conn.organization_id == ORG  # history kept
    assert re.fullmatch(r"\d+", str(conn.organization_id))
