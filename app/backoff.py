"""One backoff policy for every "try again later" in the service.

A `Backoff` says how long to wait before the next attempt: `first` doubling per attempt, capped
at `cap`, each delay scaled by a random factor within `spread` (jitter). It is used two ways:

- rescheduling a job or a row (export items, data-source runs, webhook events):
  `POLICY.delay(attempt) -> timedelta`, stored as the next attempt's time;
- repeating a call within a request (Dinero requests safe to repeat): `await
  POLICY.call(fn, retry_on=..., sleep=...)`, tenacity's retry loop with this policy's waits and
  `max_attempts`.

`attempt` is the number of the attempt that just failed (1 for the first), so `delay(1) == first`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import tenacity

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
BeforeSleep = Callable[[int, float, BaseException], None]
"""Told (attempt that failed, seconds about to be waited, its error) before each wait."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with a cap and multiplicative jitter."""

    first: timedelta
    """The wait after the first failed attempt (before jitter)."""
    cap: timedelta
    """No wait is longer than this (before jitter)."""
    spread: tuple[float, float] = (1.0, 1.0)
    """Each wait is multiplied by a random factor within this range: (1, 1) is no jitter."""
    max_attempts: int | None = None
    """For `call`: attempts in all, the first included (None: only `delay` is used)."""

    def __post_init__(self) -> None:
        low, high = self.spread
        if not 0 <= low <= high:
            raise ValueError("spread must be (low, high) with 0 <= low <= high")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.first < timedelta(0) or self.cap < timedelta(0):
            raise ValueError("first and cap must not be negative")

    def seconds(self, attempt: int, *, fraction: float | None = None) -> float:
        """Seconds to wait after failed attempt `attempt`; `fraction` in [0, 1) picks the jitter
        (random when None)."""
        base = min(
            self.first.total_seconds() * 2.0 ** (attempt - 1),
            self.cap.total_seconds(),
        )
        low, high = self.spread
        if low == high:
            return base * low
        picked = random.random() if fraction is None else fraction  # noqa: S311 (jitter)
        return base * (low + (high - low) * picked)

    def delay(self, attempt: int, *, fraction: float | None = None) -> timedelta:
        """How long to put off the next attempt after failed attempt `attempt`."""
        return timedelta(seconds=self.seconds(attempt, fraction=fraction))

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        retry_on: type[BaseException] | tuple[type[BaseException], ...],
        sleep: Sleep = asyncio.sleep,
        random_fraction: Callable[[], float] = random.random,
        before_sleep: BeforeSleep | None = None,
    ) -> T:
        """Await `fn()`, repeating it after a wait when it raises `retry_on`, up to
        `max_attempts` attempts in all; the last error is raised as it is."""
        if self.max_attempts is None:
            raise ValueError("a Backoff used for call() needs max_attempts")

        def wait(state: tenacity.RetryCallState) -> float:
            return self.seconds(state.attempt_number, fraction=random_fraction())

        def told(state: tenacity.RetryCallState) -> None:
            if before_sleep is not None and state.outcome is not None:
                error = state.outcome.exception()
                delay = state.next_action.sleep if state.next_action is not None else 0.0
                if error is not None:
                    before_sleep(state.attempt_number, delay, error)

        retrying = tenacity.AsyncRetrying(
            sleep=sleep,
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=wait,
            retry=tenacity.retry_if_exception_type(retry_on),
            before_sleep=told,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await fn()
        raise AssertionError("tenacity ended without an outcome")  # pragma: no cover


# The service's named policies (the numbers each place has always used).

DINERO_REQUEST = Backoff(
    first=timedelta(seconds=0.5), cap=timedelta(seconds=8), spread=(0.75, 1.0), max_attempts=3
)
"""Repeating one Dinero request safe to repeat, within the request: 0.5 s doubling to 8 s,
each shortened by up to a quarter; three attempts in all."""

EXPORT_ITEM = Backoff(first=timedelta(seconds=10), cap=timedelta(minutes=30))
"""An export item Dinero failed for: 10 s doubling to 30 minutes (5 s for an uncounted try)."""

WEBHOOK_EVENT = Backoff(first=timedelta(seconds=5), cap=timedelta(minutes=10), spread=(0.8, 1.2))
"""A webhook event the platform did not accept: 5 s doubling to 10 minutes, ±20 %."""

DATA_SOURCE_RUN = Backoff(first=timedelta(minutes=1), cap=timedelta(minutes=30))
"""A data-source run Dinero failed for: 1 minute doubling to 30 minutes."""

__all__ = [
    "DATA_SOURCE_RUN",
    "DINERO_REQUEST",
    "EXPORT_ITEM",
    "WEBHOOK_EVENT",
    "Backoff",
    "BeforeSleep",
    "Sleep",
]
