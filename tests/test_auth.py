"""Who may call what: bearer tokens, company scoping, admin versus member."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.auth import issue_token
from app.companies.models import Company
from app.deps import CompanyAdmin
from tests.conftest import JWT_SECRET, bearer, bound_app, make_runtime, running


def _add_admin_route(app: FastAPI) -> None:
    @app.post("/v1/companies/{company}/_admin-probe")
    async def probe(access: CompanyAdmin) -> dict[str, str]:
        return {"company": access.company.id, "role": access.principal.role}


async def test_member_reads_own_company_and_it_is_created_on_first_sight(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    assert (await db.execute(select(Company).where(Company.id == "acme"))).first() is None
    response = await client.get("/v1/companies/acme", headers=bearer("acme", "member"))
    assert response.status_code == 200
    assert response.json()["id"] == "acme"
    stored = (await db.execute(select(Company).where(Company.id == "acme"))).scalar_one()
    assert stored.id == "acme"


async def test_other_company_answers_404_like_a_missing_one(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/companies/globex", headers=bearer("acme", "admin"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "company_not_found"


async def test_missing_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/companies/acme")
    assert response.status_code == 401
    assert response.json()["code"] == "token_missing"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_expired_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/companies/acme", headers=bearer("acme", ttl_seconds=-3600))
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


async def test_wrong_signature(client: httpx.AsyncClient) -> None:
    forged = jwt.encode(
        {"sub": "u", "company_id": "acme", "role": "admin", "exp": int(time.time()) + 60},
        "some-other-secret-of-sufficient-length",
        algorithm="HS256",
    )
    response = await client.get("/v1/companies/acme", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


async def test_unsigned_token_is_refused(client: httpx.AsyncClient) -> None:
    unsigned = jwt.encode(
        {"sub": "u", "company_id": "acme", "role": "admin", "exp": int(time.time()) + 60},
        key=None,  # type: ignore[arg-type]
        algorithm="none",
    )
    response = await client.get(
        "/v1/companies/acme", headers={"Authorization": f"Bearer {unsigned}"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("claims", "missing"),
    [
        ({"sub": "u", "company_id": "acme"}, "role"),
        ({"sub": "u", "role": "admin"}, "company_id"),
        ({"company_id": "acme", "role": "admin"}, "sub"),
    ],
)
async def test_token_without_required_claim(
    client: httpx.AsyncClient, claims: dict[str, str], missing: str
) -> None:
    token = jwt.encode(
        {**claims, "exp": int(time.time()) + 60}, JWT_SECRET.get_secret_value(), algorithm="HS256"
    )
    response = await client.get("/v1/companies/acme", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert missing in response.json()["detail"]


async def test_unknown_role_is_refused(client: httpx.AsyncClient) -> None:
    token = jwt.encode(
        {"sub": "u", "company_id": "acme", "role": "owner", "exp": int(time.time()) + 60},
        JWT_SECRET.get_secret_value(),
        algorithm="HS256",
    )
    response = await client.get("/v1/companies/acme", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


async def test_admin_only_route_refuses_member_and_allows_admin(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _add_admin_route(app)
    member = await client.post("/v1/companies/acme/_admin-probe", headers=bearer("acme", "member"))
    assert member.status_code == 403
    assert member.json()["code"] == "admin_required"
    admin = await client.post("/v1/companies/acme/_admin-probe", headers=bearer("acme", "admin"))
    assert admin.status_code == 200
    assert admin.json() == {"company": "acme", "role": "admin"}
    other = await client.post("/v1/companies/other/_admin-probe", headers=bearer("acme", "admin"))
    assert other.status_code == 404


async def test_rs256_tokens_verified_with_jwks(
    database_url: str, engine: AsyncEngine, connection: AsyncConnection
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public_jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    runtime = make_runtime(
        database_url, auth_jwt_secret=None, auth_jwks_url="https://idp.example/jwks.json"
    )
    app = bound_app(runtime, engine, connection)
    claims = {"sub": "u1", "company_id": "acme", "role": "member", "exp": int(time.time()) + 60}
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    hs = jwt.encode(claims, SecretStr("x" * 40).get_secret_value(), algorithm="HS256")
    with respx.mock(assert_all_called=True) as mock:
        jwks_route = mock.get("https://idp.example/jwks.json").respond(
            200, json={"keys": [public_jwk]}
        )
        async with running(app) as client:
            ok = await client.get("/v1/companies/acme", headers={"Authorization": f"Bearer {good}"})
            again = await client.get(
                "/v1/companies/acme", headers={"Authorization": f"Bearer {good}"}
            )
            wrong_alg = await client.get(
                "/v1/companies/acme", headers={"Authorization": f"Bearer {hs}"}
            )
    assert ok.status_code == 200
    assert again.status_code == 200
    assert jwks_route.call_count == 1  # cached
    assert wrong_alg.status_code == 401


def _token(claims: dict[str, Any], secret: str | None = None) -> dict[str, str]:
    now = int(time.time())
    payload = {"sub": "u", "company_id": "acme", "role": "admin", "iat": now, "exp": now + 60}
    payload.update(claims)
    token = jwt.encode(
        {k: v for k, v in payload.items() if v is not None},
        secret or JWT_SECRET.get_secret_value(),
        algorithm="HS256",
    )
    return {"Authorization": f"Bearer {token}"}


async def test_a_company_id_claim_that_is_no_company_id_is_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    claims: list[Any] = [True, False, {}, 1.5, ["acme"], "", "ac\x00me", "ac\ud800me", "x" * 129]
    for company_id in claims:
        for path in ("/v1/companies/True", "/v1/companies/acme"):
            response = await client.get(path, headers=_token({"company_id": company_id}))
            assert response.status_code == 401, (company_id, response.text)
            assert response.json()["code"] == "token_invalid"
    assert (await db.execute(select(Company))).first() is None


async def test_a_numeric_company_id_claim_is_that_number_as_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/companies/4711", headers=_token({"company_id": 4711}))
    assert response.status_code == 200
    assert response.json()["id"] == "4711"


async def test_a_token_living_longer_than_the_bound_is_refused(client: httpx.AsyncClient) -> None:
    now = int(time.time())
    for claims in (
        {"exp": now + 25 * 3600},
        {"iat": None, "exp": now + 25 * 3600},  # no iat: from now
        {"iat": now - 20 * 3600, "exp": now + 5 * 3600},  # 25 hours from its iat
        {"exp": 10**30},
    ):
        response = await client.get("/v1/companies/acme", headers=_token(claims))
        assert response.status_code == 401, (claims, response.text)
        assert response.json()["code"] == "token_lifetime_too_long"


async def test_a_day_long_token_is_within_the_default_bound(client: httpx.AsyncClient) -> None:
    now = int(time.time())
    response = await client.get(
        "/v1/companies/acme", headers=_token({"iat": now, "exp": now + 24 * 3600})
    )
    assert response.status_code == 200


async def test_audience_issuer_and_lifetime_are_configurable(
    database_url: str, engine: AsyncEngine, connection: AsyncConnection
) -> None:
    runtime = make_runtime(
        database_url,
        auth_jwt_audience="dinero-bridge",
        auth_jwt_issuer="https://platform.example",
        auth_jwt_max_lifetime_seconds=600,
    )
    app = bound_app(runtime, engine, connection)
    right = {"aud": "dinero-bridge", "iss": "https://platform.example"}
    now = int(time.time())
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        (right, 200, None),
        ({"iss": right["iss"]}, 401, "token_invalid"),  # no aud
        ({"aud": right["aud"]}, 401, "token_invalid"),  # no iss
        (right | {"aud": "another-app"}, 401, "token_audience_invalid"),
        (right | {"iss": "https://evil.example"}, 401, "token_issuer_invalid"),
        (right | {"exp": now + 3600}, 401, "token_lifetime_too_long"),  # 600 s at most
    ]
    async with running(app) as http:
        for claims, status, code in cases:
            response = await http.get("/v1/companies/acme", headers=_token(claims))
            assert response.status_code == status, (claims, response.text)
            if code is not None:
                assert response.json()["code"] == code
        issued = issue_token(
            secret=JWT_SECRET,
            company_id="acme",
            role="member",
            ttl_seconds=600,
            audience="dinero-bridge",
            issuer="https://platform.example",
        )
        ok = await http.get("/v1/companies/acme", headers={"Authorization": f"Bearer {issued}"})
    assert ok.status_code == 200


def test_dev_token_refuses_a_lifetime_the_service_would_refuse() -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    result = CliRunner().invoke(
        cli, ["dev-token", "--hours", "48"], env={"AUTH_JWT_SECRET": "s" * 40}
    )
    assert result.exit_code == 2
    assert "AUTH_JWT_MAX_LIFETIME_SECONDS" in result.output
