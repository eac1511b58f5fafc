"""Intake of receipts that arrive after their expense: the rare "repeated item" path.

The platform sends an expense again (same company, type and external id) now carrying more
receipts than we stored (at first it had none, or fewer). The item is not stored again; its
receipts are replaced by the new list (inline ones stored now, in the same transaction) and it
is marked `late_receipt_status = pending`. What happens next depends on where the item is:

- not exported yet (step `new`), or deleted in Dinero: the prepared file is dropped, so the
  export (or the re-export) uses the new receipts;
- a draft in Dinero: the follow-up job replaces the draft's file (app/follow_up/receipts.py),
  never creating a second voucher; it is kicked now;
- already approved (booked): the books are not touched; the item says `not_attached`.

A repeat with the same receipts (a webhook retry) changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.exports.models import (
    ExportItem,
    InlineReceipt,
    ItemStatus,
    ItemType,
    LateReceipt,
    Step,
)
from app.exports.validation import Candidate

log = structlog.get_logger(__name__)

APPROVED_FIRST: Final = (
    "The voucher was approved in Dinero before this receipt arrived, so it was not attached: "
    "attach it to voucher {number} in Dinero by hand."
)

_RE_EXPORTABLE = (ItemStatus.QUEUED, ItemStatus.EXPORTING, ItemStatus.FAILED)


async def accept(
    session: AsyncSession,
    *,
    company_id: str,
    candidates: Sequence[Candidate],
    repeated: Mapping[tuple[ItemType, str], tuple[uuid.UUID, ItemStatus]],
) -> int:
    """Take the new receipts of repeated expenses that now carry more; returns how many."""
    wanted = {
        repeated[c.key][0]: c
        for c in candidates
        if c.key in repeated and c.item.type.is_expense and c.row["receipts"]
    }
    if not wanted:
        return 0
    items = (
        await session.execute(
            select(ExportItem)
            .where(ExportItem.company_id == company_id, ExportItem.id.in_(list(wanted)))
            .with_for_update()
        )
    ).scalars()
    now = datetime.now(UTC)
    taken = 0
    kick_follow_up = False
    for item in items:
        candidate = wanted[item.id]
        receipts: list[dict[str, Any]] = candidate.row["receipts"]
        if len(receipts) <= len(item.receipts):
            continue
        if candidate.blobs:
            await session.execute(
                insert(InlineReceipt),
                [
                    {"id": blob_id, "item_id": item.id, "content": content, "created_at": now}
                    for blob_id, content in candidate.blobs
                ],
            )
        values: dict[str, Any] = {
            "receipts": receipts,
            "late_receipt_status": LateReceipt.PENDING.value,
            "late_receipt_message": None,
            "late_receipt_at": now,
            "updated_at": now,
        }
        if item.status == ItemStatus.BOOKED:
            values["late_receipt_status"] = LateReceipt.NOT_ATTACHED.value
            values["late_receipt_message"] = APPROVED_FIRST.format(
                number=item.dinero_voucher_number or "?"
            )
        elif item.status == ItemStatus.DELETED_IN_DINERO or (
            item.status in _RE_EXPORTABLE and item.step == Step.NEW
        ):
            # No file in Dinero yet (or none that stays): export with the new receipts.
            values.update(
                receipt_file=None,
                receipt_filename=None,
                receipt_content_type=None,
                receipt_sha256=None,
            )
        elif item.status == ItemStatus.AWAITING_APPROVAL:
            kick_follow_up = True
        await session.execute(update(ExportItem).where(ExportItem.id == item.id).values(**values))
        taken += 1
        log.info(
            "late_receipt_received",
            item_id=str(item.id),
            item_status=item.status.value,
            receipts=len(receipts),
        )
    if kick_follow_up:
        await jobs.wake_follow_up(session, company_id)
    return taken
