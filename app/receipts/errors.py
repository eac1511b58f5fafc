"""Why a receipt could not be turned into the file attached to a Dinero purchase voucher."""

from __future__ import annotations

from typing import Final, Literal

ReceiptErrorCode = Literal[
    "receipt_host_not_allowed",
    "receipt_download_failed",
    "receipt_too_large",
    "receipt_too_many_pixels",
    "receipt_unsupported_type",
    "receipt_unreadable",
]

HOST_NOT_ALLOWED: Final = "receipt_host_not_allowed"
"""The link points to a host that is not in RECEIPT_ALLOWED_HOSTS (or is not an https link)."""
DOWNLOAD_FAILED: Final = "receipt_download_failed"
"""The host did not hand out the file; see `transient` for whether trying later may help."""
TOO_LARGE: Final = "receipt_too_large"
"""Over Dinero's 6 MB limit after all that can be done, or over the raw download cap."""
TOO_MANY_PIXELS: Final = "receipt_too_many_pixels"
"""An image (or scan) that would decode to more pixels or pages than a worker may spend on it:
refused from its header, before any pixel is decoded (a decompression bomb, or a huge scan)."""
UNSUPPORTED_TYPE: Final = "receipt_unsupported_type"
"""Not a PDF nor an image this service can read (e.g. HEIC, a Word file, a web page)."""
UNREADABLE: Final = "receipt_unreadable"
"""Corrupt or password-protected PDF, broken image, invalid base64, empty file."""


class ReceiptError(Exception):
    """A receipt problem a finance admin can act on.

    `code` is stable (it is stored as the export's failure code); `message` is a sentence for a
    person and never contains a receipt link's query string (pre-signed links carry secrets).
    `transient` is True only for `receipt_download_failed` caused by the network, a timeout or
    the host's 5xx/429: the same export may succeed later without any change.
    """

    def __init__(
        self,
        code: ReceiptErrorCode,
        message: str,
        *,
        transient: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code: ReceiptErrorCode = code
        self.message = message
        self.transient = transient
        self.status = status
        """The receipt host's HTTP status, when the download got an answer."""

    def __repr__(self) -> str:
        return f"ReceiptError({self.code!r}, {self.message!r}, transient={self.transient})"


def describe_size(size: int) -> str:
    """A byte count as a person reads it ("6.0 MB"); MB = 1024 * 1024 bytes, as Dinero counts."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


__all__ = [
    "DOWNLOAD_FAILED",
    "HOST_NOT_ALLOWED",
    "TOO_LARGE",
    "TOO_MANY_PIXELS",
    "UNREADABLE",
    "UNSUPPORTED_TYPE",
    "ReceiptError",
    "ReceiptErrorCode",
    "describe_size",
]
