"""Closed periods: what the runner remembers when Dinero refuses a date as closed.

Dinero's list of accounting years does not say which are closed, so the runner learns it the one
way Dinero tells: a refused booking (a validation error on the voucher's date, for a date inside
one of the organization's known years). The year is then remembered in `export_closed_years` for
`REMEMBER_CLOSED`, and every item dated in it waits in the checks (`checks.closed_wait`) without
another request, instead of earning Dinero's 400 again and again (Dinero may revoke integrations
that send many bad requests). Retrying an item waiting for the year forgets it at once (the admin
reopened the year: every remembered year is forgotten, and each costs at most one request to
learn again); otherwise one request a day tries again. The admin's own lock date
(`company_settings.books_closed_through`) holds items back before any request at all.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.dinero.errors import DineroApiError
from app.exports.checks import Books, ClosedPeriod, Wait, closed_wait
from app.exports.models import ClosedYear
from app.services import Services

REMEMBER_CLOSED: Final = timedelta(hours=24)
"""How long a refusal holds a year's items back before one request tries it again."""


async def closed_years(
    session: AsyncSession, company_id: str, *, now: datetime | None = None
) -> tuple[ClosedPeriod, ...]:
    """The years refused as closed within `REMEMBER_CLOSED`, oldest first."""
    since = (now or datetime.now(UTC)) - REMEMBER_CLOSED
    rows = await session.execute(
        select(ClosedYear)
        .where(ClosedYear.company_id == company_id, ClosedYear.refused_at > since)
        .order_by(ClosedYear.first_day)
    )
    return tuple(
        ClosedPeriod(
            first_day=row.first_day,
            last_day=row.last_day,
            refused_at=row.refused_at,
            dinero_message=row.dinero_message,
        )
        for row in rows.scalars()
    )


def _year_of(books: Books, day: date) -> tuple[date, date]:
    for first, last in books.years:
        if first <= day <= last:
            return first, last
    return date(day.year, 1, 1), date(day.year, 12, 31)  # not synced yet: the calendar year


async def remember(
    services: Services, company_id: str, books: Books, day: date, exc: DineroApiError
) -> tuple[Books, Wait]:
    """Dinero refused `day` as closed: remember its year; the books with it, and the item's wait."""
    first, last = _year_of(books, day)
    message = exc.fields_text or exc.message or str(exc)
    now = datetime.now(UTC)
    values = {
        "company_id": company_id,
        "first_day": first,
        "last_day": last,
        "refused_at": now,
        "dinero_message": message,
    }
    statement = insert(ClosedYear).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[ClosedYear.company_id, ClosedYear.first_day],
        set_={"last_day": last, "refused_at": now, "dinero_message": message},
    )
    async with services.sessionmaker() as session, session.begin():
        await session.execute(statement)
    period = ClosedPeriod(first_day=first, last_day=last, refused_at=now, dinero_message=message)
    others = tuple(p for p in books.closed_years if p.first_day != first)
    updated = replace(books, closed_years=(*others, period))
    wait = closed_wait(updated, day)
    assert wait is not None
    return updated, wait


async def forget(session: AsyncSession, company_id: str) -> None:
    """The admin says the years are open again (a retry): the next pass tries each once more."""
    await session.execute(delete(ClosedYear).where(ClosedYear.company_id == company_id))
