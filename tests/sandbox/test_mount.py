"""Mounted under a prefix inside another app, as the service does in sandbox mode."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from dinero_sandbox import Sandbox
from fastapi import FastAPI

from tests.contract import ContractTransport
from tests.sandbox.conftest import (
    authorize_params,
    callback_params,
    parse_form,
    pkce_pair,
)

PREFIX = "/sandbox"


@pytest.fixture
def parent(app: FastAPI) -> FastAPI:
    """A service with the sandbox (tests/sandbox/conftest's `app`) mounted at PREFIX."""
    service = FastAPI()

    @service.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    service.mount(PREFIX, app)
    return service


@pytest.fixture
async def mounted(parent: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = ContractTransport(httpx.ASGITransport(app=parent), prefix=PREFIX)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as http:
        yield http


async def test_oauth_form_and_callbacks_use_the_mount_prefix(
    mounted: httpx.AsyncClient,
) -> None:
    verifier, challenge = pkce_pair()
    page = await mounted.get(f"{PREFIX}/connect/authorize", params=authorize_params(challenge))
    assert page.status_code == 200
    form = parse_form(page.text)
    assert form.action == f"{PREFIX}/connect/authorize"

    callback = callback_params(await mounted.post(form.action, data=form.submit("Godkend")))
    tokens = await mounted.post(
        f"{PREFIX}/connect/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": authorize_params(challenge)["redirect_uri"],
            "code_verifier": verifier,
        },
        auth=("isv_sandbox", "sandbox-secret"),
    )
    assert tokens.status_code == 200

    headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    years = await mounted.get(f"{PREFIX}/v1/100001/accountingyears", headers=headers)
    assert years.status_code == 200
    assert (await mounted.get("/healthz")).json() == {"status": "ok"}


async def test_the_log_records_paths_without_the_prefix(
    mounted: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    token = sandbox.issue_token()
    await mounted.get(f"{PREFIX}/v1/100001/vatTypes", headers={"Authorization": f"Bearer {token}"})
    assert [r.path for r in sandbox.requests] == ["/v1/100001/vatTypes"]
    discovery = (await mounted.get(f"{PREFIX}/.well-known/openid-configuration")).json()
    assert discovery["token_endpoint"] == f"http://service.test{PREFIX}/connect/token"
