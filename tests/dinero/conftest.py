"""Fixtures: a fake Dinero (respx) behind an httpx client that checks every exchange against
Dinero's contract (`tests/contract.py`), and a client for organization 100001."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx

from app.backoff import Backoff
from app.dinero import DineroClient, StaticTokenProvider
from app.dinero.pacing import Claim, Lane
from tests.contract import NO_BODY, is_dinero_api_path, validate_request, validate_response

BASE_URL = "https://api.dinero.test"
ORG = 100001
TOKEN = "access-token-1"


@dataclass
class ContractLog:
    """Every exchange the contract hooks checked."""

    requests: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)


def _request_json(request: httpx.Request) -> Any:
    if "json" not in request.headers.get("content-type", "") or not request.content:
        return None
    return json.loads(request.content)


def _response_json(response: httpx.Response) -> Any:
    if "json" not in response.headers.get("content-type", "") or not response.content:
        return NO_BODY
    return json.loads(response.content)


def contract_hooks(log: ContractLog) -> dict[str, list[Any]]:
    """httpx event hooks validating each request and response to the API against the contract."""

    async def on_request(request: httpx.Request) -> None:
        path = request.url.path
        if not is_dinero_api_path(path):
            return
        query = request.url.query.decode("ascii")
        validate_request(request.method, path, _request_json(request), query)
        log.requests.append(f"{request.method} {path}")

    async def on_response(response: httpx.Response) -> None:
        await response.aread()
        request = response.request
        path = request.url.path
        if not is_dinero_api_path(path):
            return
        query = request.url.query.decode("ascii")
        validate_response(
            request.method, path, response.status_code, _response_json(response), query=query
        )
        log.responses.append(f"{response.status_code} {request.method} {path}")

    return {"request": [on_request], "response": [on_response]}


class RecordingPacer:
    """A Pacer that records what it was asked."""

    def __init__(self) -> None:
        self.acquired: list[int] = []
        self.lanes: list[Lane] = []
        self.max_waits: list[float | None] = []
        self.penalties: list[tuple[int, float]] = []

    async def acquire(
        self, organization_id: int, lane: Lane = Lane.EXPORT, *, max_wait: float | None = None
    ) -> None:
        self.acquired.append(organization_id)
        self.lanes.append(lane)
        self.max_waits.append(max_wait)

    async def answered(self, claim: Claim) -> None:
        return None

    async def penalize(self, organization_id: int, seconds: float) -> None:
        self.penalties.append((organization_id, seconds))


class RotatingTokens:
    """A TokenProvider handing out token-1, then token-2 after a forced refresh, …"""

    def __init__(self) -> None:
        self.number = 1
        self.forced = 0

    async def get(self, force_refresh: bool = False) -> str:
        if force_refresh:
            self.forced += 1
            self.number += 1
        return f"access-token-{self.number}"


class FakeSleep:
    """Records sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def contract_log() -> ContractLog:
    return ContractLog()


@pytest.fixture
def dinero() -> Iterator[respx.MockRouter]:
    """The fake Dinero; unmatched requests fail the test."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def http(contract_log: ContractLog) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(5.0), event_hooks=contract_hooks(contract_log)
    ) as client:
        yield client


@pytest.fixture
def pacer() -> RecordingPacer:
    return RecordingPacer()


@pytest.fixture
def tokens() -> RotatingTokens:
    return RotatingTokens()


@pytest.fixture
def sleeps() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def client(
    http: httpx.AsyncClient,
    dinero: respx.MockRouter,
    tokens: RotatingTokens,
    pacer: RecordingPacer,
    sleeps: FakeSleep,
) -> DineroClient:
    return DineroClient(
        http,
        BASE_URL,
        ORG,
        tokens,
        pacer,
        retry=Backoff(
            first=timedelta(seconds=0.5),
            cap=timedelta(seconds=4),
            spread=(0.75, 1.0),
            max_attempts=3,
        ),
        sleep=sleeps,
        random_fraction=lambda: 0.5,
    )


def static_client(http: httpx.AsyncClient, pacer: RecordingPacer) -> DineroClient:
    """A client with a fixed token (for tests that build their own)."""
    return DineroClient(http, BASE_URL, ORG, StaticTokenProvider(TOKEN), pacer)


def sent_json(request: httpx.Request) -> Any:
    """The JSON body a request carried (floats parsed as Decimal, to see exact amounts)."""
    from app.dinero.wire import loads

    return loads(request.content)
