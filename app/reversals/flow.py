"""The worker's side of a reversal: undo the item in Dinero, exactly once.

Chosen by what Dinero holds when the worker looks, not by what was true at the request:

- a draft still awaiting Godkend is deleted (Dinero hard-deletes drafts; the file stays in the
  archive);
- an approved voucher (a paid cash purchase, a booked refund) gets a booked manual voucher with
  the opposite lines, the original's file and our reference (`bridge-reversal:<id>`): Dinero's
  purchase credit notes need a supplier contact to be booked, which cash purchases lack;
- a booked reimbursement or top-up gets a booked ledger item with the opposite line and our own
  `Id` (the reversal's id).

Exactly once, like the export: each call is preceded by a committed `…_sent` step and followed
by a committed result, never inside a transaction. A worker that finds a `…_sent` step looks
first: the draft by reading it, the reversing voucher among those linked to the original's file
(by our reference), the ledger item by our id; only what Dinero does not have is sent again.
A refusal (closed accounting year, the voucher edited in Dinero, a voucher Dinero no longer
has) puts the item back as it was, with the reason on the reversal; nothing half-done is left
(a reversing voucher that could not be booked is deleted again).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import structlog
from sqlalchemy import select

from app.backoff import EXPORT_ITEM
from app.chart.models import NO_VAT
from app.connection.gateway import NotConnected, ReauthRequired
from app.connection.models import get_connection
from app.dinero.client import DineroClient
from app.dinero.errors import (
    DineroApiError,
    DineroError,
    DineroNotFound,
    DineroStaleVersion,
    DineroUnauthorized,
)
from app.dinero.models import (
    LedgerItem,
    LedgerItemLine,
    LedgerItemRef,
    ManualVoucher,
    ManualVoucherCreate,
    ManualVoucherLine,
    PurchaseVoucher,
)
from app.dinero.pacing import Lane, PacerBusy
from app.exports import service as lifecycle
from app.exports.drafts import baseline, differences
from app.exports.models import ExportItem, ItemStatus
from app.reversals.models import Reversal, ReversalKind, ReversalStatus, ReversalStep
from app.services import Services

log = structlog.get_logger(__name__)
T = TypeVar("T")

PURCHASE = "purchase_voucher"
MANUAL = "manual_voucher"
LEDGER = "ledger_item"
BOOKING_POLL_SECONDS = 2.0
PACER_MAX_WAIT_SECONDS = 5.0

# Called at each named point between steps (`run_reversal(checkpoint=...)`, as the export runner's
# and the follow-up cycle's `checkpoint=`): a test raises there to "kill" the worker. Held for the
# one run in a context variable, so the steps need not pass it along and no module state changes.
Checkpoint = Callable[[str], Awaitable[None]]
_checkpoint: ContextVar[Checkpoint | None] = ContextVar("reversal_checkpoint", default=None)


async def checkpoint(name: str) -> None:
    hook = _checkpoint.get()
    if hook is not None:
        await hook(name)


class Refused(Exception):
    """The reversal cannot be done: the item goes back as it was, with this reason."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        dinero_message: str | None = None,
        changes: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.dinero_message = dinero_message
        self.changes = changes


@dataclass
class Later:
    """Run the reversal again in `seconds` (booking in progress, Dinero unavailable)."""

    seconds: float


def reference(reversal: Reversal) -> str:
    return f"bridge-reversal:{reversal.id}"


# --- persistence -------------------------------------------------------------------------------


async def _save(services: Services, reversal: Reversal, **values: Any) -> None:
    """Commit changes to the reversal at once (its own short transaction) and mirror them."""
    values["updated_at"] = datetime.now(UTC)
    async with services.sessionmaker() as session, session.begin():
        row = await session.get(Reversal, reversal.id, with_for_update=True)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)
    for key, value in values.items():
        setattr(reversal, key, value)


async def _sending(
    services: Services, reversal: Reversal, step: ReversalStep, point: str, **values: Any
) -> None:
    """About to send the request of `step`: commit the step and when it is sent (with
    `values`), so a worker that dies from here on looks in Dinero before sending again; then
    the checkpoint `point`."""
    await _save(services, reversal, step=step.value, sent_at=datetime.now(UTC), **values)
    await checkpoint(point)


async def _create(services: Services, reversal: Reversal, request: Awaitable[T], doing: str) -> T:
    """Send the create `request` (`doing` names it): no slot from the pacer means it was not
    sent (back to `new`); a refusal of what was sent is the reversal's Refused."""
    try:
        return await request
    except PacerBusy:
        await _save(services, reversal, step=ReversalStep.NEW.value)  # certainly not sent
        raise
    except DineroApiError as exc:
        if not exc.refused:
            raise
        raise _api_refusal(exc, doing) from exc


async def _finish(services: Services, reversal: Reversal, **values: Any) -> None:
    """Done: the reversal and the item (`reversed`, the outbox trigger tells the platform)."""
    now = datetime.now(UTC)
    async with services.sessionmaker() as session, session.begin():
        row = await session.get(Reversal, reversal.id, with_for_update=True)
        assert row is not None
        for key, value in {
            **values,
            "status": ReversalStatus.DONE.value,
            "step": ReversalStep.DONE.value,
            "finished_at": now,
            "updated_at": now,
        }.items():
            setattr(row, key, value)
        await lifecycle.transition(
            session, reversal.item_id, from_=ItemStatus.REVERSING, to=ItemStatus.REVERSED
        )
    reversal.status = ReversalStatus.DONE.value
    log.info("export_item_reversed", reversal_id=str(reversal.id), kind=reversal.kind)


async def _refuse(services: Services, reversal: Reversal, refused: Refused) -> None:
    """Refused: the reversal says why, the item is back in its status from before."""
    now = datetime.now(UTC)
    async with services.sessionmaker() as session, session.begin():
        row = await session.get(Reversal, reversal.id, with_for_update=True)
        assert row is not None
        row.status = ReversalStatus.FAILED.value
        row.failure_code = refused.code
        row.failure_message = refused.message
        row.dinero_message = refused.dinero_message
        row.differences = refused.changes
        row.finished_at = now
        await lifecycle.transition(
            session,
            reversal.item_id,
            from_=ItemStatus.REVERSING,
            to=ItemStatus(reversal.previous_status),
        )
    reversal.status = ReversalStatus.FAILED.value
    log.warning("export_item_reversal_refused", reversal_id=str(reversal.id), code=refused.code)


# --- the run -----------------------------------------------------------------------------------


async def run_reversal(
    services: Services, reversal_id: uuid.UUID, *, checkpoint: Checkpoint | None = None
) -> Later | None:
    """Take one reversal as far as it goes now; `Later` when it must be run again."""
    token = _checkpoint.set(checkpoint)
    try:
        return await _run(services, reversal_id)
    finally:
        _checkpoint.reset(token)


async def _run(services: Services, reversal_id: uuid.UUID) -> Later | None:
    async with services.sessionmaker() as session:
        reversal = await session.get(Reversal, reversal_id)
        if reversal is None or reversal.status != ReversalStatus.PENDING.value:
            return None
        item = (
            await session.execute(select(ExportItem).where(ExportItem.id == reversal.item_id))
        ).scalar_one()
        connection = await get_connection(session=session, company_id=reversal.company_id)
    try:
        if connection is None:
            raise NotConnected("Dinero is not connected.")
        client = services.dinero.client_for(
            connection, lane=Lane.EXPORT, max_wait=PACER_MAX_WAIT_SECONDS
        )
        if item.dinero_kind == LEDGER:
            return await _ledger(services, client, reversal, item)
        return await _voucher(services, client, reversal, item)
    except Refused as refused:
        await _refuse(services, reversal, refused)
        return None
    except (ReauthRequired, NotConnected, DineroUnauthorized) as exc:
        if reversal.step == ReversalStep.NEW.value:
            await _refuse(
                services,
                reversal,
                Refused(
                    "reauth_required",
                    "Dinero no longer accepts the connection: reconnect Dinero, then reverse "
                    "the item again.",
                    dinero_message=getattr(exc, "dinero_message", None),
                ),
            )
            return None
        return await _backoff(services, reversal, exc)  # under way: finish after reconnecting
    except PacerBusy as busy:
        return Later(busy.retry_after)
    except DineroApiError as exc:
        if exc.transient:
            return await _backoff(services, reversal, exc)
        raise
    except DineroError as exc:
        return await _backoff(services, reversal, exc)


async def _backoff(services: Services, reversal: Reversal, exc: Exception) -> Later:
    attempts = reversal.attempts + 1
    await _save(services, reversal, attempts=attempts)
    delay = EXPORT_ITEM.delay(attempts)
    log.info("export_item_reversal_later", reversal_id=str(reversal.id), error=str(exc))
    return Later(delay.total_seconds())


def _api_refusal(exc: DineroApiError, doing: str) -> Refused:
    fields = exc.fields_text
    said = (exc.message or str(exc)) + (f" ({fields})" if fields else "")
    if exc.refuses_date:
        return Refused(
            "accounting_year_closed",
            f"Dinero refused to {doing} on that date: its accounting year is closed or "
            "missing. Give a voucher_date in an open year.",
            dinero_message=said,
        )
    return Refused("dinero_rejected", f"Dinero refused to {doing}: {said}", dinero_message=said)


# --- vouchers: delete a draft, or book a reversing manual voucher --------------------------------


async def _read_original(
    client: DineroClient, item: ExportItem
) -> PurchaseVoucher | ManualVoucher | None:
    assert item.dinero_guid is not None
    try:
        if item.dinero_kind == MANUAL:
            return await client.get_manual_voucher(item.dinero_guid)
        return await client.get_purchase_voucher(item.dinero_guid)
    except DineroNotFound:
        return None


def _edited(item: ExportItem, current: PurchaseVoucher | ManualVoucher) -> None:
    if not item.dinero_sent:
        return
    changes = differences(item.dinero_sent, baseline(current))
    if changes:
        raise Refused(
            "voucher_edited_in_dinero",
            "The voucher was changed in Dinero since it was exported; reverse it there, or "
            "undo the changes first.",
            changes=changes,
        )


async def _voucher(
    services: Services, client: DineroClient, reversal: Reversal, item: ExportItem
) -> Later | None:
    step = reversal.step
    if step == ReversalStep.CREATE_SENT.value and await _find_reversing(client, reversal, item):
        step = reversal.step
    if step == ReversalStep.CREATED.value:
        return await _book(services, client, reversal)
    if step == ReversalStep.BOOK_SENT.value:
        return await _booked_or_book(services, client, reversal)
    current = await _read_original(client, item)
    if current is None:
        if step == ReversalStep.DELETE_SENT.value:  # our delete went through
            await _finish(services, reversal)
            return None
        raise Refused(
            "voucher_missing_in_dinero",
            "Dinero no longer has the voucher (deleted there); there is nothing to reverse.",
        )
    _edited(item, current)
    if current.is_draft:
        await _delete_draft(services, client, reversal, current)
        return None
    return await _create_reversing(services, client, reversal, current)


async def _delete_draft(
    services: Services,
    client: DineroClient,
    reversal: Reversal,
    draft: PurchaseVoucher | ManualVoucher,
) -> None:
    await _sending(
        services,
        reversal,
        ReversalStep.DELETE_SENT,
        "before_delete",
        kind=ReversalKind.DRAFT_DELETED.value,
    )
    try:
        if isinstance(draft, ManualVoucher):
            await client.delete_manual_voucher(draft.guid, draft.timestamp or "")
        else:
            await client.delete_purchase_voucher(draft.guid, draft.timestamp)
    except DineroNotFound:
        pass  # gone already: the delete (ours, an earlier one) is done
    except DineroStaleVersion as exc:
        raise Refused(
            "voucher_edited_in_dinero",
            "The draft was changed in Dinero a moment ago; look at it, then reverse again.",
            dinero_message=exc.message,
        ) from exc
    await checkpoint("after_delete")
    await _finish(services, reversal)


def _reversing_lines(original: PurchaseVoucher | ManualVoucher) -> list[ManualVoucherLine]:
    """The opposite of each line: money back into the paying account, the VAT reversed."""
    if isinstance(original, PurchaseVoucher):
        return [
            ManualVoucherLine(
                amount=line.amount_incl_vat_value,
                description=line.description,
                account_number=original.deposit_account_number,
                account_vat_code=NO_VAT,
                balancing_account_number=line.account_number,
                balancing_account_vat_code=line.vat_code,
            )
            for line in original.lines
        ]
    return [
        ManualVoucherLine(
            amount=-line.amount_incl_vat_value,
            description=line.description,
            account_number=line.account_number,
            account_vat_code=line.account_vat_code,
            balancing_account_number=line.balancing_account_number,
            balancing_account_vat_code=line.balancing_account_vat_code,
        )
        for line in original.lines
    ]


async def _create_reversing(
    services: Services,
    client: DineroClient,
    reversal: Reversal,
    original: PurchaseVoucher | ManualVoucher,
) -> Later | None:
    voucher = ManualVoucherCreate(
        voucher_date=reversal.voucher_date,
        lines=_reversing_lines(original),
        file_guid=original.file_guid,
        external_reference=reference(reversal),
    )
    await _sending(
        services,
        reversal,
        ReversalStep.CREATE_SENT,
        "before_create",
        kind=ReversalKind.MANUAL_VOUCHER.value,
        original_file_guid=original.file_guid,
        original_voucher_number=original.voucher_number,
    )
    created = await _create(
        services, reversal, client.create_manual_voucher(voucher), "create the reversing voucher"
    )
    await checkpoint("after_create")
    await _save(
        services,
        reversal,
        step=ReversalStep.CREATED.value,
        dinero_guid=created.guid,
        dinero_timestamp=created.timestamp,
    )
    return await _book(services, client, reversal)


async def _find_reversing(client: DineroClient, reversal: Reversal, item: ExportItem) -> bool:
    """After an uncertain create: ours is the manual voucher on the original's file that
    carries our reference."""
    file_guid = reversal.original_file_guid
    if file_guid is None:
        return False
    files = await client.list_files(file_status="Used")
    linked = [
        link.voucher_guid
        for stored in files
        if stored.file_guid == file_guid
        for link in stored.linked
        if link.voucher_guid != item.dinero_guid
    ]
    for guid in linked:
        try:
            candidate = await client.get_manual_voucher(guid)
        except DineroNotFound:
            continue
        if candidate.external_reference == reference(reversal):
            booked = not candidate.is_draft
            reversal.step = (ReversalStep.BOOK_SENT if booked else ReversalStep.CREATED).value
            reversal.dinero_guid = candidate.guid
            reversal.dinero_timestamp = candidate.timestamp
            log.info("reversing_voucher_found", reversal_id=str(reversal.id))
            return True
    return False


async def _book(services: Services, client: DineroClient, reversal: Reversal) -> Later | None:
    assert reversal.dinero_guid is not None
    await _sending(
        services,
        reversal,
        ReversalStep.BOOK_SENT,
        "before_book",
        dinero_guid=reversal.dinero_guid,
        dinero_timestamp=reversal.dinero_timestamp,
    )
    try:
        booked = await client.book_manual_voucher(
            reversal.dinero_guid, reversal.dinero_timestamp or ""
        )
    except DineroStaleVersion:
        return await _booked_or_book(services, client, reversal)
    except DineroApiError as exc:
        if not exc.refused:
            raise
        await _discard(client, reversal)
        raise _api_refusal(exc, "book the reversing voucher") from exc
    await checkpoint("after_book")
    await _finish(services, reversal, voucher_number=booked.voucher_number)
    return None


async def _booked_or_book(
    services: Services, client: DineroClient, reversal: Reversal
) -> Later | None:
    """After an uncertain booking: booked already, or book it (with its current timestamp)."""
    assert reversal.dinero_guid is not None
    current = await client.get_manual_voucher(reversal.dinero_guid)
    if not current.is_draft:
        await _finish(services, reversal, voucher_number=current.voucher_number)
        return None
    reversal.dinero_timestamp = current.timestamp
    return await _book(services, client, reversal)


async def _discard(client: DineroClient, reversal: Reversal) -> None:
    """Delete the reversing draft Dinero would not book, so nothing half-done stays."""
    assert reversal.dinero_guid is not None
    try:
        draft = await client.get_manual_voucher(reversal.dinero_guid)
        if draft.is_draft:
            await client.delete_manual_voucher(draft.guid, draft.timestamp or "")
    except DineroError as exc:  # the refusal is reported either way
        log.warning("reversing_draft_not_deleted", reversal_id=str(reversal.id), error=str(exc))


# --- ledger items: a booked, opposite ledger item ----------------------------------------------


async def _ledger(
    services: Services, client: DineroClient, reversal: Reversal, item: ExportItem
) -> Later | None:
    if reversal.step in (ReversalStep.CREATE_SENT.value, ReversalStep.BOOK_SENT.value):
        statuses = {s.id: s for s in await _status(client, reversal.id)}
        status = statuses.get(reversal.id)
        if status is None or status.status is None:
            if reversal.step == ReversalStep.CREATE_SENT.value:
                reversal.step = ReversalStep.NEW.value  # never arrived: send again
        elif status.is_booked:
            await _finish(services, reversal, voucher_number=status.voucher_number)
            return None
        elif status.is_pending_booking:
            return Later(BOOKING_POLL_SECONDS)
        else:
            await _save(
                services, reversal, step=ReversalStep.CREATED.value, dinero_version=status.version
            )
    if reversal.step == ReversalStep.NEW.value:
        await _ledger_create(services, client, reversal, item)
    if reversal.dinero_version is None:  # the create answer did not carry it: read it
        for status in await _status(client, reversal.id):
            reversal.dinero_version = status.version
    await _sending(
        services,
        reversal,
        ReversalStep.BOOK_SENT,
        "before_ledger_book",
        dinero_version=reversal.dinero_version,
    )
    ref = LedgerItemRef(id=reversal.id, version=reversal.dinero_version)
    try:
        await client.book_ledger_items([ref])
    except DineroApiError as exc:
        if not exc.refused:
            raise
        try:  # nothing half-done: the unbooked reversing item leaves the Kassekladde
            await client.delete_ledger_items([ref])
        except DineroError as gone:
            log.warning("reversing_ledger_item_not_deleted", error=str(gone))
        raise _api_refusal(exc, "book the reversing ledger item") from exc
    await checkpoint("after_ledger_book")
    return Later(BOOKING_POLL_SECONDS)  # booking is asynchronous: look again shortly


async def _status(client: DineroClient, item_id: uuid.UUID) -> list[Any]:
    try:
        return list(await client.ledger_item_status([item_id]))
    except DineroNotFound:
        return []


async def _original_line(client: DineroClient, item: ExportItem) -> tuple[int, int, Decimal]:
    """The booked item's two accounts and the amount debited to the first, from its entries
    (on the date it was posted with, which is not its own when it was moved out of a closed
    period)."""
    day = item.posting_date or item.voucher_date
    entries = [
        e
        for e in await client.entries(day, day)
        if e.voucher_number is not None and e.voucher_number == item.dinero_voucher_number
    ]
    debit = next((e for e in entries if e.amount > 0), None)
    credit = next((e for e in entries if e.amount < 0), None)
    if len(entries) != 2 or debit is None or credit is None:
        raise Refused(
            "voucher_edited_in_dinero",
            "The booked entry in Dinero is not the two-account line that was exported; "
            "reverse it in Dinero's Kassekladde.",
        )
    return debit.account_number, credit.account_number, debit.amount


async def _ledger_create(
    services: Services, client: DineroClient, reversal: Reversal, item: ExportItem
) -> None:
    account, balancing, amount = await _original_line(client, item)
    description = f"Tilbageførsel: {item.description or item.external_id}"[:250]
    ledger_item = LedgerItem(
        id=reversal.id,
        voucher_date=reversal.voucher_date,
        lines=[
            LedgerItemLine(
                id=reversal.id,
                amount=-amount,
                description=description,
                account_number=account,
                account_vat_code=NO_VAT,
                balancing_account_number=balancing,
                balancing_account_vat_code=NO_VAT,
            )
        ],
    )
    await _sending(
        services,
        reversal,
        ReversalStep.CREATE_SENT,
        "before_ledger_create",
        kind=ReversalKind.LEDGER_ITEM.value,
    )
    refs = await _create(
        services,
        reversal,
        client.create_ledger_items([ledger_item]),
        "create the reversing ledger item",
    )
    await checkpoint("after_ledger_create")
    version = refs[0].version if refs else None
    await _save(services, reversal, step=ReversalStep.CREATED.value, dinero_version=version)
