"""Sending one Dinero request: pacing, Bearer token (one forced refresh on 401), retries only
where repeating is safe, and typed errors; writes with an uncertain outcome say so."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from app.backoff import DINERO_REQUEST, Backoff
from app.dinero.errors import (
    DineroError,
    DineroOutcomeUnknown,
    DineroRateLimited,
    DineroResponseError,
    DineroTransportError,
    error_from_response,
)
from app.dinero.pacing import Lane, Pacer, Sleep, bounded_wait
from app.dinero.retry import is_transient_status, was_not_sent
from app.dinero.tokens import TokenProvider
from app.dinero.wire import dumps, loads

logger = logging.getLogger("app.dinero.client")

T = TypeVar("T")

RATE_LIMIT_PENALTY_SECONDS: Final = 60.0
NO_BODY: Final = object()


@dataclass(frozen=True)
class Call:
    """One logical call: how to send it and whether repeating it is safe."""

    method: str
    path: str
    safe_to_repeat: bool
    org_scoped: bool = True
    params: Mapping[str, str] | None = None
    body: Any = NO_BODY
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class _Again(Exception):
    """A transient failure of a call safe to repeat: repeated while attempts are left, else
    `error` is raised."""

    def __init__(self, error: DineroError, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


class _Refused(Exception):
    """Dinero answered 401 before doing anything: repeat once with a fresh token."""


class TransportOptions(TypedDict, total=False):
    """How a Transport paces, retries and waits (each has Transport's default when left out);
    DineroClient takes them as keywords and passes them on."""

    retry: Backoff
    sleep: Sleep
    random_fraction: Callable[[], float]
    rate_limit_penalty_seconds: float
    lane: Lane
    max_wait: float | None


class Transport:
    """Sends calls for one organization over the shared httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        organization_id: int,
        tokens: TokenProvider,
        pacer: Pacer,
        *,
        retry: Backoff = DINERO_REQUEST,
        sleep: Sleep = asyncio.sleep,
        random_fraction: Callable[[], float] = random.random,
        rate_limit_penalty_seconds: float = RATE_LIMIT_PENALTY_SECONDS,
        lane: Lane = Lane.EXPORT,
        max_wait: float | None = None,
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self.organization_id = organization_id
        self._tokens = tokens
        self._pacer = pacer
        self._retry = retry
        self._sleep = sleep
        self._random = random_fraction
        self._penalty = rate_limit_penalty_seconds
        self.lane = lane
        """Who waits for these requests: decides how the pacer schedules them."""
        self.max_wait = max_wait
        """Longest wait for a slot before the pacer raises PacerBusy (None: no limit)."""

    async def send(self, call: Call) -> httpx.Response:
        """Send with pacing, one forced token refresh on 401, and retries where safe."""
        try:
            return await self._attempts(call, refreshed=False)
        except _Refused:
            # Dinero refused before doing anything: safe to repeat once, even for writes.
            return await self._attempts(call, refreshed=True)

    async def _attempts(self, call: Call, *, refreshed: bool) -> httpx.Response:
        """The call, repeated after the policy's waits while it fails transiently and is safe
        to repeat; after a 401 (`refreshed`) the first attempt forces a token refresh."""
        first = True

        async def attempt() -> httpx.Response:
            nonlocal first
            force, first = refreshed and first, False
            return await self._once(call, force_refresh=force, refreshed=refreshed)

        try:
            return await self._retry.call(
                attempt,
                retry_on=_Again,
                sleep=self._sleep,
                random_fraction=self._random,
                before_sleep=lambda number, delay, error: self._log_retry(
                    call, number, delay, error
                ),
            )
        except _Again as again:
            raise again.error from again.error.__cause__

    async def _once(self, call: Call, *, force_refresh: bool, refreshed: bool) -> httpx.Response:
        """One attempt; a failure worth repeating comes as `_Again`, a first 401 as `_Refused`."""
        url = self.base_url + call.path
        content = None if call.body is NO_BODY else dumps(call.body)
        claim = None
        if call.org_scoped:
            claim = await self._pacer.acquire(
                self.organization_id, self.lane, max_wait=bounded_wait(self.max_wait)
            )
        token = await self._tokens.get(force_refresh=force_refresh)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        headers.update(call.headers)
        request = self._http.build_request(
            call.method,
            url,
            params=dict(call.params) if call.params else None,
            content=content,
            files=dict(call.files) if call.files else None,
            headers=headers,
        )
        try:
            try:
                response = await self._http.send(request)
            finally:  # answered or not, Dinero may have counted it: tell the pacer when
                if claim is not None:
                    await self._pacer.answered(claim)
        except httpx.TransportError as exc:
            failure = self._transport_failure(call, exc)
            failure.__cause__ = exc
            if call.safe_to_repeat:
                raise _Again(failure, type(exc).__name__) from exc
            raise failure from exc
        except httpx.RequestError as exc:  # e.g. an undecodable body: an answer came
            raise self.bad_response(call, type(exc).__name__) from exc

        status = response.status_code
        if status < 400:
            return response
        raw = await response.aread()
        await response.aclose()
        if status == 401 and not refreshed:
            raise _Refused
        error = error_from_response(status, raw, method=call.method, path=call.path)
        if isinstance(error, DineroRateLimited):
            if call.org_scoped:
                await self._pacer.penalize(self.organization_id, self._penalty)
            raise error
        if is_transient_status(status):
            if call.safe_to_repeat:
                raise _Again(error, f"HTTP {status}")
            raise DineroOutcomeUnknown(
                f"Dinero answered HTTP {status} after receiving the request",
                method=call.method,
                path=call.path,
                status=status,
                dinero_message=error.dinero_message,
            ) from error
        raise error

    @staticmethod
    def _transport_failure(call: Call, exc: httpx.TransportError) -> DineroError:
        """No answer: a write that may have arrived is an unknown outcome, else transport."""
        sent = not was_not_sent(exc)
        if sent and not call.safe_to_repeat:
            return DineroOutcomeUnknown(
                f"no answer after sending ({type(exc).__name__})",
                method=call.method,
                path=call.path,
            )
        return DineroTransportError(f"{call.method} {call.path}: {type(exc).__name__}", sent=sent)

    @staticmethod
    def _log_retry(call: Call, attempt: int, delay: float, error: BaseException) -> None:
        """Say that a call safe to repeat failed and is repeated after `delay` seconds."""
        logger.warning(
            "dinero request failed; retrying",
            extra={
                "method": call.method,
                "path": call.path,
                "reason": error.reason if isinstance(error, _Again) else type(error).__name__,
                "attempt": attempt,
                "delay_seconds": round(delay, 3),
            },
        )

    async def json(self, call: Call) -> Any:
        """Send and decode the JSON answer (None for an empty body)."""
        response = await self.send(call)
        if not response.content:
            return None
        try:
            return loads(response.content)
        except ValueError as exc:
            raise self.bad_response(call, "invalid JSON") from exc

    def bad_response(self, call: Call, problem: str) -> DineroError:
        """The error for a 2xx answer we cannot read (for a write: an unknown outcome)."""
        if call.safe_to_repeat:
            return DineroResponseError(f"{call.method} {call.path}: {problem}")
        # The write was accepted (2xx) but we cannot read what it created: look before repeating.
        return DineroOutcomeUnknown(
            f"Dinero accepted the request but its answer was unreadable ({problem})",
            method=call.method,
            path=call.path,
        )

    async def parsed(self, call: Call, adapter: TypeAdapter[T]) -> T:
        """Send and validate the JSON answer into the expected type."""
        data = await self.json(call)
        try:
            return adapter.validate_python(data)
        except ValidationError as exc:
            raise self.bad_response(call, f"does not match the expected shape: {exc}") from exc


__all__ = ["NO_BODY", "Call", "Transport"]
