"""Reversals: the intent to undo an exported item in Dinero, and how far it got.

Like an item's export, a reversal's `step` is its exactly-once ledger: each call to Dinero is
preceded by a committed "…_sent" step and followed by a committed result; a worker that finds
a "…_sent" step looks in Dinero first (the reversing voucher by our reference on the original's
file, the reversing ledger item by our own `Id`, the draft by reading it) before sending again.
The row is also the item's history: the original voucher and the entry that reversed it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin


class ReversalStatus(enum.StrEnum):
    PENDING = "pending"
    """Committed; a worker undoes the item in Dinero."""
    DONE = "done"
    FAILED = "failed"
    """Refused (closed year, edited in Dinero, …): the item is back as it was."""


class ReversalKind(enum.StrEnum):
    DRAFT_DELETED = "draft_deleted"
    """A draft still awaiting Godkend: deleted in Dinero (its file stays in the archive)."""
    MANUAL_VOUCHER = "manual_voucher"
    """An approved voucher: a booked manual voucher with the opposite lines."""
    LEDGER_ITEM = "ledger_item"
    """A booked reimbursement or top-up: a booked ledger item with the opposite line."""


class ReversalStep(enum.StrEnum):
    NEW = "new"
    DELETE_SENT = "delete_sent"
    CREATE_SENT = "create_sent"
    CREATED = "created"
    BOOK_SENT = "book_sent"
    DONE = "done"


class Reversal(TimestampMixin, Base):
    """One request to reverse an item (its id is also the reversing ledger item's `Id`)."""

    __tablename__ = "export_reversals"
    __table_args__ = (
        UniqueConstraint("company_id", "idempotency_key"),
        Index(
            "uq_export_reversals_item_pending",
            "item_id",
            unique=True,
            postgresql_where="status = 'pending'",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    item_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("export_items.id", ondelete="CASCADE"), index=True
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=ReversalStatus.PENDING.value)
    step: Mapped[str] = mapped_column(String(16), default=ReversalStep.NEW.value)
    kind: Mapped[str | None] = mapped_column(String(16))
    """A `ReversalKind`, decided by what Dinero holds when the worker looks."""
    reason: Mapped[str | None] = mapped_column(Text)
    voucher_date: Mapped[date] = mapped_column(Date)
    previous_status: Mapped[str] = mapped_column(String(32))
    """The item's status before; it returns there when the reversal is refused."""

    original_kind: Mapped[str | None] = mapped_column(String(16))
    original_guid: Mapped[uuid.UUID | None] = mapped_column()
    """The reversed voucher (or our ledger item id)."""
    original_voucher_number: Mapped[int | None] = mapped_column(Integer)
    original_file_guid: Mapped[str | None] = mapped_column(String(64))

    dinero_guid: Mapped[uuid.UUID | None] = mapped_column()
    """The reversing manual voucher (a ledger item's is this row's id)."""
    dinero_timestamp: Mapped[str | None] = mapped_column(String(64))
    dinero_version: Mapped[str | None] = mapped_column(String(64))
    voucher_number: Mapped[int | None] = mapped_column(Integer)
    """The reversing entry's voucher number (none for a deleted draft)."""

    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    dinero_message: Mapped[str | None] = mapped_column(Text)
    differences: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    """How the voucher in Dinero differs from what was sent, when that refused the reversal."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
