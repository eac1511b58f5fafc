"""Receipt bombs: what preparing a hostile receipt costs a worker, next to a legitimate one.

    ./dev run python -m bench.receipt_bombs [--side 15000]

Each case runs `prepare_receipts` (what the export runner calls for an expense's receipts) in a
fresh child process, so its peak resident memory (`ru_maxrss`) is that case's alone: the child
reports its peak before and after the call. The cases are one decompression bomb per image
format (a small file whose header claims `--side` x `--side` pixels: PNG, JPEG, GIF, BMP,
WebP, AVIF, TIFF), a multi-page TIFF scan past the per-receipt budget, four receipts past the
expense's budget, a PDF whose content inflates to 80 MB, and, as the baseline, a legitimate
receipt near the per-picture cap (a noisy 6,000 x 4,000 photo, decoded and shrunk for real).

Target: every bomb refused (`receipt_too_many_pixels`, or `receipt_too_large` for the PDF, which
pypdf stops at 75 MB of output) with the peak grown by less than 50 MB (250 MB for the PDF), in
under a second; the legitimate photo prepared, its growth what decoding 24 M pixels costs.
Exit status 1 when a bomb misses its target.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import subprocess
import sys
import time

from PIL import Image

from app.receipts import ReceiptBlob, ReceiptError, prepare_receipts
from tests.receipts.bombs import BOMBS, pdf_expanding_to, png_claiming, tiff_claiming

BOMB_BOUND_MB = 50
PDF_BOUND_MB = 250


def _photo() -> bytes:
    size = (6000, 4000)
    noise = Image.frombytes("RGB", size, random.Random(1).randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=90)
    return out.getvalue()


def _case(name: str, side: int) -> list[bytes]:
    if name in BOMBS:
        return [BOMBS[name](side, side)]
    if name == "tiff-pages":
        return [tiff_claiming([(6000, 6000)] * 4)]
    if name == "expense":
        return [png_claiming(6000, 6000)] * 4
    if name == "pdf":
        return [pdf_expanding_to(80), png_claiming(8, 8)]
    if name == "photo":
        return [_photo()]
    raise SystemExit(f"unknown case {name}")


def _child(name: str, side: int) -> None:
    contents = _case(name, side)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    outcome = "prepared"
    try:
        prepare_receipts(
            [
                ReceiptBlob(content=c, filename=f"r{i}", content_type="")
                for i, c in enumerate(contents)
            ]
        )
    except ReceiptError as exc:
        outcome = exc.code
    elapsed = time.perf_counter() - started
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(
        json.dumps(
            {
                "bytes": sum(len(c) for c in contents),
                "outcome": outcome,
                "seconds": elapsed,
                "grown_mb": grown / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=15_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.side)
        return
    cases = [*sorted(BOMBS), "tiff-pages", "expense", "pdf", "photo"]
    print(f"{'case':<12} {'file':>10} {'outcome':<26} {'time (s)':>9} {'peak grown (MB)':>16}")
    missed = []
    for name in cases:
        side = min(args.side, 16_383) if name == "webp" else args.side
        done = subprocess.run(  # noqa: S603 - our own module
            [sys.executable, "-m", "bench.receipt_bombs", "--child", name, "--side", str(side)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{name:<12} {result['bytes']:>10,} {result['outcome']:<26} "
            f"{result['seconds']:>9.3f} {result['grown_mb']:>16.1f}"
        )
        if name != "photo":
            bound = PDF_BOUND_MB if name == "pdf" else BOMB_BOUND_MB
            refused = result["outcome"] in ("receipt_too_many_pixels", "receipt_too_large")
            if not refused or result["grown_mb"] > bound or result["seconds"] > 1:
                missed.append(name)
    if missed:
        print(f"missed the target: {', '.join(missed)}")
        sys.exit(1)
    print("every bomb refused within its bound")


if __name__ == "__main__":
    main()
