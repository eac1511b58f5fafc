"""Decompression bombs: small files that claim (or hold) more pixels than a worker may decode.

Each format's bomb is a real small image with its header rewritten to claim a huge size (what a
bomb looks like before decoding: Pillow reads only the header to learn it). Every one must be
refused as `receipt_too_many_pixels` without a pixel decoded — fast, and within a small memory
bound (`bench/receipt_bombs.py` measures the worker's peak memory for each). A receipt within
the budget still goes through.
"""

from __future__ import annotations

import io
import resource
import time

import pytest
from PIL import Image
from pypdf import PdfWriter

from app.receipts import ReceiptError, prepare_receipts
from app.receipts.prepare import (
    MAX_EXPENSE_PIXELS,
    MAX_IMAGE_FRAMES,
    MAX_IMAGE_PIXELS,
    MAX_PDF_PAGES,
    MAX_RECEIPT_PIXELS,
)
from tests.receipts.bombs import BIG, BOMBS, OVER, pdf_expanding_to, png_claiming, tiff_claiming
from tests.receipts.samples import blob, encoded


def _refused(*contents: bytes, bound_mb: int = 100) -> ReceiptError:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(ReceiptError) as refused:
        prepare_receipts([blob(c, f"r{i}") for i, c in enumerate(contents)])
    assert time.perf_counter() - started < 1.0  # nothing was decoded
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kb < bound_mb * 1024  # a decoded bomb would add gigabytes to the peak
    return refused.value


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [OVER, BIG])
@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_an_image_claiming_too_many_pixels_is_refused_before_decoding(kind: str, side: int) -> None:
    content = BOMBS[kind](side, side)
    # The crafted header claims the size (past twice the cap, Pillow itself refuses to open it).
    if side * side > 2 * MAX_IMAGE_PIXELS:
        with pytest.raises(Image.DecompressionBombError):
            Image.open(io.BytesIO(content))
    else:
        with Image.open(io.BytesIO(content)) as claimed:
            assert claimed.size == (side, side)

    error = _refused(content)

    assert error.code == "receipt_too_many_pixels"
    assert not error.transient
    assert '"r0"' in error.message


def test_a_multi_page_scan_past_the_receipt_budget_is_refused_before_any_page_is_decoded() -> None:
    # Four pages of 6000 x 6000 (36 M each): each fits alone, 144 M together does not.
    page = 6_000
    assert page * page <= MAX_IMAGE_PIXELS < 2 * page * page
    assert 2 * page * page > MAX_RECEIPT_PIXELS

    error = _refused(tiff_claiming([(page, page)] * 4))

    assert error.code == "receipt_too_many_pixels"


def test_a_scan_of_more_pages_than_allowed_is_refused() -> None:
    error = _refused(tiff_claiming([(1, 1)] * (MAX_IMAGE_FRAMES + 1)))

    assert error.code == "receipt_too_many_pixels"
    assert f"more than {MAX_IMAGE_FRAMES} pages" in error.message


def test_receipts_past_the_expense_budget_together_are_refused_before_any_is_decoded() -> None:
    side = 6_000  # 36 M each: within a receipt's budget, four are past the expense's
    assert 4 * side * side > MAX_EXPENSE_PIXELS >= 3 * side * side

    error = _refused(*[png_claiming(side, side)] * 4)

    assert error.code == "receipt_too_many_pixels"
    assert "receipts of this expense" in error.message


def test_a_pdf_of_too_many_pages_is_refused() -> None:
    writer = PdfWriter()
    for _ in range(MAX_PDF_PAGES + 1):
        writer.add_blank_page(10, 10)
    out = io.BytesIO()
    writer.write(out)

    error = _refused(out.getvalue())

    assert error.code == "receipt_too_many_pixels"


def test_a_real_image_within_the_budget_still_goes_through() -> None:
    small = encoded(Image.new("RGB", (2000, 1500), "white"), "PNG")
    scan = encoded(Image.new("L", (1200, 1700), "white"), "TIFF")

    prepared = prepare_receipts([blob(small, "a.png"), blob(scan, "b.tiff")])

    assert prepared.content_type == "application/pdf"
    assert prepared.pages == 2


def test_a_pdf_whose_content_expands_past_pypdfs_limit_is_refused() -> None:
    """80 MB of zeros in 0.4 MB of deflate, as a page's content, combined with another receipt."""
    # pypdf stops at 75 MB of output: the bound is what it may hold before it does.
    error = _refused(pdf_expanding_to(80), encoded(Image.new("RGB", (8, 8)), "PNG"), bound_mb=250)

    assert error.code == "receipt_too_large"
    assert "expands" in error.message
