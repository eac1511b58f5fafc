"""Real images and PDFs for the receipt tests, made on the fly with Pillow and pypdf."""

from __future__ import annotations

import io
import random

from PIL import Image
from pypdf import PageObject, PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject

from app.receipts import ReceiptBlob

MB = 1024 * 1024


def encoded(image: Image.Image, format: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format, **options)
    return out.getvalue()


def jpeg(size: tuple[int, int] = (800, 600), color: str = "white", **options: object) -> bytes:
    return encoded(Image.new("RGB", size, color), "JPEG", **options)


def png(size: tuple[int, int] = (300, 500), color: str = "lightblue") -> bytes:
    return encoded(Image.new("RGB", size, color), "PNG")


def receipt_photo(format: str = "JPEG") -> bytes:
    """The small red picture the export tests send as a receipt."""
    return encoded(Image.new("RGB", (120, 80), (200, 30, 30)), format)


def noisy(size: tuple[int, int], *, seed: int = 1, amount: float = 0.15) -> Image.Image:
    """A grey gradient with seeded colour noise: compresses badly, like a photo's sensor noise."""
    width, height = size
    noise = Image.frombytes("RGB", size, random.Random(seed).randbytes(width * height * 3))
    base = Image.linear_gradient("L").resize(size).convert("RGB")
    return Image.blend(base, noise, amount)


def blob(content: bytes, filename: str = "receipt", content_type: str = "") -> ReceiptBlob:
    return ReceiptBlob(content=content, filename=filename, content_type=content_type)


def _stream(data: bytes, **entries: object) -> DecodedStreamObject:
    stream = DecodedStreamObject()
    stream.set_data(data)
    for key, value in entries.items():
        stream[NameObject(f"/{key}")] = (
            NumberObject(value) if isinstance(value, int) else NameObject(f"/{value}")
        )
    return stream


def text_pdf(*texts: str, repeat: int = 1, password: str | None = None) -> bytes:
    """One page per text, in Helvetica; `repeat` pads each page's (uncompressed) content
    stream with the same line, to make a large PDF that compresses well."""
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for text in texts:
        line = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET\n".encode()
        page = PageObject.create_blank_page(None, 595, 842)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        page[NameObject("/Contents")] = _stream(line * repeat)
        writer.add_page(page)
    if password:
        writer.encrypt(password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def random_image_pdf(size_bytes: int, *, seed: int = 2) -> bytes:
    """A one-page PDF whose image is `size_bytes` of random, unfiltered (incompressible) data."""
    side = int((size_bytes / 3) ** 0.5) + 1
    pixels = random.Random(seed).randbytes(side * side * 3)
    image = _stream(
        pixels,
        Type="XObject",
        Subtype="Image",
        Width=side,
        Height=side,
        ColorSpace="DeviceRGB",
        BitsPerComponent=8,
    )
    page = PageObject.create_blank_page(None, 595, 595)
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): image})}
    )
    page[NameObject("/Contents")] = _stream(b"q 595 0 0 595 0 0 cm /Im0 Do Q")
    writer = PdfWriter()
    writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def mixed_receipts() -> list[ReceiptBlob]:
    """A sideways photo, a screenshot, a two-page PDF and a grainy scan, to combine and shrink."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return [
        blob(jpeg((600, 400), exif=exif.tobytes()), "a.jpg"),
        blob(png(), "b.png"),
        blob(text_pdf("x", "y"), "c.pdf"),
        blob(encoded(noisy((900, 700)), "PNG"), "d.png"),
    ]
