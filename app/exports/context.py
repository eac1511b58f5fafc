"""What a runner pass knows: the company's books (read once), its due items, and how an item's
progress is committed (`save`, each change in its own short transaction)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.chart.models import ChartSync, CompanySettings, DineroAccount
from app.chart.service import (
    FIRST_OPEN_DAY,
    effective_accounts,
    list_categories,
    lock_policy,
    present_tax_codes,
    usable_deposit_accounts,
)
from app.connection.models import DineroConnection, get_connection
from app.dinero.client import DineroClient
from app.exports.checks import Books
from app.exports.closed import closed_years
from app.exports.models import ExportItem, ItemStatus
from app.exports.service import transition
from app.services import Services

log = structlog.get_logger(__name__)

PASS_ITEMS: Final = 200

Checkpoint = Callable[[str], Awaitable[None]]
"""Called at each named point between steps (tests raise there to "kill" the worker)."""


@dataclass
class Context:
    """What a pass knows about the company, read once."""

    services: Services
    company_id: str
    connection: DineroConnection
    books: Books
    client: DineroClient | None = None
    deadline: float = 0.0
    reschedule_in: float | None = None
    paused: bool = False
    stats: dict[str, int] = field(default_factory=dict)
    checkpoint_hook: Checkpoint | None = None

    def later(self, seconds: float) -> None:
        if self.reschedule_in is None or seconds < self.reschedule_in:
            self.reschedule_in = seconds

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    async def checkpoint(self, name: str) -> None:
        if self.checkpoint_hook is not None:
            await self.checkpoint_hook(name)


async def load_books(session: AsyncSession, company_id: str) -> Books:
    """The company's mappings, categories, usable accounts, VAT codes and accounting years, its
    lock date and the years Dinero refused as closed."""
    settings = await session.get(CompanySettings, company_id) or CompanySettings(
        company_id=company_id
    )
    categories = {c.id: c for c in await list_categories(session, company_id)}
    purchase = frozenset(
        (
            await session.execute(
                select(DineroAccount.account_number).where(
                    DineroAccount.company_id == company_id,
                    DineroAccount.is_purchase,
                    DineroAccount.present,
                    DineroAccount.hidden_in_dinero.is_(False),
                )
            )
        ).scalars()
    )
    deposit = frozenset(await usable_deposit_accounts(session, company_id))
    codes = frozenset(tax.code for tax in await present_tax_codes(session, company_id))
    sync = await session.get(ChartSync, company_id)
    years = tuple(
        (date.fromisoformat(y["from"]), date.fromisoformat(y["to"]))
        for y in (sync.accounting_years if sync else [])
    )
    return Books(
        accounts=effective_accounts(settings),
        categories=categories,
        purchase_accounts=purchase,
        deposit_accounts=deposit,
        tax_codes=codes,
        years=years,
        synced=sync is not None and sync.succeeded_at is not None,
        closed_through=settings.books_closed_through,
        move_closed=lock_policy(settings) == FIRST_OPEN_DAY,
        closed_years=await closed_years(session, company_id),
    )


async def load_context(
    services: Services, company_id: str, checkpoint: Checkpoint | None = None
) -> Context | None:
    """None when the company has no Dinero connection (nothing to do)."""
    async with services.sessionmaker() as session:
        connection = await get_connection(session=session, company_id=company_id)
        if connection is None:
            return None
        books = await load_books(session, company_id)
    return Context(
        services=services,
        company_id=company_id,
        connection=connection,
        books=books,
        checkpoint_hook=checkpoint,
    )


def _due(company_id: str) -> Any:
    return (
        ExportItem.company_id == company_id,
        ExportItem.status.in_([ItemStatus.QUEUED, ItemStatus.EXPORTING]),
    )


async def due_items(services: Services, company_id: str) -> list[ExportItem]:
    now = datetime.now(UTC)
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(ExportItem)
            .where(
                *_due(company_id),
                or_(ExportItem.next_attempt_at.is_(None), ExportItem.next_attempt_at <= now),
            )
            .order_by(ExportItem.created_at, ExportItem.id)
            .limit(PASS_ITEMS)
        )
        return list(rows.scalars())


async def earliest_retry(services: Services, company_id: str) -> datetime | None:
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(ExportItem.next_attempt_at)
            .where(*_due(company_id), ExportItem.next_attempt_at.is_not(None))
            .order_by(ExportItem.next_attempt_at)
            .limit(1)
        )
        return rows.scalar_one_or_none()


async def save(services: Services, item: ExportItem, **values: Any) -> None:
    """Commit changes to one item at once (its own short transaction) and mirror them.

    A `status` among the values goes through the lifecycle's `transition()` (app/exports/
    service.py), from the status the pass holds for the item.
    """
    values.setdefault("updated_at", datetime.now(UTC))
    status: ItemStatus | None = values.pop("status", None)
    async with services.sessionmaker() as session, session.begin():
        if status is None:
            await session.execute(
                update(ExportItem).where(ExportItem.id == item.id).values(**values)
            )
        elif not await transition(session, item.id, from_=item.status, to=status, **values):
            # The runner holds the company's lock; nothing else moves a due item, so this is
            # an item deleted meanwhile (its company removed).
            log.warning("export_item_moved_meanwhile", item_id=str(item.id), to=status.value)
    if status is not None:
        values["status"] = status
    for key, value in values.items():
        setattr(item, key, value)
