"""Turning an expense's receipts into the one file Dinero receives (≤ 6 MB, image or PDF)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from app.receipts import MAX_UPLOAD_BYTES, PreparedReceipt, ReceiptError, prepare_receipts
from app.receipts.prepare import sanitize_filename
from tests.receipts.samples import (
    MB,
    blob,
    encoded,
    jpeg,
    mixed_receipts,
    noisy,
    png,
    random_image_pdf,
    text_pdf,
)


def opened(prepared: PreparedReceipt) -> Image.Image:
    image = Image.open(io.BytesIO(prepared.content))
    image.load()
    return image


def pdf(prepared: PreparedReceipt) -> PdfReader:
    assert prepared.content_type == "application/pdf"
    return PdfReader(io.BytesIO(prepared.content), strict=True)


def page_image(reader: PdfReader, index: int) -> Image.Image:
    (image,) = reader.pages[index].images
    assert image.image is not None
    return image.image


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """A 4000 x 3000 photo-like image, far over 6 MB as PNG (made once: it takes a second)."""
    content = encoded(noisy((4000, 3000)), "PNG", compress_level=0)
    assert len(content) > 6 * MB
    return content


@pytest.fixture(scope="module")
def grainy_png() -> bytes:
    """2400 x 1800 of heavy noise: even a low-quality JPEG of it is ~1 MB."""
    return encoded(noisy((2400, 1800), seed=3, amount=0.5), "PNG", compress_level=0)


@pytest.fixture(scope="module")
def incompressible_pdf() -> bytes:
    return random_image_pdf(6 * MB + 300_000)


# --- one receipt within the limit: passed through --------------------------------------------


@pytest.mark.parametrize(
    ("content", "filename", "content_type", "pages"),
    [
        (jpeg(), "taxi.jpg", "image/jpeg", 1),
        (png(), "parking.png", "image/png", 1),
        (text_pdf("Hotel", "Minibar"), "hotel.pdf", "application/pdf", 2),
    ],
)
def test_a_single_jpeg_png_or_pdf_within_the_limit_is_passed_through_unchanged(
    content: bytes, filename: str, content_type: str, pages: int
) -> None:
    prepared = prepare_receipts([blob(content, filename, content_type)])

    assert prepared.content == content
    assert prepared.sha256 == hashlib.sha256(content).hexdigest()
    assert (prepared.filename, prepared.content_type, prepared.pages) == (
        filename,
        content_type,
        pages,
    )


def test_the_real_type_comes_from_the_bytes_not_the_declared_type() -> None:
    content = png()

    prepared = prepare_receipts([blob(content, "scan.pdf", "application/pdf")])

    assert prepared.content == content
    assert (prepared.content_type, prepared.filename) == ("image/png", "scan.png")


def test_another_image_type_becomes_a_jpeg() -> None:
    gif = encoded(Image.new("P", (120, 80), 3), "GIF")

    prepared = prepare_receipts([blob(gif, "ticket.gif", "image/gif")])

    assert (prepared.content_type, prepared.filename, prepared.pages) == (
        "image/jpeg",
        "ticket.jpg",
        1,
    )
    assert opened(prepared).size == (120, 80)


# --- images over the limit: shrunk -----------------------------------------------------------


def test_an_image_over_the_limit_is_reencoded_as_a_jpeg_at_full_size(big_png: bytes) -> None:
    prepared = prepare_receipts([blob(big_png, "IMG_0042.PNG", "image/png")])

    assert len(prepared.content) <= MAX_UPLOAD_BYTES
    assert (prepared.content_type, prepared.filename) == ("image/jpeg", "IMG_0042.jpg")
    image = opened(prepared)
    assert (image.format, image.size) == ("JPEG", (4000, 3000))  # quality went, pixels stayed


def test_shrinking_is_deterministic(big_png: bytes) -> None:
    first = prepare_receipts([blob(big_png, "a.png")])
    second = prepare_receipts([blob(big_png, "a.png")])

    assert first.content == second.content
    assert first.sha256 == second.sha256 == hashlib.sha256(first.content).hexdigest()


def test_when_lower_quality_is_not_enough_the_dimensions_shrink_but_stay_legible(
    grainy_png: bytes,
) -> None:
    prepared = prepare_receipts([blob(grainy_png, "scan.png")], max_bytes=300_000)

    assert len(prepared.content) <= 300_000
    width, height = opened(prepared).size
    assert 1000 <= max(width, height) < 2400
    assert width / height == pytest.approx(4 / 3, abs=0.01)


def test_below_a_legible_size_only_when_nothing_else_fits_then_refused(grainy_png: bytes) -> None:
    tiny = prepare_receipts([blob(grainy_png, "scan.png")], max_bytes=60_000)
    assert len(tiny.content) <= 60_000
    assert 500 <= max(opened(tiny).size) < 1000

    with pytest.raises(ReceiptError) as refused:
        prepare_receipts([blob(grainy_png, "scan.png")], max_bytes=5_000)
    assert refused.value.code == "receipt_too_large"
    assert '"scan.png"' in refused.value.message


def test_exif_orientation_is_applied_when_an_image_is_reencoded() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to show
    sideways = jpeg((600, 400), exif=exif.tobytes())

    single = prepare_receipts([blob(sideways, "photo.jpg")], max_bytes=len(sideways) - 1)
    combined = prepare_receipts([blob(sideways, "photo.jpg"), blob(png(), "b.png")])

    assert opened(single).size == (400, 600)
    assert opened(single).getexif().get(0x0112) is None  # not rotated a second time
    reader = pdf(combined)
    assert page_image(reader, 0).size == (400, 600)
    box = reader.pages[0].mediabox
    assert box.height > box.width


def test_transparency_is_flattened_onto_white() -> None:
    clear = encoded(Image.new("RGBA", (200, 100), (255, 0, 0, 0)), "PNG")

    prepared = prepare_receipts([blob(clear, "logo.png"), blob(jpeg(), "b.jpg")])

    image = page_image(pdf(prepared), 0)
    assert image.mode == "RGB"
    red, green, blue = image.getpixel((100, 50))  # type: ignore[misc]
    assert min(red, green, blue) >= 250


@pytest.mark.parametrize(
    ("mode", "format"),
    [("CMYK", "JPEG"), ("CMYK", "TIFF"), ("P", "GIF"), ("LA", "PNG"), ("1", "TIFF"), ("L", "WEBP")],
)
def test_any_colour_mode_becomes_a_viewable_page(mode: str, format: str) -> None:
    image = Image.new("RGB", (160, 120), "navy").convert(mode)
    content = encoded(image, format)

    prepared = prepare_receipts([blob(content, "scan"), blob(jpeg((100, 100)), "b.jpg")])

    page = page_image(pdf(prepared), 0)
    assert (page.mode, page.size) in {("RGB", (160, 120)), ("L", (160, 120))}


def test_a_16_bit_greyscale_scan_is_scaled_not_clipped_to_white() -> None:
    scan = encoded(Image.new("I;16", (120, 90), 40_000), "PNG")

    prepared = prepare_receipts([blob(scan, "scan.png"), blob(jpeg(), "b.jpg")])

    assert page_image(pdf(prepared), 0).getpixel((60, 45)) == pytest.approx(40_000 / 256, abs=2)


# --- several receipts: one PDF ---------------------------------------------------------------


def test_several_receipts_become_one_pdf_in_the_given_order() -> None:
    photo = jpeg((800, 600), "white")
    screenshot = png((300, 500))
    invoice = text_pdf("Invoice page 1", "Invoice page 2")

    prepared = prepare_receipts(
        [blob(photo, "a.jpg"), blob(invoice, "b.pdf"), blob(screenshot, "c.png")],
        base_name="EXP-2026/0042",
    )

    assert (prepared.filename, prepared.pages) == ("EXP-2026_0042.pdf", 4)
    reader = pdf(prepared)
    assert len(reader.pages) == 4
    assert reader.pages[0].images[0].data == photo  # an upright JPEG is embedded as it is
    assert "Invoice page 1" in reader.pages[1].extract_text()
    assert "Invoice page 2" in reader.pages[2].extract_text()
    assert page_image(reader, 3).size == (300, 500)
    assert prepared.sha256 == hashlib.sha256(prepared.content).hexdigest()


def test_combined_pdf_is_deterministic_with_fixed_metadata() -> None:
    blobs = [blob(jpeg(), "a.jpg"), blob(png(), "b.png"), blob(text_pdf("x"), "c.pdf")]

    first = prepare_receipts(blobs)
    second = prepare_receipts(list(blobs))

    assert first.content == second.content
    assert first.filename == "receipts.pdf"
    reader = pdf(first)
    assert reader.metadata == {"/Producer": "dinero-bridge"}
    assert b"CreationDate" not in first.content
    assert "/ID" not in reader.trailer


_IN_ANOTHER_PROCESS = """
from app.receipts import prepare_receipts
from tests.receipts.samples import mixed_receipts
print(prepare_receipts(mixed_receipts(), max_bytes=100_000).sha256)
"""


def test_the_same_receipts_give_the_same_bytes_in_another_process() -> None:
    """Workers restart and run side by side: the hash must not depend on the process.
    (100 kB forces the images to be re-encoded and shrunk, not only embedded.)"""
    other = subprocess.run(
        [sys.executable, "-c", _IN_ANOTHER_PROCESS],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        cwd=Path(__file__).parents[2],
        timeout=60,
    ).stdout.strip()

    here = prepare_receipts(mixed_receipts(), max_bytes=100_000)

    assert other == here.sha256


def test_combined_images_over_the_limit_are_shrunk_to_fit() -> None:
    photos = [
        blob(encoded(noisy((1600, 1200), seed=seed, amount=0.5), "BMP"), f"{seed}.bmp")
        for seed in range(3)
    ]

    prepared = prepare_receipts(photos, max_bytes=900_000)

    assert len(prepared.content) <= 900_000
    reader = pdf(prepared)
    assert len(reader.pages) == prepared.pages == 3
    assert all(1000 <= max(page_image(reader, i).size) <= 1600 for i in range(3))


def test_a_multi_page_tiff_scan_becomes_a_pdf_with_its_own_name() -> None:
    first, second = Image.new("L", (200, 300), 255), Image.new("L", (200, 300), 0)
    tiff = encoded(first, "TIFF", save_all=True, append_images=[second])

    prepared = prepare_receipts([blob(tiff, "scan.tiff")])

    assert (prepared.filename, prepared.pages) == ("scan.pdf", 2)
    assert len(pdf(prepared).pages) == 2


# --- PDFs over the limit: lossless only ------------------------------------------------------


def test_a_pdf_over_the_limit_is_compressed_losslessly() -> None:
    bulky = text_pdf("Hotel Kong Arthur 1.234,00 kr", repeat=120_000)
    assert len(bulky) > 6 * MB

    prepared = prepare_receipts([blob(bulky, "hotel.pdf")])

    assert len(prepared.content) <= MAX_UPLOAD_BYTES
    assert (prepared.filename, prepared.pages) == ("hotel.pdf", 1)
    original = PdfReader(io.BytesIO(bulky)).pages[0].get_contents()
    compressed = pdf(prepared).pages[0].get_contents()
    assert original is not None
    assert compressed is not None
    assert compressed.get_data() == original.get_data()  # the same page, byte for byte
    assert prepared.content == prepare_receipts([blob(bulky, "hotel.pdf")]).content


def test_a_pdf_that_cannot_be_made_small_enough_is_refused(incompressible_pdf: bytes) -> None:
    with pytest.raises(ReceiptError) as refused:
        prepare_receipts([blob(incompressible_pdf, "scan.pdf")])

    assert refused.value.code == "receipt_too_large"
    assert not refused.value.transient
    assert "6.0 MB" in refused.value.message
    assert "6.3 MB" in refused.value.message
    assert '"scan.pdf"' in refused.value.message


def test_receipts_that_together_cannot_fit_are_refused(incompressible_pdf: bytes) -> None:
    with pytest.raises(ReceiptError) as refused:
        prepare_receipts([blob(jpeg(), "a.jpg"), blob(incompressible_pdf, "b.pdf")])

    assert refused.value.code == "receipt_too_large"
    assert "6.0 MB" in refused.value.message


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (png()[:200], "damaged"),  # truncated PNG
        (jpeg()[: len(jpeg()) // 2], "damaged"),  # truncated JPEG
        (b"%PDF-1.7\n" + bytes(range(256)) * 4, "damaged"),
        (b"", "empty"),
        (text_pdf("secret", password="hunter2"), "password"),
    ],
)
def test_a_damaged_receipt_is_unreadable(content: bytes, expected: str) -> None:
    with pytest.raises(ReceiptError) as refused:
        prepare_receipts([blob(jpeg(), "ok.jpg"), blob(content, "bad.png")])

    assert refused.value.code == "receipt_unreadable"
    assert expected in refused.value.message
    assert 'receipt 2 ("bad.png")' in refused.value.message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC"),
        (b"<!DOCTYPE html><html><body>Log in</body></html>", "web page"),
        (b"PK\x03\x04 a word document", "neither a PDF nor an image"),
    ],
)
def test_an_unsupported_type_is_refused(content: bytes, expected: str) -> None:
    with pytest.raises(ReceiptError) as refused:
        prepare_receipts([blob(content, "receipt.jpg", "image/jpeg")])

    assert refused.value.code == "receipt_unsupported_type"
    assert expected in refused.value.message


def test_no_receipts_is_the_callers_bug() -> None:
    with pytest.raises(ValueError, match="at least one"):
        prepare_receipts([])


# --- file names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "media_type", "expected"),
    [
        ("taxi.jpeg", "image/jpeg", "taxi.jpeg"),
        ("Taxi.JPG", "image/jpeg", "Taxi.JPG"),
        ("scan.heic", "image/jpeg", "scan.jpg"),
        ("Taxa 24.50", "application/pdf", "Taxa 24.50.pdf"),
        ("../../etc/passwd", "image/png", "passwd.png"),
        ("C:\\Users\\kim\\kvittering æøå.pdf", "application/pdf", "kvittering æøå.pdf"),
        ('a<b>:"|?*\x00c.png', "image/png", "a_b_c.png"),
        ("", "image/png", "receipt.png"),
        ("...", "application/pdf", "receipt.pdf"),
        ("x" * 300 + ".pdf", "application/pdf", "x" * 96 + ".pdf"),
    ],
)
def test_filenames_are_safe_short_and_match_the_real_type(
    name: str, media_type: str, expected: str
) -> None:
    assert sanitize_filename(name, media_type) == expected


def test_a_nameless_receipt_falls_back_to_the_base_name() -> None:
    prepared = prepare_receipts([blob(jpeg(), "")], base_name="EXP-7")

    assert prepared.filename == "EXP-7.jpg"
