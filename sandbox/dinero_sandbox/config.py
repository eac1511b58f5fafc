"""Configuration and clocks of the stand-in Dinero."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from dinero_sandbox.faults import FaultRule


class Clock(Protocol):
    """Time as the sandbox sees it: token expiry, rate-limit windows, booking delay, faults."""

    def now(self) -> datetime:
        """The current time (UTC, aware)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait (latency and timeout faults)."""
        ...

    def advance(self, seconds: float) -> None:
        """Move time forward without waiting."""
        ...


class SystemClock:
    """Wall-clock time, with an offset that `advance` moves forward."""

    def __init__(self) -> None:
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)


class FakeClock:
    """A clock that only moves when told to; `sleep` advances it instantly (for tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self._now += timedelta(seconds=seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        """Jump to a moment (aware)."""
        self._now = moment


RefreshTokenMode = Literal["rotating", "reusable"]
RateLimitWindow = Literal["fixed", "sliding"]
UploadedFilters = Literal["sensible", "as_documented"]


@dataclass
class SandboxConfig:
    """How the stand-in Dinero behaves. Everything here can be changed at run time too."""

    # Dinero: 100 requests per minute per organization and client id; 0 turns the limit off.
    rate_limit_per_minute: int = 100
    # "fixed": a 60 s window opened by the first request (AspNetCoreRateLimit); "sliding": the
    # last 60 s.
    rate_limit_window: RateLimitWindow = "fixed"
    access_token_lifetime_seconds: int = 3600
    legacy_token_lifetime_seconds: int = 3600
    # Visma Connect: "one-time" (rotating) or "re-use" refresh tokens, set per app.
    refresh_token_mode: RefreshTokenMode = "rotating"  # noqa: S105 - a mode, not a secret
    # Visma Connect allows 5-60 s during which a used one-time refresh token still works.
    rotation_grace_seconds: float = 0.0
    refresh_token_lifetime_seconds: int = 30 * 24 * 3600
    # Reusing a rotated refresh token after the grace period also revokes its whole grant.
    revoke_grant_on_refresh_reuse: bool = False
    authorization_code_lifetime_seconds: int = 60
    require_pkce: bool = True
    # Ledger booking is asynchronous: an item stays PendingBooking for at least this long and
    # for at least `booking_status_polls` status polls.
    booking_delay_seconds: float = 0.0
    booking_status_polls: int = 1
    max_file_bytes: int = 6 * 1024 * 1024
    # The spec says 400 above 6 MB, Dinero's status page says 413; 413 is what clients meet.
    oversize_file_status: int = 413
    # `GET files`: the spec describes `uploadedAfter` as "limits the search to the given before
    # date" and `uploadedBefore` as "… to the given after". "sensible": uploadedAfter is the
    # lower bound, uploadedBefore the upper; "as_documented": the other way round (a client
    # must work with both).
    uploaded_filters: UploadedFilters = "sensible"
    # Added to every request (ms), on top of fault rules.
    latency_ms: int = 0
    faults: list[FaultRule] = field(default_factory=list)
    fault_seed: int = 0
    # Seeds the generator of GUIDs and voucher internals, so runs are reproducible.
    seed: int = 0
    seed_demo_data: bool = True
    max_logged_requests: int = 10_000
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        if self.rate_limit_per_minute < 0:
            raise ValueError("rate_limit_per_minute must be >= 0")
        if self.rate_limit_window not in ("fixed", "sliding"):
            raise ValueError("rate_limit_window must be 'fixed' or 'sliding'")
        if self.refresh_token_mode not in ("rotating", "reusable"):
            raise ValueError("refresh_token_mode must be 'rotating' or 'reusable'")
        if not 0 <= self.rotation_grace_seconds <= 60:
            raise ValueError("rotation_grace_seconds must be within 0-60 (Visma Connect: 5-60)")
        if self.access_token_lifetime_seconds <= 0 or self.legacy_token_lifetime_seconds <= 0:
            raise ValueError("token lifetimes must be positive")
        if self.booking_delay_seconds < 0 or self.booking_status_polls < 0:
            raise ValueError("booking delay and polls must be >= 0")
        if self.uploaded_filters not in ("sensible", "as_documented"):
            raise ValueError("uploaded_filters must be 'sensible' or 'as_documented'")
