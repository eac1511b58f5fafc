"""A company's Dinero connection, the pending OAuth approvals, and the shared request budget."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    String,
    Text,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin


class ConnectionStatus(enum.StrEnum):
    NOT_CONNECTED = "not_connected"
    PENDING = "pending"
    CONNECTED = "connected"
    REAUTH_REQUIRED = "reauth_required"


class ConnectionMethod(enum.StrEnum):
    OAUTH = "oauth"
    API_KEY = "api_key"


class DineroConnection(TimestampMixin, Base):
    """One per company. Tokens and API keys are stored only encrypted (see app/crypto.py)."""

    __tablename__ = "dinero_connections"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[ConnectionStatus] = mapped_column(
        Enum(
            ConnectionStatus,
            name="connection_status",
            values_callable=lambda e: [m.value for m in e],
        ),
        default=ConnectionStatus.NOT_CONNECTED,
    )
    method: Mapped[ConnectionMethod | None] = mapped_column(
        Enum(
            ConnectionMethod,
            name="connection_method",
            values_callable=lambda e: [m.value for m in e],
        )
    )
    organization_id: Mapped[int | None] = mapped_column(BigInteger)
    organization_name: Mapped[str | None] = mapped_column(String(255))
    connected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    problem_code: Mapped[str | None] = mapped_column(String(64))
    problem_message: Mapped[str | None] = mapped_column(Text)
    # The last refused attempt to connect (an OAuth approval that ended in a refusal), kept
    # until an attempt succeeds, so an admin who closed the approval tab can still learn why.
    attempt_failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempt_problem_code: Mapped[str | None] = mapped_column(String(64))
    attempt_problem_message: Mapped[str | None] = mapped_column(Text)
    attempt_dinero_message: Mapped[str | None] = mapped_column(Text)
    access_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    api_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    token_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Bumped on every new access token, so a waiting worker sees that another refreshed."""


class OAuthState(Base):
    """A pending approval: single-use, expiring, bound to the company that asked for it."""

    __tablename__ = "dinero_oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    organization_id: Mapped[int] = mapped_column(BigInteger)
    code_verifier_enc: Mapped[bytes] = mapped_column(LargeBinary)
    confirm_switch: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateBudget(Base):
    """An organization's pause after a 429: no request goes out before `paused_until`."""

    __tablename__ = "dinero_rate_budgets"

    organization_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    paused_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RequestSlot(Base):
    """One reserved request slot (the pacer's sliding window, app/connection/gateway.py).

    Rows older than two windows are deleted as new ones come; `lane` is an app.dinero Lane.
    """

    __tablename__ = "dinero_request_slots"
    __table_args__ = (
        Index("ix_dinero_request_slots_organization_id_slot_at", "organization_id", "slot_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    organization_id: Mapped[int] = mapped_column(BigInteger)
    slot_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lane: Mapped[str] = mapped_column(Text)


async def get_connection(*, session: AsyncSession, company_id: str) -> DineroConnection | None:
    """The company's connection row (any status), or None if it never connected."""
    return (
        await session.execute(
            select(DineroConnection).where(DineroConnection.company_id == company_id)
        )
    ).scalar_one_or_none()
