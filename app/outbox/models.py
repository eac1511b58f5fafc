"""The outbox: one row per change of an export item, written in the same transaction as the change.

Rows are written by the PostgreSQL trigger `export_items_outbox` (migration 0007) whenever an
item's status, its Dinero edits or its late-receipt state change, whichever code path changes
them (runner, retry endpoint, follow-up, a manual UPDATE). A row exists if and only if the
change committed; the delivery job (app/outbox/delivery.py) sends them to the platform.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class OutboxEvent(Base):
    """A change to tell the platform about; `seq` orders the changes of one item."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index(
            "ix_outbox_events_pending",
            "seq",
            postgresql_where=text("delivered_at IS NULL AND given_up_at IS NULL"),
        ),
        Index("ix_outbox_events_item_id_seq", "item_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    """Also the `webhook-id`: the same on every attempt, so the platform can drop repeats."""
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("export_items.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    previous_status: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    item: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """The item as it was right after the change (see the trigger for the keys)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    first_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    given_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
