"""The in-memory pacer spaces requests evenly per organization, and pauses an org on a 429."""

from __future__ import annotations

import pytest

from app.dinero import InMemoryPacer, NoopPacer, Pacer


class FakeClock:
    """A clock that only moves when the pacer sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_both_implementations_satisfy_the_protocol() -> None:
    assert isinstance(InMemoryPacer(), Pacer)
    assert isinstance(NoopPacer(), Pacer)


async def test_even_spacing_at_the_configured_rate() -> None:
    clock = FakeClock()
    pacer = InMemoryPacer(60, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(4):
        await pacer.acquire(1)
        starts.append(clock.now)
    assert starts == [1000.0, 1001.0, 1002.0, 1003.0]
    assert clock.sleeps == [1.0, 1.0, 1.0]


async def test_idle_time_is_not_banked_into_a_burst() -> None:
    clock = FakeClock()
    pacer = InMemoryPacer(100, clock=clock, sleep=clock.sleep)
    await pacer.acquire(1)
    clock.now += 600  # quiet for ten minutes
    await pacer.acquire(1)
    await pacer.acquire(1)
    assert clock.sleeps == [pytest.approx(0.6)]


async def test_organizations_are_paced_independently() -> None:
    clock = FakeClock()
    pacer = InMemoryPacer(60, clock=clock, sleep=clock.sleep)
    await pacer.acquire(1)
    await pacer.acquire(2)
    assert clock.sleeps == []


async def test_slots_are_claimed_before_sleeping() -> None:
    """Concurrent callers for one org get successive slots, not the same one."""
    clock = FakeClock()
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)  # no time passes: all callers acquire "at once"

    pacer = InMemoryPacer(120, clock=clock, sleep=record)
    for _ in range(3):
        await pacer.acquire(7)
    assert waits == [0.5, 1.0]


async def test_penalty_pauses_the_organization() -> None:
    clock = FakeClock()
    pacer = InMemoryPacer(100, clock=clock, sleep=clock.sleep)
    await pacer.acquire(1)
    await pacer.penalize(1, 60)
    await pacer.acquire(1)
    assert clock.now == pytest.approx(1060.0)
    await pacer.acquire(2)  # other organizations are not affected
    assert clock.now == pytest.approx(1060.0)


async def test_penalty_never_shortens_an_existing_wait() -> None:
    clock = FakeClock()
    pacer = InMemoryPacer(100, clock=clock, sleep=clock.sleep)
    await pacer.penalize(1, 60)
    await pacer.penalize(1, 5)
    await pacer.acquire(1)
    assert clock.now == pytest.approx(1060.0)


def test_rejects_a_zero_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        InMemoryPacer(0)


async def test_noop_pacer_never_waits() -> None:
    pacer = NoopPacer()
    await pacer.acquire(1)
    await pacer.penalize(1, 60)
    await pacer.acquire(1)
