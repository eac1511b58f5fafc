"""Every refusal is application/problem+json with a stable code; no expected error is a 500."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, Field

from app.deps import CompanyAdmin
from app.errors import AppError
from tests.conftest import bearer

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


class _Body(BaseModel):
    name: str = Field(min_length=1)
    amount: int


def _add_routes(app: FastAPI) -> None:
    @app.post("/v1/companies/{company}/_probe")
    async def probe(access: CompanyAdmin, body: _Body) -> dict[str, str]:
        if body.name == "conflict":
            raise AppError("Already there.", code="already_there", status=409, title="Conflict")
        if body.name == "boom":
            raise RuntimeError("unexpected")
        return {"ok": body.name}


async def test_validation_error_names_each_field(app: FastAPI, client: httpx.AsyncClient) -> None:
    _add_routes(app)
    response = await client.post(
        "/v1/companies/acme/_probe", json={"name": "", "amount": "x"}, headers=bearer()
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert body["code"] == "validation_error"
    assert set(body["errors"]) == {"name", "amount"}
    assert "amount" in body["detail"]


async def test_malformed_json_is_a_validation_error(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _add_routes(app)
    response = await client.post(
        "/v1/companies/acme/_probe",
        content=b"{not json",
        headers={**bearer(), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_app_error_keeps_its_code_and_status(app: FastAPI, client: httpx.AsyncClient) -> None:
    _add_routes(app)
    response = await client.post(
        "/v1/companies/acme/_probe", json={"name": "conflict", "amount": 1}, headers=bearer()
    )
    assert response.status_code == 409
    assert response.json() == {
        "type": "https://dinero-bridge.dev/problems/already_there",
        "title": "Conflict",
        "status": 409,
        "detail": "Already there.",
        "code": "already_there",
        "instance": "/v1/companies/acme/_probe",
    }


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "not_found"
    wrong = await client.delete("/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"


async def test_unexpected_error_is_a_problem_without_internals(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _add_routes(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
        response = await raw.post(
            "/v1/companies/acme/_probe", json={"name": "boom", "amount": 1}, headers=bearer()
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "unexpected" not in response.text
