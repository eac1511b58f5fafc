"""Connecting a company to Dinero end to end, against the stand-in Dinero (`dinero_sandbox`).

The service runs with its Dinero calls routed in-process to a sandbox app, through a transport
that checks every API exchange against Dinero's contract (`tests/contract.py`). A "browser"
(an httpx client reaching both apps by host name) follows the approval link, presses Godkend or
Afvis on the sandbox's consent page, and carries the callback back to the service, the way a
person's browser would. The database is a real, committed one of this module's own, so the
service's own sessions, commits and row-locked token refresh run exactly as in production.

tests/test_connection.py covers the same endpoints with Dinero faked at the wire (respx); this
file is the counterpart that talks to a Dinero that actually issues, checks and revokes tokens.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from dinero_sandbox import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    FakeClock,
    Sandbox,
    SandboxConfig,
    create_sandbox_app,
)
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.connection.gateway import DineroGateway, ReauthRequired
from app.connection.models import ConnectionStatus, DineroConnection, OAuthState
from app.main import create_app
from tests.conftest import bearer, make_runtime, running
from tests.contract import ContractTransport
from tests.sandbox.conftest import parse_form
from tests.sandboxed import sandbox_settings

DINERO = "http://dinero.test"
SERVICE = "http://testserver"
CALLBACK = f"{SERVICE}/v1/dinero/oauth/callback"
PRO = 100001
NO_PRO = 100002
CONNECTION = "/v1/companies/{company}/dinero/connection"

# The service's own pacing (100/min) would add 0.6 s per call; the sandbox still counts.
SANDBOX_SETTINGS: dict[str, Any] = sandbox_settings(
    dinero_redirect_uri=CALLBACK, dinero_rate_limit_per_minute=10_000
)
BROWSER_HEADERS = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


# --------------------------------------------------------------------------------------------
# What the service sent to Dinero


@dataclass
class Exchange:
    """One request the service sent to Dinero and the answer it got."""

    method: str
    path: str
    form: dict[str, str]
    status: int
    body: Any


class Wire(httpx.AsyncBaseTransport):
    """Records the service's exchanges with Dinero, form bodies included (the sandbox's own
    request log keeps JSON bodies only, and the token endpoints take forms).

    `before` runs just before a request reaches the sandbox (to look at the database then).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[Exchange] = []
        self.before: Callable[[httpx.Request], Awaitable[None]] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        if self.before is not None:
            await self.before(request)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        form: dict[str, str] = {}
        if "x-www-form-urlencoded" in request.headers.get("content-type", ""):
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        body: Any = None
        if "json" in response.headers.get("content-type", "") and response.content:
            body = response.json()
        self.exchanges.append(
            Exchange(request.method, request.url.path, form, response.status_code, body)
        )
        return response

    def grants(self, grant_type: str) -> list[Exchange]:
        """Requests to a token endpoint with this grant_type."""
        return [e for e in self.exchanges if e.form.get("grant_type") == grant_type]

    def to(self, method: str, path: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == method and e.path == path]

    async def aclose(self) -> None:
        await self.inner.aclose()


# --------------------------------------------------------------------------------------------
# The world: a sandbox Dinero, the service, the platform's frontend and a browser


@dataclass
class World:
    sandbox: Sandbox
    clock: FakeClock
    service: FastAPI
    api: httpx.AsyncClient
    """The expense platform calling the service (bearer tokens per request)."""
    browser: httpx.AsyncClient
    """A person's browser: reaches the sandbox (dinero.test) and the service (testserver)."""
    wire: Wire
    contract: ContractTransport
    engine: AsyncEngine
    companies: list[str] = field(default_factory=list)

    @property
    def gateway(self) -> DineroGateway:
        gateway: DineroGateway = self.service.state.services.dinero
        return gateway

    def new_company(self) -> str:
        company = f"co-{uuid.uuid4().hex[:10]}"
        self.companies.append(company)
        return company

    async def connection(self, company: str) -> dict[str, Any]:
        """What the platform sees: GET connection."""
        response = await self.api.get(CONNECTION.format(company=company), headers=bearer(company))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def row(self, company: str) -> DineroConnection | None:
        """The committed row, read on a connection of its own."""
        return await stored_connection(self.engine, company)

    async def stored(self, company: str) -> DineroConnection:
        """The committed row, which must exist."""
        row = await self.row(company)
        assert row is not None
        return row


async def stored_connection(engine: AsyncEngine, company: str) -> DineroConnection | None:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        return (
            await session.execute(
                select(DineroConnection).where(DineroConnection.company_id == company)
            )
        ).scalar_one_or_none()


@contextlib.asynccontextmanager
async def dinero_world(
    database_url: str, engine: AsyncEngine, **settings: Any
) -> AsyncIterator[World]:
    """A fresh sandbox (fake clock) and the service pointed at it, lifespan running."""
    clock = FakeClock()
    sandbox_app = create_sandbox_app(SandboxConfig(clock=clock))
    wire = Wire(httpx.ASGITransport(app=sandbox_app))
    contract = ContractTransport(wire)
    runtime = make_runtime(database_url, **{**SANDBOX_SETTINGS, **settings})
    service = create_app(
        runtime,
        engine=engine,
        open_job_queue=False,
        mount_sandbox=False,
        dinero_transport=contract,
    )
    async with (
        running(service) as api,
        httpx.AsyncClient(
            mounts={
                DINERO: httpx.ASGITransport(app=sandbox_app),
                SERVICE: httpx.ASGITransport(app=service),
            },
            headers=BROWSER_HEADERS,
            follow_redirects=True,
        ) as browser,
    ):
        yield World(
            sandbox=sandbox_app.state.sandbox,
            clock=clock,
            service=service,
            api=api,
            browser=browser,
            wire=wire,
            contract=contract,
            engine=engine,
        )


# --------------------------------------------------------------------------------------------
# What a person does


def s256(verifier: str) -> str:
    """RFC 7636 S256, computed here independently of the service's code."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {**query_of(url), **changes}
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def outcome(page: httpx.Response) -> str:
    """The code the service's callback page shows (`data-code`)."""
    match = re.search(r"data-code='([^']*)'", page.text)
    assert match, page.text
    return match.group(1)


async def start_oauth(world: World, company: str, org: int = PRO, **extra: Any) -> str:
    """The admin presses "Connect Dinero": PUT connection; returns the approval URL."""
    response = await world.api.put(
        CONNECTION.format(company=company),
        json={"organization_id": org, "method": "oauth", **extra},
        headers=bearer(company),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "pending"
    url: str = body["authorization_url"]
    assert url.startswith(f"{DINERO}/connect/authorize?")
    return url


async def approve_in_dinero(
    world: World,
    authorization_url: str,
    *,
    button: str = "Godkend",
    login: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Open the approval page, press a button, and let the browser carry the answer back to the
    service (following the 302 of `response_mode=query`, or submitting the auto-posting form of
    `form_post` as its script would). Returns the service's callback page."""
    page = await world.browser.get(authorization_url)
    assert page.status_code == 200, page.text
    assert "Godkend adgang til Dinero" in page.text
    consent = parse_form(page.text)
    assert consent.method == "post"
    overrides: dict[str, str] = {}
    if login is not None:
        assert login in consent.options["login"], consent.options
        overrides["login"] = login
    answer = await world.browser.post(
        page.url.join(consent.action), data=consent.submit(button, **overrides)
    )
    if answer.url.host == urlsplit(SERVICE).hostname:
        return answer  # response_mode=query: the browser followed the redirect to the callback
    assert answer.status_code == 200, answer.text
    back = parse_form(answer.text)  # response_mode=form_post
    assert back.method == "post"
    assert back.action == CALLBACK
    # document.forms[0].submit() sends the named inputs only (no button).
    return await world.browser.post(back.action, data=back.fields, headers=headers)


async def connect_with_oauth(world: World, company: str) -> str:
    """The whole OAuth connection for a company; returns the authorization URL used."""
    url = await start_oauth(world, company)
    page = await approve_in_dinero(world, url)
    assert page.status_code == 200, page.text
    assert outcome(page) == "connected"
    return url


async def connect_with_api_key(
    world: World, company: str, key: str = API_KEY, org: int = PRO
) -> httpx.Response:
    return await world.api.put(
        CONNECTION.format(company=company),
        json={"organization_id": org, "method": "api_key", "api_key": key},
        headers=bearer(company),
    )


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
async def world(committed: tuple[str, AsyncEngine]) -> AsyncIterator[World]:
    url, engine = committed
    async with dinero_world(url, engine) as w:
        yield w


# --------------------------------------------------------------------------------------------
# OAuth


@pytest.mark.parametrize("response_mode", ["form_post", "query"])
async def test_oauth_approval_connects_the_company(world: World, response_mode: str) -> None:
    company = world.new_company()
    url = await start_oauth(world, company)
    asked = query_of(url)
    assert asked["response_mode"] == "form_post"  # what the service asks Visma Connect for
    assert asked["code_challenge_method"] == "S256"
    assert asked["redirect_uri"] == CALLBACK
    if response_mode == "query":
        # Visma Connect may answer with a redirect instead: the GET callback must work too.
        url = with_query(url, response_mode="query")

    page = await approve_in_dinero(world, url)

    assert page.status_code == 200, page.text
    assert outcome(page) == "connected"
    assert "Sandbox ApS is now connected" in page.text
    callback = page.request
    assert callback.method == ("POST" if response_mode == "form_post" else "GET")
    assert callback.url.path == "/v1/dinero/oauth/callback"

    state = await world.connection(company)
    assert state["status"] == "connected"
    assert state["method"] == "oauth"
    assert state["organization_id"] == PRO
    assert state["organization_name"] == "Sandbox ApS"
    assert state["problem"] is None
    assert state["authorization_url"] is None

    # Dinero received one code exchange, with a PKCE verifier matching the challenge (the
    # verifier itself never travelled through the browser).
    [exchange] = world.wire.grants("authorization_code")
    assert exchange.status == 200
    verifier = exchange.form["code_verifier"]
    assert 43 <= len(verifier) <= 128
    assert s256(verifier) == asked["code_challenge"]
    assert verifier not in url
    assert exchange.form["redirect_uri"] == CALLBACK
    assert exchange.form["client_id"] == CLIENT_ID
    assert [r.status for r in world.sandbox.find_requests("POST", "/connect/token")] == [200]
    # ... then checked the organization with the new token.
    assert [r.path for r in world.sandbox.find_requests("GET", "/v1*")] == [
        "/v1/organizations",
        f"/v1/{PRO}/accountingyears",
    ]

    # The service holds working credentials: the stored refresh token is the one Dinero issued.
    row = await world.stored(company)
    assert row.refresh_token_enc is not None
    stored_refresh = world.gateway.cipher.decrypt(row.refresh_token_enc).get_secret_value()
    assert stored_refresh == exchange.body["refresh_token"]
    assert row.access_expires_at is not None
    assert row.access_expires_at > datetime.now(UTC) + timedelta(minutes=55)
    # Every exchange went through the contract check (a mismatch would have failed the call).
    assert world.contract.checked == len(world.wire.exchanges) == 3


async def test_declining_in_dinero_connects_nothing(world: World) -> None:
    company = world.new_company()
    url = await start_oauth(world, company)

    page = await approve_in_dinero(world, url, button="Afvis")

    assert page.status_code == 400
    assert outcome(page) == "oauth_declined"
    assert "declined in Dinero" in page.text
    assert (await world.connection(company))["status"] == "not_connected"
    assert world.wire.exchanges == []  # no code to exchange, nothing asked of Dinero


async def test_organization_without_pro_is_refused(world: World) -> None:
    company = world.new_company()
    url = await start_oauth(world, company, org=NO_PRO)

    page = await approve_in_dinero(world, url)

    assert page.status_code == 403
    assert outcome(page) == "organization_not_pro"
    assert "Nordlys Tømrer ApS" in page.text
    assert "Dinero Pro" in page.text
    state = await world.connection(company)
    assert state["status"] == "not_connected"
    row = await world.stored(company)
    assert row.access_token_enc is None
    assert row.refresh_token_enc is None


async def test_login_without_access_to_the_organization_is_refused(world: World) -> None:
    # A bookkeeper whose Dinero login reaches only the other organization approves.
    world.sandbox.add_login("bogholder@nordlys.dk", organizations=[NO_PRO])
    company = world.new_company()
    url = await start_oauth(world, company, org=PRO)

    page = await approve_in_dinero(world, url, login="bogholder@nordlys.dk")

    assert page.status_code == 400
    assert outcome(page) == "organization_not_accessible"
    assert f"organization (Firma ID) {PRO}" in page.text
    assert (await world.connection(company))["status"] == "not_connected"
    # The code was exchanged (that is how the service learns who approved), then refused.
    assert len(world.wire.grants("authorization_code")) == 1


async def test_replayed_callback_is_refused_and_keeps_the_connection(world: World) -> None:
    company = world.new_company()
    url = await start_oauth(world, company)
    page = await approve_in_dinero(world, url)
    assert outcome(page) == "connected"

    # The browser re-submits the same callback (back button, double submit, a copied link).
    replay = await world.browser.post(
        CALLBACK,
        content=page.request.content,
        headers={"Content-Type": page.request.headers["Content-Type"]},
    )

    assert replay.status_code == 400
    assert outcome(replay) == "oauth_state_reused"
    assert len(world.wire.grants("authorization_code")) == 1  # the code went to Dinero once
    state = await world.connection(company)
    assert state["status"] == "connected"
    assert state["organization_name"] == "Sandbox ApS"
    assert state["last_attempt"] is None  # the replay is not an attempt of its own


async def test_a_replayed_callback_leaves_a_newer_pending_approval_pending(world: World) -> None:
    company = world.new_company()
    url = await start_oauth(world, company)
    page = await approve_in_dinero(world, url, button="Afvis")  # declined
    assert outcome(page) == "oauth_declined"
    await start_oauth(world, company)  # the admin tries again: a new approval, not yet done
    assert (await world.connection(company))["status"] == "pending"

    # The first attempt's callback arrives again (back button, a copied link).
    replay = await world.browser.post(
        CALLBACK,
        content=page.request.content,
        headers={"Content-Type": page.request.headers["Content-Type"]},
    )

    assert outcome(replay) == "oauth_state_reused"
    state = await world.connection(company)
    assert state["status"] == "pending"  # the newer approval can still be finished
    assert state["last_attempt"]["problem_code"] == "oauth_declined"  # the real outcome


async def test_expired_approval_is_refused(world: World) -> None:
    company = world.new_company()
    url = await start_oauth(world, company)
    # The admin left the approval page open longer than the state lives (15 minutes).
    async with world.engine.begin() as db:
        await db.execute(
            update(OAuthState)
            .where(OAuthState.company_id == company)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    page = await approve_in_dinero(world, url)

    assert page.status_code == 400
    assert outcome(page) == "oauth_state_expired"
    assert "expired" in page.text
    assert world.wire.exchanges == []  # the code was never redeemed
    assert (await world.connection(company))["status"] == "not_connected"


async def test_code_that_expired_at_dinero_is_refused(world: World) -> None:
    company = world.new_company()
    url = await start_oauth(world, company)
    page = await world.browser.get(url)
    consent = parse_form(page.text)
    answer = await world.browser.post(page.url.join(consent.action), data=consent.submit("Godkend"))
    back = parse_form(answer.text)
    world.clock.advance(61)  # Visma Connect's codes live 60 seconds

    callback = await world.browser.post(back.action, data=back.fields)

    assert callback.status_code == 400
    assert outcome(callback) == "oauth_code_rejected"
    [exchange] = world.wire.grants("authorization_code")
    assert exchange.status == 400
    assert exchange.body["error"] == "invalid_grant"
    assert (await world.connection(company))["status"] == "not_connected"


async def test_callback_in_another_companys_session_is_refused(world: World) -> None:
    acme, globex = world.new_company(), world.new_company()
    url = await start_oauth(world, acme)

    # The callback reaches the service carrying the platform session of a different company.
    page = await approve_in_dinero(world, url, headers=bearer(globex))

    assert page.status_code == 403
    assert outcome(page) == "oauth_company_mismatch"
    assert world.wire.exchanges == []  # nobody's code was redeemed
    assert (await world.connection(acme))["status"] == "not_connected"
    assert (await world.connection(globex))["status"] == "not_connected"
    assert await world.row(globex) is None


# --------------------------------------------------------------------------------------------
# A refused approval is remembered (the admin may have closed the tab)


def shown_message(page: httpx.Response) -> str:
    """The sentence the service's callback page showed the admin."""
    match = re.search(r"data-code='[^']*'>(.*?) <small>", page.text)
    assert match, page.text
    return html.unescape(match.group(1))


async def expire_states(world: World, company: str) -> None:
    """The admin left the approval page open longer than the state lives (15 minutes)."""
    async with world.engine.begin() as db:
        await db.execute(
            update(OAuthState)
            .where(OAuthState.company_id == company)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


REFUSALS = {
    "declined": ("oauth_declined", "declined in Dinero"),
    "login-without-access": ("organization_not_accessible", f"organization (Firma ID) {PRO}"),
    "no-pro": ("organization_not_pro", "does not have Dinero Pro"),
    "state-expired": ("oauth_state_expired", "expired"),
}


async def refuse(world: World, company: str, kind: str) -> httpx.Response:
    """Start an approval and let it end in the given refusal; returns the callback page."""
    if kind == "declined":
        return await approve_in_dinero(world, await start_oauth(world, company), button="Afvis")
    if kind == "login-without-access":
        world.sandbox.add_login("bogholder@nordlys.dk", organizations=[NO_PRO])
        url = await start_oauth(world, company, org=PRO)
        return await approve_in_dinero(world, url, login="bogholder@nordlys.dk")
    if kind == "no-pro":
        return await approve_in_dinero(world, await start_oauth(world, company, org=NO_PRO))
    assert kind == "state-expired"
    url = await start_oauth(world, company)
    await expire_states(world, company)
    return await approve_in_dinero(world, url)


@pytest.mark.parametrize("kind", list(REFUSALS))
async def test_a_refused_approval_says_why_until_an_approval_succeeds(
    world: World, kind: str
) -> None:
    company = world.new_company()
    code, words = REFUSALS[kind]
    started = datetime.now(UTC)

    page = await refuse(world, company, kind)
    assert outcome(page) == code
    # The admin closes the tab. Later the platform asks how the connection is.

    state = await world.connection(company)
    assert state["status"] == "not_connected"
    assert state["problem_code"] == code
    assert state["problem"] == shown_message(page)
    assert words in state["problem"]
    attempt = state["last_attempt"]
    assert attempt["problem_code"] == code
    assert attempt["problem"] == state["problem"]
    assert started <= datetime.fromisoformat(attempt["failed_at"]) <= datetime.now(UTC)
    # The next read says the same (it is stored, not a one-off answer).
    assert await world.connection(company) == state

    # Starting again: still pending, and still saying why the previous attempt failed.
    url = await start_oauth(world, company)
    pending = await world.connection(company)
    assert pending["status"] == "pending"
    assert pending["problem_code"] == code

    page = await approve_in_dinero(world, url)

    assert outcome(page) == "connected"
    connected = await world.connection(company)
    assert connected["status"] == "connected"
    assert connected["organization_id"] == PRO
    assert connected["problem"] is None
    assert connected["problem_code"] is None
    assert connected["last_attempt"] is None


async def test_a_declined_approval_keeps_the_dinero_message(world: World) -> None:
    company = world.new_company()
    url = await start_oauth(world, company)
    state = query_of(url)["state"]

    # Visma Connect sends the admin back with its own error and words.
    page = await world.browser.get(
        with_query(
            CALLBACK,
            state=state,
            error="access_denied",
            error_description="The user denied the request",
        )
    )

    assert outcome(page) == "oauth_declined"
    body = await world.connection(company)
    assert body["problem_code"] == "oauth_declined"
    assert body["last_attempt"]["dinero_message"] == "The user denied the request"


async def test_a_refused_new_approval_leaves_the_working_connection_as_it_was(
    world: World,
) -> None:
    company = world.new_company()
    await connect_with_oauth(world, company)
    before = await world.connection(company)
    row_before = await world.stored(company)

    page = await approve_in_dinero(world, await start_oauth(world, company), button="Afvis")

    assert outcome(page) == "oauth_declined"
    after = await world.connection(company)
    # Still connected to the same books with the same credentials ...
    assert after["status"] == "connected"
    assert {k: after[k] for k in ("organization_id", "organization_name", "connected_at")} == {
        k: before[k] for k in ("organization_id", "organization_name", "connected_at")
    }
    row_after = await world.stored(company)
    assert row_after.refresh_token_enc == row_before.refresh_token_enc
    assert [y.name for y in await world.gateway.client_for(row_after).accounting_years()] == [
        "2024",
        "2025",
        "2026",
    ]
    # ... not in trouble, but the refused approval is told.
    assert after["problem"] is None
    assert after["last_attempt"]["problem_code"] == "oauth_declined"
    assert after["last_attempt"]["problem"] == shown_message(page)

    await connect_with_oauth(world, company)
    assert (await world.connection(company))["last_attempt"] is None


async def test_an_unknown_approval_is_told_to_the_company_whose_session_carried_it(
    world: World,
) -> None:
    company, stranger = world.new_company(), world.new_company()
    url = await start_oauth(world, company)
    unknown = with_query(CALLBACK, state="not-a-state-we-gave-out", code="whatever")

    # Without a platform session nobody can tell whose it was: nothing is recorded; nor for a
    # company that never started connecting.
    anonymous = await world.browser.get(unknown)
    assert outcome(anonymous) == "oauth_state_unknown"
    assert outcome(await world.browser.get(unknown, headers=bearer(stranger))) == (
        "oauth_state_unknown"
    )
    assert (await world.connection(company))["last_attempt"] is None
    assert await world.row(stranger) is None

    # The platform's frontend hands the callback on with the admin's session.
    page = await world.browser.get(unknown, headers=bearer(company))

    assert outcome(page) == "oauth_state_unknown"
    state = await world.connection(company)
    assert state["status"] == "pending"  # the real approval is still open ...
    assert state["problem_code"] == "oauth_state_unknown"
    assert state["problem"] == shown_message(page)
    assert world.wire.exchanges == []  # the unknown code was never redeemed

    await approve_in_dinero(world, url)  # ... and still works

    connected = await world.connection(company)
    assert connected["status"] == "connected"
    assert connected["problem"] is None
    assert connected["last_attempt"] is None


# --------------------------------------------------------------------------------------------
# API key


async def test_api_key_connects_at_once(world: World) -> None:
    company = world.new_company()

    response = await connect_with_api_key(world, company)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "connected"
    assert body["method"] == "api_key"
    assert body["organization_id"] == PRO
    assert body["organization_name"] == "Sandbox ApS"
    assert API_KEY not in response.text
    assert (await world.connection(company))["status"] == "connected"
    [grant] = world.wire.grants("password")
    assert grant.path == "/dineroapi/oauth/token"
    assert grant.form["username"] == grant.form["password"] == API_KEY
    assert grant.status == 200
    assert [r.path for r in world.sandbox.find_requests("GET", "/v1*", status=200)] == [
        "/v1/organizations",
        f"/v1/{PRO}/accountingyears",
    ]
    row = await world.stored(company)
    assert row.api_key_enc is not None
    assert world.gateway.cipher.decrypt(row.api_key_enc).get_secret_value() == API_KEY
    assert row.refresh_token_enc is None


@pytest.mark.parametrize(
    ("key", "org", "status", "code"),
    [
        ("not-a-dinero-key", PRO, 400, "api_key_rejected"),
        (API_KEY, NO_PRO, 400, "api_key_wrong_organization"),
        ("nordlys-api-key", NO_PRO, 403, "organization_not_pro"),
    ],
    ids=["wrong-key", "key-of-another-organization", "organization-without-pro"],
)
async def test_api_key_refusals(world: World, key: str, org: int, status: int, code: str) -> None:
    world.sandbox.add_api_key("nordlys-api-key", NO_PRO)
    company = world.new_company()

    response = await connect_with_api_key(world, company, key=key, org=org)

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert key not in response.text
    assert (await world.connection(company))["status"] == "not_connected"
    assert await world.row(company) is None  # nothing stored for a refused key


# --------------------------------------------------------------------------------------------
# Tokens kept fresh


@pytest.mark.parametrize("expired_where", ["at_dinero", "in_our_records"])
async def test_expired_access_token_is_refreshed_exactly_once(
    world: World, expired_where: str
) -> None:
    company = world.new_company()
    await connect_with_oauth(world, company)
    before = await world.stored(company)
    world.wire.exchanges.clear()
    world.sandbox.clear_requests()
    if expired_where == "at_dinero":
        world.clock.advance(3601)  # the service still believes its token is good: Dinero 401s
    else:
        async with world.engine.begin() as db:
            await db.execute(
                update(DineroConnection)
                .where(DineroConnection.company_id == company)
                .values(access_expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )

    years = await world.gateway.client_for(before).accounting_years()

    assert [y.name for y in years] == ["2024", "2025", "2026"]
    [refresh] = world.wire.grants("refresh_token")
    assert refresh.status == 200
    old_refresh = world.gateway.cipher.decrypt(before.refresh_token_enc or b"")
    assert refresh.form["refresh_token"] == old_refresh.get_secret_value()
    statuses = [r.status for r in world.sandbox.find_requests("GET", f"/v1/{PRO}/accountingyears")]
    assert statuses == ([401, 200] if expired_where == "at_dinero" else [200])

    after = await world.stored(company)
    assert after.token_generation == before.token_generation + 1
    # Dinero rotates refresh tokens: the new one is stored, the used one is dead.
    assert after.refresh_token_enc is not None
    new_refresh = world.gateway.cipher.decrypt(after.refresh_token_enc).get_secret_value()
    assert new_refresh == refresh.body["refresh_token"] != old_refresh.get_secret_value()

    # Another call (another request of the service) uses the fresh token without refreshing.
    await world.gateway.client_for(after).accounting_years()
    assert len(world.wire.grants("refresh_token")) == 1
    assert (await world.connection(company))["status"] == "connected"


async def test_revoked_grant_makes_the_connection_need_reauthorisation(world: World) -> None:
    company = world.new_company()
    await connect_with_oauth(world, company)
    row = await world.stored(company)
    world.wire.exchanges.clear()
    # The customer removes the integration's access in Dinero: every token of it is dead.
    world.sandbox.revoke_all_tokens()

    with pytest.raises(ReauthRequired):
        await world.gateway.client_for(row).accounting_years()

    [refresh] = world.wire.grants("refresh_token")
    assert refresh.status == 400
    assert refresh.body["error"] == "invalid_grant"
    state = await world.connection(company)
    assert state["status"] == "reauth_required"
    assert state["problem_code"] == "reauth_required"
    assert "reconnect Dinero" in state["problem"]
    assert state["organization_name"] == "Sandbox ApS"  # what was connected stays visible

    # From now on the service says so at once, without bothering Dinero again.
    stale = await world.stored(company)
    with pytest.raises(ReauthRequired):
        await world.gateway.client_for(stale).accounting_years()
    with pytest.raises(ReauthRequired):
        await world.gateway.client_for(row).accounting_years()  # a worker holding the old row
    assert len(world.wire.grants("refresh_token")) == 1

    # Connecting again through the approval page repairs it.
    await connect_with_oauth(world, company)
    repaired = await world.connection(company)
    assert repaired["status"] == "connected"
    assert repaired["problem"] is None


async def test_api_key_connection_gets_a_new_token_from_the_key(world: World) -> None:
    company = world.new_company()
    assert (await connect_with_api_key(world, company)).status_code == 200
    row = await world.stored(company)
    world.wire.exchanges.clear()
    world.clock.advance(3601)

    years = await world.gateway.client_for(row).accounting_years()

    assert len(years) == 3
    [grant] = world.wire.grants("password")
    assert grant.form["username"] == API_KEY
    assert grant.status == 200


# --------------------------------------------------------------------------------------------
# Disconnecting


async def test_disconnect_destroys_tokens_then_revokes_them_at_dinero(world: World) -> None:
    company = world.new_company()
    await connect_with_oauth(world, company)
    [issued] = world.wire.grants("authorization_code")
    access, refresh = issued.body["access_token"], issued.body["refresh_token"]
    connected = await world.stored(company)

    # What another connection to the database sees at the moment Dinero is asked to revoke.
    seen_at_revocation: list[DineroConnection | None] = []

    async def look_at_database(request: httpx.Request) -> None:
        if request.url.path == "/connect/revocation":
            seen_at_revocation.append(await world.row(company))

    world.wire.before = look_at_database

    response = await world.api.delete(CONNECTION.format(company=company), headers=bearer(company))

    assert response.status_code == 204
    assert response.content == b""
    [revocation] = world.wire.to("POST", "/connect/revocation")
    assert revocation.status == 200
    assert revocation.form["token"] == refresh
    assert revocation.form["token_type_hint"] == "refresh_token"
    # The tokens were already gone, committed, before Dinero was asked to revoke.
    [seen] = seen_at_revocation
    assert seen is not None
    assert seen.status == ConnectionStatus.NOT_CONNECTED
    assert seen.access_token_enc is None
    assert seen.refresh_token_enc is None

    assert (await world.connection(company))["status"] == "not_connected"
    row = await world.stored(company)  # history kept
    assert row.id == connected.id
    assert row.organization_id == PRO
    assert row.organization_name == "Sandbox ApS"
    assert row.connected_at == connected.connected_at
    assert (row.access_token_enc, row.refresh_token_enc, row.api_key_enc) == (None, None, None)
    assert row.access_expires_at is None

    # Dinero no longer accepts anything of that approval.
    dinero = httpx.AsyncClient(transport=world.contract, base_url=DINERO)
    async with dinero:
        reused = await dinero.post(
            "/connect/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
        years = await dinero.get(
            f"/v1/{PRO}/accountingyears", headers={"Authorization": f"Bearer {access}"}
        )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert years.status_code == 401


async def test_disconnect_succeeds_when_dinero_cannot_revoke(world: World) -> None:
    company = world.new_company()
    await connect_with_oauth(world, company)
    world.sandbox.add_fault(kind="error", method="POST", path="/connect/revocation", status=503)

    response = await world.api.delete(CONNECTION.format(company=company), headers=bearer(company))

    assert response.status_code == 204
    [revocation] = world.wire.to("POST", "/connect/revocation")
    assert revocation.status == 503
    assert (await world.connection(company))["status"] == "not_connected"
    row = await world.stored(company)
    assert row.refresh_token_enc is None


async def test_disconnect_of_an_api_key_connection_has_nothing_to_revoke(world: World) -> None:
    company = world.new_company()
    assert (await connect_with_api_key(world, company)).status_code == 200

    response = await world.api.delete(CONNECTION.format(company=company), headers=bearer(company))

    assert response.status_code == 204
    assert world.wire.to("POST", "/connect/revocation") == []  # Dinero has no key revocation
    assert (await world.connection(company))["status"] == "not_connected"
    row = await world.stored(company)
    assert row.api_key_enc is None
    assert row.organization_id == PRO


async def test_disconnect_voids_a_pending_approval(world: World) -> None:
    company = world.new_company()
    url = await start_oauth(world, company)

    response = await world.api.delete(CONNECTION.format(company=company), headers=bearer(company))
    assert response.status_code == 204
    page = await approve_in_dinero(world, url)  # the admin approves in the old tab anyway

    assert page.status_code == 400
    assert outcome(page) == "oauth_state_reused"
    assert world.wire.exchanges == []
    assert (await world.connection(company))["status"] == "not_connected"
