"""No test reaches the network: pytest-socket (pyproject's addopts) lets a test connect to this
machine only, so a forgotten respx route or sandbox URL fails loudly instead of calling Dinero."""

from __future__ import annotations

import socket

import httpx
import pytest
from pytest_socket import SocketConnectBlockedError

pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")

OUTSIDE = "192.0.2.1"
"""TEST-NET-1 (RFC 5737): an address outside this machine that no one answers."""


def test_an_outside_address_is_refused() -> None:
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection((OUTSIDE, 443), timeout=1)


def _blocked(error: BaseException) -> bool:
    """The refusal, possibly inside the exception group of anyio's connection attempts."""
    if isinstance(error, SocketConnectBlockedError):
        return True
    if isinstance(error, BaseExceptionGroup):
        return any(_blocked(inner) for inner in error.exceptions)
    return error.__cause__ is not None and _blocked(error.__cause__)


async def test_an_http_client_cannot_reach_outside() -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        with pytest.raises((SocketConnectBlockedError, BaseExceptionGroup)) as caught:
            await client.get(f"http://{OUTSIDE}/v1/organizations")
    assert _blocked(caught.value), repr(caught.value)


def test_this_machine_is_reachable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=1) as client:
            accepted, _ = server.accept()
            with accepted:
                client.sendall(b"ping")
                assert accepted.recv(4) == b"ping"
