"""Fixtures: an in-process sandbox whose every exchange is checked against Dinero's contract.

`ContractTransport` (tests/contract.py) wraps the ASGI transport: every response, and every
request the sandbox accepts, is validated against the OpenAPI subset; a mismatch fails the test.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import httpx
import pytest
from dinero_sandbox import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeClock,
    Sandbox,
    SandboxConfig,
    create_sandbox_app,
)
from fastapi import FastAPI

from tests.contract import ContractTransport

BASE_URL = "http://dinero.test"
REDIRECT_URI = "https://bridge.example/v1/dinero/oauth/callback"
SCOPE = "dineropublicapi:read dineropublicapi:write offline_access"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(clock: FakeClock) -> SandboxConfig:
    return SandboxConfig(clock=clock)


@pytest.fixture
def app(config: SandboxConfig) -> FastAPI:
    return create_sandbox_app(config)


@pytest.fixture
def sandbox(app: FastAPI) -> Sandbox:
    handle: Sandbox = app.state.sandbox
    return handle


@pytest.fixture
def transport(app: FastAPI) -> ContractTransport:
    return ContractTransport(httpx.ASGITransport(app=app))


@pytest.fixture
async def client(transport: ContractTransport) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client (OAuth endpoints, control API, unauthenticated calls)."""
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


@pytest.fixture
def token(sandbox: Sandbox) -> str:
    """An access token of the demo login (reaches 100001 and 100002); it outlives any clock
    jump a test makes."""
    return sandbox.issue_token(lifetime_seconds=10 * 365 * 24 * 3600)


@pytest.fixture
async def api(transport: ContractTransport, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling Dinero's API with the demo login's token."""
    async with httpx.AsyncClient(
        transport=transport,
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        yield http


# --------------------------------------------------------------------------------------------
# OAuth helpers


@dataclass
class Form:
    """A parsed HTML form: action, hidden/visible inputs, selected options, submit buttons."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str, str]] = field(default_factory=list)
    options: dict[str, list[str]] = field(default_factory=dict)

    def submit(self, button_text: str, **overrides: str) -> dict[str, str]:
        """The form data a browser sends when the button with this text is pressed."""
        data = dict(self.fields)
        for name, value, text in self.buttons:
            if text.strip() == button_text:
                data[name] = value
                break
        else:
            raise AssertionError(f"no button {button_text!r} in {self.buttons}")
        data.update(overrides)
        return data


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._select: str | None = None
        self._option: str | None = None
        self._button: tuple[str, str] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get")))
        elif not self.forms:
            return
        form = self.forms[-1]
        if tag == "input" and a.get("name"):
            form.fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a.get("name")
            if self._select:
                form.options[self._select] = []
        elif tag == "option" and self._select:
            form.options[self._select].append(a.get("value", ""))
            if "selected" in a or self._select not in form.fields:
                form.fields[self._select] = a.get("value", "")
        elif tag == "button":
            self._button = (a.get("name", ""), a.get("value", ""))
            self._text = ""

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "button" and self._button is not None and self.forms:
            self.forms[-1].buttons.append((*self._button, self._text))
            self._button = None


def parse_form(html: str) -> Form:
    parser = _FormParser()
    parser.feed(html)
    assert parser.forms, f"no form in page:\n{html}"
    return parser.forms[0]


def pkce_pair(seed: str = "verifier") -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = base64.urlsafe_b64encode(hashlib.sha256(seed.encode()).digest()).rstrip(b"=")
    text = verifier.decode() + "-sandbox-test"
    digest = hashlib.sha256(text.encode()).digest()
    return text, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(challenge: str, **extra: str) -> dict[str, str]:
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": SCOPE,
        "state": "st-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "ui_locales": "da-DK",
    }
    params.update(extra)
    return params


def callback_params(response: httpx.Response) -> dict[str, str]:
    """What reached the redirect URI: the 302's query or the form_post form's fields."""
    if response.status_code == 302:
        location = response.headers["location"]
        assert location.startswith(REDIRECT_URI), location
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert response.status_code == 200, response.text
    form = parse_form(response.text)
    assert form.action == REDIRECT_URI
    assert form.method == "post"
    return form.fields


async def approve(
    client: httpx.AsyncClient,
    challenge: str,
    *,
    button: str = "Godkend",
    login: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """Open the consent page, press a button, return what the redirect URI received."""
    page = await client.get("/connect/authorize", params=authorize_params(challenge, **extra))
    assert page.status_code == 200, page.text
    form = parse_form(page.text)
    overrides = {"login": login} if login else {}
    response = await client.post(form.action, data=form.submit(button, **overrides))
    return callback_params(response)


async def exchange_code(
    client: httpx.AsyncClient, code: str, verifier: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    data.update(extra)
    return await client.post("/connect/token", data=data, auth=(CLIENT_ID, CLIENT_SECRET))


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(
        "/connect/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )


async def api_key_grant(client: httpx.AsyncClient, api_key: str) -> httpx.Response:
    """Dinero's legacy grant: the API key as user and password, the demo client as Basic auth."""
    return await client.post(
        "/dineroapi/oauth/token",
        data={
            "grant_type": "password",
            "scope": "read write",
            "username": api_key,
            "password": api_key,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def draft_cash_purchase(api: httpx.AsyncClient, org: int, **fields: Any) -> dict[str, Any]:
    """Create a draft cash purchase voucher paid from deposit account 55030; Dinero's answer."""
    body = {"PurchaseType": "cash", "DepositAccountNumber": 55030, **fields}
    voucher: dict[str, Any] = (await api.post(f"/v1.2/{org}/vouchers/purchase", json=body)).json()
    return voucher


def error_code(response: httpx.Response) -> Any:
    return response.json()["code"]


def by_account(sandbox: Sandbox, org: int, voucher_guid: UUID | str) -> dict[int, Decimal]:
    """What a voucher (or ledger item) booked, summed per account."""
    totals: dict[int, Decimal] = {}
    for entry in sandbox.entries(org, voucher_guid=str(voucher_guid)):
        totals[entry.account_number] = totals.get(entry.account_number, Decimal(0)) + entry.amount
    return totals
