"""Export items written straight into the database, the way the intake stores them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.exports.models import Export, ExportItem, ItemStatus, ItemType, Step


async def store_item(session: AsyncSession, company: str, amount: int, **values: Any) -> ExportItem:
    """One item of `amount` øre in an export of its own, flushed (not committed): a queued card
    expense in DKK dated 2026-11-03, with no lines and no receipts, unless `values` (any
    ExportItem column) say otherwise."""
    item_id: uuid.UUID = values.pop("id", None) or uuid.uuid4()
    export = Export(
        company_id=company, source="api", created_at=datetime.now(UTC), item_ids=[str(item_id)]
    )
    session.add(export)
    await session.flush()
    item = new_item(amount, id=item_id, company_id=company, export_id=export.id, **values)
    session.add(item)
    await session.flush()
    return item


def new_item(amount: int, **values: Any) -> ExportItem:
    """An item of `amount` øre, not stored: a queued card expense in DKK dated 2026-11-03, with
    no lines and no receipts, unless `values` (any ExportItem column) say otherwise."""
    item_id: uuid.UUID = values.pop("id", None) or uuid.uuid4()
    fields: dict[str, Any] = {
        "external_id": f"exp_{item_id.hex[:8]}",
        "type": ItemType.CARD_EXPENSE,
        "status": ItemStatus.QUEUED,
        "step": Step.NEW,
        "voucher_date": date(2026, 11, 3),
        "currency": "DKK",
        "amount_minor": amount,
        "dkk_amount_minor": amount,
        "lines": [],
        "receipts": [],
        **values,
    }
    return ExportItem(id=item_id, **fields)


def line(account: int, amount: int, tax_code: str | None = "I25") -> dict[str, Any]:
    """An item's line as the intake stores it: `amount` øre in DKK, no category, no text."""
    return {
        "category_id": None,
        "account_number": account,
        "tax_code": tax_code,
        "amount": amount,
        "dkk_amount": amount,
        "description": None,
    }
