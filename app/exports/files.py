"""The voucher's one file: the item's receipts (combined, shrunk) or a note, named after the item;
and finding a file again in Dinero's file archive after an uncertain upload or create."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import undefer

from app.dinero.client import DineroClient, FileStatus
from app.dinero.models import ArchivedFile
from app.exports.checks import Fail
from app.exports.models import ExportItem, InlineReceipt
from app.exports.note import receipt_note
from app.receipts import ReceiptBlob, ReceiptFetcher, prepare_receipts
from app.services import Services

UPLOAD_LOOKBACK: Final = timedelta(days=1)
ARCHIVE_PAGE: Final = 1000
EXTENSIONS: Final = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


def safe_name(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)
    return cleaned.strip("-")[:40] or "expense"


def base_name(item: ExportItem, suffix: str = "") -> str:
    """The file's name without extension: the external id and our id (and `suffix`).

    Our id of this export (`ledger_id`: a new one when a reversed item is exported again), so
    looking for an uncertain upload never finds the file of the export that was reversed.
    """
    return f"{safe_name(item.external_id)}-{item.ledger_id.hex[:8]}{suffix}"


async def receipt_blobs(services: Services, item: ExportItem) -> list[ReceiptBlob]:
    """The item's receipts as bytes: inline ones from the database, links downloaded."""
    blobs: list[ReceiptBlob] = []
    fetcher: ReceiptFetcher | None = None
    inline: dict[uuid.UUID, bytes] = {}
    blob_ids = [uuid.UUID(r["blob_id"]) for r in item.receipts if r.get("blob_id")]
    if blob_ids:
        async with services.sessionmaker() as session:
            rows = await session.execute(
                select(InlineReceipt.id, InlineReceipt.content).where(
                    InlineReceipt.id.in_(blob_ids)
                )
            )
            inline = {row.id: row.content for row in rows}
    for receipt in item.receipts:
        filename = receipt.get("filename") or "receipt"
        content_type = receipt.get("content_type") or "application/octet-stream"
        if receipt.get("blob_id"):
            content = inline.get(uuid.UUID(receipt["blob_id"]))
            if content is None:
                raise Fail("receipt_missing", f"The stored receipt {filename} is missing.")
            blobs.append(ReceiptBlob(content=content, filename=filename, content_type=content_type))
        elif receipt.get("url"):
            if fetcher is None:
                fetcher = ReceiptFetcher(
                    services.receipt_http, services.settings.receipt_allowed_hosts
                )
            blobs.append(await fetcher.fetch(str(receipt["url"])))
    return blobs


async def combined_receipts(blobs: list[ReceiptBlob], base: str) -> tuple[bytes, str, str, str]:
    """The receipts as one file: content, filename, content type, sha256."""
    prepared = await asyncio.to_thread(prepare_receipts, blobs, base_name=base)
    extension = EXTENSIONS.get(prepared.content_type, "pdf")
    return prepared.content, f"{base}.{extension}", prepared.content_type, prepared.sha256


async def prepared_file(
    services: Services, item: ExportItem, pending: dict[str, Any]
) -> tuple[bytes, str, str]:
    """The one file for the voucher: the receipts combined, or a note when there is none.

    A newly prepared file is added to `pending`, to be stored with the upload's intent.
    """
    if item.receipt_sha256 is not None:
        async with services.sessionmaker() as session:
            stored = (
                await session.execute(
                    select(ExportItem)
                    .options(undefer(ExportItem.receipt_file))
                    .where(ExportItem.id == item.id)
                )
            ).scalar_one()
            assert stored.receipt_file is not None
            assert stored.receipt_filename is not None
            assert stored.receipt_content_type is not None
            return stored.receipt_file, stored.receipt_filename, stored.receipt_content_type
    blobs = await receipt_blobs(services, item)
    base = base_name(item)
    if blobs:
        content, filename, content_type, sha = await combined_receipts(blobs, base)
    else:
        content = await asyncio.to_thread(receipt_note, item)
        content_type, filename = "image/png", f"{base}.png"
        sha = hashlib.sha256(content).hexdigest()
    pending.update(
        receipt_file=content,
        receipt_filename=filename,
        receipt_content_type=content_type,
        receipt_sha256=sha,
    )
    return content, filename, content_type


async def archive_pages(
    client: DineroClient,
    *,
    file_status: FileStatus = "All",
    uploaded_after: date | None = None,
    uploaded_before: date | None = None,
    max_pages: int | None = None,
) -> AsyncIterator[list[ArchivedFile]]:
    """The file archive page by page (ARCHIVE_PAGE files each) until a short page, or
    `max_pages`; the caller stops early by leaving the loop."""
    page = 0
    while max_pages is None or page < max_pages:
        files = await client.list_files(
            uploaded_after=uploaded_after,
            uploaded_before=uploaded_before,
            file_status=file_status,
            page=page,
            page_size=ARCHIVE_PAGE,
        )
        yield files
        if len(files) < ARCHIVE_PAGE:
            return
        page += 1


async def search_archive(
    client: DineroClient,
    item: ExportItem,
    matches: Callable[[ArchivedFile], bool],
    file_status: FileStatus = "All",
) -> ArchivedFile | None:
    """The archived file uploaded since shortly before the item's uncertain call that matches.

    Dinero's own document words the upload-date filters the other way round ("uploadedAfter:
    limits the search to the given before date"), so which one is the lower bound is not
    certain. The natural reading is tried first; only when it finds nothing is the documented
    one tried too (one more request, and only after an uncertain outcome), so the look-up
    never concludes "not sent" from a filter read the other way.
    """
    since = ((item.sent_at or datetime.now(UTC)) - UPLOAD_LOOKBACK).date()
    for natural in (True, False):
        async for files in archive_pages(
            client,
            file_status=file_status,
            uploaded_after=since if natural else None,
            uploaded_before=None if natural else since,
        ):
            for stored in files:
                if stored.uploaded_at.date() >= since and matches(stored):
                    return stored
    return None


async def find_upload(
    client: DineroClient, item: ExportItem, filename: str, size: int
) -> str | None:
    """The guid of our file in the archive after an uncertain upload (by name and size)."""
    stem = filename.rsplit(".", 1)[0]
    found = await search_archive(
        client,
        item,
        lambda f: f.name in (filename, stem) and f.size == size and bool(f.file_guid),
    )
    return found.file_guid if found is not None else None
