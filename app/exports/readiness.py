"""Which export types can run with the company's account mappings, and what blocks them.

The exports own the export types; this reads the chart (mappings, deposit accounts, the sync's
state, categories) and the export items, never the other way round.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.chart.models import ChartSync, CompanySettings
from app.chart.service import (
    FIELD_LABELS,
    MappingProblem,
    account_problems,
    effective_accounts,
    list_categories,
)
from app.exports.models import ExportItem, ItemType, Step

EXPORT_NEEDS: Final[dict[str, tuple[str, ...]]] = {
    ItemType.CARD_EXPENSE.value: ("deposit_account",),
    ItemType.OUT_OF_POCKET_EXPENSE.value: ("out_of_pocket_account",),
    ItemType.REIMBURSEMENT.value: ("out_of_pocket_account", "reimbursement_account"),
    ItemType.WALLET_TOP_UP.value: ("deposit_account", "top_up_account"),
}
"""Which mappings each export type needs (the top-up account falls back to reimbursement)."""


@dataclass(frozen=True)
class Readiness:
    export_type: str
    ready: bool
    missing: list[str]
    message: str | None


async def readiness(
    session: AsyncSession, company_id: str, settings: CompanySettings, usable: set[int]
) -> list[Readiness]:
    """For each export type: can it go, and which mapping does it still lack?"""
    accounts = effective_accounts(settings)
    synced = await session.get(ChartSync, company_id)
    out: list[Readiness] = []
    for export_type, needs in EXPORT_NEEDS.items():
        missing = [name for name in needs if accounts[name] is None]
        unusable = [
            name for name in needs if accounts[name] is not None and accounts[name] not in usable
        ]
        message = None
        if synced is None or synced.succeeded_at is None:
            message = "The chart of accounts has not been synced from Dinero yet."
        if missing:
            message = "Map the " + " and the ".join(FIELD_LABELS[name] for name in missing) + "."
        elif unusable:
            message = (
                "Choose another "
                + " and another ".join(FIELD_LABELS[name] for name in unusable)
                + ": the mapped one is no longer a deposit account in Dinero."
            )
        out.append(
            Readiness(
                export_type=export_type,
                ready=message is None,
                missing=missing + unusable,
                message=message,
            )
        )
    return out


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


async def mapping_problems(
    session: AsyncSession, company_id: str, settings: CompanySettings, usable: set[int]
) -> list[MappingProblem]:
    """What the admin must fix: mapped accounts gone from Dinero, inactive categories in use."""
    problems = account_problems(settings, usable)
    in_use = await categories_in_use(session, company_id)
    for category in await list_categories(session, company_id):
        if not category.active and category.id in in_use:
            why = (
                "hidden in Dinero"
                if category.inactive_reason == "hidden_in_dinero"
                else "no longer in Dinero's chart of accounts"
            )
            problems.append(
                MappingProblem(
                    code="category_inactive_in_use",
                    account_number=category.account_number,
                    category_id=category.id,
                    message=(
                        f"Category {category.name or category.account_name} "
                        f"(account {category.account_number}) is {why}, "
                        f"but {in_use[category.id]} queued export item(s) use it."
                    ),
                )
            )
    return problems


async def exported_to_dinero(session: AsyncSession, company_id: str) -> bool:
    """Has any of the company's export items gone to Dinero (or started to)?

    The connection asks this before pointing the company at another organization.
    """
    row = (
        await session.execute(
            select(ExportItem.id)
            .where(ExportItem.company_id == company_id, ExportItem.step != Step.NEW)
            .limit(1)
        )
    ).first()
    return row is not None
