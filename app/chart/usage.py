"""Which categories are still used by export items not yet in Dinero.

Plain SQL on the export items' JSON lines, so the chart does not import the export engine.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def categories_in_use(session: AsyncSession, company_id: str) -> dict[uuid.UUID, int]:
    """Category id → number of export items that still wait to be exported with it."""
    rows = await session.execute(
        text(
            """
            SELECT line->>'category_id' AS category_id, count(DISTINCT i.id) AS items
            FROM export_items AS i, jsonb_array_elements(i.lines) AS line
            WHERE i.company_id = :company
              AND i.status IN ('queued', 'exporting')
              AND line->>'category_id' IS NOT NULL
            GROUP BY 1
            """
        ),
        {"company": company_id},
    )
    return {uuid.UUID(row.category_id): int(row.items) for row in rows}
