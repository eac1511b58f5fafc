"""Pacing requests per Dinero organization (Dinero allows ~100 requests/minute/org/client)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@runtime_checkable
class Pacer(Protocol):
    """Decides when the next request for an organization may go out; shared by all workers."""

    async def acquire(self, organization_id: int) -> None:
        """Wait until a request for this organization may be sent, and claim that slot."""
        ...

    async def penalize(self, organization_id: int, seconds: float) -> None:
        """Hold back every request for this organization for `seconds` (called on a 429)."""
        ...


class NoopPacer:
    """Never waits (tests, the sandbox)."""

    async def acquire(self, organization_id: int) -> None:
        """Return at once."""

    async def penalize(self, organization_id: int, seconds: float) -> None:
        """Ignore the penalty."""


class InMemoryPacer:
    """Even spacing within one process: slot = max(next_slot, now); next_slot = slot + 60/limit."""

    def __init__(
        self,
        limit_per_minute: int = 100,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if limit_per_minute < 1:
            raise ValueError("limit_per_minute must be at least 1")
        self.interval = 60.0 / limit_per_minute
        self._clock = clock
        self._sleep = sleep
        self._next_slot: dict[int, float] = {}

    async def acquire(self, organization_id: int) -> None:
        """Claim the next free slot for the organization and sleep until it comes."""
        # No await between reading and writing the slot, so no lock is needed in one event loop.
        now = self._clock()
        slot = max(self._next_slot.get(organization_id, now), now)
        self._next_slot[organization_id] = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)

    async def penalize(self, organization_id: int, seconds: float) -> None:
        """Push the organization's next slot at least `seconds` into the future."""
        now = self._clock()
        current = self._next_slot.get(organization_id, now)
        self._next_slot[organization_id] = max(current, now + seconds)


__all__ = ["Clock", "InMemoryPacer", "NoopPacer", "Pacer", "Sleep"]
