"""The request's side of a reversal: check it can be done, commit the intent, enqueue the job.

Nothing here talks to Dinero: the intent (an `export_reversals` row, the item `reversing`) and
the job are committed together by the request's transaction, and a worker does the rest
(app/reversals/flow.py). What can be told at once is refused at once, with a stable code:
an item that is not (or no longer) exported, a voucher the follow-up saw edited in Dinero, a
date outside the open accounting years, a connection that must be re-authorised.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chart.models import ChartSync, CompanySettings
from app.connection.gateway import require_connected
from app.connection.models import get_connection
from app.errors import AppError, Conflict, NotFound
from app.exports import service as lifecycle
from app.exports.models import Export, ExportItem, ItemStatus
from app.reversals.flow import LEDGER
from app.reversals.models import Reversal, ReversalStatus
from app.reversals.tasks import request_reversal

REVERSIBLE = (ItemStatus.AWAITING_APPROVAL, ItemStatus.BOOKED)


@dataclass(frozen=True)
class Started:
    reversal: Reversal
    item: ExportItem
    replayed: bool = False


async def _pending(session: AsyncSession, item_id: uuid.UUID) -> Reversal | None:
    return (
        await session.execute(
            select(Reversal).where(
                Reversal.item_id == item_id, Reversal.status == ReversalStatus.PENDING.value
            )
        )
    ).scalar_one_or_none()


async def _check_connection(session: AsyncSession, company_id: str) -> None:
    require_connected(
        await get_connection(session=session, company_id=company_id),
        before="reversing an item",
        reauth="Dinero no longer accepts the connection: reconnect Dinero, then reverse the item.",
    )


async def _check_year(session: AsyncSession, company_id: str, day: date) -> None:
    """The date must be in one of Dinero's accounting years (or the year after the newest,
    which Dinero opens by booking into it)."""
    sync = await session.get(ChartSync, company_id)
    years = [
        (date.fromisoformat(y["from"]), date.fromisoformat(y["to"]))
        for y in (sync.accounting_years if sync else [])
    ]
    if not years or any(start <= day <= end for start, end in years):
        return
    if day.year == max(end for _, end in years).year + 1:
        return
    raise Conflict(
        f"Dinero has no open accounting year for {day.isoformat()}: give a voucher_date in an "
        "open year (Indstillinger > Regnskabsår).",
        code="accounting_year_closed",
        errors={"voucher_date": f"{day.isoformat()} is outside the open accounting years."},
    )


async def _check_lock_date(session: AsyncSession, company_id: str, day: date) -> None:
    """The date must be after the admin's lock date (`books_closed_through`): a reversing entry
    in a closed period would change figures already reported."""
    settings = await session.get(CompanySettings, company_id)
    closed = settings.books_closed_through if settings else None
    if closed is not None and day <= closed:
        raise Conflict(
            f"The books are closed through {closed.isoformat()} (the lock date in the settings): "
            f"give a voucher_date after it, or move the lock date back.",
            code="period_closed",
            errors={"voucher_date": f"{day.isoformat()} is on or before the lock date."},
        )


def _check_item(item: ExportItem) -> None:
    if item.status == ItemStatus.REVERSED:
        raise Conflict(
            'The item is reversed already; export it again with `"replace": true`.',
            code="item_already_reversed",
        )
    if item.status not in REVERSIBLE or (item.dinero_guid is None and item.dinero_kind != LEDGER):
        raise Conflict(
            f"Only an exported item (awaiting approval or booked) can be reversed; this one is "
            f"{item.status.value}.",
            code="item_not_reversible",
        )
    if item.dinero_changes:
        raise Conflict(
            "The voucher was changed in Dinero since it was exported: reverse it in Dinero, "
            "or undo the changes there first.",
            code="voucher_edited_in_dinero",
            extra={"changes": item.dinero_changes.get("changes", item.dinero_changes)},
        )


async def start_reversal(
    *,
    session: AsyncSession,
    company_id: str,
    item_id: uuid.UUID,
    reason: str | None,
    voucher_date: date | None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> Started:
    """Commit the intent to reverse one item (in the caller's transaction) and enqueue it."""
    if idempotency_key is not None:
        known = (
            await session.execute(
                select(Reversal).where(
                    Reversal.company_id == company_id, Reversal.idempotency_key == idempotency_key
                )
            )
        ).scalar_one_or_none()
        if known is not None:
            if known.request_hash != request_hash or known.item_id != item_id:
                raise Conflict(
                    "This Idempotency-Key was used before with another request.",
                    code="idempotency_key_reused",
                )
            return Started(
                known,
                await lifecycle.company_item(session, company_id, item_id, lock=True),
                replayed=True,
            )
    item = await lifecycle.company_item(session, company_id, item_id, lock=True)
    if item.status == ItemStatus.REVERSING:
        pending = await _pending(session, item.id)
        if pending is not None:  # asked twice: the reversal under way answers
            return Started(pending, item, replayed=True)
    _check_item(item)
    await _check_connection(session, company_id)
    day = voucher_date or datetime.now(UTC).date()
    await _check_year(session, company_id, day)
    await _check_lock_date(session, company_id, day)
    reversal = Reversal(
        id=uuid.uuid4(),
        company_id=company_id,
        item_id=item.id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        status=ReversalStatus.PENDING.value,
        reason=reason,
        voucher_date=day,
        previous_status=item.status.value,
        original_kind=item.dinero_kind,
        original_guid=item.id if item.dinero_kind == LEDGER else item.dinero_guid,
        original_voucher_number=item.dinero_voucher_number,
        original_file_guid=item.dinero_file_guid,
        attempts=0,
    )
    session.add(reversal)
    moved = await lifecycle.transition(session, item.id, from_=item.status, to=ItemStatus.REVERSING)
    if not moved:  # pragma: no cover - the row is locked above
        raise Conflict("The item changed a moment ago; try again.", code="item_not_reversible")
    await session.flush()
    await request_reversal(session, reversal.id)
    await session.refresh(item)
    return Started(reversal, item)


@dataclass(frozen=True)
class BulkOutcome:
    item: ExportItem
    started: Started | None = None
    refused: AppError | None = None


async def reverse_export(
    *,
    session: AsyncSession,
    company_id: str,
    export_id: uuid.UUID,
    reason: str | None,
    voucher_date: date | None,
) -> list[BulkOutcome]:
    """Reverse every item of an export that can be; each refusal is reported, not raised."""
    export = await session.get(Export, export_id)
    if export is None or export.company_id != company_id:
        raise NotFound("No such export.", code="export_not_found")
    rows = await session.execute(
        select(ExportItem)
        .where(ExportItem.company_id == company_id, ExportItem.export_id == export_id)
        .order_by(ExportItem.created_at, ExportItem.id)
    )
    named = [uuid.UUID(str(i)) for i in export.item_ids]
    items: Sequence[ExportItem] = list(rows.scalars())
    known = {item.id for item in items}
    extra = [i for i in named if i not in known]  # items first stored by an earlier export
    if extra:
        more = await session.execute(
            select(ExportItem).where(ExportItem.company_id == company_id, ExportItem.id.in_(extra))
        )
        items = [*items, *more.scalars()]
    outcomes: list[BulkOutcome] = []
    for item in items:
        try:
            async with session.begin_nested():
                started = await start_reversal(
                    session=session,
                    company_id=company_id,
                    item_id=item.id,
                    reason=reason,
                    voucher_date=voucher_date,
                )
            outcomes.append(BulkOutcome(item=started.item, started=started))
        except AppError as refused:
            outcomes.append(BulkOutcome(item=item, refused=refused))
    return outcomes


async def reversals_of(
    session: AsyncSession, company_id: str, item_id: uuid.UUID
) -> tuple[ExportItem, list[Reversal]]:
    item = await lifecycle.company_item(session, company_id, item_id)
    rows = await session.execute(
        select(Reversal)
        .where(Reversal.item_id == item_id)
        .order_by(Reversal.created_at, Reversal.id)
    )
    return item, list(rows.scalars())


def failure_changes(reversal: Reversal) -> list[dict[str, Any]]:
    return list(reversal.differences or [])
