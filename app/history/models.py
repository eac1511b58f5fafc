"""One row per change of an account mapping or a category, never updated or deleted.

A change takes effect at `changed_at` (the writing transaction's time) and lasts until the next
row for the same setting or category, so "what was the deposit account on 3 November, and who
set it" is the newest row at or before that time. `changed_by` is the bearer token's `sub` for an
admin's edit and None for what a chart sync brought from Dinero (`source` tells which).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class ChangeKind(enum.StrEnum):
    MAPPING = "mapping"
    """An account mapping of the company's Dinero settings (`setting` names which)."""
    CATEGORY = "category"
    """A category: the admin's name, default tax code, hiding; or Dinero's name and state."""


class ChangeSource(enum.StrEnum):
    ADMIN = "admin"
    """Through the API, by the token's `sub`."""
    DINERO_SYNC = "dinero_sync"
    """A chart sync brought it from Dinero (a new, renamed, hidden or removed account)."""
    BACKFILL = "backfill"
    """The state found when history began (migration 0011); who and exactly when are unknown."""


class SettingsChange(Base):
    """A mapping or category change: what it was before, what it became, when, by whom."""

    __tablename__ = "settings_history"
    __table_args__ = (
        Index("ix_settings_history_company_changed", "company_id", "changed_at", "id"),
        Index("ix_settings_history_category_changed", "category_id", "changed_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    """A `ChangeKind` value."""
    setting: Mapped[str | None] = mapped_column(String(64))
    """For a mapping: `deposit_account`, `out_of_pocket_account`, … (None for a category)."""
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE")
    )
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """Field → {"from": before, "to": after}; only the fields that changed."""
    state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """The whole mapping or category right after the change (what was in effect from then on)."""
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    changed_by: Mapped[str | None] = mapped_column(String(255))
    """The token's `sub` of the admin who made it; None for a sync or the backfill."""
    source: Mapped[str] = mapped_column(String(16))
    """A `ChangeSource` value."""
