"""Decompression bombs for the receipt tests and `bench/receipt_bombs.py`: real small images
whose headers are rewritten to claim a huge size, which is all Pillow reads before decoding."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import EncodedStreamObject, NameObject


def encoded(image: Image.Image, format: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format, **options)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    data = encoded(Image.new("RGB", (8, 8), "white"), "PNG")
    ihdr = data.index(b"IHDR")
    header = struct.pack(">II", width, height) + data[ihdr + 12 : ihdr + 17]
    chunk = b"IHDR" + header
    return (
        data[: ihdr - 4]
        + struct.pack(">I", 13)
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + data[ihdr + 21 :]
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded(Image.new("RGB", (8, 8), "white"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded(Image.new("P", (8, 8)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    descriptor = data.index(b"\x2c")
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def bmp_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded(Image.new("RGB", (8, 8), "white"), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded(Image.new("RGB", (8, 8), "white"), "WEBP", lossless=True))
    vp8l = data.index(b"VP8L")
    # VP8L: a signature byte, then 14 bits of width - 1 and 14 bits of height - 1.
    bits = (width - 1) | ((height - 1) << 14) | (data[vp8l + 9 + 3] >> 4 << 28)
    data[vp8l + 9 : vp8l + 13] = struct.pack("<I", bits)
    return bytes(data)


def avif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded(Image.new("RGB", (8, 8), "white"), "AVIF"))
    ispe = data.index(b"ispe")
    data[ispe + 8 : ispe + 16] = struct.pack(">II", width, height)
    return bytes(data)


def tiff_claiming(frames: list[tuple[int, int]]) -> bytes:
    """A multi-page TIFF whose pages claim these sizes (one byte of pixels each)."""
    out = io.BytesIO()
    out.write(b"II*\x00" + struct.pack("<I", 8))
    entries = 8
    ifd_size = 2 + entries * 12 + 4
    pixel_at = 8 + ifd_size * len(frames)
    for index, (width, height) in enumerate(frames):
        tags = [
            (256, 4, width),  # ImageWidth, LONG
            (257, 4, height),  # ImageLength
            (258, 3, 8),  # BitsPerSample
            (259, 3, 1),  # no compression
            (262, 3, 1),  # BlackIsZero
            (273, 4, pixel_at),  # StripOffsets
            (278, 4, height),  # RowsPerStrip
            (279, 4, 1),  # StripByteCounts
        ]
        out.write(struct.pack("<H", entries))
        for tag, kind, value in tags:
            out.write(struct.pack("<HHII", tag, kind, 1, value))
        following = 8 + ifd_size * (index + 1) if index + 1 < len(frames) else 0
        out.write(struct.pack("<I", following))
    out.write(b"\x00")
    return out.getvalue()


BIG = 15_000  # 225 M pixels: past twice MAX_IMAGE_PIXELS, so Pillow's own check refuses too
OVER = 8_000  # 64 M pixels: past MAX_IMAGE_PIXELS only, so the budget refuses

BOMBS: dict[str, Callable[[int, int], bytes]] = {
    "png": png_claiming,
    "jpeg": jpeg_claiming,
    "gif": gif_claiming,
    "bmp": bmp_claiming,
    "webp": webp_claiming,
    "avif": avif_claiming,
    "tiff": lambda w, h: tiff_claiming([(w, h)]),
}


def pdf_expanding_to(megabytes: int) -> bytes:
    """A one-page PDF whose content stream inflates from a few hundred KB to `megabytes` MB."""
    compressor = zlib.compressobj(1)
    zeros = bytes(1 << 20)
    deflated = b"".join(compressor.compress(zeros) for _ in range(megabytes)) + compressor.flush()
    writer = PdfWriter()
    page = writer.add_blank_page(100, 100)
    contents = EncodedStreamObject()
    contents._data = deflated  # already deflated: set as is
    contents[NameObject("/Filter")] = NameObject("/FlateDecode")
    page[NameObject("/Contents")] = writer._add_object(contents)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
