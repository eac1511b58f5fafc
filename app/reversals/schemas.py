"""API shapes for reversing exported items."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.exports.models import ItemStatus
from app.exports.schemas import ChangeOut
from app.inputs import SafeStr


class ReversalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: SafeStr | None = Field(
        default=None, max_length=1000, description="Why, for the history (not sent to Dinero)."
    )
    voucher_date: date | None = Field(
        default=None,
        description="The reversing entry's date (YYYY-MM-DD), in an open accounting year and "
        "after the lock date (`books_closed_through`); today by default. Not used when a draft "
        "is simply deleted.",
    )


class VoucherRefOut(BaseModel):
    kind: str | None = Field(description="purchase_voucher, manual_voucher or ledger_item.")
    voucher_guid: uuid.UUID | None = None
    ledger_item_id: uuid.UUID | None = None
    voucher_number: int | None = None
    url: str | None = Field(
        default=None, description="A link into Dinero's web app, when one is known (not yet)."
    )


class ReversalFailureOut(BaseModel):
    code: str
    message: str
    dinero_message: str | None = None
    changes: list[ChangeOut] = Field(
        default_factory=list,
        description="`voucher_edited_in_dinero`: how the voucher in Dinero differs from what "
        "was exported.",
    )


class ReversalOut(BaseModel):
    id: uuid.UUID
    item_id: uuid.UUID
    item_status: ItemStatus
    status: Literal["pending", "done", "failed"] = Field(
        description="pending: a worker is undoing it in Dinero; done: the item is `reversed`; "
        "failed: refused (see `failure`), the item is back as it was."
    )
    kind: Literal["draft_deleted", "manual_voucher", "ledger_item"] | None = Field(
        default=None,
        description="How Dinero's books were corrected: the draft deleted (its file stays in "
        "the archive), a booked reversing manual voucher, or a booked reversing ledger item; "
        "decided by what Dinero holds when the worker looks.",
    )
    reason: str | None = None
    voucher_date: date
    original: VoucherRefOut = Field(description="The exported voucher that was reversed.")
    reversing: VoucherRefOut | None = Field(
        default=None, description="The reversing entry (none for a deleted draft)."
    )
    failure: ReversalFailureOut | None = None
    created_at: datetime
    finished_at: datetime | None = None


class BulkItemOut(BaseModel):
    item_id: uuid.UUID
    external_id: str
    outcome: Literal["reversing", "refused"]
    reversal: ReversalOut | None = None
    code: str | None = Field(default=None, description="Why it was refused (a problem code).")
    message: str | None = None


class BulkReversalOut(BaseModel):
    export_id: uuid.UUID
    items: list[BulkItemOut]
