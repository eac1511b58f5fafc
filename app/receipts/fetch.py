"""Getting a receipt's bytes: downloads from allow-listed hosts only (no SSRF), or inline base64.

A receipt link comes from outside (the expense platform, ultimately an employee's upload), so
every hop of a download is checked against RECEIPT_ALLOWED_HOSTS: the scheme, the exact host
name and port (a bare host name allows the scheme's default port only), no user info,
redirects followed by hand. The URL is parsed once by httpx and that same
parsed URL is what is requested, so the check and the connection can never disagree about the
host. The body is streamed and abandoned as soon as it passes the raw cap.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.message
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

import httpx

from app.hosts import normalize_host, parse_allowed_host, render_host
from app.receipts.errors import (
    DOWNLOAD_FAILED,
    HOST_NOT_ALLOWED,
    TOO_LARGE,
    UNREADABLE,
    ReceiptError,
    describe_size,
)

DEFAULT_MAX_DOWNLOAD_BYTES: Final = 25 * 1024 * 1024
"""Raw cap on a downloaded or inline receipt, before any shrinking (Dinero's own limit is 6 MB)."""
MAX_REDIRECTS: Final = 3
DEFAULT_TIMEOUT: Final = httpx.Timeout(15.0, connect=5.0)
"""Per network operation (connect, each read)."""
DEFAULT_DEADLINE_SECONDS: Final = 60.0
"""For the whole download including redirects: a host trickling bytes cannot hold a worker."""

_ACCEPT: Final = "application/pdf, image/*;q=0.9, */*;q=0.1"
_GENERIC_TYPES: Final = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/binary"}
)
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_TRANSIENT_STATUSES: Final = frozenset({408, 425, 429})
DEFAULT_FILENAME: Final = "receipt"


@dataclass(frozen=True, slots=True)
class ReceiptBlob:
    """One receipt's raw bytes with what its source said about them (not yet trusted)."""

    content: bytes = field(repr=False)
    filename: str
    content_type: str

    @property
    def size(self) -> int:
        return len(self.content)


def sniff_content_type(content: bytes) -> str | None:
    """The media type the bytes really are, from their magic numbers; None when unknown.

    Recognises what receipts come as: PDF, JPEG, PNG, GIF, WebP, TIFF, BMP, HEIC/HEIF, AVIF,
    and an HTML page (a "receipt" link that answered with a login page).
    """
    head = content[:64]
    if b"%PDF-" in content[:1024]:
        # The PDF specification lets readers accept junk before the header within 1 KB.
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"BM") and len(head) >= 26:
        return "image/bmp"
    if head[4:8] == b"ftyp":
        box_size = int.from_bytes(content[:4], "big")
        return _sniff_iso_media(content[: min(max(box_size, 16), 256)])
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html"
    return None


def _sniff_iso_media(box: bytes) -> str | None:
    """HEIC and AVIF share the ISO media `ftyp` box; the brands tell them apart."""
    brands = {box[8:12]} | {box[i : i + 4] for i in range(16, len(box) - 3, 4)}
    if brands & {b"avif", b"avis"}:
        return "image/avif"
    if brands & {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}:
        return "image/heic"
    return None


def decode_inline(
    content_base64: str,
    filename: str | None = None,
    content_type: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
) -> ReceiptBlob:
    """A receipt sent inline as standard base64 (RFC 4648 alphabet, padded).

    Line breaks and other whitespace are ignored (MIME encoders wrap lines); any other
    character outside the alphabet, a data: URL prefix or bad padding is refused, so a
    truncated or mangled upload is reported instead of producing a corrupt voucher attachment.
    """
    compact = "".join(content_base64.split())
    if len(compact) // 4 * 3 > max_bytes:
        raise ReceiptError(
            TOO_LARGE,
            f"The receipt {_quoted(filename)}is about {describe_size(len(compact) // 4 * 3)}; "
            f"receipts larger than {describe_size(max_bytes)} are not accepted.",
        )
    if compact.startswith("data:"):
        raise ReceiptError(
            UNREADABLE,
            f"The receipt {_quoted(filename)}was sent as a data: URL instead of plain base64 "
            "content; the expense platform must send only the base64 part.",
        )
    try:
        content = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReceiptError(
            UNREADABLE,
            f"The receipt {_quoted(filename)}is not valid base64 content, so the file is "
            "damaged; upload the receipt again.",
        ) from exc
    if not content:
        raise ReceiptError(UNREADABLE, f"The receipt {_quoted(filename)}is an empty file.")
    return ReceiptBlob(
        content=content,
        filename=filename or DEFAULT_FILENAME,
        content_type=_media_type(content_type) or sniff_content_type(content) or _OCTETS,
    )


_OCTETS: Final = "application/octet-stream"


def _quoted(filename: str | None) -> str:
    return f'"{filename}" ' if filename else ""


def _media_type(header: str | None) -> str | None:
    """`image/png; charset=x` → `image/png`; None for a missing or meaningless type."""
    if not header:
        return None
    media = header.split(";", 1)[0].strip().lower()
    return None if media in _GENERIC_TYPES else media


_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


class ReceiptFetcher:
    """Downloads receipts from allow-listed hosts, for the export engine.

    Give it a client of its own (no `auth`, no `base_url`, no Dinero headers): its default
    headers and cookies would be sent to the receipt hosts. Retries are left to the job layer:
    a `ReceiptError` with `transient=True` is worth retrying later, any other is not.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        allowed_hosts: Iterable[str],
        *,
        allow_http: bool = False,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self._client = client
        self._allowed = frozenset(parse_allowed_host(h) for h in allowed_hosts if h.strip())
        self._schemes = frozenset({"https", "http"} if allow_http else {"https"})
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._deadline_seconds = deadline_seconds

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """The allow-list as configured: `host`, or `host:port`."""
        return frozenset(render_host(entry) for entry in self._allowed)

    def _is_allowed(self, host: str, url: httpx.URL) -> bool:
        # httpx gives no port for the scheme's default one.
        if (host, url.port) in self._allowed:
            return True
        return url.port is None and (host, _DEFAULT_PORTS.get(url.scheme)) in self._allowed

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """The parsed URL if it may be downloaded; else `receipt_host_not_allowed`.

        Cheap and offline: the intake API can call it to refuse a bad link up front.
        """
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ReceiptError(HOST_NOT_ALLOWED, "The receipt link is not a valid URL.") from exc
        if parsed.scheme not in self._schemes:
            raise ReceiptError(
                HOST_NOT_ALLOWED,
                "Receipts can only be downloaded over https; the receipt link "
                f"uses {parsed.scheme or 'no scheme'!r}.",
            )
        if parsed.userinfo:
            raise ReceiptError(
                HOST_NOT_ALLOWED,
                "The receipt link contains a user name or password, which is not allowed.",
            )
        host = normalize_host(parsed.raw_host.decode("ascii", errors="replace"))
        if not host or not self._is_allowed(host, parsed):
            allowed = ", ".join(sorted(self.allowed_hosts)) or "none (only inline receipts)"
            where = parsed.host or "this link"
            if parsed.port is not None:
                where = f"{where}:{parsed.port}"
            raise ReceiptError(
                HOST_NOT_ALLOWED,
                f"Receipts may not be downloaded from {where!r}. Allowed hosts: {allowed}.",
            )
        return parsed

    async def fetch(self, url: str) -> ReceiptBlob:
        """Download one receipt; raises `ReceiptError` (see `transient`) on any failure."""
        current = self.check_url(url)
        host = current.host
        try:
            async with asyncio.timeout(self._deadline_seconds):
                for hop in range(MAX_REDIRECTS + 1):
                    host = current.host
                    request = self._client.build_request(
                        "GET", current, headers={"Accept": _ACCEPT}, timeout=self._timeout
                    )
                    response = await self._client.send(request, stream=True, follow_redirects=False)
                    try:
                        location = response.headers.get("Location")
                        if response.status_code in _REDIRECT_STATUSES and location:
                            if hop == MAX_REDIRECTS:
                                raise ReceiptError(
                                    DOWNLOAD_FAILED,
                                    f"The receipt host {host!r} redirected more than "
                                    f"{MAX_REDIRECTS} times; the receipt could not be downloaded.",
                                )
                            current = self.check_url(_join(current, location))
                            continue
                        if not response.is_success:
                            raise _status_error(host, response.status_code)
                        content = await self._read_capped(response, host)
                    finally:
                        await response.aclose()
                    return ReceiptBlob(
                        content=content,
                        filename=_filename(response, current),
                        content_type=_media_type(response.headers.get("Content-Type"))
                        or sniff_content_type(content)
                        or _OCTETS,
                    )
        except TimeoutError as exc:
            raise ReceiptError(
                DOWNLOAD_FAILED,
                f"Downloading the receipt from {host!r} took longer than "
                f"{self._deadline_seconds:.0f} seconds.",
                transient=True,
            ) from exc
        except httpx.TimeoutException as exc:
            raise ReceiptError(
                DOWNLOAD_FAILED,
                f"The receipt host {host!r} did not answer in time.",
                transient=True,
            ) from exc
        except httpx.TransportError as exc:
            raise ReceiptError(
                DOWNLOAD_FAILED,
                f"Could not reach the receipt host {host!r} ({type(exc).__name__}).",
                transient=True,
            ) from exc
        raise AssertionError("unreachable: the redirect loop always returns or raises")

    async def _read_capped(self, response: httpx.Response, host: str) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise self._too_large(int(declared), host)
        chunks: list[bytes] = []
        received = 0
        # aiter_bytes() yields decoded bytes, so a gzip bomb is capped by what it expands to.
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > self._max_bytes:
                raise self._too_large(received, host, at_least=True)
            chunks.append(chunk)
        content = b"".join(chunks)
        if not content:
            raise ReceiptError(
                UNREADABLE, f"The receipt downloaded from {host!r} is an empty file.", status=200
            )
        return content

    def _too_large(self, size: int, host: str, *, at_least: bool = False) -> ReceiptError:
        more = "more than " if at_least else ""
        return ReceiptError(
            TOO_LARGE,
            f"The receipt at {host!r} is {more}{describe_size(size)}; receipts larger than "
            f"{describe_size(self._max_bytes)} are not downloaded.",
        )


def _join(base: httpx.URL, location: str) -> httpx.URL:
    try:
        return base.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ReceiptError(
            HOST_NOT_ALLOWED, "The receipt host redirected to an invalid link."
        ) from exc


def _status_error(host: str, status: int) -> ReceiptError:
    if status >= 500 or status in _TRANSIENT_STATUSES:
        return ReceiptError(
            DOWNLOAD_FAILED,
            f"The receipt host {host!r} is unavailable at the moment (HTTP {status}).",
            transient=True,
            status=status,
        )
    if status in (404, 410):
        why = "the receipt no longer exists at its link"
    elif status in (401, 403):
        why = "the host refused access; the link may have expired"
    else:
        why = "the host refused the download"
    return ReceiptError(
        DOWNLOAD_FAILED,
        f"The receipt could not be downloaded from {host!r}: {why} (HTTP {status}). "
        "Send the expense again with a fresh receipt link.",
        status=status,
    )


def _filename(response: httpx.Response, url: httpx.URL) -> str:
    """From Content-Disposition (incl. RFC 6266 `filename*`), else the link's last path part."""
    disposition = response.headers.get("Content-Disposition")
    if disposition:
        message = email.message.Message()
        message["Content-Disposition"] = disposition
        name = message.get_filename()
        if name:
            return name
    last = unquote(url.path.rsplit("/", 1)[-1])
    return last or DEFAULT_FILENAME


__all__ = [
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "MAX_REDIRECTS",
    "ReceiptBlob",
    "ReceiptFetcher",
    "decode_inline",
    "parse_allowed_host",
    "sniff_content_type",
]
