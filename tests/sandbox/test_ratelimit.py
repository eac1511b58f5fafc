"""Dinero's rate limit: per organization and client id, per minute, 429 without Retry-After."""

from __future__ import annotations

import httpx
from dinero_sandbox import API_KEY, FakeClock, Sandbox

from tests.sandbox.conftest import api_key_grant, bearer


async def spend(client: httpx.AsyncClient, token: str, org: int, n: int) -> list[int]:
    statuses = []
    for _ in range(n):
        response = await client.get(f"/v1/{org}/accountingyears", headers=bearer(token))
        statuses.append(response.status_code)
    return statuses


async def test_the_101st_request_in_a_minute_is_429_without_retry_after(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    token = sandbox.issue_token()
    assert set(await spend(client, token, 100001, 100)) == {200}

    refused = await client.get("/v1/100001/accountingyears", headers=bearer(token))

    assert refused.status_code == 429
    assert "retry-after" not in refused.headers
    assert not any(h.startswith("x-ratelimit") for h in refused.headers)
    assert refused.headers["content-type"].startswith("text/plain")
    assert refused.text == "API calls quota exceeded! maximum admitted 100 per 1m."
    assert sandbox.find_requests("GET", status=429)[0].client_id == "isv_sandbox"


async def test_budgets_are_per_organization_and_per_client(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.configure(rate_limit_per_minute=3)
    sandbox.add_organization(100003, "Anden ApS")
    sandbox.grant_access("demo@sandbox.dinero.dk", 100003)
    sandbox.add_client("isv_other", "other-secret")
    mine = sandbox.issue_token()
    theirs = sandbox.issue_token(client_id="isv_other")

    assert await spend(client, mine, 100001, 4) == [200, 200, 200, 429]
    assert await spend(client, mine, 100003, 3) == [200, 200, 200]  # another organization
    assert await spend(client, theirs, 100001, 3) == [200, 200, 200]  # another client
    second_token = sandbox.issue_token()  # same client: same budget
    assert await spend(client, second_token, 100001, 1) == [429]


async def test_the_fixed_window_resets_after_a_minute(
    client: httpx.AsyncClient, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.configure(rate_limit_per_minute=2)
    token = sandbox.issue_token()
    assert await spend(client, token, 100001, 3) == [200, 200, 429]
    clock.advance(59)
    assert await spend(client, token, 100001, 1) == [429]
    clock.advance(1)
    assert await spend(client, token, 100001, 3) == [200, 200, 429]


async def test_the_sliding_window_frees_requests_one_by_one(
    client: httpx.AsyncClient, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.configure(rate_limit_per_minute=2, rate_limit_window="sliding")
    token = sandbox.issue_token()
    assert await spend(client, token, 100001, 1) == [200]
    clock.advance(30)
    assert await spend(client, token, 100001, 2) == [200, 429]
    clock.advance(30)  # the first request has left the window
    assert await spend(client, token, 100001, 2) == [200, 429]
    clock.advance(30)
    assert await spend(client, token, 100001, 1) == [200]


async def test_the_organization_list_has_its_own_budget_and_the_limit_can_be_off(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.configure(rate_limit_per_minute=1)
    token = sandbox.issue_token()
    assert (await client.get("/v1/organizations", headers=bearer(token))).status_code == 200
    assert (await client.get("/v1/organizations", headers=bearer(token))).status_code == 429
    assert await spend(client, token, 100001, 1) == [200]

    sandbox.configure(rate_limit_per_minute=0)
    assert set(await spend(client, token, 100001, 150)) == {200}


async def test_oauth_and_control_endpoints_are_not_limited(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.configure(rate_limit_per_minute=1)
    for _ in range(3):
        assert (await client.get("/_sandbox/config")).status_code == 200
        token = await api_key_grant(client, API_KEY)
        assert token.status_code == 200
