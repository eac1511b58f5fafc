"""Ledger items (Kassekladde): add, update, read, book asynchronously, poll, delete.

Booking is asynchronous as in Dinero: `book` only queues the items (PendingBooking); they become
Booked, with a voucher number and entries, once `booking_delay_seconds` have passed *and* at
least `booking_status_polls` status polls have seen them pending. The handle can also finish
pending bookings at once (`Sandbox.complete_ledger_bookings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from fastapi import APIRouter, Request, Response

from dinero_sandbox.auth import OrgCtx
from dinero_sandbox.bookkeeping import (
    ZERO,
    Posting,
    Writer,
    check_line_accounts,
    resolve_vat,
    side_postings,
    side_total,
    write_entries,
    year_for,
)
from dinero_sandbox.chart import CREDITORS_ACCOUNT
from dinero_sandbox.config import SandboxConfig
from dinero_sandbox.errors import (
    DUPLICATED_ENTITY,
    LIMIT_EXCEEDED,
    NOT_FOUND,
    DineroError,
    timestamp_outdated,
    validation_error,
)
from dinero_sandbox.state import LedgerItem, LedgerLine, OrgBooks
from dinero_sandbox.vouchers import MANUAL
from dinero_sandbox.wire import (
    LEDGER_ITEMS,
    LEDGER_REFS,
    LEDGER_STATUS_REFS,
    DineroJSONResponse,
    LedgerItemModel,
    LedgerItemModelV2,
    check_money,
    parse,
    parse_date,
    raise_if,
    read_json,
)

MAX_ITEMS = 1000  # "The maximum number of ledger items in the same ledger is 1000."

router = APIRouter()


def item_not_found(item_id: str) -> DineroError:
    """400 "ledgerItemNotFound", as Dinero answers for an unknown ledger item id."""
    return DineroError(
        400, NOT_FOUND, "ledgerItemNotFound", {"Id": f"Ledger item {item_id} was not found"}
    )


def _live(books: OrgBooks, item_id: str) -> LedgerItem:
    item = books.ledger_items.get(item_id.lower())
    if item is None or item.deleted_at is not None:
        raise item_not_found(item_id)
    return item


def _check_version(item: LedgerItem, version: str | None) -> None:
    if version is not None and version != item.version:
        raise timestamp_outdated(f"Ledger item {item.id}")


# --------------------------------------------------------------------------------------------
# Validation and postings


def ledger_postings(books: OrgBooks, item: LedgerItem) -> list[Posting]:
    """Postings of one item: amounts are incl. VAT on both sides (DKK)."""
    postings: list[Posting] = []
    for line in item.lines:
        account_number = line.account_number
        if line.is_payment_for_voucher_id is not None:
            account_number = CREDITORS_ACCOUNT  # paying a supplier's (credit) voucher
        if account_number is not None:
            vat = resolve_vat(books, line.account_vat_code, books.account(account_number))
            postings.extend(side_postings(account_number, line.amount, vat, line.description))
        if line.balancing_account_number is not None:
            vat = resolve_vat(
                books,
                line.balancing_account_vat_code,
                books.account(line.balancing_account_number),
            )
            postings.extend(
                side_postings(line.balancing_account_number, -line.amount, vat, line.description)
            )
    return postings


def build_item(
    w: Writer, model: LedgerItemModelV2, prefix: str, errors: dict[str, str]
) -> LedgerItem | None:
    """Validate one LedgerItemModelV2 (errors keyed like `[0].Lines[1].Amount`)."""
    books = w.books
    item_id = model.id or w.ids.guid()
    try:
        voucher_date = parse_date(model.voucher_date, f"{prefix}.VoucherDate") or w.today
    except DineroError as exc:
        errors.update(exc.validation_errors or {})
        voucher_date = w.today
    if model.voucher_number is not None and model.voucher_number <= 0:
        errors[f"{prefix}.VoucherNumber"] = "The voucher number must be positive"
    if model.file_guid and model.file_guid not in books.files:
        errors[f"{prefix}.FileGuid"] = f"File {model.file_guid} does not exist"
    if not model.lines:
        errors[f"{prefix}.Lines"] = "At least one line is required"
        return None
    lines: list[LedgerLine] = []
    line_ids: set[str] = set()
    for index, line in enumerate(model.lines):
        where = f"{prefix}.Lines[{index}]"
        if line.amount is None:
            errors[f"{where}.Amount"] = "The Amount field is required."
            continue
        if line.amount == 0:
            errors[f"{where}.Amount"] = "The amount cannot be 0"
        try:
            amount = check_money(line.amount, f"{where}.Amount")
        except DineroError as exc:
            errors.update(exc.validation_errors or {})
            amount = line.amount
        if line.is_payment_for_voucher_id is not None:
            if line.account_number is not None:
                errors[f"{where}.AccountNumber"] = (
                    "AccountNumber must be empty when IsPaymentForVoucherId is set"
                )
            voucher = books.purchase_vouchers.get(line.is_payment_for_voucher_id)
            if voucher is None or voucher.deleted_at is not None or voucher.is_draft:
                errors[f"{where}.IsPaymentForVoucherId"] = (
                    f"No booked voucher {line.is_payment_for_voucher_id} to pay"
                )
        elif line.account_number is None:
            errors[f"{where}.AccountNumber"] = "The AccountNumber field is required."
        check_line_accounts(books, line, where, errors)
        line_id = line.id or w.ids.guid()
        if line_id in line_ids:
            errors[f"{where}.Id"] = f"Line id {line_id} is used twice"
        line_ids.add(line_id)
        lines.append(
            LedgerLine(
                id=line_id,
                amount=amount,
                description=line.description,
                account_number=line.account_number,
                account_vat_code=line.account_vat_code,
                balancing_account_number=line.balancing_account_number,
                balancing_account_vat_code=line.balancing_account_vat_code,
                is_payment_for_voucher_id=line.is_payment_for_voucher_id,
            )
        )
    item = LedgerItem(
        id=item_id,
        version="",
        voucher_date=voucher_date,
        lines=lines,
        created_at=w.now,
        updated_at=w.now,
        voucher_number=model.voucher_number,
        file_guid=model.file_guid or None,
    )
    if not any(k.startswith(prefix) for k in errors):
        difference = side_total(ledger_postings(books, item))
        if difference != ZERO:
            errors[f"{prefix}.Lines"] = (
                f"The ledger item does not balance (debit and credit differ by {difference})"
            )
    return item


# --------------------------------------------------------------------------------------------
# Operations


def add_items(w: Writer, models: Sequence[LedgerItemModelV2]) -> list[LedgerItem]:
    """POST /v1.2/{org}/ledgeritems: all items are accepted or none."""
    books = w.books
    if not models:
        raise validation_error({"body": "At least one ledger item is required"})
    in_ledger = sum(1 for i in books.ledger_items.values() if i.status != "Booked")
    if len(models) + in_ledger > MAX_ITEMS:
        raise DineroError(
            400,
            LIMIT_EXCEEDED,
            f"The ledger can hold at most {MAX_ITEMS} ledger items",
            {"body": f"{in_ledger} items are in the ledger already, {len(models)} more given"},
        )
    seen: set[str] = set()
    for model in models:
        if model.id is None:
            continue
        if model.id in books.ledger_items or model.id in seen:
            raise DineroError(409, DUPLICATED_ENTITY, "Duplicated entity", {"Id": model.id})
        seen.add(model.id)
    errors: dict[str, str] = {}
    items = [build_item(w, model, f"[{i}]", errors) for i, model in enumerate(models)]
    raise_if(errors)
    created: list[LedgerItem] = []
    for item in items:
        assert item is not None
        item.version = books.next_version()
        books.ledger_items[item.id] = item
        created.append(item)
    return created


def update_items(w: Writer, models: Sequence[LedgerItemModelV2]) -> list[LedgerItem]:
    """PUT /v1/{org}/ledgeritems: Id and Version required; drafts only."""
    books = w.books
    errors: dict[str, str] = {}
    targets: list[LedgerItem] = []
    for index, model in enumerate(models):
        if model.id is None or model.version is None:
            errors[f"[{index}]"] = "Id and Version are required to update a ledger item"
            continue
        item = _live(books, model.id)
        if item.status != "Draft":
            raise validation_error(
                {f"[{index}].Id": f"Ledger item {item.id} is {item.status} and cannot change"}
            )
        _check_version(item, model.version)
        targets.append(item)
    raise_if(errors)
    replacements = [build_item(w, model, f"[{i}]", errors) for i, model in enumerate(models)]
    raise_if(errors)
    for item, new in zip(targets, replacements, strict=True):
        assert new is not None
        item.voucher_date = new.voucher_date
        item.voucher_number = new.voucher_number
        item.file_guid = new.file_guid
        item.lines = new.lines
        item.version = books.next_version()
        item.updated_at = w.now
    return targets


def book_items(w: Writer, refs: Sequence[LedgerItemModel]) -> None:
    """POST /v1/{org}/ledgeritems/book: queue for booking (checks happen now)."""
    books = w.books
    items: list[LedgerItem] = []
    for ref in refs:
        item = _live(books, ref.id)
        if item.status != "Draft":
            raise validation_error(
                {"Id": f"Ledger item {item.id} is already {item.status}"}, "Already sent to booking"
            )
        _check_version(item, ref.version)
        year_for(books, item.voucher_date)  # a missing or closed year fails at once
        items.append(item)
    for item in items:
        item.status = "PendingBooking"
        item.pending_since = w.now
        item.polls_while_pending = 0
        item.version = books.next_version()
        item.updated_at = w.now


def complete_booking(w: Writer, item: LedgerItem) -> None:
    """PendingBooking → Booked: voucher number (Bilagsnummer), entries (voucher type manuel)."""
    books = w.books
    try:
        year = year_for(books, item.voucher_date)
    except DineroError:
        item.status = "Draft"  # the booking failed (e.g. the year was closed meanwhile)
        item.version = books.next_version()
        return
    taken = books.voucher_numbers.setdefault(year.year, set())
    if item.voucher_number is not None:
        number = item.voucher_number  # kassekladde lines may share a voucher number
        taken.add(number)
    else:
        number = max(taken, default=0) + 1
        taken.add(number)
    write_entries(
        books,
        w.ids,
        postings=ledger_postings(books, item),
        entry_date=item.voucher_date,
        voucher_number=number,
        voucher_guid=item.id,
        voucher_type=MANUAL,
        file_guid=item.file_guid,
        now=w.now,
    )
    for line in item.lines:
        paid = books.purchase_vouchers.get(line.is_payment_for_voucher_id or "")
        if paid is not None:
            paid.paid = True
            paid.status = "Paid"
            paid.timestamp = books.next_timestamp()
    item.status = "Booked"
    item.booked_voucher_number = number
    item.booked_at = w.now
    item.version = books.next_version()
    item.updated_at = w.now


def advance(w: Writer, config: SandboxConfig, *, force: bool = False) -> int:
    """Finish the pending bookings that are due; returns how many were booked."""
    done = 0
    delay = timedelta(seconds=config.booking_delay_seconds)
    pending = [i for i in w.books.ledger_items.values() if i.status == "PendingBooking"]
    for item in sorted(pending, key=lambda i: (i.pending_since or w.now, i.created_at)):
        due = (
            item.pending_since is not None
            and w.now - item.pending_since >= delay
            and item.polls_while_pending >= config.booking_status_polls
        )
        if force or due:
            complete_booking(w, item)
            done += 1
    return done


# --------------------------------------------------------------------------------------------
# Routes


@router.post("/v1.2/{organizationId}/ledgeritems")
async def add(request: Request, ctx: OrgCtx) -> DineroJSONResponse:
    """Add ledger items. The contract's response is one LedgerItemReadModel: the first item's
    `{Id, Version}`; read the others' versions with /ledgeritems/ledgers or /status."""
    models = parse(LEDGER_ITEMS, await read_json(request))
    created = add_items(ctx.writer(), models)
    first = created[0]
    return DineroJSONResponse({"Id": first.id, "Version": first.version})


@router.put("/v1/{organizationId}/ledgeritems")
async def update(request: Request, ctx: OrgCtx) -> DineroJSONResponse:
    """Update ledger items (Id and Version required)."""
    models = parse(LEDGER_ITEMS, await read_json(request))
    updated = update_items(ctx.writer(), models)
    return DineroJSONResponse([{"Id": i.id, "Version": i.version} for i in updated])


@router.post("/v1/{organizationId}/ledgeritems/ledgers")
async def ledgers(request: Request, ctx: OrgCtx) -> DineroJSONResponse:
    """Get ledger items still in the ledger (not booked)."""
    refs = parse(LEDGER_REFS, await read_json(request))
    w = ctx.writer()
    advance(w, ctx.sandbox.config)
    found = []
    for ref in refs:
        item = w.books.ledger_items.get(ref.id)
        if item is not None and item.deleted_at is None and item.status != "Booked":
            found.append(item.wire())
    return DineroJSONResponse(found)


@router.post("/v1/{organizationId}/ledgeritems/book")
async def book(request: Request, ctx: OrgCtx) -> Response:
    """Send ledger items to booking (asynchronous)."""
    refs = parse(LEDGER_REFS, await read_json(request))
    book_items(ctx.writer(), refs)
    return Response(status_code=200)


@router.post("/v1/{organizationId}/ledgeritems/status")
async def status(request: Request, ctx: OrgCtx) -> DineroJSONResponse:
    """Get ledger item status (Draft, PendingBooking, Booked)."""
    refs = parse(LEDGER_STATUS_REFS, await read_json(request))
    w = ctx.writer()
    items = [_live(w.books, ref.id) for ref in refs]
    advance(w, ctx.sandbox.config)
    answer = [item.wire_status() for item in items]
    for item in items:
        if item.status == "PendingBooking":
            item.polls_while_pending += 1
    return DineroJSONResponse(answer)


@router.delete("/v1/{organizationId}/ledgeritems/delete")
async def delete(request: Request, ctx: OrgCtx) -> Response:
    """Delete ledger items (drafts only)."""
    refs = parse(LEDGER_REFS, await read_json(request))
    w = ctx.writer()
    items = []
    for ref in refs:
        item = _live(w.books, ref.id)
        if item.status != "Draft":
            raise validation_error(
                {"Id": f"Ledger item {item.id} is {item.status} and cannot be deleted"}
            )
        _check_version(item, ref.version)
        items.append(item)
    for item in items:
        item.deleted_at = w.now
        item.version = w.books.next_version()
    return Response(status_code=200)
