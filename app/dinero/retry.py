"""Which failures are transient, and how long to wait before repeating a request safe to repeat."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

TRANSIENT_STATUSES = frozenset({408, 480})
"""Besides every 5xx: request timeout and Dinero's brownout of deprecated endpoints."""

NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)
"""Transport failures that happen before any byte of the request reached Dinero."""


def is_transient_status(status: int) -> bool:
    """408, 480 and 5xx: the same request may succeed a moment later."""
    return status in TRANSIENT_STATUSES or 500 <= status <= 599


def was_not_sent(exc: httpx.TransportError) -> bool:
    """True when the failure certainly happened before the request was sent."""
    return isinstance(exc, NOT_SENT_ERRORS)


@dataclass(frozen=True)
class RetryPolicy:
    """Short exponential backoff with jitter and a cap, for requests safe to repeat only."""

    max_attempts: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    """Each delay is shortened by up to this fraction, at random."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within 0-1")

    def delay(self, retry_number: int, random_fraction: float) -> float:
        """Seconds to wait before retry `retry_number` (1-based); `random_fraction` in [0, 1)."""
        base = min(self.initial_delay * 2.0 ** (retry_number - 1), self.max_delay)
        return base * (1.0 - self.jitter * random_fraction)


NO_RETRIES = RetryPolicy(max_attempts=1)

__all__ = ["NO_RETRIES", "RetryPolicy", "is_transient_status", "was_not_sent"]
