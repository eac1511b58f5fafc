"""API shapes for the history of mappings and categories."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class FieldChange(BaseModel):
    from_: Any = Field(alias="from", description="The value before (null: none, or not known).")
    to: Any = Field(description="The value from then on.")


class SettingsChangeOut(BaseModel):
    id: int = Field(description="Increasing with every change of the company.")
    kind: Literal["mapping", "category"]
    setting: str | None = Field(
        description="For a mapping: which (`deposit_account`, `out_of_pocket_account`, "
        "`reimbursement_account`, `top_up_account`); null for a category."
    )
    category_id: uuid.UUID | None = Field(description="For a category: which; null for a mapping.")
    changes: dict[str, FieldChange] = Field(
        description="Each field that changed, from what to what (empty for a `backfill` row)."
    )
    state: dict[str, Any] = Field(
        description="The whole mapping settings, or the whole category, right after the change: "
        "what was in effect from `changed_at` on."
    )
    changed_at: datetime = Field(description="When the change took effect.")
    changed_by: str | None = Field(
        description="The `sub` of the admin's token; null for a chart sync or a backfill row."
    )
    source: Literal["admin", "dinero_sync", "backfill"] = Field(
        description="`admin`: through this API; `dinero_sync`: an account's name or state "
        "changed in Dinero; `backfill`: the state found when history began."
    )


class SettingsChangePage(BaseModel):
    items: list[SettingsChangeOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")
