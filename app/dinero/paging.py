"""Dinero's paged lists (page bounds, the last page) and splitting long change windows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from app.dinero.models import Page

MAX_PAGE_SIZE: Final = 1000
MAX_CHANGES_WINDOW: Final = timedelta(days=31)


def check_page(page: int, page_size: int) -> None:
    """Refuse a page request Dinero would refuse (0-based page, 1-1000 per page)."""
    if page < 0:
        raise ValueError("page is 0-based and cannot be negative")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")


def change_windows(
    start: datetime, end: datetime, max_window: timedelta = MAX_CHANGES_WINDOW
) -> list[tuple[datetime, datetime]]:
    """Split [start, end] into consecutive windows no longer than `max_window` (Dinero: 31 days)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("changes_from and changes_to must be timezone-aware")
    if end < start:
        raise ValueError("changes_to is before changes_from")
    windows: list[tuple[datetime, datetime]] = []
    cursor = start
    while True:
        stop = min(cursor + max_window, end)
        windows.append((cursor, stop))
        if stop >= end:
            return windows
        cursor = stop


def is_last_page(page: Page[Any], requested_page: int, requested_size: int) -> bool:
    """True when no further page can hold items."""
    count = len(page.collection)
    if count == 0:
        return True
    size = page.pagination.page_size if page.pagination.page_size > 0 else requested_size
    if count < size:
        return True
    return (requested_page + 1) * size >= page.pagination.result_without_filter


__all__ = [
    "MAX_CHANGES_WINDOW",
    "MAX_PAGE_SIZE",
    "change_windows",
    "check_page",
    "is_last_page",
]
