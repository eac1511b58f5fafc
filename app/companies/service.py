"""Company records."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.companies.models import Company


async def ensure_company(*, session: AsyncSession, company_id: str) -> Company:
    """Return the company, creating its row the first time its id is seen."""
    await session.execute(
        insert(Company).values(id=company_id).on_conflict_do_nothing(index_elements=[Company.id])
    )
    company = (await session.execute(select(Company).where(Company.id == company_id))).scalar_one()
    return company
