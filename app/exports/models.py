"""Exports and their items: what the platform asked for, and how far each item got in Dinero.

An item's `step` is the exactly-once ledger: every call to Dinero is preceded by a committed
"…_sent" step (the intent), and followed by a committed step holding Dinero's answer. A worker
that finds an item in a "…_sent" step does not know whether Dinero acted, so it looks in Dinero
first (file name, `fileguid`, `similar`, ledger `status` by our own id) before sending again.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin
from app.exports.documents import DraftChanges, ExpenseLine, ReceiptSource


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class ItemType(enum.StrEnum):
    CARD_EXPENSE = "card_expense"
    OUT_OF_POCKET_EXPENSE = "out_of_pocket_expense"
    REIMBURSEMENT = "reimbursement"
    WALLET_TOP_UP = "wallet_top_up"

    @property
    def is_expense(self) -> bool:
        return self in (ItemType.CARD_EXPENSE, ItemType.OUT_OF_POCKET_EXPENSE)


class ItemStatus(enum.StrEnum):
    QUEUED = "queued"
    EXPORTING = "exporting"
    AWAITING_APPROVAL = "awaiting_approval"
    BOOKED = "booked"
    FAILED = "failed"
    DELETED_IN_DINERO = "deleted_in_dinero"
    REVERSING = "reversing"
    """Being undone in Dinero (app/reversals)."""
    REVERSED = "reversed"
    """Undone in Dinero; `POST …/exports` with `"replace": true` exports it again."""

    @property
    def settled(self) -> bool:
        """Nothing more happens to the item by itself."""
        return self in (
            ItemStatus.AWAITING_APPROVAL,
            ItemStatus.BOOKED,
            ItemStatus.FAILED,
            ItemStatus.DELETED_IN_DINERO,
            ItemStatus.REVERSED,
        )


class LateReceipt(enum.StrEnum):
    """A receipt sent after the item was exported: what became of it."""

    PENDING = "pending"
    """Stored; the draft's file is replaced once the draft exists (app/follow_up/receipts.py)."""
    ATTACHED = "attached"
    NOT_ATTACHED = "not_attached"
    """The voucher was approved first (or cannot be updated): attach it in Dinero by hand."""


class Step(enum.StrEnum):
    """How far the export of an item got; `…_SENT` means Dinero's answer is not known."""

    NEW = "new"
    UPLOAD_SENT = "upload_sent"
    UPLOADED = "uploaded"
    CREATE_SENT = "create_sent"
    CREATED = "created"
    BOOK_SENT = "book_sent"
    BOOKED = "booked"


class Export(Base):
    """One request to export items (a REST call or a webhook)."""

    __tablename__ = "exports"
    __table_args__ = (
        UniqueConstraint("company_id", "idempotency_key"),
        UniqueConstraint("company_id", "webhook_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    """api or webhook."""
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    webhook_id: Mapped[str | None] = mapped_column(String(255))
    item_ids: Mapped[list[str]] = mapped_column(JSONB, default=list)
    """Every item the request named, in order (a repeated item points at the existing one)."""
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    """Items refused at intake, with their reasons (nothing else of them is stored)."""
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """The 202 body given for this request, replayed for the same Idempotency-Key."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ExportItem(TimestampMixin, Base):
    """One expense, reimbursement or top-up; unique per company, type and external id."""

    __tablename__ = "export_items"
    __table_args__ = (
        UniqueConstraint("company_id", "type", "external_id"),
        Index("ix_export_items_company_status", "company_id", "status"),
        Index("ix_export_items_export_id", "export_id"),
        Index("ix_export_items_company_created", "company_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    """Also the ledger item's `Id` in Dinero (ours, chosen before sending), unless
    `dinero_ledger_id` says otherwise."""
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    export_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("exports.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[ItemType] = mapped_column(_enum(ItemType, "export_item_type"))
    status: Mapped[ItemStatus] = mapped_column(_enum(ItemStatus, "export_item_status"))
    step: Mapped[Step] = mapped_column(_enum(Step, "export_item_step"), default=Step.NEW)

    voucher_date: Mapped[date] = mapped_column(Date)
    posting_date: Mapped[date | None] = mapped_column(Date)
    """The date it was last sent to Dinero with (`checks.posting_date`: its own, or the first
    open day after the lock date); None before it was sent. A reversal reads the entry there."""
    description: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    dkk_amount_minor: Mapped[int] = mapped_column(BigInteger)
    """The amount in DKK øre: the amount itself, or the settled amount for other currencies."""
    lines: Mapped[list[ExpenseLine]] = mapped_column(JSONB, default=list)
    """Expense lines in DKK øre: category_id or account_number, tax_code, amount, description."""
    employee: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    receipts: Mapped[list[ReceiptSource]] = mapped_column(JSONB, default=list)
    """Receipt sources: {url} or {blob_id} of an inline receipt, with filename, content_type."""

    receipt_file: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    """The one file uploaded to Dinero (receipts combined/shrunk), kept so retries send the same."""
    receipt_filename: Mapped[str | None] = mapped_column(String(255))
    receipt_content_type: Mapped[str | None] = mapped_column(String(100))
    receipt_sha256: Mapped[str | None] = mapped_column(String(64))

    waiting_code: Mapped[str | None] = mapped_column(String(64))
    waiting_message: Mapped[str | None] = mapped_column(Text)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    dinero_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the pending (…_SENT) call went out."""

    dinero_file_guid: Mapped[str | None] = mapped_column(String(64))
    dinero_kind: Mapped[str | None] = mapped_column(String(16))
    """purchase_voucher, manual_voucher or ledger_item."""
    dinero_guid: Mapped[uuid.UUID | None] = mapped_column()
    dinero_timestamp: Mapped[str | None] = mapped_column(String(64))
    dinero_version: Mapped[str | None] = mapped_column(String(64))
    dinero_voucher_number: Mapped[int | None] = mapped_column(Integer)
    exported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    booked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Following the draft in Dinero (app/follow_up/): approvals, deletions, edits, late receipts.
    dinero_sent: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """The draft as Dinero answered its creation (app/exports/drafts.py): edits compare to it."""
    dinero_changes: Mapped[DraftChanges | None] = mapped_column(JSONB)
    """How the draft in Dinero now differs from `dinero_sent` (edited there), or None."""
    follow_up_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the draft was last read from Dinero (the round-robin goes oldest first)."""
    late_receipt_status: Mapped[str | None] = mapped_column(String(16))
    """A `LateReceipt` value, or None when no receipt came late."""
    late_receipt_message: Mapped[str | None] = mapped_column(Text)
    late_receipt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dinero_ledger_id: Mapped[uuid.UUID | None] = mapped_column()
    """The ledger item's `Id` when it is not the item's own: an item exported again after a
    reversal (app/reversals) needs a new one, Dinero keeping the first for the booked item."""

    @property
    def ledger_id(self) -> uuid.UUID:
        """Our `Id` of the item's ledger item in Dinero."""
        return self.dinero_ledger_id or self.id


class InlineReceipt(Base):
    """An inline receipt as it arrived (base64-decoded), stored before the request is answered."""

    __tablename__ = "export_receipt_blobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    item_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("export_items.id", ondelete="CASCADE"), index=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClosedYear(Base):
    """An accounting year Dinero refused to book into as closed, remembered for `REMEMBER_CLOSED`
    (app/exports/closed.py) so the items dated in it wait without another request to Dinero."""

    __tablename__ = "export_closed_years"

    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    first_day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_day: Mapped[date] = mapped_column(Date)
    refused_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dinero_message: Mapped[str | None] = mapped_column(Text)
