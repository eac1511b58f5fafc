"""Per-company follow-up state: how far Dinero's entries have been read, and when to look again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin


class FollowUpState(TimestampMixin, Base):
    """One row per company whose drafts are followed; survives restarts (nothing is re-read
    from the start, and nothing between two cycles is skipped)."""

    __tablename__ = "follow_up_states"

    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    entries_watermark: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """`entries/changes` has been read up to here (the next read starts a margin earlier)."""
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_requests: Mapped[int] = mapped_column(Integer, default=0)
    """Dinero requests the last cycle used."""
    last_error: Mapped[str | None] = mapped_column(Text)
