"""The outgoing webhook's body (Standard Webhooks: `type`, `timestamp`, `data`), documented in
openapi.yaml under `webhooks` and built from the outbox row (app/outbox/delivery.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.exports.models import ItemStatus, ItemType
from app.exports.schemas import (
    DineroRefOut,
    EditedOut,
    FailureOut,
    LateReceiptOut,
    MoneyOut,
    WaitingOut,
)


class ItemUpdate(BaseModel):
    """An export item right after one of its changes."""

    id: uuid.UUID
    company_id: str
    export_id: uuid.UUID
    external_id: str
    type: ItemType
    status: ItemStatus
    previous_status: ItemStatus | None = Field(
        description="The status before this change (equal to `status` when something else "
        "changed: an edit in Dinero, a late receipt)."
    )
    amount: MoneyOut
    dinero: DineroRefOut | None
    waiting: WaitingOut | None
    failure: FailureOut | None
    edited_in_dinero: EditedOut | None
    late_receipt: LateReceiptOut | None
    exported_at: datetime | None
    booked_at: datetime | None
    changed_at: datetime


class ExportItemUpdated(BaseModel):
    """Sent to PLATFORM_WEBHOOK_URL for each change; `webhook-id` is the same on every retry."""

    type: Literal["export_item.updated"]
    timestamp: datetime = Field(description="When the change happened.")
    data: ItemUpdate


def item_update(
    *, company_id: str, previous_status: str | None, item: dict[str, Any]
) -> ItemUpdate:
    """The webhook's `data` from the trigger's snapshot of the item (see migration 0007)."""
    kind = item.get("dinero_kind")
    ledger = kind == "ledger_item"
    has_ref = kind is not None or item.get("dinero_guid") or item.get("dinero_file_guid")
    dinero = (
        DineroRefOut(
            kind=kind,
            voucher_guid=None if ledger else item.get("dinero_guid"),
            ledger_item_id=(item.get("dinero_guid") or item["id"]) if ledger else None,
            voucher_number=item.get("dinero_voucher_number"),
            file_guid=item.get("dinero_file_guid"),
            url=None,
        )
        if has_ref
        else None
    )
    changes = item.get("dinero_changes")
    late = item.get("late_receipt_status")
    return ItemUpdate(
        id=item["id"],
        company_id=company_id,
        export_id=item["export_id"],
        external_id=item["external_id"],
        type=item["type"],
        status=item["status"],
        previous_status=previous_status,
        amount=MoneyOut(value=item["amount_minor"], currency=item["currency"]),
        dinero=dinero,
        waiting=None
        if item.get("waiting_code") is None
        else WaitingOut(code=item["waiting_code"], message=item.get("waiting_message")),
        failure=None
        if item.get("failure_code") is None
        else FailureOut(
            code=item["failure_code"],
            message=item.get("failure_message"),
            dinero_message=item.get("dinero_message"),
        ),
        edited_in_dinero=None if changes is None else EditedOut.model_validate(changes),
        late_receipt=None
        if late is None
        else LateReceiptOut(status=late, message=item.get("late_receipt_message")),
        exported_at=item.get("exported_at"),
        booked_at=item.get("booked_at"),
        changed_at=item["changed_at"],
    )
