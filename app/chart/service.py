"""Categories, tax codes, deposit accounts and account mappings as the admin sees them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chart.models import Category, CompanySettings, DineroAccount, TaxCode
from app.errors import NotFound, ValidationFailed
from app.history import service as history

MAPPING_FIELDS = (
    "deposit_account",
    "out_of_pocket_account",
    "reimbursement_account",
    "top_up_account",
)

LOCK_DATE = "books_closed_through"
"""The setting that closes the books through a date (nothing dated on or before it goes)."""
LOCK_POLICY = "closed_period_policy"
"""What happens to an item dated on or before the lock date: `hold` or `first_open_day`."""
HOLD, FIRST_OPEN_DAY = "hold", "first_open_day"

FIELD_LABELS = {
    "deposit_account": "deposit account (the company card / wallet)",
    "out_of_pocket_account": "out-of-pocket account",
    "reimbursement_account": "reimbursement account (the bank account paying reimbursements)",
    "top_up_account": "top-up account (the bank account wallet top-ups come from)",
}


async def list_categories(session: AsyncSession, company_id: str) -> list[Category]:
    rows = await session.execute(
        select(Category).where(Category.company_id == company_id).order_by(Category.account_number)
    )
    return list(rows.scalars())


async def get_category(session: AsyncSession, company_id: str, category_id: uuid.UUID) -> Category:
    category = await session.get(Category, category_id)
    if category is None or category.company_id != company_id:
        raise NotFound("No such category.", code="category_not_found")
    return category


async def present_tax_codes(session: AsyncSession, company_id: str) -> list[TaxCode]:
    rows = await session.execute(
        select(TaxCode)
        .where(TaxCode.company_id == company_id, TaxCode.present)
        .order_by(TaxCode.code)
    )
    return list(rows.scalars())


async def update_category(
    session: AsyncSession,
    company_id: str,
    category_id: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    changed_by: str | None = None,
) -> Category:
    """Apply the admin's rename / hide / default tax code; unknown tax codes are refused."""
    category = await get_category(session, company_id, category_id)
    before = history.category_state(category)
    if "tax_code" in changes and changes["tax_code"] is not None:
        codes = {tax.code for tax in await present_tax_codes(session, company_id)}
        if changes["tax_code"] not in codes:
            raise ValidationFailed(
                f"{changes['tax_code']} is not one of the organization's VAT codes in Dinero.",
                code="tax_code_unknown",
                errors={"tax_code": f"Use one of: {', '.join(sorted(codes)) or '(sync first)'}."},
            )
    if "name" in changes:
        name = changes["name"]
        category.name = name.strip() if isinstance(name, str) and name.strip() else None
    if "tax_code" in changes:
        category.tax_code = changes["tax_code"]
    if "hidden" in changes and changes["hidden"] is not None:
        category.hidden = bool(changes["hidden"])
    await session.flush()
    await history.record_category_change(
        session, category=category, before=before, changed_by=changed_by
    )
    return category


async def deposit_accounts(session: AsyncSession, company_id: str) -> list[DineroAccount]:
    """The deposit accounts ("Beholdning") the mappings may use: present, not hidden."""
    rows = await session.execute(
        select(DineroAccount)
        .where(
            DineroAccount.company_id == company_id,
            DineroAccount.is_deposit,
            DineroAccount.present,
            DineroAccount.hidden_in_dinero.is_(False),
        )
        .order_by(DineroAccount.account_number)
    )
    return list(rows.scalars())


async def get_settings(session: AsyncSession, company_id: str) -> CompanySettings:
    settings = await session.get(CompanySettings, company_id)
    if settings is None:
        settings = CompanySettings(company_id=company_id)
    return settings


async def put_settings(
    session: AsyncSession,
    company_id: str,
    values: Mapping[str, Any],
    *,
    changed_by: str | None = None,
) -> CompanySettings:
    """Replace the mappings; every account must be a synced deposit account, or nothing changes.

    The lock date (`books_closed_through`) is set only when `values` has it (None clears it),
    its policy (`closed_period_policy`) only when `values` has one.
    """
    usable = {a.account_number: a for a in await deposit_accounts(session, company_id)}
    errors: dict[str, str] = {}
    for name in MAPPING_FIELDS:
        number = values.get(name)
        if number is not None and number not in usable:
            if not usable:
                errors[name] = "No deposit accounts are synced from Dinero yet; run a sync first."
            else:
                choices = ", ".join(f"{n} {a.name}" for n, a in usable.items())
                errors[name] = (
                    f"{number} is not a deposit account (Beholdning) in Dinero. "
                    f"Choose one of: {choices}."
                )
    if errors:
        raise ValidationFailed(
            "Each account must be one of the organization's deposit accounts in Dinero.",
            code="account_not_deposit",
            errors=errors,
        )
    settings = await session.get(CompanySettings, company_id, with_for_update=True)
    if settings is None:
        settings = CompanySettings(company_id=company_id)
        session.add(settings)
    before = settings_state(settings)
    for name in MAPPING_FIELDS:
        setattr(settings, name, values.get(name))
    if LOCK_DATE in values:
        settings.books_closed_through = values[LOCK_DATE]
    if values.get(LOCK_POLICY) is not None:
        settings.closed_period_policy = values[LOCK_POLICY]
    await session.flush()
    after = settings_state(settings)
    await history.record_mapping_changes(
        session, company_id=company_id, before=before, after=after, changed_by=changed_by
    )
    return settings


def settings_state(settings: CompanySettings) -> dict[str, int | str | None]:
    """The settings as their history keeps them: the mappings, and the lock date as text."""
    state: dict[str, int | str | None] = {name: getattr(settings, name) for name in MAPPING_FIELDS}
    closed = settings.books_closed_through
    state[LOCK_DATE] = closed.isoformat() if closed is not None else None
    state[LOCK_POLICY] = lock_policy(settings)
    return state


def lock_policy(settings: CompanySettings) -> str:
    """The lock date's policy; `hold` for settings not stored yet (the column's default)."""
    return settings.closed_period_policy or HOLD


def effective_accounts(settings: CompanySettings) -> dict[str, int | None]:
    """The mapping each export uses: the top-up account defaults to the reimbursement account."""
    return {
        "deposit_account": settings.deposit_account,
        "out_of_pocket_account": settings.out_of_pocket_account,
        "reimbursement_account": settings.reimbursement_account,
        "top_up_account": settings.top_up_account or settings.reimbursement_account,
    }


@dataclass(frozen=True)
class MappingProblem:
    code: str
    message: str
    field: str | None = None
    account_number: int | None = None
    category_id: uuid.UUID | None = None


async def usable_deposit_accounts(session: AsyncSession, company_id: str) -> set[int]:
    return {a.account_number for a in await deposit_accounts(session, company_id)}


def account_problems(settings: CompanySettings, usable: set[int]) -> list[MappingProblem]:
    """Mapped accounts that are hidden in or gone from Dinero: the admin must choose others."""
    problems: list[MappingProblem] = []
    for name in MAPPING_FIELDS:
        number = getattr(settings, name)
        if number is not None and number not in usable:
            problems.append(
                MappingProblem(
                    code="mapped_account_unavailable",
                    field=name,
                    account_number=number,
                    message=(
                        f"The {FIELD_LABELS[name]} {number} is hidden in or gone from Dinero; "
                        "choose another deposit account."
                    ),
                )
            )
    return problems
