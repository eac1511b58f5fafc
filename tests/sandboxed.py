"""The service wired to an in-process stand-in Dinero, on a committed database, with real jobs.

For end-to-end tests where background jobs run: each app talks to its own fresh sandbox through
an ASGI transport (no network), and the jobs run on the real procrastinate queue.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from dinero_sandbox import CLIENT_ID, CLIENT_SECRET, Sandbox, SandboxConfig, create_sandbox_app
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text

from app import jobs, services
from app.db import create_engine
from app.main import create_app
from app.services import Services
from tests.conftest import bearer, make_runtime, running

DINERO = "http://dinero.test"
PRO_ORG = 100001
PLAIN_ORG = 100002
API_KEY = "sandbox-api-key-100001"
# The sandbox's deposit accounts the export tests map: card, out-of-pocket, bank.
CARD, OUT_OF_POCKET, BANK = 55030, 55080, 55000


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    sandbox: Sandbox
    sandbox_app: FastAPI


def sandbox_settings(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "dinero_api_url": DINERO,
        "dinero_authorize_url": f"{DINERO}/connect/authorize",
        "dinero_token_url": f"{DINERO}/connect/token",
        "dinero_legacy_token_url": f"{DINERO}/dineroapi/oauth/token",
        "dinero_client_id": CLIENT_ID,
        "dinero_client_secret": SecretStr(CLIENT_SECRET),
    }
    values.update(overrides)
    return values


async def forget_pacing(database_url: str, organizations: Sequence[int]) -> None:
    """Empty the shared request windows and pauses of these organizations."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for table in ("dinero_request_slots", "dinero_rate_budgets"):
                await conn.execute(
                    text(f"DELETE FROM {table} WHERE organization_id = ANY(:orgs)"),  # noqa: S608
                    {"orgs": list(organizations)},
                )
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def sandboxed_service(
    database_url: str,
    *,
    sandbox_config: SandboxConfig | None = None,
    sandbox_app: FastAPI | None = None,
    run_worker: bool = False,
    **settings: Any,
) -> AsyncIterator[Service]:
    """The service (job queue open; no worker unless `run_worker`, as `serve` runs one) talking
    to a fresh in-process sandbox.

    A fresh sandbox is a Dinero whose rate windows are empty, so the pacing this database
    remembers for its organizations (requests earlier tests made) is forgotten too: a test
    never waits for a budget that another test spent.
    """
    dinero = sandbox_app or create_sandbox_app(sandbox_config)
    await forget_pacing(database_url, [PRO_ORG, PLAIN_ORG])
    runtime = make_runtime(database_url, **sandbox_settings(**settings))
    app = create_app(
        runtime,
        dinero_transport=httpx.ASGITransport(app=dinero),
        mount_sandbox=False,
        open_job_queue=True,
        run_worker=run_worker,
    )
    async with running(app) as client:
        yield Service(app=app, client=client, sandbox=dinero.state.sandbox, sandbox_app=dinero)


def service_fixture(**settings: Any) -> Any:
    """A test module's `service` fixture (`service = service_fixture(...)`): the service with
    these settings talking to a fresh sandbox, one per test, on a database of the module's own
    (made at its first test)."""
    database: list[str] = []

    @pytest.fixture
    async def service(make_migrated_database: Callable[[], str]) -> AsyncIterator[Service]:
        if not database:
            database.append(make_migrated_database())
        async with sandboxed_service(database[0], **settings) as svc:
            yield svc

    return service


def shared(service: Service) -> Services:
    """The service's resources (engine, sessions, Dinero gateway), as its jobs are given them."""
    resources: Services = service.app.state.services
    return resources


async def run_jobs(service: Service, queues: Sequence[str] | None = None) -> None:
    """Run every job waiting in the queues (all when None) with the service's resources, as
    its worker would, then return."""
    options: dict[str, Any] = {"queues": list(queues)} if queues is not None else {}
    await jobs.job_app.run_worker_async(
        additional_context=services.worker_context(service.app.state.services),
        wait=False,
        install_signal_handlers=False,
        listen_notify=False,
        **options,
    )


async def read_item(service: Service, company: str, item_id: object) -> dict[str, Any]:
    """The export item as the API answers a member of the company."""
    response = await service.client.get(
        f"/v1/companies/{company}/export-items/{item_id}", headers=bearer(company, "member")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def put_api_key_connection(client: httpx.AsyncClient, company: str) -> httpx.Response:
    """`PUT …/dinero/connection` with the sandbox's API key for PRO_ORG, as an admin."""
    return await client.put(
        f"/v1/companies/{company}/dinero/connection",
        json={"organization_id": PRO_ORG, "method": "api_key", "api_key": API_KEY},
        headers=bearer(company),
    )


async def connect_with_api_key(client: httpx.AsyncClient, company: str) -> dict[str, Any]:
    response = await put_api_key_connection(client, company)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "connected"
    return body


async def synced_company(service: Service) -> str:
    """A new company connected by API key, its chart synced (no accounts mapped yet)."""
    company = f"co-{uuid.uuid4().hex[:10]}"
    await connect_with_api_key(service.client, company)
    await run_jobs(service, ["chart"])
    return company


async def put_settings(
    service: Service, company: str, subject: str = "dev-user", **accounts: int | None
) -> httpx.Response:
    """`PUT …/dinero/settings` with these accounts, as the admin `subject`."""
    return await service.client.put(
        f"/v1/companies/{company}/dinero/settings",
        json=accounts,
        headers=bearer(company, subject=subject),
    )


async def category_of(service: Service, company: str, account_number: int) -> dict[str, Any]:
    """The company's category for this account, as `GET …/categories` lists it."""
    response = await service.client.get(
        f"/v1/companies/{company}/categories", headers=bearer(company, "member")
    )
    (found,) = [c for c in response.json() if c["account_number"] == account_number]
    return dict(found)


async def patch_category(
    service: Service, company: str, category_id: str, subject: str = "dev-user", **changes: Any
) -> httpx.Response:
    """`PATCH …/categories/{category_id}` with these changes, as the admin `subject`."""
    return await service.client.patch(
        f"/v1/companies/{company}/categories/{category_id}",
        json=changes,
        headers=bearer(company, subject=subject),
    )


async def connected_company(service: Service) -> str:
    """A new company connected by API key, its chart synced and its accounts mapped."""
    company = await synced_company(service)
    response = await put_settings(
        service,
        company,
        deposit_account=CARD,
        out_of_pocket_account=OUT_OF_POCKET,
        reimbursement_account=BANK,
    )
    assert response.status_code == 200, response.text
    return company
