"""Which failures are transient (the waits before repeating: `app.backoff.DINERO_REQUEST`)."""

from __future__ import annotations

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


__all__ = ["is_transient_status", "was_not_sent"]
