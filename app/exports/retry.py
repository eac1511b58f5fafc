"""Retrying an export item: a failed one queued again, one deleted in Dinero exported anew, one
waiting for a year Dinero refused as closed sent again."""

from __future__ import annotations

import uuid
from typing import Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.errors import Conflict
from app.exports import closed
from app.exports.models import ExportItem, ItemStatus, Step
from app.exports.service import FRESH, company_item, transition

log = structlog.get_logger(__name__)

RETRYABLE: Final = frozenset({ItemStatus.FAILED, ItemStatus.DELETED_IN_DINERO})
WAITING: Final = frozenset({ItemStatus.QUEUED, ItemStatus.EXPORTING})
YEAR_CLOSED: Final = "accounting_year_closed"
"""The wait a retry also ends: Dinero refused the item's year as closed (app/exports/closed.py)."""


async def retry_item(*, session: AsyncSession, company_id: str, item_id: uuid.UUID) -> ExportItem:
    """Queue a failed item again (or, deleted in Dinero, export it again as a new voucher)."""
    item = await company_item(session, company_id, item_id, lock=True)
    if item.waiting_code == YEAR_CLOSED and item.status in WAITING:
        # The admin reopened the year in Dinero: forget Dinero's refusal, so the next pass
        # sends the year's items again (the item keeps its place and its step).
        await closed.forget(session, company_id)
        await jobs.wake_exports(session, company_id)
        log.info("export_item_retried", item_id=str(item.id), company_id=company_id, year="open")
        return item
    if item.status not in RETRYABLE:
        raise Conflict(
            f"The item is {item.status.value.replace('_', ' ')}; only failed items, items "
            "deleted in Dinero, or items waiting for a closed accounting year can be retried.",
            code="item_not_retryable",
            extra={"item_status": item.status.value},
        )
    if item.status == ItemStatus.DELETED_IN_DINERO:
        # The voucher is gone from Dinero: export again from the start, as a new voucher.
        item.step = Step.NEW
        item.dinero_file_guid = None
        item.dinero_kind = None
        item.dinero_guid = None
        item.dinero_timestamp = None
        item.dinero_version = None
        item.dinero_voucher_number = None
        item.sent_at = None
        item.exported_at = None
        item.booked_at = None
        item.posting_date = None
        item.dinero_sent = None
        item.dinero_changes = None
        item.follow_up_checked_at = None
    await session.flush()
    await transition(
        session,
        item.id,
        from_=item.status,
        to=ItemStatus.QUEUED,
        **FRESH,
    )
    await session.refresh(item)
    await jobs.wake_exports(session, company_id)
    log.info("export_item_retried", item_id=str(item.id), company_id=company_id)
    return item
