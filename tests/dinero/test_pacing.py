"""The sliding-window pacing rules (`plan_slot`), the in-memory pacer that follows them, and the
lane plumbing of the client. The PostgreSQL pacer: tests/test_pacing_postgres.py."""

from __future__ import annotations

import httpx
import pytest
import respx

from app.dinero import DineroClient, InMemoryPacer, NoopPacer, Pacer, StaticTokenProvider, pacing
from app.dinero.pacing import Lane, PacerBusy, PacingRules, Plan, Reservation, plan_slot
from tests.dinero.conftest import BASE_URL, ORG, TOKEN, RecordingPacer
from tests.dinero.examples import example

VAT_TYPES = [example("VatTypeReadModel")]


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


def _pacer(limit: int, clock: FakeClock, **kwargs: float) -> InMemoryPacer:
    return InMemoryPacer(limit, clock=clock, sleep=clock.sleep, **kwargs)


def test_both_implementations_satisfy_the_protocol() -> None:
    assert isinstance(InMemoryPacer(), Pacer)
    assert isinstance(NoopPacer(), Pacer)


# --- the rules -------------------------------------------------------------------------------

RULES = PacingRules(limit=4, window=10.0, margin=0.5, shares={Lane.FOLLOW_UP: 0.5})


def _recent(*slots: tuple[float, Lane]) -> list[Reservation]:
    """Reservations given oldest first, handed over newest first (as the pacers do)."""
    return [Reservation(slot, lane) for slot, lane in reversed(slots)]


def test_a_burst_up_to_the_limit_goes_at_once_then_the_window_must_pass() -> None:
    three = _recent(*[(100.0, Lane.EXPORT)] * 3)
    assert plan_slot(RULES, Lane.EXPORT, now=100.0, paused_until=None, recent=three) == Plan(
        100.0, 100.0
    )
    four = _recent(*[(100.0, Lane.EXPORT)] * 4)
    assert plan_slot(RULES, Lane.EXPORT, now=100.0, paused_until=None, recent=four).slot == 110.5


def test_reservations_never_go_backwards_and_respect_a_pause() -> None:
    queued = _recent((100.0, Lane.EXPORT), (130.0, Lane.EXPORT))
    assert plan_slot(RULES, Lane.EXPORT, now=101.0, paused_until=None, recent=queued).slot == 130
    assert plan_slot(RULES, Lane.INTERACTIVE, now=101.0, paused_until=160.0, recent=[]).slot == 160
    # A pause in the past is no pause.
    assert plan_slot(RULES, Lane.EXPORT, now=101.0, paused_until=50.0, recent=[]).slot == 101


def test_background_lanes_take_idle_capacity_at_once() -> None:
    recent = _recent((95.0, Lane.EXPORT), (96.0, Lane.DATA_SOURCE))
    plan = plan_slot(RULES, Lane.FOLLOW_UP, now=100.0, paused_until=None, recent=recent)
    assert plan == Plan(100.0, 100.0)


def test_background_lanes_yield_to_pending_foreground_reservations() -> None:
    pending = _recent((100.0, Lane.EXPORT), (104.0, Lane.INTERACTIVE))
    plan = plan_slot(RULES, Lane.DATA_SOURCE, now=101.0, paused_until=None, recent=pending)
    assert plan == Plan(None, 104.0)


def test_background_lanes_stay_within_their_share() -> None:
    assert RULES.quota(Lane.FOLLOW_UP) == 2  # half of 4
    assert RULES.quota(Lane.DATA_SOURCE) == 4  # no share given: the whole budget
    assert PacingRules(limit=5, shares={Lane.FOLLOW_UP: 0.1}).quota(Lane.FOLLOW_UP) == 1
    two = _recent((95.0, Lane.FOLLOW_UP), (99.0, Lane.FOLLOW_UP))
    plan = plan_slot(RULES, Lane.FOLLOW_UP, now=100.0, paused_until=None, recent=two)
    assert plan == Plan(None, 105.5)  # when the older one leaves the window
    # Another background lane has a share of its own.
    other = plan_slot(RULES, Lane.DATA_SOURCE, now=100.0, paused_until=None, recent=two)
    assert other.slot == 100.0


def test_background_lanes_wait_for_a_full_window_and_a_pause() -> None:
    full = _recent((92.0, Lane.EXPORT), *[(95.0, Lane.EXPORT)] * 3)
    plan = plan_slot(RULES, Lane.DATA_SOURCE, now=100.0, paused_until=None, recent=full)
    assert plan == Plan(None, 102.5)
    paused = plan_slot(RULES, Lane.DATA_SOURCE, now=100.0, paused_until=130.0, recent=[])
    assert paused == Plan(None, 130.0)


@pytest.mark.parametrize(
    ("limit", "shares", "message"),
    [
        (0, {}, "at least 1"),
        (5, {Lane.FOLLOW_UP: 0.0}, "share"),
        (5, {Lane.DATA_SOURCE: 1.5}, "share"),
    ],
)
def test_rejects_a_bad_budget(limit: int, shares: dict[Lane, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PacingRules(limit=limit, shares=shares)


def test_rejects_a_zero_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        InMemoryPacer(0)


# --- the in-memory pacer -----------------------------------------------------------------------


async def test_the_first_l_go_at_once_and_the_next_waits_a_window() -> None:
    clock = FakeClock()
    pacer = _pacer(5, clock)
    for _ in range(5):
        await pacer.acquire(1)
    assert clock.sleeps == []
    await pacer.acquire(1)
    assert clock.sleeps == [60.5]  # the first slot + window + margin
    assert [r.slot for r in pacer.reservations(1)] == [1000.0] * 5 + [1060.5]


async def test_a_request_answered_late_moves_its_slot_so_the_next_window_counts_from_it() -> None:
    """Sent three seconds after its slot (a busy worker), the first request reached Dinero
    then: the next one, a window later, is planned from then, not from the slot."""
    clock = FakeClock()
    pacer = _pacer(1, clock)
    late = await pacer.acquire(1)
    other_org = await pacer.acquire(2)
    clock.now += 3.0
    await pacer.answered(late)  # answered 3 s after its slot began: moved to now
    await pacer.answered(other_org)  # another organization: its own slots only
    await pacer.acquire(1)
    assert [r.slot for r in pacer.reservations(1)] == [1003.0, 1063.5]

    clock = FakeClock()
    pacer = _pacer(1, clock)
    prompt = await pacer.acquire(1)
    clock.now += 0.2  # within the margin: the slot stays where it was
    await pacer.answered(prompt)
    await pacer.acquire(1)
    assert [r.slot for r in pacer.reservations(1)] == [1000.0, 1060.5]


async def test_an_export_batch_uses_the_whole_budget() -> None:
    clock = FakeClock()
    pacer = _pacer(100, clock)
    for _ in range(250):
        await pacer.acquire(1, Lane.EXPORT)
    # 100 at once, 100 a window later, 50 a window after that: nothing spaced out.
    assert clock.sleeps == [60.5, 60.5]
    slots = [r.slot for r in pacer.reservations(1)]
    assert all(later - earlier >= 60.5 for earlier, later in zip(slots, slots[100:], strict=False))


async def test_quiet_time_allows_a_new_burst() -> None:
    clock = FakeClock()
    pacer = _pacer(4, clock)
    for _ in range(4):
        await pacer.acquire(1)
    clock.now += 61
    for _ in range(4):  # e.g. a chart sync: four requests, no waiting
        await pacer.acquire(1, Lane.INTERACTIVE)
    assert clock.sleeps == []


async def test_organizations_are_paced_independently() -> None:
    clock = FakeClock()
    pacer = _pacer(1, clock)
    await pacer.acquire(1)
    await pacer.acquire(2)
    await pacer.penalize(1, 60)
    await pacer.acquire(3)
    assert clock.sleeps == []


async def test_slots_are_claimed_before_sleeping() -> None:
    """Concurrent callers for one org get successive slots, not the same one."""
    clock = FakeClock()
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)  # no time passes: all callers acquire "at once"

    pacer = InMemoryPacer(2, clock=clock, sleep=record)
    for _ in range(5):
        await pacer.acquire(7)
    assert waits == [60.5, 60.5, 121.0]


async def test_penalty_pauses_the_organization() -> None:
    clock = FakeClock()
    pacer = _pacer(100, clock)
    await pacer.acquire(1)
    await pacer.penalize(1, 60)
    await pacer.acquire(1)
    assert clock.now == pytest.approx(1060.0)
    await pacer.acquire(2)  # other organizations are not affected
    assert clock.now == pytest.approx(1060.0)


async def test_penalty_never_shortens_an_existing_wait() -> None:
    clock = FakeClock()
    pacer = _pacer(100, clock)
    await pacer.penalize(1, 60)
    await pacer.penalize(1, 5)
    await pacer.acquire(1)
    assert clock.now == pytest.approx(1060.0)


async def test_a_429_while_sleeping_sends_the_request_after_the_pause() -> None:
    """A slot reserved before a 429 does not go out during the pause: it queues again."""
    clock = FakeClock()

    async def sleep_while_someone_gets_a_429(seconds: float) -> None:
        if not clock.sleeps:
            await pacer.penalize(1, 30)
        await clock.sleep(seconds)

    pacer = InMemoryPacer(
        1, window_seconds=10, margin_seconds=0, clock=clock, sleep=sleep_while_someone_gets_a_429
    )
    await pacer.acquire(1)
    await pacer.acquire(1)  # slot 1010, but at 1000 + 0 a 429 pauses until 1030
    assert clock.sleeps == [10.0, 20.0]
    assert clock.now == 1030.0
    assert [r.slot for r in pacer.reservations(1)] == [1000.0, 1030.0]


async def test_background_lanes_use_idle_capacity_within_their_share() -> None:
    clock = FakeClock()
    pacer = _pacer(10, clock, follow_up_share=0.2, data_source_share=0.5)
    for _ in range(2):
        await pacer.acquire(1, Lane.FOLLOW_UP)
    for _ in range(5):
        await pacer.acquire(1, Lane.DATA_SOURCE)
    assert clock.sleeps == []
    with pytest.raises(PacerBusy) as busy:  # its share (2 of 10) is used until a window later
        await pacer.acquire(1, Lane.FOLLOW_UP, max_wait=10)
    assert busy.value.retry_after == 60.5
    for _ in range(10):  # exports get what the background lanes left, then the full budget
        await pacer.acquire(1, Lane.EXPORT)
    assert clock.sleeps == [60.5]
    exports = [r.slot for r in pacer.reservations(1) if r.lane == Lane.EXPORT]
    assert exports == [1000.0] * 3 + [1060.5] * 7
    await pacer.acquire(1, Lane.FOLLOW_UP)  # the window has moved on: room again
    assert clock.sleeps == [60.5]


async def test_pacer_busy_after_max_wait_claims_nothing() -> None:
    clock = FakeClock()
    pacer = _pacer(2, clock)
    await pacer.acquire(1)
    await pacer.acquire(1)
    with pytest.raises(PacerBusy) as busy:
        await pacer.acquire(1, Lane.FOLLOW_UP, max_wait=30)
    assert busy.value.retry_after == 60.5
    assert busy.value.lane == Lane.FOLLOW_UP
    with pytest.raises(PacerBusy):
        await pacer.acquire(1, Lane.EXPORT, max_wait=60)
    assert len(pacer.reservations(1)) == 2
    assert clock.sleeps == []
    await pacer.acquire(1, Lane.EXPORT, max_wait=61)  # within the allowed wait
    assert clock.sleeps == [60.5]


async def test_noop_pacer_never_waits() -> None:
    pacer = NoopPacer()
    await pacer.acquire(1)
    await pacer.penalize(1, 60)
    await pacer.acquire(1, Lane.DATA_SOURCE, max_wait=0)


# --- lanes through the client ------------------------------------------------------------------


async def test_the_client_paces_in_its_lane(
    http: httpx.AsyncClient, dinero: respx.MockRouter, pacer: RecordingPacer
) -> None:
    dinero.get(f"/v1/{ORG}/vatTypes").respond(200, json=VAT_TYPES)
    client = DineroClient(http, BASE_URL, ORG, StaticTokenProvider(TOKEN), pacer)
    follow_up = DineroClient(
        http, BASE_URL, ORG, StaticTokenProvider(TOKEN), pacer, lane=Lane.FOLLOW_UP, max_wait=5.0
    )
    interactive = DineroClient(
        http, BASE_URL, ORG, StaticTokenProvider(TOKEN), pacer, lane=Lane.INTERACTIVE
    )
    await client.vat_types()
    await follow_up.vat_types()
    await interactive.vat_types()
    assert pacer.lanes == [Lane.EXPORT, Lane.FOLLOW_UP, Lane.INTERACTIVE]
    assert pacer.max_waits == [None, 5.0, None]


async def test_pacer_busy_reaches_the_caller_before_anything_is_sent(
    http: httpx.AsyncClient, dinero: respx.MockRouter
) -> None:
    route = dinero.get(f"/v1/{ORG}/vatTypes").respond(200, json=VAT_TYPES)
    clock = FakeClock()
    pacer = _pacer(1, clock)
    client = DineroClient(http, BASE_URL, ORG, StaticTokenProvider(TOKEN), pacer)
    hurried = DineroClient(
        http, BASE_URL, ORG, StaticTokenProvider(TOKEN), pacer, lane=Lane.DATA_SOURCE, max_wait=1.0
    )
    await client.vat_types()
    with pytest.raises(PacerBusy):
        await hurried.vat_types()
    assert route.call_count == 1


def test_a_wait_bound_spans_every_call_inside_it_and_a_nested_one_only_shortens_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr("app.dinero.pacing.time.monotonic", lambda: now[0])
    assert pacing.bounded_wait(10.0) == 10.0  # no bound: the call's own
    assert pacing.bounded_wait(None) is None
    with pacing.waiting_at_most(10.0):
        now[0] += 6.0
        assert pacing.bounded_wait(10.0) == 4.0  # what is left, not another 10
        assert pacing.bounded_wait(None) == 4.0
        assert pacing.bounded_wait(1.0) == 1.0  # a shorter own wait stays
        with pacing.waiting_at_most(30.0):
            assert pacing.bounded_wait(None) == 4.0  # the outer bound still holds
        with pacing.waiting_at_most(2.0):
            assert pacing.bounded_wait(None) == 2.0
        now[0] += 5.0
        assert pacing.bounded_wait(10.0) == 0.0  # spent: no slot now is PacerBusy
    assert pacing.bounded_wait(10.0) == 10.0  # gone with the block
