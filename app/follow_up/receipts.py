"""Late receipts: a receipt that arrives after the expense was exported goes onto the same draft.

Intake (app/exports/late_receipts.py) stores the new receipts and marks the item
`late_receipt_status = pending`. Here, once the item is a draft in Dinero, its file is prepared
again from all its receipts (deterministic bytes); if the draft already carries exactly that
file (the export itself used the new receipts) nothing is sent. Otherwise the file is uploaded,
the draft is read afresh and replaced (PUT) with everything as Dinero holds it now (the
accountant's edits stay) and only the FileGuid changed, sending the Timestamp just read; a stale
Timestamp (someone edited in between) is read again and tried once more. No voucher is ever
created here. A draft approved before the receipt could be attached is left alone (booked books
are not touched) and the item says `not_attached`. These calls are export work: export lane.

Worst case after a crash mid-way: the file is uploaded again next time (an unattached file in
the archive, invisible to the accountant); the draft still ends with one file, ours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import structlog
from sqlalchemy import select, update

from app.dinero.client import DineroClient
from app.dinero.errors import DineroApiError, DineroNotFound, DineroStaleVersion
from app.dinero.models import PurchaseVoucher, PurchaseVoucherUpdate
from app.exports.checks import Fail
from app.exports.files import base_name, combined_receipts, receipt_blobs
from app.exports.late_receipts import APPROVED_FIRST
from app.exports.mapping import PURCHASE
from app.exports.models import ExportItem, ItemStatus, LateReceipt
from app.follow_up.result import CycleResult
from app.receipts import ReceiptError
from app.services import Services

log = structlog.get_logger(__name__)

NOT_A_PURCHASE: Final = (
    "The refund's voucher (a manual voucher) is not updated automatically: attach the receipt "
    "to it in Dinero by hand."
)


async def _set(services: Services, item: ExportItem, *statuses: ItemStatus, **values: Any) -> bool:
    async with services.sessionmaker() as session, session.begin():
        done = await session.execute(
            update(ExportItem)
            .where(
                ExportItem.id == item.id,
                ExportItem.late_receipt_status == LateReceipt.PENDING,
                # Another receipt since we read the item: leave it pending for the next cycle.
                ExportItem.late_receipt_at.is_not_distinct_from(item.late_receipt_at),
                ExportItem.status.in_(statuses),
            )
            .values(updated_at=datetime.now(UTC), late_receipt_at=datetime.now(UTC), **values)
        )
    return bool(getattr(done, "rowcount", 0))


async def attach_pending(
    services: Services, client: DineroClient, company_id: str, result: CycleResult
) -> None:
    """Attach every pending late receipt whose draft exists (drafts only; one at a time)."""
    async with services.sessionmaker() as session:
        items = list(
            (
                await session.execute(
                    select(ExportItem)
                    .where(
                        ExportItem.company_id == company_id,
                        ExportItem.late_receipt_status == LateReceipt.PENDING,
                        ExportItem.status.in_([ItemStatus.AWAITING_APPROVAL, ItemStatus.BOOKED]),
                    )
                    .order_by(ExportItem.late_receipt_at)
                )
            ).scalars()
        )
    for item in items:
        await _attach(services, client, item, result)


async def _attach(
    services: Services, client: DineroClient, item: ExportItem, result: CycleResult
) -> None:
    if item.status == ItemStatus.BOOKED:
        if await _set(
            services,
            item,
            ItemStatus.BOOKED,
            late_receipt_status=LateReceipt.NOT_ATTACHED,
            late_receipt_message=APPROVED_FIRST.format(number=item.dinero_voucher_number or "?"),
        ):
            result.changed += 1
        return
    try:
        prepared = await _prepare(services, item)
    except ReceiptError as exc:
        if exc.transient:
            return  # try again next cycle
        await _not_attached(services, item, result, exc.message)
        return
    except Fail as fail:
        await _not_attached(services, item, result, fail.message)
        return
    content, filename, content_type, sha = prepared
    if sha == item.receipt_sha256:
        # The export already used these receipts: the draft carries them.
        if await _set(
            services,
            item,
            ItemStatus.AWAITING_APPROVAL,
            late_receipt_status=LateReceipt.ATTACHED,
            late_receipt_message=None,
        ):
            result.changed += 1
        return
    if item.dinero_kind != PURCHASE or item.dinero_guid is None:
        await _not_attached(services, item, result, NOT_A_PURCHASE)
        return
    try:
        uploaded = await client.upload_file(content, filename, content_type)
        result.count("receipts")
        updated = await _replace_file(client, item, uploaded.file_guid, result)
    except DineroNotFound:
        return  # deleted in Dinero: the follow-up reads find it and say so
    except DineroApiError as exc:
        if exc.transient:
            return
        await _not_attached(services, item, result, f"Dinero refused the new file: {exc}")
        return
    if updated is None:  # approved meanwhile
        await _not_attached(
            services, item, result, APPROVED_FIRST.format(number=item.dinero_voucher_number or "?")
        )
        return
    sent = dict(item.dinero_sent or {})
    if sent:
        sent["file_guid"] = updated.file_guid
    if await _set(
        services,
        item,
        ItemStatus.AWAITING_APPROVAL,
        receipt_file=content,
        receipt_filename=filename,
        receipt_content_type=content_type,
        receipt_sha256=sha,
        dinero_file_guid=updated.file_guid,
        dinero_timestamp=updated.timestamp,
        dinero_sent=sent or None,
        late_receipt_status=LateReceipt.ATTACHED,
        late_receipt_message=None,
    ):
        result.receipts_attached += 1
        result.changed += 1
        log.info("late_receipt_attached", item_id=str(item.id), voucher_guid=str(item.dinero_guid))


async def _replace_file(
    client: DineroClient, item: ExportItem, file_guid: str, result: CycleResult
) -> PurchaseVoucher | None:
    """PUT the draft as read, with the new FileGuid; None when it is no longer a draft."""
    assert item.dinero_guid is not None
    for attempt in range(2):
        voucher = await client.get_purchase_voucher(item.dinero_guid)
        result.count("receipts")
        if not voucher.is_draft:
            return None
        try:
            updated = await client.update_purchase_voucher(
                item.dinero_guid, PurchaseVoucherUpdate.keeping(voucher, file_guid=file_guid)
            )
        except DineroStaleVersion:
            result.count("receipts")
            if attempt:
                raise
            continue  # edited in between: read it again, once
        result.count("receipts")
        return updated
    return None  # pragma: no cover - the loop returns or raises


async def _not_attached(
    services: Services, item: ExportItem, result: CycleResult, message: str
) -> None:
    if await _set(
        services,
        item,
        ItemStatus.AWAITING_APPROVAL,
        ItemStatus.BOOKED,
        late_receipt_status=LateReceipt.NOT_ATTACHED,
        late_receipt_message=message,
    ):
        result.changed += 1


async def _prepare(services: Services, item: ExportItem) -> tuple[bytes, str, str, str]:
    """The voucher's one file from all the item's receipts, named apart from the first one."""
    blobs = await receipt_blobs(services, item)
    return await combined_receipts(blobs, base_name(item, f"-r{len(item.receipts)}"))
