"""Ledger items (reimbursements, top-ups): to the Kassekladde in batches, booked, and followed
until Dinero says `Booked`. An item's uncertain call is reconciled by its own id (ours)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final

from app.dinero.client import DineroClient
from app.dinero.errors import (
    DineroApiError,
    DineroNotFound,
    DineroOutcomeUnknown,
    DineroRateLimited,
    DineroStaleVersion,
    DineroTransportError,
)
from app.dinero.models import LedgerItem, LedgerItemRef, LedgerItemStatus
from app.dinero.pacing import PacerBusy
from app.exports.checks import closed_for, posting_date
from app.exports.context import Context, save
from app.exports.mapping import LEDGER, plan
from app.exports.models import ExportItem, ItemStatus, Step
from app.exports.outcomes import dinero_failure, fail, set_waiting, transient, year_refused
from app.exports.service import FRESH
from app.preview import explain

LEDGER_BATCH: Final = 1000
"""Dinero takes up to 1000 ledger items per call."""
BOOKING_POLL_SECONDS: Final = 2.0


def _request(ctx: Context, item: ExportItem) -> LedgerItem:
    request = plan(item, ctx.books).request
    assert isinstance(request, LedgerItem)
    return request


async def ledger_pass(ctx: Context, items: list[ExportItem]) -> None:
    assert ctx.client is not None
    client = ctx.client
    try:
        uncertain = [i for i in items if i.step in (Step.CREATE_SENT, Step.BOOK_SENT)]
        if uncertain:
            await _reconcile(ctx, client, uncertain)
        new = [i for i in items if i.step == Step.NEW and not i.status.settled]
        for start in range(0, len(new), LEDGER_BATCH):
            await _create(ctx, client, new[start : start + LEDGER_BATCH])
        created = []
        for item in items:
            if item.step != Step.CREATED or item.status.settled:
                continue
            closed = closed_for(ctx.books, item)
            if closed is None:
                created.append(item)
            else:  # a draft in the Kassekladde still; booked once the period opens
                await set_waiting(ctx, item, closed)
        if created:
            await _book(ctx, client, created)
    except DineroOutcomeUnknown:
        ctx.later(BOOKING_POLL_SECONDS)  # the next pass reconciles by our ids
    except DineroApiError as exc:
        if not exc.transient:
            raise
        pending = [i for i in items if not i.status.settled]
        for item in pending:
            await transient(ctx, item, exc, count=not isinstance(exc, DineroRateLimited))
    except DineroTransportError as exc:
        for item in [i for i in items if not i.status.settled]:
            await transient(ctx, item, exc)


async def _reconcile(ctx: Context, client: DineroClient, items: list[ExportItem]) -> None:
    """Ask Dinero about items whose last call has no known outcome, by our own ids."""
    statuses = await _statuses(client, [i.ledger_id for i in items])
    for item in items:
        status = statuses.get(item.ledger_id)
        if status is None or status.status is None:
            if item.step == Step.CREATE_SENT:
                await save(ctx.services, item, step=Step.NEW)  # never arrived: send again
            continue
        if status.is_booked:
            await _booked(ctx, item, status.voucher_number)
        elif status.is_pending_booking:
            await save(ctx.services, item, step=Step.BOOK_SENT, dinero_version=status.version)
            ctx.later(BOOKING_POLL_SECONDS)
        else:  # Draft: created, booking not (yet) asked for
            await save(ctx.services, item, step=Step.CREATED, dinero_version=status.version)


async def _statuses(
    client: DineroClient, ids: list[uuid.UUID]
) -> dict[uuid.UUID, LedgerItemStatus]:
    """Booking status by our ids; Dinero refuses the whole call if one id is unknown to it."""
    try:
        return {s.id: s for s in await client.ledger_item_status(ids)}
    except DineroNotFound:
        if len(ids) == 1:
            return {}
    found: dict[uuid.UUID, LedgerItemStatus] = {}
    for one in ids:
        found.update(await _statuses(client, [one]))
    return found


async def _create(ctx: Context, client: DineroClient, batch: list[ExportItem]) -> None:
    for item in batch:
        await save(
            ctx.services,
            item,
            step=Step.CREATE_SENT,
            status=ItemStatus.EXPORTING,
            sent_at=datetime.now(UTC),
            posting_date=posting_date(ctx.books, item),
            waiting_code=None,
            waiting_message=None,
            dinero_kind=LEDGER,
        )
    await ctx.checkpoint("before_ledger_create")
    await explain.record(ctx.services, [(i, plan(i, ctx.books)) for i in batch], ctx.books)
    try:
        refs = await client.create_ledger_items([_request(ctx, i) for i in batch])
    except PacerBusy:
        for item in batch:
            await save(ctx.services, item, step=Step.NEW)  # certainly not sent
        raise
    except DineroApiError as exc:
        if not exc.refused:
            raise
        for item in batch:
            await save(ctx.services, item, step=Step.NEW)  # refused: certainly not created
        await _refused(ctx, client, batch, exc, _create)
        return
    await ctx.checkpoint("after_ledger_create")
    by_id = {ref.id: ref for ref in refs}
    for item in batch:
        ref = by_id.get(item.ledger_id)
        await save(
            ctx.services,
            item,
            step=Step.CREATED,
            dinero_version=ref.version if ref else None,
            exported_at=datetime.now(UTC),
        )
    ctx.count("ledger_created", len(batch))


async def _book(
    ctx: Context, client: DineroClient, items: list[ExportItem], *, reread: bool = True
) -> None:
    missing = [i for i in items if i.dinero_version is None]
    if missing:  # the create answer did not carry every version: read them
        statuses = await _statuses(client, [i.ledger_id for i in missing])
        for item in missing:
            status = statuses.get(item.ledger_id)
            if status is not None:
                item.dinero_version = status.version
    refs = [LedgerItemRef(id=i.ledger_id, version=i.dinero_version) for i in items]
    for item in items:
        await save(
            ctx.services,
            item,
            step=Step.BOOK_SENT,
            sent_at=datetime.now(UTC),
            waiting_code=None,
            waiting_message=None,
        )
    await ctx.checkpoint("before_book")
    try:
        await client.book_ledger_items(refs)
    except PacerBusy:
        for item in items:
            await save(ctx.services, item, step=Step.CREATED)  # certainly not sent
        raise
    except DineroApiError as exc:
        if not exc.refused:
            raise
        # Refused as a whole: nothing booked, each a draft still. A stale version (changed in
        # Dinero's Kassekladde since we read it) is read again, once.
        stale = reread and isinstance(exc, DineroStaleVersion)
        for item in items:
            versions = {"dinero_version": None} if stale else {}
            await save(ctx.services, item, step=Step.CREATED, **versions)
        if stale:
            await _book(ctx, client, items, reread=False)
        else:
            await _refused(ctx, client, items, exc, _book)
        return
    await ctx.checkpoint("after_book")
    ctx.later(BOOKING_POLL_SECONDS)  # booking is asynchronous: follow it on the next pass


Send = Callable[[Context, DineroClient, list[ExportItem]], Awaitable[None]]


async def _refused(
    ctx: Context, client: DineroClient, items: list[ExportItem], exc: DineroApiError, send: Send
) -> None:
    """Dinero refused a call (create or book) for `items`, the whole call, so nothing happened.

    One item: a refused date is a closed accounting year, remembered so the year's other items
    wait without a request (app/exports/closed.py); any other refusal fails the item with
    Dinero's message. Several: one bad item refuses them all, so each is sent alone, except
    those dated in a year found closed meanwhile.
    """
    if len(items) == 1:
        if exc.refuses_date:
            await year_refused(ctx, items[0], exc)
        else:
            await fail(ctx, items[0], dinero_failure(exc))
        return
    for item in items:
        closed = closed_for(ctx.books, item)
        if closed is not None:
            await set_waiting(ctx, item, closed)
        else:
            await send(ctx, client, [item])


async def _booked(ctx: Context, item: ExportItem, number: int | None) -> None:
    await save(
        ctx.services,
        item,
        step=Step.BOOKED,
        status=ItemStatus.BOOKED,
        dinero_voucher_number=number,
        booked_at=datetime.now(UTC),
        **FRESH,
    )
    ctx.count("booked")
