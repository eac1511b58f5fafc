"""Dinero's rate limit: 100 requests per minute per organization and client id."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dinero_sandbox.config import Clock, SandboxConfig

WINDOW = timedelta(seconds=60)

# The gateway's message (AspNetCoreRateLimit), sent as text with status 429 and no Retry-After.
QUOTA_MESSAGE = "API calls quota exceeded! maximum admitted {limit} per 1m."


@dataclass
class _Window:
    started: datetime
    count: int = 0
    hits: deque[datetime] = field(default_factory=deque)


class RateLimiter:
    """Counts requests per (client id, organization) in a fixed or sliding 60 s window."""

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}

    def reset(self) -> None:
        self._windows.clear()

    def hit(self, client_id: str, organization: int | None) -> bool:
        """Count one request; False when it is over the limit."""
        limit = self.config.rate_limit_per_minute
        if limit <= 0:
            return True
        now = self.clock.now()
        key = (client_id, str(organization) if organization is not None else "*")
        window = self._windows.get(key)
        if self.config.rate_limit_window == "sliding":
            if window is None:
                window = self._windows[key] = _Window(started=now)
            while window.hits and now - window.hits[0] >= WINDOW:
                window.hits.popleft()
            if len(window.hits) >= limit:
                return False
            window.hits.append(now)
            return True
        # Fixed: the window opens with the first request and resets 60 s later; refused
        # requests count too (they do not shorten the wait).
        if window is None or now - window.started >= WINDOW:
            window = self._windows[key] = _Window(started=now)
        window.count += 1
        return window.count <= limit

    def remaining(self, client_id: str, organization: int | None) -> int:
        """Requests left in the current window (for inspection)."""
        limit = self.config.rate_limit_per_minute
        key = (client_id, str(organization) if organization is not None else "*")
        window = self._windows.get(key)
        if window is None:
            return limit
        now = self.clock.now()
        if self.config.rate_limit_window == "sliding":
            used = sum(1 for hit in window.hits if now - hit < WINDOW)
        else:
            used = 0 if now - window.started >= WINDOW else window.count
        return max(limit - used, 0)
