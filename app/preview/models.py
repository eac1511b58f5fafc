"""Why each line of an exported item went where it did, stored when its request was built.

Written by the runner right before the voucher / ledger request goes out (and rewritten if a
retry builds it again before anything reached Dinero), so the explanation shown later is the one
that matched what was sent, whatever the mappings or categories became since.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class ExportExplanation(Base):
    """One item's `lines[].explained_by`, in the order of the lines sent to Dinero."""

    __tablename__ = "export_explanations"

    item_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("export_items.id", ondelete="CASCADE"), primary_key=True
    )
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    """Per line: category, tax code and where it came from, mapping used, chart sync current."""
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
