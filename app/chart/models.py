"""The company's chart as synced from Dinero, the admin's view of it, and the account mappings.

`dinero_accounts` mirrors Dinero's chart (entry, purchase and deposit accounts) keyed by account
number; `categories` are the admin-facing expense categories, one per purchase account, never
deleted; `tax_codes` are Dinero's VAT types; `company_settings` holds the account mappings; and
`chart_syncs` is the per-company sync state (one running at a time, the last outcome).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin

NO_VAT = "none"
"""Dinero's VAT code that suppresses VAT on a line; always a valid tax code."""


class DineroAccount(TimestampMixin, Base):
    """One account of the organization's chart ("Kontoplan") as Dinero last reported it."""

    __tablename__ = "dinero_accounts"

    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    account_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    vat_code: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(64))
    is_entry: Mapped[bool] = mapped_column(Boolean, default=False)
    is_purchase: Mapped[bool] = mapped_column(Boolean, default=False)
    is_deposit: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default_deposit: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_in_dinero: Mapped[bool] = mapped_column(Boolean, default=False)
    present: Mapped[bool] = mapped_column(Boolean, default=True)
    """False once the account is no longer in Dinero's lists (the row stays for history)."""
    bank_registration_number: Mapped[str | None] = mapped_column(String(32))
    bank_account_number: Mapped[str | None] = mapped_column(String(64))
    bank_iban_number: Mapped[str | None] = mapped_column(String(64))


class Category(TimestampMixin, Base):
    """An expense category employees pick: one purchase account (2000-9399), by number."""

    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("company_id", "account_number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    account_number: Mapped[int] = mapped_column(Integer)
    account_name: Mapped[str] = mapped_column(String(255))
    """Dinero's current name of the account."""
    name: Mapped[str | None] = mapped_column(String(255))
    """The admin's friendly name; None shows Dinero's name."""
    tax_code: Mapped[str | None] = mapped_column(String(32))
    """Default tax code; initially the account's own VAT code in Dinero."""
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    """Hidden by the admin (employees do not see it)."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    """False while the account is hidden in or gone from Dinero."""
    inactive_reason: Mapped[str | None] = mapped_column(String(32))
    """`hidden_in_dinero` or `removed_from_dinero` while inactive."""


class TaxCode(TimestampMixin, Base):
    """A VAT type ("Momstype") of the organization, plus Dinero's `none`."""

    __tablename__ = "tax_codes"

    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    rate: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    present: Mapped[bool] = mapped_column(Boolean, default=True)


class CompanySettings(TimestampMixin, Base):
    """Which Dinero accounts the exports use; each must be a synced deposit account."""

    __tablename__ = "company_settings"

    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    deposit_account: Mapped[int | None] = mapped_column(Integer)
    out_of_pocket_account: Mapped[int | None] = mapped_column(Integer)
    reimbursement_account: Mapped[int | None] = mapped_column(Integer)
    top_up_account: Mapped[int | None] = mapped_column(Integer)
    """None means: the reimbursement account."""
    books_closed_through: Mapped[date | None] = mapped_column(Date)
    """The lock date: nothing dated on or before it is exported as dated (None: no lock)."""
    closed_period_policy: Mapped[str] = mapped_column(
        String(16), default="hold", server_default="hold"
    )
    """`hold`: an item dated on or before the lock date waits; `first_open_day`: it is posted
    on the day after the lock date (its own date kept in the line text)."""


class ChartSync(Base):
    """A company's chart sync: when it last ran and how it went. Locked while a sync runs."""

    __tablename__ = "chart_syncs"

    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    succeeded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="never")
    """never, running, succeeded or failed."""
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    accounting_years: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)
    """The organization's accounting years ({name, from, to}); exports are dated inside one."""
    changes: Mapped[int] = mapped_column(Integer, default=0)
    """Rows written by the last sync (0 when nothing changed in Dinero)."""
    chart_digest: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the chart as Dinero last sent it (app/chart/sync.py `chart_digest`): a sync
    that reads the same chart again has nothing to compare or write."""
    compared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When a sync last compared Dinero's chart with the stored rows (at least once a day)."""
