"""Fault injection: latency, server errors, timeouts and "accepted, then the connection dropped".

Rules target requests by method and path pattern (shell-style, on the path as Dinero sees it,
e.g. `/v1.2/*/vouchers/purchase`), fire for the next N matches (`count`) and/or with a
probability drawn from a seeded generator, so tests stay deterministic.

- `latency`: wait `latency_ms`, then serve normally (all matching latency rules add up).
- `error`: answer `status` (500 by default) with a Dinero error body; nothing is written.
- `timeout`: hang `hang_seconds`, then drop the connection; nothing is written (with
  `after_write`, the request is served first: the write happens, the answer never comes).
- `drop`: serve the request (the write happens), then drop the connection.

A dropped connection is an exception raised out of the app after the response has started: over
`httpx.ASGITransport` the client sees it as a transport error (`SandboxConnectionDropped` is an
`httpx.RemoteProtocolError`, `SandboxTimeout` an `httpx.ReadTimeout`); a real server (uvicorn)
closes the socket mid-response, so the client sees the peer closing the connection.
"""

from __future__ import annotations

import fnmatch
import json
import random
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import httpx

from dinero_sandbox.config import Clock, SandboxConfig

if TYPE_CHECKING:
    from dinero_sandbox.sandbox import Sandbox

FaultKind = Literal["latency", "error", "timeout", "drop"]
FAULT_KINDS: tuple[FaultKind, ...] = ("latency", "error", "timeout", "drop")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RECORD_KEY = "sandbox.record"
CONTROL_PREFIX = "/_sandbox"


class SandboxConnectionDropped(httpx.RemoteProtocolError):
    """The sandbox dropped the connection (in-process: raised through ASGITransport)."""


class SandboxTimeout(httpx.ReadTimeout):
    """The sandbox hung until the client gave up (in-process: raised through ASGITransport)."""


@dataclass
class FaultRule:
    """One fault: what it does, which requests it hits, how often."""

    kind: FaultKind
    method: str = "*"
    path: str = "*"
    count: int | None = None  # the next N matching requests; None: no limit
    probability: float = 1.0  # share of matching requests hit
    latency_ms: int = 0
    hang_seconds: float = 30.0
    status: int = 500
    after_write: bool = False
    id: str = field(default_factory=lambda: secrets.token_hex(4))
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        if not 0 <= self.probability <= 1:
            raise ValueError("probability must be within 0-1")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")
        if self.kind == "error" and not 400 <= self.status <= 599:
            raise ValueError("status must be an error status (4xx/5xx)")

    def matches(self, method: str, path: str) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        allowed = {
            "kind",
            "method",
            "path",
            "count",
            "probability",
            "latency_ms",
            "hang_seconds",
            "status",
            "after_write",
            "id",
        }
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass
class FaultPlan:
    """What happens to one request."""

    latency_ms: int = 0
    rule: FaultRule | None = None


class FaultInjector:
    """The active rules and the seeded generator that decides probabilistic ones."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.rules: list[FaultRule] = []
        self.load(config.faults)
        self._random = random.Random(config.fault_seed)  # noqa: S311 - test determinism

    def load(self, rules: list[FaultRule]) -> None:
        """Start from copies of `rules` (the configured ones keep their counts for a reset)."""
        self.rules = [replace(rule, fired=0) for rule in rules]

    def reseed(self, seed: int) -> None:
        self._random = random.Random(seed)  # noqa: S311 - test determinism

    def add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self) -> None:
        self.rules.clear()

    def plan(self, method: str, path: str) -> FaultPlan:
        """Decide the faults for one request (consumes counts and random draws)."""
        plan = FaultPlan(latency_ms=self.config.latency_ms)
        for rule in list(self.rules):
            if not rule.matches(method, path):
                continue
            if plan.rule is not None and rule.kind != "latency":
                continue
            if rule.probability < 1 and self._random.random() >= rule.probability:
                continue
            rule.fired += 1
            if rule.count is not None:
                rule.count -= 1
            if rule.kind == "latency":
                plan.latency_ms += rule.latency_ms
            else:
                plan.rule = rule
        self.rules = [r for r in self.rules if r.count is None or r.count > 0]
        return plan


def relative_path(scope: Scope) -> str:
    """The path below the sandbox's mount point (what Dinero would see)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


async def _abort(send: Send, status: int, exc: Exception) -> None:
    """Start a response, send part of it, then fail: the connection ends mid-answer."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": b"{", "more_body": True})
    raise exc


class _Captured:
    """Collects what the app answered without passing it on."""

    def __init__(self) -> None:
        self.status: int | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])


class DineroApiMiddleware:
    """An ASGI middleware that acts on requests to Dinero's API only: anything not HTTP and the
    control API pass through untouched; the rest goes to `handle` with the relative path."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = relative_path(scope)
        if path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send, path)

    async def handle(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        raise NotImplementedError


class FaultMiddleware(DineroApiMiddleware):
    """Applies the fault plan to every request except the control API."""

    @property
    def clock(self) -> Clock:
        return self.sandbox.clock

    async def handle(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        plan = self.sandbox.faults.plan(scope["method"], path)
        record = scope.get(RECORD_KEY)
        if plan.latency_ms:
            await self.clock.sleep(plan.latency_ms / 1000)
        rule = plan.rule
        if rule is None:
            await self.app(scope, receive, send)
            return
        if record is not None:
            record.fault = rule.kind
        if rule.kind == "error":
            await self._error(send, rule.status)
            if record is not None:
                record.status = rule.status
            return
        if rule.kind == "drop" or (rule.kind == "timeout" and rule.after_write):
            captured = _Captured()
            await self.app(scope, receive, captured.send)
            if record is not None:
                record.status = captured.status
                record.written = True
        if rule.kind == "timeout":
            await self.clock.sleep(rule.hang_seconds)
            await _abort(
                send,
                200,
                SandboxTimeout(f"sandbox fault: no answer within {rule.hang_seconds:g} s"),
            )
        await _abort(send, 200, SandboxConnectionDropped("sandbox fault: connection dropped"))

    async def _error(self, send: Send, status: int) -> None:
        body = json.dumps(
            {
                "code": status,
                "message": "An unexpected error occurred (sandbox fault injection)",
                "validationErrors": None,
                "languageSpecificMessages": None,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
