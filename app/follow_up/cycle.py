"""One follow-up cycle for a company: notice approvals, deletions and edits of its drafts.

Every request here is in the FOLLOW_UP lane (idle capacity only, within
DINERO_FOLLOW_UP_SHARE of the organization's budget, never ahead of an export), and a request
that gets no slot within a second ends the cycle where it is (`PacerBusy`): the next cycle goes
on from the persisted state. A cycle never creates anything in Dinero. In order:

1. Late receipts waiting for their draft are attached (app/follow_up/receipts.py; export lane).
2. Approvals ("Godkend"): `entries/changes` since the company's watermark (less a 15-minute
   overlap for clock skew and slow bookings), one call per 31 days, answers for every draft at
   once. An entry whose VoucherGuid is one of our drafts' guids (in any of the spellings a uuid
   has) means it was booked, with its number. An entry that names no draft but carries one of
   our drafts' FileGuid (a file is uploaded for one draft only) makes that draft due for a read
   at once (`follow_up_checked_at` cleared, in the same commit as the watermark), and the read
   decides. Each window's bookings, read marks and the watermark commit together, so a restart
   neither skips nor loses one (a re-read window only finds items already booked). An entry
   that does not parse is logged and skipped; the others still count.
3. Deletion hints: the file archive's files attached to nothing ("Unused"), listed without date
   filters (Dinero's document swaps the meaning of `uploadedAfter` and `uploadedBefore`, so
   neither is sent), usually one call: a listed file that is a draft's and whose `Linked` does
   not name that draft means it was probably deleted (or its file replaced), whatever the
   status filter did. Only a hint: the draft is read before anything is decided.
4. Reads, one GET per draft: the hinted ones first, then every draft not read for 30 minutes,
   least recently read first, as far as the lane allows. 404 → `deleted_in_dinero`; no longer a
   draft → `booked`; another Timestamp → compared with the draft as exported
   (`dinero_changes`, shown as `edited_in_dinero`).

Status changes write their outbox event by trigger (app/outbox); the cycle wakes delivery.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from app.connection.gateway import NotConnected, ReauthRequired
from app.connection.models import get_connection
from app.dinero.client import DineroClient
from app.dinero.errors import DineroApiError, DineroError, DineroNotFound
from app.dinero.models import ManualVoucher, PurchaseVoucher, guid_key
from app.dinero.pacing import Lane, PacerBusy
from app.dinero.paging import MAX_CHANGES_WINDOW, change_windows
from app.exports.drafts import baseline, differences
from app.exports.files import archive_pages
from app.exports.mapping import MANUAL, PURCHASE
from app.exports.models import ExportItem, ItemStatus, Step
from app.exports.schedule import tell_platform
from app.exports.service import transition
from app.follow_up import receipts
from app.follow_up.models import FollowUpState
from app.follow_up.result import CycleResult
from app.services import Services

log = structlog.get_logger(__name__)

OVERLAP: Final = timedelta(minutes=15)
"""Each `entries/changes` read starts this long before the watermark (clock skew, slow bookings)."""
RECHECK_AFTER: Final = timedelta(minutes=30)
"""A draft is read again (edits) at most this often, unless the file archive hints at a change."""
PACER_MAX_WAIT_SECONDS: Final = 1.0
EXPORT_MAX_WAIT_SECONDS: Final = 5.0
MAX_FILE_PAGES: Final = 3
"""Pages of Unused files read per cycle at most: listed with no date filter, an archive
with more leaves a deleted draft whose file lies further on to the 30-minute round."""
MAX_READS_PER_CYCLE: Final = 500
TIME_SLICE_SECONDS: Final = 45.0

Checkpoint = Callable[[str], Awaitable[None]]
"""Called at named points (tests raise there to "kill" the worker)."""


async def _no_checkpoint(name: str) -> None:
    del name


@dataclass(frozen=True)
class Draft:
    """What a cycle needs of one awaiting_approval item."""

    id: uuid.UUID
    kind: str
    guid: uuid.UUID
    file_guid: str | None
    timestamp: str | None
    sent: dict[str, Any] | None
    changes: dict[str, Any] | None
    checked_at: datetime | None
    since: datetime


async def run_company(
    services: Services, company_id: str, *, checkpoint: Checkpoint | None = None
) -> CycleResult:
    """One cycle (see the module docstring); persists its progress as it goes.

    `checkpoint` is awaited at named points (tests "kill" the worker there).
    """
    result = CycleResult()
    started = datetime.now(UTC)
    deadline = time.monotonic() + TIME_SLICE_SECONDS
    async with services.sessionmaker() as session:
        connection = await get_connection(session=session, company_id=company_id)
    try:
        if connection is None:
            raise NotConnected("Connect Dinero first.")
        gateway = services.dinero
        follow = gateway.client_for(
            connection, lane=Lane.FOLLOW_UP, max_wait=PACER_MAX_WAIT_SECONDS
        )
        exports = gateway.client_for(connection, lane=Lane.EXPORT, max_wait=EXPORT_MAX_WAIT_SECONDS)
        await receipts.attach_pending(services, exports, company_id, result)
        drafts = await _drafts(services, company_id)
        result.drafts = len(drafts)
        if drafts:
            remaining, read_first = await _approvals(
                services, follow, company_id, drafts, result, started, checkpoint or _no_checkpoint
            )
            hints = read_first | await _deletion_hints(follow, remaining, result)
            await _reads(services, follow, remaining, hints, result, deadline)
        else:
            # Nothing to follow: a later draft is approved after now, so no entry is skipped.
            await _save_watermark(services, company_id, started)
    except PacerBusy as busy:
        result.stopped, result.retry_in = "budget", busy.retry_after
    except (ReauthRequired, NotConnected) as exc:
        result.stopped, result.error = "not_connected", str(exc)
    except DineroError as exc:
        result.stopped, result.error = "dinero_error", str(exc)
    await _finish(services, company_id, result, started)
    if result.changed:
        await tell_platform(services)
    log.info(
        "follow_up_cycle",
        company_id=company_id,
        drafts=result.drafts,
        requests=result.requests,
        booked=result.booked,
        deleted=result.deleted,
        edited=result.edited,
        receipts_attached=result.receipts_attached,
        stopped=result.stopped,
    )
    return result


# --- state ---------------------------------------------------------------------------------


async def _state(services: Services, company_id: str) -> FollowUpState:
    async with services.sessionmaker() as session, session.begin():
        await session.execute(
            insert(FollowUpState)
            .values(company_id=company_id, last_requests=0)
            .on_conflict_do_nothing()
        )
        state = await session.get(FollowUpState, company_id)
        assert state is not None
        return state


async def _save_watermark(services: Services, company_id: str, watermark: datetime) -> None:
    await _state(services, company_id)
    async with services.sessionmaker() as session, session.begin():
        await session.execute(
            update(FollowUpState)
            .where(FollowUpState.company_id == company_id)
            .values(entries_watermark=watermark, updated_at=func.now())
        )


async def _finish(
    services: Services, company_id: str, result: CycleResult, started: datetime
) -> None:
    interval = timedelta(seconds=services.settings.follow_up_interval_seconds)
    now = datetime.now(UTC)
    next_run = now + interval
    if result.stopped == "budget" and result.retry_in is not None:
        next_run = min(next_run, now + timedelta(seconds=max(result.retry_in, 5.0)))
    await _state(services, company_id)
    async with services.sessionmaker() as session, session.begin():
        await session.execute(
            update(FollowUpState)
            .where(FollowUpState.company_id == company_id)
            .values(
                last_run_at=started,
                next_run_at=next_run,
                last_requests=result.total_requests,
                last_error=result.error,
                updated_at=func.now(),
            )
        )


async def _drafts(services: Services, company_id: str) -> list[Draft]:
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(
                ExportItem.id,
                ExportItem.dinero_kind,
                ExportItem.dinero_guid,
                ExportItem.dinero_file_guid,
                ExportItem.dinero_timestamp,
                ExportItem.dinero_sent,
                ExportItem.dinero_changes,
                ExportItem.follow_up_checked_at,
                func.coalesce(ExportItem.exported_at, ExportItem.updated_at),
            ).where(
                ExportItem.company_id == company_id,
                ExportItem.status == ItemStatus.AWAITING_APPROVAL,
                ExportItem.dinero_guid.is_not(None),
                ExportItem.dinero_kind.in_([PURCHASE, MANUAL]),
            )
        )
        return [
            Draft(
                id=row[0],
                kind=row[1],
                guid=row[2],
                file_guid=row[3],
                timestamp=row[4],
                sent=row[5],
                changes=row[6],
                checked_at=row[7],
                since=row[8],
            )
            for row in rows.tuples()
        ]


async def _set_draft(services: Services, item_id: uuid.UUID, **values: Any) -> bool:
    """Change an item that is still awaiting approval (anything else is not ours to touch);
    a `status` among the values is a lifecycle transition (app/exports/service.py)."""
    status: ItemStatus | None = values.pop("status", None)
    async with services.sessionmaker() as session, session.begin():
        if status is not None:
            return await transition(
                session, item_id, from_=ItemStatus.AWAITING_APPROVAL, to=status, **values
            )
        done = await session.execute(
            update(ExportItem)
            .where(ExportItem.id == item_id, ExportItem.status == ItemStatus.AWAITING_APPROVAL)
            .values(updated_at=datetime.now(UTC), **values)
        )
    return bool(getattr(done, "rowcount", 0))


# --- 2. approvals from entries/changes ------------------------------------------------------


async def _approvals(
    services: Services,
    client: DineroClient,
    company_id: str,
    drafts: list[Draft],
    result: CycleResult,
    now: datetime,
    checkpoint: Checkpoint,
) -> tuple[list[Draft], set[uuid.UUID]]:
    """Book every draft whose entries appeared; returns the drafts still unresolved and the
    ids of those to read at once (an entry carried their file but did not name them)."""
    state = await _state(services, company_id)
    by_guid = {d.guid: d for d in drafts}
    by_file = _by_file(drafts)
    since = state.entries_watermark or min(d.since for d in drafts)
    # Dinero takes whole seconds: end on the next one, so nothing of this second is left out.
    until = now.replace(microsecond=0) + timedelta(seconds=1)
    booked: set[uuid.UUID] = set()
    read_first: set[uuid.UUID] = set()
    for start, stop in change_windows(min(since - OVERLAP, now), until, MAX_CHANGES_WINDOW):
        entries = await client.entry_changes(
            start, stop, include_primo=False, on_invalid=_unparsed_entry(company_id)
        )
        result.count("entries")
        numbers: dict[uuid.UUID, int | None] = {}
        by_their_file: set[uuid.UUID] = set()
        for entry in entries:
            if (entry.type or "Normal").strip().lower() in ("primo", "ultimo"):
                continue
            named = by_guid.get(entry.voucher_guid) if entry.voucher_guid else None
            if named is not None:
                if named.guid not in booked:
                    numbers[named.guid] = numbers.get(named.guid) or entry.voucher_number
                continue
            for draft in by_file.get(guid_key(entry.file_guid) or "", ()):
                if draft.guid not in booked:
                    by_their_file.add(draft.id)
        by_their_file -= {by_guid[guid].id for guid in numbers}
        await checkpoint("after_entries")
        moment = datetime.now(UTC)
        async with services.sessionmaker() as session, session.begin():
            for guid, number in numbers.items():
                if await transition(
                    session,
                    by_guid[guid].id,
                    from_=ItemStatus.AWAITING_APPROVAL,
                    to=ItemStatus.BOOKED,
                    step=Step.BOOKED,
                    dinero_voucher_number=number,
                    booked_at=moment,
                    follow_up_checked_at=moment,
                    updated_at=moment,
                ):
                    result.booked += 1
                    result.changed += 1
                booked.add(guid)
            if by_their_file:
                # Remembered with the watermark: a cycle that ends before the read still has it
                # read first next time, although this window is not asked for again.
                await session.execute(
                    update(ExportItem)
                    .where(
                        ExportItem.id.in_(by_their_file),
                        ExportItem.status == ItemStatus.AWAITING_APPROVAL,
                    )
                    .values(follow_up_checked_at=None)
                )
                read_first |= by_their_file
            await session.execute(
                update(FollowUpState)
                .where(FollowUpState.company_id == company_id)
                .values(entries_watermark=stop, updated_at=func.now())
            )
    remaining = [d for d in drafts if d.guid not in booked]
    return remaining, {d.id for d in remaining if d.id in read_first}


def _by_file(drafts: list[Draft]) -> dict[str, list[Draft]]:
    """Drafts by their file guid, spelled one way (see `guid_key`)."""
    found: dict[str, list[Draft]] = {}
    for draft in drafts:
        key = guid_key(draft.file_guid)
        if key:
            found.setdefault(key, []).append(draft)
    return found


def _unparsed_entry(company_id: str) -> Callable[[Any, Exception], None]:
    def report(raw: Any, error: Exception) -> None:
        log.warning(
            "follow_up_entry_unreadable",
            company_id=company_id,
            entry=str(raw)[:500],
            error=str(error)[:500],
        )

    return report


# --- 3. deletion hints from the file archive -----------------------------------------------


async def _deletion_hints(
    client: DineroClient, drafts: list[Draft], result: CycleResult
) -> set[uuid.UUID]:
    """Drafts whose file the archive lists unattached to them (a hint, not a verdict).

    Deleting a draft in Dinero leaves its file in the archive, unattached ("Unused"); so does
    the accountant replacing the draft's file. Unused files are few (what was uploaded but not
    yet put on a voucher), so this is usually one request however many drafts wait. No date
    filter is sent: Dinero documents `uploadedAfter` as "limits the search to the given before
    date" (and `uploadedBefore` the other way round), and a filter read either way must not
    hide today's files. What decides is each listed file's `Linked`, not the status filter.
    """
    files = _by_file(drafts)
    if not files:
        return set()
    wanted = sum(len(found) for found in files.values())
    seen: set[uuid.UUID] = set()
    hints: set[uuid.UUID] = set()
    async for listed in archive_pages(client, file_status="Unused", max_pages=MAX_FILE_PAGES):
        result.count("files")
        for archived in listed:
            for draft in files.get(guid_key(archived.file_guid) or "", ()):
                seen.add(draft.id)
                if all(link.voucher_guid != draft.guid for link in archived.linked):
                    hints.add(draft.id)
        if len(seen) >= wanted:
            break
    result.hints = len(hints)
    return hints


# --- 4. reads, one draft at a time -----------------------------------------------------------


async def _reads(
    services: Services,
    client: DineroClient,
    drafts: list[Draft],
    hints: set[uuid.UUID],
    result: CycleResult,
    deadline: float,
) -> None:
    stale_before = datetime.now(UTC) - RECHECK_AFTER
    due = [
        d for d in drafts if d.id in hints or d.checked_at is None or d.checked_at <= stale_before
    ]
    due.sort(
        key=lambda d: (
            d.id not in hints,
            d.checked_at is not None,
            d.checked_at or d.since,
            d.since,
        )
    )
    for draft in due[:MAX_READS_PER_CYCLE]:
        if time.monotonic() > deadline:
            break
        await _read(services, client, draft, result)


def _booking_time(voucher: PurchaseVoucher | ManualVoucher) -> datetime | None:
    if not voucher.booking_time:
        return None
    try:
        moment = datetime.fromisoformat(voucher.booking_time.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _read(
    services: Services, client: DineroClient, draft: Draft, result: CycleResult
) -> None:
    voucher: PurchaseVoucher | ManualVoucher
    try:
        if draft.kind == PURCHASE:
            voucher = await client.get_purchase_voucher(draft.guid)
        else:
            voucher = await client.get_manual_voucher(draft.guid)
    except DineroNotFound:
        result.count("vouchers")
        result.reads += 1
        if await _set_draft(
            services,
            draft.id,
            status=ItemStatus.DELETED_IN_DINERO,
            follow_up_checked_at=datetime.now(UTC),
        ):
            result.deleted += 1
            result.changed += 1
            log.info("draft_deleted_in_dinero", item_id=str(draft.id))
        return
    except DineroApiError as exc:
        if exc.transient:
            raise  # Dinero is unavailable: end the cycle
        # This draft alone cannot be read: go round it, so it does not hold up the others.
        result.count("vouchers")
        result.error = str(exc)
        log.warning("draft_unreadable", item_id=str(draft.id), error=str(exc))
        await _set_draft(services, draft.id, follow_up_checked_at=datetime.now(UTC))
        return
    result.count("vouchers")
    result.reads += 1
    now = datetime.now(UTC)
    if voucher.is_booked:  # Dinero's status words stay in app/dinero
        if await _set_draft(
            services,
            draft.id,
            status=ItemStatus.BOOKED,
            step=Step.BOOKED,
            dinero_voucher_number=voucher.voucher_number,
            dinero_timestamp=voucher.timestamp,
            booked_at=_booking_time(voucher) or now,
            follow_up_checked_at=now,
        ):
            result.booked += 1
            result.changed += 1
        return
    values: dict[str, Any] = {"follow_up_checked_at": now}
    if draft.sent is None:
        # Exported before the draft was recorded at creation: measure edits from this read.
        values.update(dinero_sent=baseline(voucher), dinero_timestamp=voucher.timestamp)
    elif voucher.timestamp != draft.timestamp:
        changes = differences(draft.sent, baseline(voucher))
        if changes != (draft.changes or {}).get("changes", []):
            values["dinero_changes"] = (
                {"detected_at": now.isoformat(), "changes": changes} if changes else None
            )
        values["dinero_timestamp"] = voucher.timestamp
    if await _set_draft(services, draft.id, **values) and "dinero_changes" in values:
        result.changed += 1
        if values["dinero_changes"] is not None:
            result.edited += 1
            log.info("draft_edited_in_dinero", item_id=str(draft.id))
