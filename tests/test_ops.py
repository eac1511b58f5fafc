"""Operations endpoints: alive, ready (database reachable, schema at head), metrics, docs."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.main import create_app
from app.migrations_util import head_revision
from tests.conftest import make_runtime, running


async def test_health_ready_metrics_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "schema_revision": head_revision()}
    await client.get("/v1/companies/acme")  # a 401, counted
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "dinero_bridge_http_requests_total" in metrics.text
    assert 'route="/v1/companies/{company}"' in metrics.text
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


async def test_not_ready_when_database_is_down(database_url: str) -> None:
    runtime = make_runtime(database_url)
    dead: AsyncEngine = create_engine(
        "postgresql://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    app = create_app(runtime, engine=dead, open_job_queue=False, mount_sandbox=False)
    async with running(app) as client:
        response = await client.get("/readyz")
        alive = await client.get("/healthz")
    await dead.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"
    assert alive.status_code == 200


async def test_not_ready_when_schema_is_behind(make_database: object) -> None:
    empty_url = make_database()  # type: ignore[operator]
    runtime = make_runtime(empty_url)
    empty = create_engine(empty_url)
    app = create_app(runtime, engine=empty, open_job_queue=False, mount_sandbox=False)
    async with running(app) as client:
        response = await client.get("/readyz")
    await empty.dispose()
    assert response.status_code == 503
    assert response.json()["code"] in {"schema_outdated", "database_unavailable"}
