"""The shapes of the export item's JSON columns (typed for the code; stored as JSON).

Written at intake (app/exports/validation.py), read by the runner, the mapping and the reads.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class ExpenseLine(TypedDict):
    """One line of an expense (`export_items.lines`); amounts in minor units."""

    category_id: str | None
    account_number: int | None
    tax_code: str | None
    amount: int
    """In the item's currency."""
    dkk_amount: int
    """In DKK øre: the settled amount allocated over the lines."""
    description: str | None


class ReceiptSource(TypedDict):
    """Where one receipt comes from (`export_items.receipts`): a link or a stored inline one."""

    url: NotRequired[str]
    blob_id: NotRequired[str]
    """An `InlineReceipt` id."""
    filename: str | None
    content_type: str | None


class DraftChanges(TypedDict):
    """How the draft in Dinero differs from what we sent (`export_items.dinero_changes`)."""

    detected_at: str
    changes: list[dict[str, Any]]
