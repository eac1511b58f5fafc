"""Headless Chromium (Debian's `chromium` package) driven by Playwright, for the console's tests.

No browser is ever downloaded: Playwright launches `/usr/bin/chromium` (`.ci/run` installs it
with apt-get). Without it the browser tests are skipped, saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = Path(os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SKIP_REASON = (
    f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`, as "
    ".ci/run does) to run the console's browser tests"
)


def screenshots_dir() -> Path:
    """Where the screenshots go: $CONSOLE_SCREENSHOTS (.ci/run names it), else .ci/artifacts."""
    root = Path(__file__).resolve().parents[2]
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or root / ".ci" / "artifacts" / "console")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
