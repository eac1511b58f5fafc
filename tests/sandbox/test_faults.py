"""Fault injection: latency, server errors, timeouts, accepted-then-dropped writes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from dinero_sandbox import (
    FakeClock,
    FaultRule,
    Sandbox,
    SandboxConfig,
    SandboxConnectionDropped,
    SandboxTimeout,
    create_sandbox_app,
)
from fastapi import FastAPI

from tests.contract import ContractTransport

ORG = 100001
LEDGER_ID = "5f0c8a1e-3b6d-4e1a-9c2f-7a8b9c0d1e2f"
PURCHASE = {
    "PurchaseType": "cash",
    "VoucherDate": "2026-11-03",
    "DepositAccountNumber": 55030,
    "ExternalReference": "exp_drop",
    "Lines": [{"AccountNumber": 5000, "Amount": 125.00}],
}


def ledger_item() -> list[dict[str, Any]]:
    return [
        {
            "Id": LEDGER_ID,
            "VoucherDate": "2026-11-03",
            "Lines": [{"Amount": 100, "AccountNumber": 55080, "BalancingAccountNumber": 55000}],
        }
    ]


async def test_latency_is_added_on_the_clock(
    api: httpx.AsyncClient, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.add_fault(kind="latency", latency_ms=1500, path="/v1/*/vatTypes")
    sandbox.configure(latency_ms=20)
    assert (await api.get(f"/v1/{ORG}/vatTypes")).status_code == 200
    assert (await api.get(f"/v1/{ORG}/accountingyears")).status_code == 200
    assert clock.slept == [1.52, 0.02]


async def test_next_n_requests_get_500_and_nothing_is_written(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rule = sandbox.add_fault(kind="error", method="POST", path="/v1.2/*/vouchers/purchase", count=2)
    first = await api.post(f"/v1.2/{ORG}/vouchers/purchase", json=PURCHASE)
    second = await api.post(f"/v1.2/{ORG}/vouchers/purchase", json=PURCHASE)
    third = await api.post(f"/v1.2/{ORG}/vouchers/purchase", json=PURCHASE)

    assert [first.status_code, second.status_code, third.status_code] == [500, 500, 200]
    assert first.json()["message"].startswith("An unexpected error")
    assert len(sandbox.drafts(ORG)) == 1
    assert rule.fired == 2
    assert sandbox.faults.rules == []  # spent
    assert [r.fault for r in sandbox.find_requests("POST")] == ["error", "error", None]


async def test_a_share_of_errors_is_deterministic_for_a_seed(clock: FakeClock) -> None:
    async def statuses(seed: int) -> list[int]:
        config = SandboxConfig(
            clock=clock,
            fault_seed=seed,
            faults=[FaultRule(kind="error", status=503, probability=0.3)],
        )
        app = create_sandbox_app(config)
        token = app.state.sandbox.issue_token()
        async with httpx.AsyncClient(
            transport=ContractTransport(httpx.ASGITransport(app=app)),
            base_url="http://dinero.test",
            headers={"Authorization": f"Bearer {token}"},
        ) as http:
            return [(await http.get(f"/v1/{ORG}/vatTypes")).status_code for _ in range(40)]

    first = await statuses(7)
    assert first == await statuses(7)
    assert set(first) == {200, 503}
    assert 5 <= first.count(503) <= 20
    assert first != await statuses(8)


async def test_timeout_hangs_then_fails_without_writing(
    api: httpx.AsyncClient, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.add_fault(kind="timeout", hang_seconds=45, method="POST", count=1)
    with pytest.raises(httpx.ReadTimeout) as raised:
        await api.post(f"/v1.2/{ORG}/ledgeritems", json=ledger_item())
    assert isinstance(raised.value, SandboxTimeout)
    assert clock.slept == [45]
    assert sandbox.ledger_items(ORG) == []
    record = sandbox.find_requests("POST")[0]
    assert (record.fault, record.status, record.written) == ("timeout", None, False)

    retry = await api.post(f"/v1.2/{ORG}/ledgeritems", json=ledger_item())
    assert retry.status_code == 200


async def test_timeout_after_the_write(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.add_fault(kind="timeout", after_write=True, hang_seconds=10, count=1)
    with pytest.raises(httpx.TimeoutException):
        await api.post(f"/v1.2/{ORG}/ledgeritems", json=ledger_item())
    assert [i.id for i in sandbox.ledger_items(ORG)] == [LEDGER_ID]


async def test_accept_then_drop_writes_but_the_client_sees_a_transport_error(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.add_fault(kind="drop", method="POST", path="/v1.2/*/vouchers/purchase", count=1)

    with pytest.raises(httpx.TransportError) as raised:
        await api.post(f"/v1.2/{ORG}/vouchers/purchase", json=PURCHASE)

    assert isinstance(raised.value, SandboxConnectionDropped)
    assert raised.value.request.url.path == f"/v1.2/{ORG}/vouchers/purchase"
    drafts = sandbox.drafts(ORG)
    assert len(drafts) == 1  # the outcome-unknown case: Dinero did create it
    record = sandbox.find_requests("POST")[0]
    assert (record.fault, record.status, record.written) == ("drop", 200, True)

    # What a careful client does next: look before writing again.
    similar = await api.post(f"/v1/{ORG}/vouchers/purchase/similar", json=PURCHASE)
    assert similar.json()["SimilarGuid"] == drafts[0].guid


async def test_a_ledger_item_retry_after_a_drop_meets_409(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.add_fault(kind="drop", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post(f"/v1.2/{ORG}/ledgeritems", json=ledger_item())
    retry = await api.post(f"/v1.2/{ORG}/ledgeritems", json=ledger_item())
    assert retry.status_code == 409
    assert retry.json()["code"] == 72


async def test_faults_through_the_control_api(
    client: httpx.AsyncClient, api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    added = await client.post(
        "/_sandbox/faults",
        json={
            "kind": "error",
            "status": 503,
            "method": "GET",
            "path": "/v1/*/vatTypes",
            "count": 1,
        },
    )
    assert added.status_code == 200
    rule_id = added.json()["id"]
    assert [r["id"] for r in (await client.get("/_sandbox/faults")).json()] == [rule_id]
    assert (await api.get(f"/v1/{ORG}/vatTypes")).status_code == 503
    assert (await api.get(f"/v1/{ORG}/vatTypes")).status_code == 200

    again = await client.post("/_sandbox/faults", json={"kind": "latency", "latency_ms": 5})
    assert (await client.delete(f"/_sandbox/faults/{again.json()['id']}")).status_code == 200
    assert (await client.delete("/_sandbox/faults/nope")).status_code == 404
    bad = await client.post("/_sandbox/faults", json={"kind": "explode"})
    assert bad.status_code == 400
    await client.post("/_sandbox/faults", json={"kind": "drop"})
    assert (await client.delete("/_sandbox/faults")).status_code == 200
    assert sandbox.faults.rules == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Sandbox]]:
    """The sandbox on a real socket (uvicorn), for the socket-level drop."""
    app: FastAPI = create_sandbox_app(SandboxConfig(clock=FakeClock()))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}", app.state.sandbox
    server.should_exit = True
    await task


async def test_over_a_real_socket_the_connection_is_cut(
    served: tuple[str, Sandbox],
) -> None:
    base_url, sandbox = served
    sandbox.add_fault(kind="drop", method="POST", count=1)
    token = sandbox.issue_token()
    transport = ContractTransport(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(
        base_url=base_url,
        timeout=5,
        transport=transport,
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"/v1.2/{ORG}/vouchers/purchase", json=PURCHASE)
        assert len(sandbox.drafts(ORG)) == 1
        ok = await http.get(f"/v1/{ORG}/vatTypes")
        assert ok.status_code == 200


async def test_configured_faults_come_back_after_a_reset(clock: FakeClock) -> None:
    config = SandboxConfig(clock=clock, faults=[FaultRule(kind="error", count=1)])
    app = create_sandbox_app(config)
    sandbox: Sandbox = app.state.sandbox
    token = sandbox.issue_token()
    transport = ContractTransport(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport, base_url="http://dinero.test") as http:
        headers = {"Authorization": f"Bearer {token}"}
        assert (await http.get(f"/v1/{ORG}/vatTypes", headers=headers)).status_code == 500
        assert (await http.get(f"/v1/{ORG}/vatTypes", headers=headers)).status_code == 200
        sandbox.reset()
        token = sandbox.issue_token()
        headers = {"Authorization": f"Bearer {token}"}
        assert (await http.get(f"/v1/{ORG}/vatTypes", headers=headers)).status_code == 500
    assert config.faults[0].count == 1
