"""Receipts: from an expense's receipt links or inline files to the one file attached in Dinero.

`ReceiptFetcher.fetch` / `decode_inline` give `ReceiptBlob`s (download from allow-listed hosts
only); `prepare_receipts` turns them into one `PreparedReceipt` within Dinero's 6 MB limit
(pure and CPU-bound: run it with `asyncio.to_thread`). Every failure is a `ReceiptError` with a
stable `code`; only `transient` ones are worth retrying.
"""

from app.receipts.errors import ReceiptError, ReceiptErrorCode
from app.receipts.fetch import (
    DEFAULT_MAX_DOWNLOAD_BYTES,
    ReceiptBlob,
    ReceiptFetcher,
    decode_inline,
    sniff_content_type,
)
from app.receipts.prepare import (
    MAX_UPLOAD_BYTES,
    PreparedReceipt,
    prepare_receipts,
    sanitize_filename,
)

__all__ = [
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "MAX_UPLOAD_BYTES",
    "PreparedReceipt",
    "ReceiptBlob",
    "ReceiptError",
    "ReceiptErrorCode",
    "ReceiptFetcher",
    "decode_inline",
    "prepare_receipts",
    "sanitize_filename",
    "sniff_content_type",
]
