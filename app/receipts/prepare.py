"""Turn an expense's receipts into the one file uploaded to Dinero's file archive ("bilag").

Dinero takes one image or PDF per purchase voucher, at most 6 MB. So:

- one JPEG, PNG or PDF within the limit is passed through byte for byte;
- any other image, or an image over the limit, is re-encoded as JPEG, first with decreasing
  quality, then with decreasing dimensions (not below ~1000 px on the long side unless nothing
  else fits);
- several receipts (or a multi-page TIFF scan) become one PDF, in the given order: each image
  a page, each PDF's pages appended; if that is over the limit, its image pages are shrunk
  as above while the PDF pages keep their content;
- a PDF over the limit is only compressed losslessly; if it still does not fit, it is refused.

Hostile files cost a bounded amount: every image is opened (header only) and its size checked
against a decoded-pixel budget before a pixel is decoded, per picture (`MAX_IMAGE_PIXELS`, also
Pillow's own `Image.MAX_IMAGE_PIXELS`), per receipt over all its frames (`MAX_RECEIPT_PIXELS`,
`MAX_IMAGE_FRAMES`) and per expense (`MAX_EXPENSE_PIXELS`); past it the receipt is refused as
`receipt_too_many_pixels`. PDFs are read within pypdf's own decompression limits and at most
`MAX_PDF_PAGES` pages.

The output is deterministic (same input bytes → same output bytes): the export engine compares
`sha256` with what it uploaded before. Generated PDFs carry fixed metadata and no dates or
random ids; JPEG encoding and zlib are deterministic for a given Pillow/zlib build. (A library
upgrade may change the bytes, which at worst re-uploads a file.)

Pure and synchronous (CPU-bound): call it with `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from PIL import Image, ImageOps, UnidentifiedImageError
from pypdf import PageObject, PasswordType, PdfReader, PdfWriter
from pypdf.errors import LimitReachedError, PyPdfError
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject

from app.dinero import MAX_UPLOAD_BYTES
from app.receipts.errors import (
    TOO_LARGE,
    TOO_MANY_PIXELS,
    UNREADABLE,
    UNSUPPORTED_TYPE,
    ReceiptError,
    describe_size,
)
from app.receipts.fetch import ReceiptBlob, sniff_content_type

MIN_LEGIBLE_SIDE: Final = 1000
"""Long side (px) below which a receipt gets hard to read: only gone below if nothing else fits."""
SMALLEST_SIDE: Final = 500
"""Long side (px) under which shrinking stops and the receipt is refused as too large."""
JPEG_QUALITIES: Final = (85, 75, 65, 55)
"""Tried in turn at the original size; the last one is kept while the dimensions shrink."""
SIDE_STEP: Final = 0.75
A4_POINTS: Final = (595, 842)
"""An image page fits within A4 (portrait or landscape, as the image is)."""
MAX_FILENAME_CHARS: Final = 100
COMBINED_NAME: Final = "receipts"
PDF_PRODUCER: Final = "dinero-bridge"

JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
PDF: Final = "application/pdf"
_EXTENSIONS: Final = {JPEG: ".jpg", PNG: ".png", PDF: ".pdf"}
_SAME_EXTENSIONS: Final = {JPEG: {".jpg", ".jpeg", ".jpe", ".jfif"}, PNG: {".png"}, PDF: {".pdf"}}
_FILE_EXTENSIONS: Final = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".pdf", ".gif", ".webp", ".heic", ".heif"}
    | {".avif", ".tif", ".tiff", ".bmp", ".htm", ".html", ".txt", ".bin", ".dat"}
)
"""Extensions that name a file type, replaced (not kept) when the real type differs."""

_PILLOW_FORMATS: Final = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "AVIF", "HEIF")
"""The only decoders used: common, maintained ones (never EPS, which runs Ghostscript).
HEIF counts only if a plugin (pillow-heif) registered it; JPEG includes MPO phone photos."""
MAX_JPEG_SIDE: Final = 65_500
"""JPEG cannot encode more pixels than 65,535 along a side."""
_IMAGE_TYPES: Final = frozenset(
    {JPEG, PNG, "image/gif", "image/webp", "image/tiff", "image/bmp", "image/avif"}
)
"""Types whose magic numbers we know: a decoder failure on them means a damaged file."""

MAX_IMAGE_PIXELS: Final = 50_000_000
"""Decoded pixels of one picture: a 48-megapixel phone photo fits (Pillow holds ~4 bytes each)."""
MAX_RECEIPT_PIXELS: Final = 60_000_000
"""All frames of one receipt together (a multi-page scan: six A4 pages at 300 dpi)."""
MAX_EXPENSE_PIXELS: Final = 120_000_000
"""All receipts of one expense together."""
MAX_IMAGE_FRAMES: Final = 50
"""Pages of one multi-page TIFF scan."""
MAX_PDF_PAGES: Final = 200

# Pillow's own check, at Image.open: a warning past it, DecompressionBombError past twice it.
# The budget below refuses past it already, from the header, so the warning says nothing new.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class _PixelBudget:
    """Decoded pixels left for one expense's receipts, checked before each frame is decoded."""

    def __init__(self) -> None:
        self.expense = 0
        self.receipt = 0

    def next_receipt(self) -> None:
        self.receipt = 0

    def take(self, size: tuple[int, int], label: str) -> None:
        pixels = size[0] * size[1]
        if pixels > MAX_IMAGE_PIXELS:
            raise _too_many_pixels(
                label, f"is an image of {size[0]} x {size[1]} pixels", MAX_IMAGE_PIXELS
            )
        self.receipt += pixels
        self.expense += pixels
        if self.receipt > MAX_RECEIPT_PIXELS:
            raise _too_many_pixels(label, "has pages of more pixels together", MAX_RECEIPT_PIXELS)
        if self.expense > MAX_EXPENSE_PIXELS:
            raise ReceiptError(
                TOO_MANY_PIXELS,
                f"The receipts of this expense hold more than {MAX_EXPENSE_PIXELS:,} pixels "
                f"together (at receipt {label}); send smaller scans or photos.",
            )


def _too_many_pixels(label: str, what: str, limit: int) -> ReceiptError:
    return ReceiptError(
        TOO_MANY_PIXELS,
        f"The receipt {label} {what} than the {limit:,} that can be processed; send a smaller "
        "scan or photo of it.",
    )


@dataclass(frozen=True, slots=True)
class PreparedReceipt:
    """The file to upload to `POST /v1/{org}/files`."""

    content: bytes = field(repr=False)
    filename: str
    content_type: str
    sha256: str
    """Hex digest of `content`: equal digests mean the same file was already uploaded."""
    pages: int

    @classmethod
    def of(cls, content: bytes, filename: str, content_type: str, pages: int) -> PreparedReceipt:
        digest = hashlib.sha256(content).hexdigest()
        return cls(content, filename, content_type, digest, pages)


@dataclass(frozen=True, slots=True)
class _Rung:
    """One attempt at shrinking images: cap the long side (None: keep) at this JPEG quality.

    `quality=None` means "as they are": a JPEG page keeps its original bytes when a PDF can
    show them unchanged, any other image is encoded at the first quality.
    """

    side: int | None
    quality: int | None


_AS_THEY_ARE: Final = _Rung(None, None)


class _Jpeg(NamedTuple):
    data: bytes
    width: int
    height: int
    gray: bool


@dataclass(eq=False)
class _Picture:
    """One image page (a receipt image, or one page of a multi-page TIFF scan)."""

    frame: Image.Image
    label: str
    original_jpeg: bytes | None
    """The receipt's own bytes, when they are a JPEG a PDF can embed as they are."""
    _normalized: Image.Image | None = None

    @property
    def long_side(self) -> int:
        return max(self.frame.size)  # the same whichever way up

    @property
    def normalized(self) -> Image.Image:
        """Upright, flattened onto white, in RGB or L: what JPEG and PDF viewers show right."""
        if self._normalized is None:
            try:
                self._normalized = _normalize(self.frame)
            except (OSError, ValueError) as exc:  # a mode Pillow cannot convert
                raise _unsupported(
                    self.label, f"image/{(self.frame.format or '').lower()}"
                ) from exc
        return self._normalized

    def jpeg(self, rung: _Rung) -> _Jpeg:
        """This picture as a JPEG at a shrinking rung."""
        if rung.quality is None and self.original_jpeg is not None:
            frame = self.frame
            return _Jpeg(self.original_jpeg, frame.width, frame.height, frame.mode == "L")
        image = _resized(self.normalized, rung.side)
        quality = JPEG_QUALITIES[0] if rung.quality is None else rung.quality
        out = io.BytesIO()
        # No EXIF is written: the orientation is already applied to the pixels.
        image.save(out, "JPEG", quality=quality, optimize=True, icc_profile=self._icc_profile())
        return _Jpeg(out.getvalue(), image.width, image.height, image.mode == "L")

    def _icc_profile(self) -> bytes | None:
        """The colour profile to keep, unless the pixels were converted from CMYK (it would lie)."""
        profile = self.frame.info.get("icc_profile")
        return profile if isinstance(profile, bytes) and self.frame.mode != "CMYK" else None


@dataclass(eq=False)
class _Source:
    """One receipt, opened and validated."""

    blob: ReceiptBlob
    label: str
    """Names it after "The receipt": `"taxi.jpg"`, or `2 ("taxi.jpg")` among several."""
    media_type: str
    """The real type, sniffed from the bytes (PDF, JPEG, PNG or another image type)."""
    pictures: list[_Picture] = field(default_factory=list)
    pdf: PdfReader | None = None

    @property
    def page_count(self) -> int:
        return len(self.pdf.pages) if self.pdf is not None else len(self.pictures)


def prepare_receipts(
    blobs: Sequence[ReceiptBlob],
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    base_name: str | None = None,
) -> PreparedReceipt:
    """The one file to upload for an expense's receipts (see the module docstring for rules).

    `base_name` (e.g. the expense's reference) names a combined PDF: `{base_name}.pdf`,
    default `receipts.pdf`; a single receipt keeps its own (sanitized) name.
    Raises `ReceiptError` (`receipt_too_large`, `receipt_unsupported_type`,
    `receipt_unreadable`) naming the receipt; `ValueError` for an empty list.
    """
    if not blobs:
        raise ValueError("prepare_receipts needs at least one receipt")
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    many = len(blobs) > 1
    labels = [_label(blob, position, many) for position, blob in enumerate(blobs, 1)]
    budget = _PixelBudget()
    for blob, label in zip(blobs, labels, strict=True):
        _charge(blob, label, budget)  # every header first: nothing is decoded past the budget
    sources = [_open(blob, label) for blob, label in zip(blobs, labels, strict=True)]
    if len(sources) == 1 and (sources[0].pdf is not None or len(sources[0].pictures) == 1):
        return _prepare_single(sources[0], max_bytes, base_name)
    if len(sources) == 1:  # a multi-page TIFF scan keeps its own name
        filename = sanitize_filename(sources[0].blob.filename, PDF, fallback=base_name)
    else:
        filename = sanitize_filename(None, PDF, fallback=base_name or COMBINED_NAME)
    return _combine(sources, max_bytes, filename)


# --- one receipt -----------------------------------------------------------------------------


def _prepare_single(source: _Source, max_bytes: int, base_name: str | None) -> PreparedReceipt:
    content = source.blob.content
    if len(content) <= max_bytes and source.media_type in (JPEG, PNG, PDF):
        filename = sanitize_filename(source.blob.filename, source.media_type, fallback=base_name)
        return PreparedReceipt.of(content, filename, source.media_type, source.page_count)
    if source.pdf is not None:
        compressed = _compress_pdf(source.pdf, source.label)
        if len(compressed) > max_bytes:
            raise _pdf_too_large(source.label, len(content), len(compressed), max_bytes)
        filename = sanitize_filename(source.blob.filename, PDF, fallback=base_name)
        return PreparedReceipt.of(compressed, filename, PDF, source.page_count)

    picture = source.pictures[0]
    shrunk = _first_fitting(
        list(_ladder(picture.long_side)), lambda rung: picture.jpeg(rung).data, max_bytes
    )
    if len(shrunk) > max_bytes:
        raise ReceiptError(
            TOO_LARGE,
            f"The receipt {source.label} ({describe_size(len(content))}) cannot be made "
            f"smaller than Dinero's limit of {describe_size(max_bytes)} and still be legible.",
        )
    filename = sanitize_filename(source.blob.filename, JPEG, fallback=base_name)
    return PreparedReceipt.of(shrunk, filename, JPEG, 1)


def _compress_pdf(reader: PdfReader, label: str) -> bytes:
    """The same document, losslessly smaller: content streams deflated, duplicates merged."""
    with _pdf_errors(f"The PDF receipt {label}"):
        writer = PdfWriter(clone_from=reader)
        for page in writer.pages:
            page.compress_content_streams(level=9)
        writer.compress_identical_objects(remove_duplicates=True, remove_unreferenced=True)
        return _written(writer)


@contextlib.contextmanager
def _pdf_errors(subject: str) -> Iterator[None]:
    """pypdf's refusals (its decompression limits, a damaged stream) as the receipt's error."""
    try:
        yield
    except LimitReachedError as exc:
        raise ReceiptError(
            TOO_LARGE,
            f"{subject} expands to more data than can be processed (a compressed stream past "
            "75 MB); send a smaller PDF.",
        ) from exc
    except PyPdfError as exc:
        raise ReceiptError(UNREADABLE, f"{subject} is damaged and cannot be processed.") from exc


def _pdf_too_large(label: str, size: int, compressed: int, max_bytes: int) -> ReceiptError:
    return ReceiptError(
        TOO_LARGE,
        f"The PDF receipt {label} is {describe_size(size)} (still {describe_size(compressed)} "
        f"after lossless compression); Dinero accepts at most {describe_size(max_bytes)}. "
        "Upload a smaller scan of the receipt, e.g. at a lower resolution.",
    )


# --- several receipts: one PDF ---------------------------------------------------------------


def _combine(sources: list[_Source], max_bytes: int, filename: str) -> PreparedReceipt:
    pictures = [p for s in sources for p in s.pictures]
    pages = sum(s.page_count for s in sources)
    longest = max((p.long_side for p in pictures), default=0)
    rungs = [_AS_THEY_ARE, *(_ladder(longest) if pictures else [])]
    with _pdf_errors("One of the PDF receipts"):
        combined = _first_fitting(rungs, lambda rung: _build_pdf(sources, rung), max_bytes)
    if len(combined) > max_bytes:
        sizes = ", ".join(f"{s.label}: {describe_size(s.blob.size)}" for s in sources)
        shrunk = " even with their images shrunk as far as possible" if pictures else ""
        raise ReceiptError(
            TOO_LARGE,
            f"The receipts together make a PDF of {describe_size(len(combined))}{shrunk}; "
            f"Dinero accepts at most {describe_size(max_bytes)} (receipts {sizes}).",
        )
    return PreparedReceipt.of(combined, filename, PDF, pages)


def _build_pdf(sources: list[_Source], rung: _Rung) -> bytes:
    writer = PdfWriter()
    version = "%PDF-1.4"
    for source in sources:
        if source.pdf is not None:
            header = source.pdf.pdf_header[:8]
            if re.fullmatch(r"%PDF-\d\.\d", header):
                version = max(version, header)
            for page in source.pdf.pages:
                writer.add_page(page)
        for picture in source.pictures:
            writer.add_page(_image_page(picture.jpeg(rung)))
    for page in writer.pages:
        page.compress_content_streams(level=9)
    writer.compress_identical_objects(remove_duplicates=True, remove_unreferenced=True)
    writer.pdf_header = version
    return _written(writer)


def _image_page(jpeg: _Jpeg) -> PageObject:
    """A page showing one JPEG, scaled to fit A4 in the image's own orientation.

    Built as plain objects (DCTDecode image XObject + a one-line content stream); `add_page`
    makes the streams indirect objects of the writer.
    """
    width, height = jpeg.width, jpeg.height
    short, long = sorted(A4_POINTS)
    scale = min(short / min(width, height), long / max(width, height))
    page_width, page_height = round(width * scale, 2), round(height * scale, 2)
    image = DecodedStreamObject()
    image.set_data(jpeg.data)
    image.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Image"),
            NameObject("/Width"): NumberObject(width),
            NameObject("/Height"): NumberObject(height),
            NameObject("/ColorSpace"): NameObject("/DeviceGray" if jpeg.gray else "/DeviceRGB"),
            NameObject("/BitsPerComponent"): NumberObject(8),
            NameObject("/Filter"): NameObject("/DCTDecode"),
        }
    )
    contents = DecodedStreamObject()
    contents.set_data(f"q {page_width:.2f} 0 0 {page_height:.2f} 0 0 cm /Im0 Do Q".encode())
    page = PageObject.create_blank_page(None, page_width, page_height)
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): image})}
    )
    page[NameObject("/Contents")] = contents
    return page


def _written(writer: PdfWriter) -> bytes:
    # Fixed metadata only: no dates, no random /ID (pypdf writes one only when cloning a
    # document that has one, which then is the source's own and deterministic too).
    writer.add_metadata({"/Producer": PDF_PRODUCER})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- shrinking -------------------------------------------------------------------------------


def _ladder(longest: int) -> Iterator[_Rung]:
    """Ever smaller attempts: lower quality at full size, then smaller images (long side)."""
    for quality in JPEG_QUALITIES:
        yield _Rung(None, quality)
    side = longest
    for floor in (MIN_LEGIBLE_SIDE, SMALLEST_SIDE):
        while side > floor:
            side = max(floor, int(side * SIDE_STEP))
            yield _Rung(side, JPEG_QUALITIES[-1])


def _first_fitting(
    rungs: Sequence[_Rung], build: Callable[[_Rung], bytes], max_bytes: int
) -> bytes:
    """The output of the first (least shrunk) rung that fits; else the last, smallest one.

    Sizes fall along the ladder, so after the first rung (which fits almost always) and the
    last one (if even that does not fit, nothing does) a binary search finds the first
    fitting rung in a few encodings instead of trying each.
    """
    first = build(rungs[0])
    if len(first) <= max_bytes or len(rungs) == 1:
        return first
    best = build(rungs[-1])
    if len(best) > max_bytes:
        return best
    low, high = 1, len(rungs) - 1  # invariant: rungs[high] fits, rungs[low - 1] does not
    while low < high:
        middle = (low + high) // 2
        attempt = build(rungs[middle])
        if len(attempt) <= max_bytes:
            high, best = middle, attempt
        else:
            low = middle + 1
    return best


def _resized(image: Image.Image, side: int | None) -> Image.Image:
    side = min(side or MAX_JPEG_SIDE, MAX_JPEG_SIDE)
    if max(image.size) <= side:
        return image
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _normalize(frame: Image.Image) -> Image.Image:
    try:
        image = ImageOps.exif_transpose(frame)
    except (OSError, ValueError, KeyError, TypeError):
        image = frame  # a damaged EXIF block must not lose the receipt: show it unrotated
    if image.mode in ("RGB", "L"):
        return image
    if image.mode == "1":
        return image.convert("L")
    if image.mode.startswith("I"):
        # 16-bit greyscale (scanners): scale to 8 bits instead of clipping everything to white,
        # unless the values already are in the 8-bit range.
        wide = image.convert("I")
        _, high = wide.getextrema()
        if isinstance(high, int) and high > 255:
            wide = wide.point(lambda value: value * (1 / 256))
        return wide.convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "La", "PA", "RGBa", "RGBA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, F


# --- opening and validating ------------------------------------------------------------------


def _charge(blob: ReceiptBlob, label: str, budget: _PixelBudget) -> None:
    """Charge an image receipt's frames to the budget, from their headers alone.

    Anything that is not an image opened here is left to `_open`, which says what it is.
    """
    budget.next_receipt()
    if not blob.content or sniff_content_type(blob.content) in (PDF, "text/html"):
        return
    try:
        image = Image.open(io.BytesIO(blob.content), formats=_pillow_formats())
    except Image.DecompressionBombError as exc:  # past twice MAX_IMAGE_PIXELS: Pillow's own
        raise _too_many_pixels(label, "is an image of more pixels", MAX_IMAGE_PIXELS) from exc
    except (OSError, ValueError, SyntaxError, EOFError):
        return
    with image:
        if image.format != "TIFF":
            budget.take(image.size, label)
            return
        for index in range(MAX_IMAGE_FRAMES + 1):
            try:
                image.seek(index)  # reads the frame's header (its IFD), not its pixels
            except (EOFError, OSError, ValueError, SyntaxError):
                return  # the end, or a damaged IFD (which _open reports)
            if index == MAX_IMAGE_FRAMES:
                raise ReceiptError(
                    TOO_MANY_PIXELS,
                    f"The receipt {label} is a scan of more than {MAX_IMAGE_FRAMES} pages; "
                    "send it in parts or as a PDF.",
                )
            budget.take(image.size, label)


def _open(blob: ReceiptBlob, label: str) -> _Source:
    content = blob.content
    if not content:
        raise ReceiptError(UNREADABLE, f"The receipt {label} is an empty file.")
    media_type = sniff_content_type(content)
    if media_type == PDF:
        return _Source(blob, label, PDF, pdf=_open_pdf(content, label))
    if media_type == "text/html":
        raise ReceiptError(
            UNSUPPORTED_TYPE,
            f"The receipt {label} is a web page, not a receipt (perhaps a login page behind "
            "the receipt link). Send the receipt as a PDF or an image.",
        )
    frames = _open_image(content, label, media_type)
    pictures = [
        _Picture(frame, label, content if _embeddable_jpeg(media_type, frame) else None)
        for frame in frames
    ]
    return _Source(blob, label, media_type or f"image/{frames[0].format or 'unknown'}", pictures)


def _open_pdf(content: bytes, label: str) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ReceiptError(
                UNREADABLE,
                f"The PDF receipt {label} is password-protected; send it without a password.",
            )
        pages = len(reader.pages)
        if pages == 0:
            raise ReceiptError(UNREADABLE, f"The PDF receipt {label} has no pages.")
        if pages > MAX_PDF_PAGES:
            raise ReceiptError(
                TOO_MANY_PIXELS,
                f"The PDF receipt {label} has {pages} pages; at most {MAX_PDF_PAGES} can be "
                "processed.",
            )
    except ReceiptError:
        raise
    except LimitReachedError as exc:
        raise ReceiptError(
            TOO_MANY_PIXELS,
            f"The PDF receipt {label} is larger (pages, objects) than can be processed.",
        ) from exc
    except Exception as exc:  # pypdf raises many types on damaged files
        raise ReceiptError(
            UNREADABLE, f"The PDF receipt {label} is damaged and cannot be opened."
        ) from exc
    return reader


def _open_image(content: bytes, label: str, media_type: str | None) -> list[Image.Image]:
    """Every page of the image, decoded (so a truncated file fails here, not in Dinero).

    Its size was charged to the pixel budget already (`_charge`).
    """
    try:
        image = Image.open(io.BytesIO(content), formats=_pillow_formats())
        if image.format == "TIFF" and _several_frames(image):
            frames: list[Image.Image] = []
            for index in range(MAX_IMAGE_FRAMES):
                try:
                    image.seek(index)
                except EOFError:
                    break
                frames.append(image.copy())
            return frames
        image.load()  # first frame only: an animated GIF/WebP shows its first picture
        return [image]
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(label, "is an image of more pixels", MAX_IMAGE_PIXELS) from exc
    except UnidentifiedImageError as exc:
        if media_type in _IMAGE_TYPES:
            raise _damaged(label) from exc
        raise _unsupported(label, media_type) from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        # Pillow reports truncated or corrupt data as OSError/SyntaxError/ValueError.
        raise _damaged(label) from exc


def _several_frames(image: Image.Image) -> bool:
    """Whether a TIFF has a second page (found by seeking to it, not by counting them all)."""
    try:
        image.seek(1)
    except EOFError:
        return False
    image.seek(0)
    return True


@functools.cache
def _pillow_formats() -> tuple[str, ...]:
    Image.init()  # registers every installed decoder, so the list below is checked against all
    return tuple(f for f in _PILLOW_FORMATS if f in Image.OPEN)


def _embeddable_jpeg(media_type: str | None, frame: Image.Image) -> bool:
    """A JPEG a PDF viewer shows right as it is: upright, and RGB or greyscale (not CMYK).

    Not an MPO (a phone photo with a second, preview image appended): that would double its size.
    """
    return (
        media_type == JPEG
        and frame.format == "JPEG"
        and frame.mode in ("RGB", "L")
        and frame.getexif().get(0x0112, 1) == 1  # EXIF Orientation: 1 = upright
    )


def _damaged(label: str) -> ReceiptError:
    return ReceiptError(
        UNREADABLE, f"The receipt {label} is damaged and cannot be opened; upload it again."
    )


def _unsupported(label: str, media_type: str | None) -> ReceiptError:
    if media_type == "image/heic":
        what = "an HEIC photo (the iPhone's default format), which cannot be read here"
    elif media_type:
        what = f"of type {media_type}, which is not supported"
    else:
        what = "neither a PDF nor an image"
    return ReceiptError(
        UNSUPPORTED_TYPE,
        f"The receipt {label} is {what}. Send receipts as PDF, JPEG or PNG.",
    )


# --- names -----------------------------------------------------------------------------------


def _label(blob: ReceiptBlob, position: int, many: bool) -> str:
    name = f'"{_clean(blob.filename)[:MAX_FILENAME_CHARS]}"'
    return f"{position} ({name})" if many else name


_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')


def _clean(name: str, *, keep_path: bool = False) -> str:
    """Without control or reserved characters, spaces collapsed; only the last path component
    of a file name (`C:\\scans\\taxi.jpg` → `taxi.jpg`), separators replaced in a base name."""
    name = unicodedata.normalize("NFC", name)
    if not keep_path:
        name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name)
    return " ".join(name.split()).strip(" .")


def sanitize_filename(name: str | None, media_type: str, *, fallback: str | None = None) -> str:
    """A safe upload name with an extension matching the real type, at most 100 characters.

    Keeps the name's own extension when it fits the type (`.jpeg` stays `.jpeg`), replaces one
    that names another type (`scan.heic` converted → `scan.jpg`) and otherwise appends one
    (`Taxa 24.50` → `Taxa 24.50.pdf`). `fallback` (e.g. the expense's reference) is used when
    the name is empty or nothing of it survives.
    """
    cleaned = _clean(name or "") or _clean(fallback or "", keep_path=True) or "receipt"
    extension = _EXTENSIONS.get(media_type, "")
    stem, dot, suffix = cleaned.rpartition(".")
    current = f".{suffix.lower()}" if dot and stem else ""
    if current in _SAME_EXTENSIONS.get(media_type, set()):
        extension = f".{suffix}"  # the name's own spelling
    elif current not in _FILE_EXTENSIONS:
        stem = cleaned
    stem = stem[: MAX_FILENAME_CHARS - len(extension)].rstrip(" .") or "receipt"
    return stem + extension


__all__ = [
    "MAX_UPLOAD_BYTES",
    "PreparedReceipt",
    "prepare_receipts",
    "sanitize_filename",
]
