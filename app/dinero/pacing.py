"""Pacing requests per Dinero organization (Dinero allows ~100 requests/minute/org/client).

The rule is an exact sliding window: per organization, no `window` seconds ever hold more than
`limit` requests. Every request reserves a slot first; reservations are non-decreasing, so the
next slot is

    t = max(now, paused_until, newest reservation,
            (the limit-th most recent reservation) + window + margin)

and the caller sleeps until `t`. The margin absorbs the latency between our clock and the
moment Dinero counts the request.

Lanes: INTERACTIVE and EXPORT ("foreground") always reserve and may queue. FOLLOW_UP and
DATA_SOURCE ("background") only use idle capacity: a slot now, if no foreground reservation is
pending, the window is not full and the lane stays within its share of the limit; otherwise they
wait and look again (or give up with `PacerBusy` after `max_wait`).

`plan_slot` is the whole decision, shared by the in-memory pacer here and the PostgreSQL pacer
(app/connection/gateway.py), which runs it under a per-organization advisory lock.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol, runtime_checkable

from app.backoff import Sleep

Clock = Callable[[], float]

WINDOW_SECONDS: Final = 60.0
"""Dinero counts requests per minute."""
MARGIN_SECONDS: Final = 0.5
"""Added to the window, so Dinero's count never sees a request inside the previous minute."""
INTERACTIVE_MAX_WAIT_SECONDS: Final = 10.0
"""Longest a request's call to Dinero waits for a slot while a user waits for the answer (an
export may hold the organization's budget for up to a minute): past it the request answers
503 `dinero_busy` with `Retry-After` (app/errors.py) instead of hanging. A request that makes
several calls waits this long in all, not per call (`waiting_at_most`)."""

_wait_deadline: ContextVar[float | None] = ContextVar("dinero_wait_deadline", default=None)
"""`time.monotonic()` past which no call made in this context waits for a slot."""


@contextlib.contextmanager
def waiting_at_most(seconds: float) -> Iterator[None]:
    """Every Dinero call made inside, and in tasks started inside, waits for its slot only
    what is left of `seconds` in all (a nested bound can only shorten it)."""
    deadline = time.monotonic() + seconds
    outer = _wait_deadline.get()
    token = _wait_deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _wait_deadline.reset(token)


def bounded_wait(max_wait: float | None) -> float | None:
    """A call's longest wait for a slot: its own `max_wait`, cut to what is left of the
    enclosing `waiting_at_most` (never below 0: no slot now is then PacerBusy)."""
    deadline = _wait_deadline.get()
    if deadline is None:
        return max_wait
    left = max(deadline - time.monotonic(), 0.0)
    return left if max_wait is None else min(max_wait, left)


class Lane(StrEnum):
    """Who is asking: decides whether a request may queue or only uses idle capacity."""

    INTERACTIVE = "interactive"
    """A user is waiting (connect checks, chart sync)."""
    EXPORT = "export"
    """Exporting expenses: may use the whole budget."""
    FOLLOW_UP = "follow_up"
    """Polling drafts for approval: idle capacity only, within its share."""
    DATA_SOURCE = "data_source"
    """Dashboard imports: idle capacity only, within its share."""

    @property
    def is_background(self) -> bool:
        return self in BACKGROUND_LANES


FOREGROUND_LANES: Final = frozenset({Lane.INTERACTIVE, Lane.EXPORT})
BACKGROUND_LANES: Final = frozenset({Lane.FOLLOW_UP, Lane.DATA_SOURCE})


class PacerBusy(Exception):
    """No slot within `max_wait`: reschedule the job instead of holding a worker."""

    def __init__(self, organization_id: int, lane: Lane, retry_after: float) -> None:
        self.organization_id = organization_id
        self.lane = lane
        self.retry_after = max(retry_after, 0.0)
        """Seconds from now before a slot could be had, at the earliest."""
        super().__init__(
            f"no {lane} slot for organization {organization_id} "
            f"within the allowed wait (earliest in {self.retry_after:.1f} s)"
        )


@dataclass(eq=False)
class Claim:
    """A slot a request holds: which organization's, the pacer's handle on it, and when it
    began (`time.monotonic()`), so the pacer can tell a request that went out late."""

    organization_id: int
    handle: object
    began: float


@runtime_checkable
class Pacer(Protocol):
    """Decides when the next request for an organization may go out; shared by all workers."""

    async def acquire(
        self, organization_id: int, lane: Lane = Lane.EXPORT, *, max_wait: float | None = None
    ) -> Claim | None:
        """Wait until a request for this organization may be sent, and claim that slot.

        Raises `PacerBusy` (claiming nothing) when no slot can be had within `max_wait` seconds.
        """
        ...

    async def answered(self, claim: Claim) -> None:
        """The claimed request is answered (or failed). Answered more than the margin after
        its slot began, it may have reached Dinero that late (a busy event loop, a wait for a
        connection), so its slot is moved to now: later slots are planned from when Dinero
        counted it, and a request a window later cannot meet it inside Dinero's minute."""
        ...

    async def penalize(self, organization_id: int, seconds: float) -> None:
        """Hold back every request for this organization for `seconds` (called on a 429)."""
        ...


@dataclass(frozen=True)
class Reservation:
    """One claimed slot (seconds on the pacer's clock) and the lane that claimed it."""

    slot: float
    lane: Lane


@dataclass(frozen=True)
class Plan:
    """Either reserve `slot` now, or (slot is None) look again at `eligible_at`."""

    slot: float | None
    eligible_at: float


@dataclass(frozen=True)
class PacingRules:
    """The budget: `limit` requests per `window` seconds, plus the background lanes' shares."""

    limit: int = 100
    window: float = WINDOW_SECONDS
    margin: float = MARGIN_SECONDS
    shares: Mapping[Lane, float] = field(
        default_factory=lambda: {Lane.FOLLOW_UP: 0.10, Lane.DATA_SOURCE: 0.5}
    )

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("limit_per_minute must be at least 1")
        if self.window <= 0:
            raise ValueError("window_seconds must be positive")
        if self.margin < 0:
            raise ValueError("margin_seconds must not be negative")
        for lane, share in self.shares.items():
            if not 0 < share <= 1:
                raise ValueError(f"the {lane} share must be above 0 and at most 1")

    @property
    def span(self) -> float:
        """How long a reservation counts: the window plus the margin."""
        return self.window + self.margin

    def quota(self, lane: Lane) -> int:
        """Slots per window a background lane may hold: its share of the limit, at least 1."""
        share = self.shares.get(lane, 1.0)
        return max(1, math.floor(share * self.limit + 1e-9))


def plan_slot(
    rules: PacingRules,
    lane: Lane,
    *,
    now: float,
    paused_until: float | None,
    recent: Sequence[Reservation],
) -> Plan:
    """The next slot for `lane`, given the organization's `limit` most recent reservations
    (newest first; older ones may be included, they do not matter)."""
    newest = recent[0].slot if recent else None
    full_until = recent[rules.limit - 1].slot + rules.span if len(recent) >= rules.limit else None
    if lane not in BACKGROUND_LANES:
        slot = max([now, *(t for t in (paused_until, newest, full_until) if t is not None)])
        return Plan(slot=slot, eligible_at=slot)
    waits: list[float] = []
    if paused_until is not None and paused_until > now:
        waits.append(paused_until)
    pending = [r.slot for r in recent if r.lane in FOREGROUND_LANES and r.slot > now]
    if pending:
        waits.append(max(pending))  # foreground reservations go first
    if full_until is not None and full_until > now:
        waits.append(full_until)
    quota = rules.quota(lane)
    own = [r.slot for r in recent if r.lane == lane and r.slot + rules.span > now]
    if len(own) >= quota:
        waits.append(own[quota - 1] + rules.span)
    if waits:
        return Plan(slot=None, eligible_at=max(waits))
    slot = max(now, newest) if newest is not None else now
    return Plan(slot=slot, eligible_at=slot)


class NoopPacer:
    """Never waits (tests, the sandbox)."""

    async def acquire(
        self, organization_id: int, lane: Lane = Lane.EXPORT, *, max_wait: float | None = None
    ) -> Claim | None:
        """Return at once."""
        return None

    async def answered(self, claim: Claim) -> None:
        """Nothing to move."""

    async def penalize(self, organization_id: int, seconds: float) -> None:
        """Ignore the penalty."""


@dataclass(eq=False)
class _Held:
    slot: float
    lane: Lane


class InMemoryPacer:
    """The sliding-window pacer within one process (same rules as the PostgreSQL one)."""

    def __init__(
        self,
        limit_per_minute: int = 100,
        *,
        window_seconds: float = WINDOW_SECONDS,
        margin_seconds: float = MARGIN_SECONDS,
        follow_up_share: float = 0.10,
        data_source_share: float = 0.5,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rules = PacingRules(
            limit=limit_per_minute,
            window=window_seconds,
            margin=margin_seconds,
            shares={Lane.FOLLOW_UP: follow_up_share, Lane.DATA_SOURCE: data_source_share},
        )
        self._clock = clock
        self._sleep = sleep
        self._slots: dict[int, list[_Held]] = {}
        """Per organization, oldest first (reservations are non-decreasing)."""
        self._paused: dict[int, float] = {}

    def reservations(self, organization_id: int) -> list[Reservation]:
        """The organization's reservations still remembered, oldest first."""
        return [Reservation(h.slot, h.lane) for h in self._slots.get(organization_id, [])]

    def _plan(self, organization_id: int, lane: Lane, now: float) -> Plan:
        held = self._slots.setdefault(organization_id, [])
        # Forget what can no longer matter (older than two windows).
        keep_after = now - 2 * self.rules.span
        while held and held[0].slot < keep_after:
            held.pop(0)
        recent = [Reservation(h.slot, h.lane) for h in reversed(held[-self.rules.limit :])]
        return plan_slot(
            self.rules, lane, now=now, paused_until=self._paused.get(organization_id), recent=recent
        )

    async def acquire(
        self, organization_id: int, lane: Lane = Lane.EXPORT, *, max_wait: float | None = None
    ) -> Claim:
        """Claim the next slot for the organization and sleep until it comes."""
        # No await between planning and claiming, so no lock is needed in one event loop.
        deadline = None if max_wait is None else self._clock() + max_wait
        mine: _Held | None = None
        while True:
            now = self._clock()
            if mine is not None:  # a 429 paused the organization past our slot: queue again
                held = self._slots.get(organization_id, [])
                if mine in held:
                    held.remove(mine)
                mine = None
            plan = self._plan(organization_id, lane, now)
            if deadline is not None and plan.eligible_at > deadline:
                raise PacerBusy(organization_id, lane, plan.eligible_at - now)
            if plan.slot is None:
                await self._sleep(plan.eligible_at - now)
                continue
            mine = _Held(plan.slot, lane)
            self._slots[organization_id].append(mine)
            if plan.slot <= now:
                return Claim(organization_id, mine, plan.slot)
            await self._sleep(plan.slot - now)
            if self._paused.get(organization_id, plan.slot) <= plan.slot:
                return Claim(organization_id, mine, plan.slot)

    async def answered(self, claim: Claim) -> None:
        now = self._clock()
        held = self._slots.get(claim.organization_id, [])
        mine = claim.handle
        if (
            now - claim.began <= self.rules.margin
            or not isinstance(mine, _Held)
            or mine not in held
        ):
            return
        held.remove(mine)
        mine.slot = now
        bisect.insort(held, mine, key=lambda h: h.slot)  # oldest first, as planned

    async def penalize(self, organization_id: int, seconds: float) -> None:
        """Pause the organization for at least `seconds` from now (never shortening a pause)."""
        until = self._clock() + seconds
        self._paused[organization_id] = max(self._paused.get(organization_id, until), until)


__all__ = [
    "BACKGROUND_LANES",
    "FOREGROUND_LANES",
    "MARGIN_SECONDS",
    "WINDOW_SECONDS",
    "Claim",
    "Clock",
    "InMemoryPacer",
    "Lane",
    "NoopPacer",
    "Pacer",
    "PacerBusy",
    "PacingRules",
    "Plan",
    "Reservation",
    "Sleep",
    "plan_slot",
]
