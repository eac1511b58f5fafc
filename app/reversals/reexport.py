"""Exporting a reversed item again: `POST …/exports` with the same `external_id` and
`"replace": true` puts the corrected item (amounts, category, date, receipts) in the place of
the reversed one, queued, so the runner creates a new voucher. The item keeps its id; its
reversals keep the original voucher and the entry that reversed it, so the history has both.

Without `replace`, a repeated `external_id` stays a no-op, whatever the item's status; with it,
only a `reversed` item is replaced (anything else in Dinero must be reversed first).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.exports import service as lifecycle
from app.exports.models import InlineReceipt, ItemStatus, ItemType, Step
from app.exports.validation import Candidate, item_columns

Key = tuple[ItemType, str]

_EXPORT_STATE_CLEARED: Mapping[str, Any] = {
    "step": Step.NEW,
    "receipt_file": None,
    "receipt_filename": None,
    "receipt_content_type": None,
    "receipt_sha256": None,
    "waiting_code": None,
    "waiting_message": None,
    "failure_code": None,
    "failure_message": None,
    "dinero_message": None,
    "attempts": 0,
    "next_attempt_at": None,
    "sent_at": None,
    "dinero_file_guid": None,
    "dinero_kind": None,
    "dinero_guid": None,
    "dinero_timestamp": None,
    "dinero_version": None,
    "dinero_voucher_number": None,
    "exported_at": None,
    "booked_at": None,
    "posting_date": None,
    "dinero_sent": None,
    "dinero_changes": None,
    "follow_up_checked_at": None,
    "late_receipt_status": None,
    "late_receipt_message": None,
    "late_receipt_at": None,
}
"""Everything the previous export wrote: the new one starts from nothing."""


async def replace_reversed(
    session: AsyncSession,
    *,
    candidates: Sequence[Candidate],
    repeated: Mapping[Key, tuple[uuid.UUID, ItemStatus]],
) -> dict[Key, tuple[uuid.UUID, ItemStatus]]:
    """Replace each repeated item that is `reversed` by its candidate; returns those replaced."""
    replaced: dict[Key, tuple[uuid.UUID, ItemStatus]] = {}
    for candidate in candidates:
        found = repeated.get(candidate.key)
        if found is None or found[1] != ItemStatus.REVERSED:
            continue
        item_id, row = found[0], candidate.row
        moved = await lifecycle.transition(
            session,
            item_id,
            from_=ItemStatus.REVERSED,
            to=ItemStatus.QUEUED,
            **item_columns(row),
            dinero_ledger_id=uuid.uuid4(),  # Dinero keeps the first Id for the booked item
            **_EXPORT_STATE_CLEARED,
        )
        if not moved:
            continue  # replaced by a request a moment ago
        if candidate.blobs:
            now = datetime.now(UTC)
            await session.execute(
                insert(InlineReceipt),
                [
                    {"id": blob_id, "item_id": item_id, "content": content, "created_at": now}
                    for blob_id, content in candidate.blobs
                ],
            )
        replaced[candidate.key] = (item_id, ItemStatus.QUEUED)
    return replaced
