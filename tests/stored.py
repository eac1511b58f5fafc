"""Export items written straight into the database, the way the intake stores them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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


_BOOKED_HISTORY = text(
    """
WITH history AS (
    SELECT c.id AS company_id, n, gen_random_uuid() AS export_id,
           now() - interval '90 days' + n * interval '1 minute' AS at
    FROM companies c, generate_series(1, :items) AS n
    WHERE c.id = ANY(CAST(:companies AS text[]))
),
exports AS (
    INSERT INTO exports (id, company_id, source, webhook_id, item_ids, rejected, created_at)
    SELECT export_id, company_id, 'webhook', 'msg_old_' || n, '[]', '[]', at FROM history
)
INSERT INTO export_items (id, company_id, export_id, external_id, type, status, step,
                          voucher_date, description, currency, amount_minor, dkk_amount_minor,
                          lines, employee, receipts, attempts, created_at, updated_at)
SELECT gen_random_uuid(), h.company_id, h.export_id, 'old_' || h.n, 'card_expense', 'booked',
       'booked', DATE '2026-06-01' + (h.n % 150), 'Taxa', 'DKK', 24500, 24500, '[]', '{}', '[]',
       1, h.at, h.at
FROM history h
"""
)


async def add_booked_history(
    db: AsyncSession | AsyncConnection, companies: list[str], items: int
) -> None:
    """`items` booked items each of these companies exported months ago, each in an export of
    its own, as webhooks store them (a company's history, in one statement)."""
    await db.execute(_BOOKED_HISTORY, {"companies": companies, "items": items})
