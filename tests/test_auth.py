"""Who may call what: bearer tokens, company scoping, admin versus member."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.companies.models import Company
from app.deps import CompanyAdmin
from app.main import create_app
from tests.conftest import JWT_SECRET, bearer, bind_to_connection, make_runtime, running


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
    app = create_app(runtime, engine=engine, open_job_queue=False, mount_sandbox=False)
    bind_to_connection(app, connection)
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
