"""Data sources (named imports of Dinero data), their per-type import state, and the records.

- `data_sources`: what an admin configured (title, types, accounting year, date field, refresh
  interval) and how the last run went (status, times, error, retry).
- `data_source_types`: per data type, the progress (records so far) and the checkpoints an
  interrupted import resumes from (next page, entries imported through a date) and the
  watermark incremental refreshes read changes from.
- `data_source_records`: one row per Dinero record, unique per (data source, type, key), the
  record as Dinero sent it (JSONB), its dates for filtering, a deleted flag, and `seq`, taken
  from one sequence whenever the row is inserted or changes: the readers' cursor.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, TimestampMixin

RECORD_SEQUENCE = "data_source_records_seq"


class SourceStatus(enum.StrEnum):
    IMPORTING = "importing"
    """The first import has not finished yet (queued, running, or waiting to resume)."""
    READY = "ready"
    """The last run finished; records are as of `last_refreshed_at`."""
    REFRESHING = "refreshing"
    """A refresh is running (or waiting for Dinero's request budget)."""
    FAILED = "failed"
    """The last run failed (see `error`); what was imported before stays readable."""


class Phase(enum.StrEnum):
    INITIAL = "initial"
    """Never fully imported: the next run reads everything."""
    FULL = "full"
    """A full re-read was asked for: read everything, then mark what Dinero lacks as deleted."""
    INCREMENTAL = "incremental"
    """Imported: the next run reads only what changed since `watermark`."""


class DataSource(TimestampMixin, Base):
    """A named import of some of a company's Dinero data."""

    __tablename__ = "data_sources"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[int] = mapped_column(BigInteger)
    """The Dinero organization ("Firma ID") the records come from."""
    title: Mapped[str] = mapped_column(String(200))
    data_types: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    accounting_year_start: Mapped[date | None] = mapped_column(Date)
    accounting_year_end: Mapped[date | None] = mapped_column(Date)
    accounting_year_name: Mapped[str | None] = mapped_column(String(64))
    default_date_field: Mapped[str | None] = mapped_column(String(32))
    refresh_minutes: Mapped[int | None] = mapped_column(Integer)
    """None: refreshed on demand only."""
    status: Mapped[str] = mapped_column(String(16), default=SourceStatus.IMPORTING)
    refresh_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    full_refresh_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The end of the last run that succeeded."""
    next_refresh_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    """When the schedule starts a run: the interval after the last, or (while a run is going
    on) the moment it is presumed lost."""
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Set while a run waits for Dinero (busy budget, Dinero unavailable) to try again."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Consecutive runs that met a temporary Dinero failure."""
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_dinero_message: Mapped[str | None] = mapped_column(Text)

    types: Mapped[list[DataSourceType]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="DataSourceType.data_type",
    )


class DataSourceType(Base):
    """One data type of a data source: progress and where its import stands."""

    __tablename__ = "data_source_types"

    data_source_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True
    )
    data_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    phase: Mapped[str] = mapped_column(String(16), default=Phase.INITIAL)
    records: Mapped[int] = mapped_column(Integer, default=0)
    """Records present in Dinero (not deleted) so far."""
    deleted_records: Mapped[int] = mapped_column(Integer, default=0)
    next_page: Mapped[int | None] = mapped_column(Integer)
    """A full read of a paged type: the page to read next (resume point)."""
    through_date: Mapped[date | None] = mapped_column(Date)
    """A full read of entries: imported through this date (resume point)."""
    pass_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the current full read began; it becomes the watermark when the read completes."""
    watermark: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Changes at or after this moment (less a safety overlap) are read by the next refresh."""
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DataSourceRecord(Base):
    """A Dinero record as last imported; deleted in Dinero → `deleted`, never silently kept."""

    __tablename__ = "data_source_records"
    __table_args__ = (
        Index("ix_data_source_records_source_seq", "data_source_id", "seq"),
        Index("ix_data_source_records_source_type_seq", "data_source_id", "data_type", "seq"),
    )

    data_source_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True
    )
    data_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    """Dinero's key: a Guid, an account number, or (entries without a Guid) a content hash."""
    seq: Mapped[int] = mapped_column(
        BigInteger, server_default=text(f"nextval('{RECORD_SEQUENCE}'::regclass)")
    )
    doc: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """The record as Dinero sent it (written and read as text, so amounts stay exact)."""
    record_date: Mapped[date | None] = mapped_column(Date)
    payment_date: Mapped[date | None] = mapped_column(Date)
    dinero_created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dinero_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """The last import that saw it in Dinero (full reads mark the unseen ones deleted)."""
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """When this service last stored a different version of it."""


__all__ = [
    "RECORD_SEQUENCE",
    "DataSource",
    "DataSourceRecord",
    "DataSourceType",
    "Phase",
    "SourceStatus",
]
