"""A one-page note attached to a voucher whose expense came without a receipt.

Every voucher we create carries a file of its own: the accountant sees what the expense was
(Danish bookkeeping wants documentation for every posting), and after an uncertain create the
file's guid finds the voucher again (`fileguid`), which keeps the export exactly-once.
The PNG is deterministic: the same item always gives the same bytes.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from app.exports.models import ExportItem

WIDTH, HEIGHT = 1240, 877  # A5 landscape at 150 dpi
MARGIN = 60


def _amount(minor: int, currency: str) -> str:
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}".replace(",", ".") + f",{cents:02d} {currency}"


def note_lines(item: ExportItem) -> list[str]:
    employee = (item.employee or {}).get("name") or (item.employee or {}).get("id") or "-"
    lines = [
        "Bilag uden kvittering / Expense without receipt",
        "",
        f"Dato: {item.voucher_date.isoformat()}",
        f"Beskrivelse: {item.description or '-'}",
        f"Medarbejder: {employee}",
        f"Beløb: {_amount(item.amount_minor, item.currency)}",
    ]
    if item.currency != "DKK":
        lines.append(f"Afregnet: {_amount(item.dkk_amount_minor, 'DKK')}")
    lines += ["", f"Reference: {item.type.value} {item.external_id}", f"Bridge id: {item.id}"]
    return lines


def receipt_note(item: ExportItem) -> bytes:
    """Render the note as a PNG."""
    image = Image.new("L", (WIDTH, HEIGHT), color=255)
    draw = ImageDraw.Draw(image)
    title = ImageFont.load_default(size=40)
    body = ImageFont.load_default(size=28)
    y = MARGIN
    for index, line in enumerate(note_lines(item)):
        font = title if index == 0 else body
        draw.text((MARGIN, y), line[:80], fill=0, font=font)
        y += 60 if index == 0 else 44
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()
