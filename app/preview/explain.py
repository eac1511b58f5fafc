"""Why each posted line went where it did: category, tax code and its source, mapping, chart sync.

Built from the same `Plan` the request is sent from, with the books of that pass, and stored
(`export_explanations`) right before the request goes out, so it reads the same whatever the
mappings or categories become later. The preview shows the same explanation for what it would
send.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.chart.models import ChartSync
from app.exports.checks import Books
from app.exports.mapping import Plan
from app.exports.models import ExportItem, ItemType
from app.history.models import SettingsChange
from app.history.service import latest_mapping_change
from app.preview.models import ExportExplanation
from app.services import Services


def paying_settings(item: ExportItem) -> list[str]:
    """The mappings an item's posting uses, the paying / balancing side first."""
    if item.type == ItemType.CARD_EXPENSE:
        return ["deposit_account"]
    if item.type == ItemType.OUT_OF_POCKET_EXPENSE:
        return ["out_of_pocket_account"]
    if item.type == ItemType.REIMBURSEMENT:
        return ["out_of_pocket_account", "reimbursement_account"]
    return ["deposit_account", "top_up_account"]


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


async def _mapping(
    session: AsyncSession, company_id: str, books: Books, setting: str
) -> dict[str, Any]:
    value = books.accounts.get(setting)
    # The top-up account falls back to the reimbursement account (chart.effective_accounts).
    source_setting = setting
    if setting == "top_up_account":
        changed = await latest_mapping_change(session, company_id=company_id, setting=setting)
        if changed is None or changed.state.get("top_up_account") is None:
            source_setting = "reimbursement_account"
    change: SettingsChange | None = await latest_mapping_change(
        session, company_id=company_id, setting=source_setting
    )
    return {
        "setting": setting,
        "from_setting": source_setting,
        "value": value,
        "changed_at": _when(change.changed_at if change else None),
        "changed_by": change.changed_by if change else None,
        "change_source": change.source if change else None,
        "change_id": change.id if change else None,
    }


async def explain(
    session: AsyncSession, *, company_id: str, item: ExportItem, books: Books, plan: Plan
) -> list[dict[str, Any]]:
    """One explanation per planned line (JSON-ready), in the plan's order."""
    mappings = [
        await _mapping(session, company_id, books, setting) for setting in paying_settings(item)
    ]
    sync = await session.get(ChartSync, company_id)
    chart_sync = {
        "succeeded_at": _when(sync.succeeded_at if sync else None),
        "accounting_years": list(sync.accounting_years) if sync else [],
    }
    explained: list[dict[str, Any]] = []
    for index, planned in enumerate(plan.lines):
        source: Mapping[str, Any] = item.lines[index] if item.type.is_expense else {}
        category: dict[str, Any] | None = None
        tax_code = source.get("tax_code")
        tax_source = "item" if tax_code is not None else None
        if source.get("category_id"):
            found = books.categories.get(uuid.UUID(str(source["category_id"])))
            if found is not None:
                category = {
                    "id": str(found.id),
                    "name": found.name or found.account_name,
                    "account_number": found.account_number,
                    "account_name": found.account_name,
                    "default_tax_code": found.tax_code,
                }
                if tax_code is None and found.tax_code is not None:
                    tax_code, tax_source = found.tax_code, "category_default"
        if tax_code is None and item.type.is_expense:
            tax_source = "account_default"  # null: Dinero applies the account's own VAT code
        expense_account = (
            planned.balancing_account_number
            if plan.target == "manual_voucher"
            else planned.account_number
        )
        explained.append(
            {
                "line": index,
                "account_number": expense_account if item.type.is_expense else None,
                "category": category,
                "tax_code": {"code": tax_code, "source": tax_source}
                if item.type.is_expense
                else None,
                "mappings": mappings,
                "chart_sync": chart_sync,
            }
        )
    return explained


async def record(
    services: Services, items: Sequence[tuple[ExportItem, Plan]], books: Books
) -> None:
    """Store the items' explanations (replacing one written by an earlier try of the same item)."""
    if not items:
        return
    async with services.sessionmaker() as session, session.begin():
        rows = [
            {
                "item_id": item.id,
                "lines": await explain(
                    session, company_id=item.company_id, item=item, books=books, plan=plan
                ),
            }
            for item, plan in items
        ]
        statement = insert(ExportExplanation).values(rows)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[ExportExplanation.item_id],
                set_={
                    "lines": statement.excluded.lines,
                    "recorded_at": statement.excluded.recorded_at,
                },
            )
        )


async def stored(session: AsyncSession, item_id: uuid.UUID) -> list[dict[str, Any]] | None:
    """The explanation stored for an item, or None before its request was built."""
    row = await session.execute(
        select(ExportExplanation.lines).where(ExportExplanation.item_id == item_id)
    )
    found: list[dict[str, Any]] | None = row.scalar_one_or_none()
    return found
