"""What one follow-up cycle did (app/follow_up/cycle.py), counted as it goes."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.ops.metrics import FOLLOW_UP_REQUESTS


@dataclass
class CycleResult:
    drafts: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    """Dinero requests by purpose: entries, files, vouchers (reads), receipts (attach)."""
    booked: int = 0
    deleted: int = 0
    edited: int = 0
    reads: int = 0
    hints: int = 0
    receipts_attached: int = 0
    changed: int = 0
    """Item changes the platform is told about (status, edits, late receipts)."""
    stopped: str | None = None
    """Why the cycle ended early: budget (no FOLLOW_UP slot), not_connected, dinero_error."""
    retry_in: float | None = None
    error: str | None = None

    def count(self, purpose: str, n: int = 1) -> None:
        self.requests[purpose] = self.requests.get(purpose, 0) + n
        FOLLOW_UP_REQUESTS.labels(purpose=purpose).inc(n)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())
