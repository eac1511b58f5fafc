"""API shapes for companies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class CompanyOut(BaseModel):
    id: str
    created_at: datetime
