"""The export runner: takes a company's due items to Dinero, exactly once.

One runner per company at a time (a procrastinate job with a per-company lock). Each pass:

1. loads what it needs of the company once (app/exports/context.py) and checks what every due
   item needs (app/exports/checks.py: connection, mappings, category, tax code, accounting
   year); an item that cannot go yet *waits* with a reason a person can act on, and goes by
   itself on a later pass once that is fixed (settings, syncs and reconnects kick the runner);
2. ledger items (reimbursements, top-ups) go to the Kassekladde in batches, are booked, and are
   followed until Dinero says `Booked` (app/exports/ledger.py);
3. expenses become draft vouchers, up to VOUCHERS_IN_FLIGHT at once, each one's steps in
   order: receipt file (app/exports/files.py), upload, create. What is sent is decided by
   app/exports/mapping.py.

Exactly once: before each call to Dinero the item's step is committed as `…_SENT` (the intent);
Dinero's answer is committed as the next step. No call is made inside a transaction. An item
found in a `…_SENT` step is looked up in Dinero (file archive by our file name, `fileguid`, ledger
`status` by our own id) before anything is sent again. Transient failures back off per item
(app/exports/outcomes.py); Dinero's validation errors fail the item at once with Dinero's
message kept. Status changes go through app/exports/service.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import structlog

from app.connection.gateway import NotConnected, ReauthRequired
from app.dinero.client import DineroClient
from app.dinero.errors import (
    DineroApiError,
    DineroError,
    DineroOutcomeUnknown,
    DineroRateLimited,
)
from app.dinero.models import ManualVoucherCreate, PurchaseVoucherCreate
from app.dinero.pacing import Lane, PacerBusy
from app.exports.checks import Fail, Wait, check, closed_for, posting_date
from app.exports.context import (
    PASS_ITEMS,
    Checkpoint,
    Context,
    due_items,
    earliest_retry,
    load_context,
    save,
)
from app.exports.drafts import baseline
from app.exports.files import find_upload, prepared_file, search_archive
from app.exports.ledger import ledger_pass
from app.exports.mapping import MANUAL, PURCHASE, is_refund, plan
from app.exports.models import ExportItem, ItemStatus, Step
from app.exports.outcomes import (
    RATE_LIMIT_PAUSE_SECONDS,
    connection_wait,
    dinero_failure,
    fail,
    set_waiting,
    transient,
    wait_all,
    year_refused,
)
from app.exports.preflight import confirm, fresh_books
from app.exports.schedule import schedule_run, tell_platform
from app.exports.service import FRESH
from app.preview import explain
from app.receipts import ReceiptError
from app.services import Services

__all__ = ["RATE_LIMIT_PAUSE_SECONDS", "RunResult", "run_company"]

log = structlog.get_logger(__name__)

TIME_SLICE_SECONDS: Final = 45.0
"""A runner yields its worker after this long, so no company starves the others."""
PACER_MAX_WAIT_SECONDS: Final = 5.0
VOUCHERS_IN_FLIGHT: Final = 3
"""Expenses a pass works on at once (each one's steps in order; see `_voucher_items`)."""


@dataclass
class RunResult:
    stats: dict[str, int]
    reschedule_in: float | None


async def run_company(
    services: Services, company_id: str, *, checkpoint: Checkpoint | None = None
) -> RunResult:
    """One pass over the company's due items; reschedules itself while work remains.

    `checkpoint` is awaited at each named point between steps (tests "kill" the worker there).
    """
    started = time.monotonic()
    ctx = await load_context(services, company_id, checkpoint)
    if ctx is None:
        return RunResult(stats={}, reschedule_in=None)
    ctx.deadline = started + TIME_SLICE_SECONDS
    items = await due_items(services, company_id)
    if items:
        await _run_items(ctx, items)
    if len(items) == PASS_ITEMS:
        ctx.later(0)  # more are due than one pass takes
    retry_at = await earliest_retry(services, company_id)
    if retry_at is not None:
        ctx.later(max((retry_at - datetime.now(UTC)).total_seconds(), 0))
    if ctx.reschedule_in is not None:
        await schedule_run(services, company_id, ctx.reschedule_in)
    if items:
        await tell_platform(services)  # what changed goes out as webhooks (app/outbox)
    log.info("export_pass", company_id=company_id, items=len(items), **ctx.stats)
    return RunResult(stats=ctx.stats, reschedule_in=ctx.reschedule_in)


async def _run_items(ctx: Context, items: list[ExportItem]) -> None:
    try:
        ctx.client = _client(ctx)
    except (ReauthRequired, NotConnected) as exc:
        await wait_all(ctx, items, connection_wait(exc))
        return
    ledger: list[ExportItem] = []
    vouchers: list[ExportItem] = []
    # Live pre-flight (app/exports/preflight.py): items about to be sent for the first time are
    # checked against a chart no older than a few minutes.
    fresh = None
    if any(item.step == Step.NEW for item in items):
        fresh = await fresh_books(ctx.services, ctx.company_id, ctx.books)
        ctx.books = fresh.books
    for item in items:
        try:
            check(ctx.books, item)
            if fresh is not None and fresh.problem is not None and item.step == Step.NEW:
                raise fresh.problem
            confirm(ctx.books, item)
        except Wait as wait:
            await set_waiting(ctx, item, wait)
            continue
        except Fail as failure:
            await fail(ctx, item, failure)
            continue
        (vouchers if item.type.is_expense else ledger).append(item)
    try:
        if ledger:
            await ledger_pass(ctx, ledger)
        await _voucher_items(ctx, vouchers)
    except (ReauthRequired, NotConnected) as exc:
        pending = [i for i in items if not i.status.settled]
        await wait_all(ctx, pending, connection_wait(exc))
    except PacerBusy as busy:
        ctx.later(busy.retry_after)


def _client(ctx: Context) -> DineroClient:
    # A full budget ends the pass (PacerBusy) instead of holding a worker other companies need.
    return ctx.services.dinero.client_for(
        ctx.connection, lane=Lane.EXPORT, max_wait=PACER_MAX_WAIT_SECONDS
    )


# --- vouchers (expenses and refunds) -------------------------------------------------------


async def _voucher_items(ctx: Context, vouchers: list[ExportItem]) -> None:
    """The expenses, VOUCHERS_IN_FLIGHT at a time (the first alone), started in their order.

    One item's steps stay one after another (its intent committed before each call, as
    always); while one item's request is in flight the next one's receipt is prepared and its
    upload goes out, so the pacer's budget, not the runner's own round trips, sets the pace.
    A lane that meets a full budget, a lost connection or anything unexpected stops the others
    from starting new items (the ones in flight finish their step) and its error is raised.
    Dinero's 429 in the middle of a pass can meet the other lanes' requests in flight (at most
    VOUCHERS_IN_FLIGHT - 1 more); the pacer keeps the pass under the limit, so it is rare.
    """
    errors: list[BaseException] = []

    def may_start() -> bool:
        if errors or ctx.paused:
            return False  # on 429 the organization waits; the items keep their place
        if time.monotonic() > ctx.deadline:
            ctx.later(0)
            return False
        return True

    if not vouchers or not may_start():
        return
    # The first alone: a 429 or a full budget at the start costs one request, not one per lane.
    await _voucher_item(ctx, vouchers[0])
    upcoming = iter(vouchers[1:])

    async def lane() -> None:
        for item in upcoming:  # shared: each item is taken by one lane
            if not may_start():
                return
            try:
                await _voucher_item(ctx, item)
            except Exception as exc:  # raised below, once the other lanes are done
                errors.append(exc)
                return

    lanes = [asyncio.create_task(lane()) for _ in range(min(VOUCHERS_IN_FLIGHT, len(vouchers) - 1))]
    try:
        await asyncio.gather(*lanes)
    finally:  # a lane killed or cancelled: the others stop where they are, as in a dead worker
        for task in lanes:
            task.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
    if errors:
        busy = [e for e in errors if isinstance(e, PacerBusy)]
        other = [e for e in errors if not isinstance(e, PacerBusy)]
        if other:
            raise other[0]
        raise min(busy, key=lambda e: e.retry_after)  # the earliest slot


async def _voucher_item(ctx: Context, item: ExportItem) -> None:
    assert ctx.client is not None
    client = ctx.client
    closed = closed_for(ctx.books, item)
    if closed is not None and item.step in (Step.NEW, Step.UPLOADED):
        await set_waiting(ctx, item, closed)  # e.g. a year Dinero refused during this pass
        return
    # Written together with the next step, not in a commit of their own (fewer round trips).
    pending: dict[str, Any] = {}
    if item.status == ItemStatus.QUEUED or item.waiting_code:
        pending = {"status": ItemStatus.EXPORTING, "waiting_code": None, "waiting_message": None}
    try:
        if item.step in (Step.NEW, Step.UPLOAD_SENT) and item.dinero_file_guid is None:
            pending = await _ensure_file(ctx, client, item, pending)
        if item.step == Step.CREATE_SENT and await _find_voucher(ctx, client, item):
            return
        if item.step in (Step.NEW, Step.UPLOADED, Step.UPLOAD_SENT, Step.CREATE_SENT):
            await _create_voucher(ctx, client, item, pending)
    except Fail as failure:
        await fail(ctx, item, failure)
    except ReceiptError as exc:
        if exc.transient:
            await transient(ctx, item, exc)
        else:
            await fail(ctx, item, Fail(exc.code, exc.message))
    except DineroOutcomeUnknown as exc:
        await transient(ctx, item, exc)  # the step says …_SENT: the next try looks first
    except DineroApiError as exc:
        if exc.transient:
            await transient(ctx, item, exc, count=not isinstance(exc, DineroRateLimited))
        elif exc.refuses_date and item.step == Step.CREATE_SENT:
            # The voucher's date, refused: its year is closed. Certainly not created.
            await save(ctx.services, item, step=Step.UPLOADED)
            await year_refused(ctx, item, exc)
        else:
            await fail(ctx, item, dinero_failure(exc))
    except DineroError as exc:
        await transient(ctx, item, exc)


async def _ensure_file(
    ctx: Context, client: DineroClient, item: ExportItem, pending: dict[str, Any]
) -> dict[str, Any]:
    """Upload the voucher's file once; after an uncertain upload, find it in the archive first.

    Returns what is still to be stored: the file's guid, committed with the create's intent.
    """
    content, filename, content_type = await prepared_file(ctx.services, item, pending)
    if item.step == Step.UPLOAD_SENT:
        found = await find_upload(client, item, filename, len(content))
        if found is not None:
            ctx.count("upload_found")
            return {**pending, "dinero_file_guid": found}
    previous = item.step
    await save(ctx.services, item, **pending, step=Step.UPLOAD_SENT, sent_at=datetime.now(UTC))
    await ctx.checkpoint("before_upload")
    try:
        uploaded = await client.upload_file(content, filename, content_type)
    except PacerBusy:
        await save(ctx.services, item, step=previous)  # certainly not sent
        raise
    await ctx.checkpoint("after_upload")
    ctx.count("uploaded")
    return {"dinero_file_guid": uploaded.file_guid}


async def _create_voucher(
    ctx: Context, client: DineroClient, item: ExportItem, pending: dict[str, Any]
) -> None:
    # Without a create sent yet, a known file means the upload is done.
    previous = Step.UPLOADED if item.step != Step.CREATE_SENT else item.step
    await save(
        ctx.services,
        item,
        **pending,
        step=Step.CREATE_SENT,
        sent_at=datetime.now(UTC),
        posting_date=posting_date(ctx.books, item),
    )
    await ctx.checkpoint("before_create")
    planned = plan(item, ctx.books)
    request = planned.request
    await explain.record(ctx.services, [(item, planned)], ctx.books)
    try:
        if isinstance(request, ManualVoucherCreate):
            manual = await client.create_manual_voucher(request)
            guid, timestamp = manual.guid, manual.timestamp
            number, kind, sent = manual.voucher_number, MANUAL, baseline(manual)
        else:
            assert isinstance(request, PurchaseVoucherCreate)
            voucher = await client.create_purchase_voucher(request)
            guid, timestamp = voucher.guid, voucher.timestamp
            number, kind, sent = voucher.voucher_number, PURCHASE, baseline(voucher)
    except PacerBusy:
        await save(ctx.services, item, step=previous)  # certainly not sent
        raise
    await ctx.checkpoint("after_create")
    await _created(ctx, item, kind, guid, timestamp, number, sent)


async def _created(
    ctx: Context,
    item: ExportItem,
    kind: str,
    guid: uuid.UUID,
    timestamp: str | None,
    number: int | None,
    sent: dict[str, Any] | None = None,
) -> None:
    await save(
        ctx.services,
        item,
        step=Step.CREATED,
        status=ItemStatus.AWAITING_APPROVAL,
        dinero_kind=kind,
        dinero_guid=guid,
        dinero_timestamp=timestamp,
        dinero_voucher_number=number,
        dinero_sent=sent,
        exported_at=datetime.now(UTC),
        **FRESH,
    )
    ctx.count("created")


async def _find_voucher(ctx: Context, client: DineroClient, item: ExportItem) -> bool:
    """After an uncertain create: the voucher that carries our file is ours."""
    if item.dinero_file_guid is None:
        return False
    if is_refund(item):
        file_guid = item.dinero_file_guid
        stored = await search_archive(
            client, item, lambda f: f.file_guid == file_guid and bool(f.linked), "Used"
        )
        if stored is None:
            return False
        manual = await client.get_manual_voucher(stored.linked[0].voucher_guid)
        await _created(
            ctx,
            item,
            MANUAL,
            manual.guid,
            manual.timestamp,
            manual.voucher_number,
            baseline(manual),
        )
        ctx.count("voucher_found")
        return True
    guids = await client.purchase_vouchers_by_file(item.dinero_file_guid)
    if not guids:
        return False
    voucher = await client.get_purchase_voucher(guids[0])
    await _created(
        ctx,
        item,
        PURCHASE,
        voucher.guid,
        voucher.timestamp,
        voucher.voucher_number,
        baseline(voucher),
    )
    ctx.count("voucher_found")
    return True
