"""A flood of oversized bodies against the real `serve` process: answered 413 from the headers,
or the moment a chunked body passes MAX_REQUEST_BYTES, with the process's memory flat.

Raw sockets, so the test controls what is sent (a 200 MB `Content-Length` with no token, an
unsigned webhook, a chunked body with no length) and sees the answer the moment it comes. Before
the limit, the first such request grew the process by ~600 MB; here the resident set of the API
process may grow by no more than a generous bound over the whole flood.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.e2e.conftest import STACK_SETTINGS
from tests.e2e.stack import Stack

DECLARED = 200_000_000
LIMIT = int(STACK_SETTINGS["MAX_REQUEST_BYTES"])
MAX_GROWTH_KB = 64 * 1024
CHUNK = b"x" * (256 * 1024)


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _post(port: int, path: str, headers: dict[str, str], body: Iterator[bytes]) -> tuple[int, int]:
    """Send until the server answers (or hangs up); the answer's status (0: none) and bytes sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        sock.sendall(head.encode("latin-1"))
        sent = 0
        for chunk in body:
            if select.select([sock], [], [], 0)[0]:
                break  # the answer is there: stop sending
            try:
                sock.sendall(chunk)
            except OSError:
                break  # closed on us
            sent += len(chunk)
        answer = b""
        try:
            while not answer.endswith(b"}") and (data := sock.recv(65536)):
                answer += data
        except OSError:
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    if status:
        problem = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert problem["code"] == "payload_too_large", problem
    return status, sent


def _plain(total: int) -> Iterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield CHUNK


def _chunked(total: int) -> Iterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
    yield b"0\r\n\r\n"


def test_a_flood_of_oversized_bodies_is_refused_with_the_api_memory_flat(stack: Stack) -> None:
    assert stack.api is not None
    assert stack.api.popen is not None
    pid = stack.api.popen.pid
    port = int(stack.api_url.rsplit(":", 1)[1])
    declared = {"Content-Type": "application/json", "Content-Length": str(DECLARED)}
    chunked = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    token = stack.client("co-flood").headers["Authorization"]

    def flood(rounds: int) -> list[tuple[int, int]]:
        outcomes = []
        for _ in range(rounds):
            # No token, and an unsigned webhook: refused by length before either is looked at.
            outcomes.append(
                _post(port, "/v1/companies/co-flood/exports", declared, _plain(DECLARED))
            )
            outcomes.append(_post(port, "/v1/webhooks/expenses", declared, _plain(DECLARED)))
            # No length at all: read up to the limit, then refused.
            outcomes.append(
                _post(
                    port,
                    "/v1/companies/co-flood/exports",
                    chunked | {"Authorization": token},
                    _chunked(3 * LIMIT),
                )
            )
        return outcomes

    flood(2)  # warm up (first requests load code and fill caches)
    before = _rss_kb(pid)
    started = time.monotonic()
    outcomes = flood(8)
    elapsed = time.monotonic() - started
    grown = _rss_kb(pid) - before

    declared_outcomes = [o for i, o in enumerate(outcomes) if i % 3 != 2]
    chunked_outcomes = [o for i, o in enumerate(outcomes) if i % 3 == 2]
    assert all(status == 413 for status, _ in declared_outcomes), declared_outcomes
    # Of 200 MB declared, what reached the socket before the 413 (the kernel's buffers).
    assert max(sent for _, sent in declared_outcomes) < 16 * 1024 * 1024
    # A chunked body is answered 413 once past the limit, well before its 3x was sent.
    assert sum(status == 413 for status, _ in chunked_outcomes) >= len(chunked_outcomes) // 2
    assert max(sent for _, sent in chunked_outcomes) < 2 * LIMIT + 16 * 1024 * 1024
    assert grown < MAX_GROWTH_KB, f"the API grew by {grown // 1024} MB during the flood"
    assert elapsed < 20
    assert httpx.get(f"{stack.api_url}/healthz", timeout=5).status_code == 200
