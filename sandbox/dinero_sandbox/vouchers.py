"""Purchase vouchers (Købsbilag), manual vouchers (Finansbilag), purchase credit notes.

Vouchers are drafts (Kladder, in Bilagsoversigt) until booked ("Godkend"); booking writes
entries and takes the next voucher number of the accounting year. Deleting a draft removes it;
deleting a booked voucher books an offsetting entry instead (Danish bookkeeping law).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from dinero_sandbox.auth import OrgCtx, check_guid
from dinero_sandbox.bookkeeping import (
    EXCHANGE_RATES,
    ZERO,
    Posting,
    Writer,
    check_line_accounts,
    check_vat_code,
    check_voucher_number_free,
    counter_account,
    effective_vat_code,
    resolve_vat,
    reverse_entries,
    round2,
    side_postings,
    side_total,
    split_excl,
    split_incl,
    take_voucher_number,
    to_dkk,
    write_entries,
    year_for,
)
from dinero_sandbox.chart import is_purchase_account
from dinero_sandbox.errors import (
    DUPLICATED_ENTITY,
    DineroError,
    not_found,
    timestamp_outdated,
    validation_error,
)
from dinero_sandbox.state import (
    Booking,
    ManualLine,
    ManualVoucher,
    OrgBooks,
    PurchaseCreditNote,
    PurchaseLine,
    PurchaseVoucher,
)
from dinero_sandbox.wire import (
    BookModel,
    DineroJSONResponse,
    ManuelVoucherCreateModel,
    ManuelVoucherLineCreateModel,
    ManuelVoucherUpdateModel,
    PurchaseCreditNoteCreateModel,
    PurchaseVoucherCreateModelV2,
    PurchaseVoucherLineCreateModel,
    PurchaseVoucherUpdateModel,
    RequiredTimestampObject,
    TimestampObject,
    check_money,
    parse_date,
    parse_model,
    raise_if,
    read_json,
)

PURCHASES = "Purchases"  # EntryReadModel.VoucherType of a booked purchase voucher
MANUAL = "manuel"  # … of a manual voucher (and of booked ledger items)
PURCHASE_CREDIT_NOTE = "PurchaseCreditNote"
REGIONS = {"dk": "DK", "eu": "EU", "world": "World"}

router = APIRouter()


# --------------------------------------------------------------------------------------------
# Purchase voucher validation


@dataclass
class PurchaseInput:
    """The fields create and update share."""

    purchase_type: str
    lines: Sequence[PurchaseVoucherLineCreateModel] | None
    voucher_date: str | None
    deposit_account_number: int | None
    region_key: str | None
    file_guid: str | None
    contact_guid: str | None
    payment_date: str | None
    currency_key: str | None
    external_reference: str | None


def _check_contact(books: OrgBooks, guid: str | None, field: str, errors: dict[str, str]) -> None:
    if guid is None:
        return
    contact = books.records["contacts"].get(guid)
    if contact is None or contact.deleted_at is not None:
        errors[field] = f"Contact {guid} does not exist"


def _check_file(books: OrgBooks, guid: str | None, errors: dict[str, str]) -> None:
    if guid and guid not in books.files:
        errors["FileGuid"] = f"File {guid} does not exist"


def purchase_lines(
    books: OrgBooks,
    lines: Sequence[PurchaseVoucherLineCreateModel] | None,
    errors: dict[str, str],
    *,
    keep_tags: bool = True,
) -> list[PurchaseLine]:
    """Validate and split purchase lines (amounts paid, incl. VAT)."""
    if not lines:
        errors["Lines"] = "At least one line is required"
        return []
    result: list[PurchaseLine] = []
    for index, line in enumerate(lines):
        where = f"Lines[{index}]"
        account = books.account(line.account_number)
        if line.account_number is None:
            errors[f"{where}.AccountNumber"] = "The AccountNumber field is required."
        elif account is None:
            errors[f"{where}.AccountNumber"] = f"Account {line.account_number} does not exist"
        elif account.hidden:
            errors[f"{where}.AccountNumber"] = f"Account {line.account_number} is hidden"
        elif not is_purchase_account(account.number):
            errors[f"{where}.AccountNumber"] = (
                f"Account {account.number} is not a purchase account (2000-9399)"
            )
        check_vat_code(books, line.vat_code, f"{where}.VatCode", errors)
        vat = resolve_vat(books, line.vat_code, account)
        if line.vat_code is not None and vat is not None and vat.kind != "purchase":
            errors[f"{where}.VatCode"] = f"VAT code {vat.code} is not a purchase VAT type"
        if line.amount <= 0:
            errors[f"{where}.Amount"] = (
                "The amount must be positive; purchase vouchers cannot have negative amounts"
            )
        try:
            amount = check_money(line.amount, f"{where}.Amount")
        except DineroError as exc:
            errors.update(exc.validation_errors or {})
            amount = line.amount
        if account is None or f"{where}.AccountNumber" in errors:
            continue
        split = split_incl(amount, vat)
        result.append(
            PurchaseLine(
                account_number=account.number,
                amount=amount,
                vat_code=effective_vat_code(books, line.vat_code, account),
                excl_vat=split.excl,
                vat=split.vat,
                description=line.description,
                account_tag_name=line.account_tag_name if keep_tags else None,
                tag_id=line.tag_id if keep_tags else None,
                tag_version=line.tag_version if keep_tags else None,
                tag_synonym=line.synonym_with_most_weight if keep_tags else None,
            )
        )
    return result


@dataclass
class CheckedPurchase:
    purchase_type: str
    voucher_date: date
    payment_date: date | None
    deposit_account_number: int | None
    region_key: str | None
    currency_key: str
    lines: list[PurchaseLine]


def check_purchase(
    books: OrgBooks, data: PurchaseInput, today: date, *, keep_tags: bool = True
) -> CheckedPurchase:
    """All of Dinero's rules for a purchase voucher; one 400 listing every problem."""
    errors: dict[str, str] = {}
    purchase_type = data.purchase_type.strip().lower()
    if purchase_type not in ("cash", "credit"):
        errors["PurchaseType"] = "PurchaseType must be 'cash' or 'credit'"
    try:
        voucher_date = parse_date(data.voucher_date, "VoucherDate") or today
    except DineroError as exc:
        errors.update(exc.validation_errors or {})
        voucher_date = today
    try:
        payment_date = parse_date(data.payment_date, "PaymentDate")
    except DineroError as exc:
        errors.update(exc.validation_errors or {})
        payment_date = None
    region = data.region_key
    if region is not None:
        region = REGIONS.get(region.lower())
        if region is None:
            errors["RegionKey"] = "RegionKey must be DK, EU or World"
    currency = (data.currency_key or "DKK").upper()
    deposit = data.deposit_account_number
    if purchase_type == "cash":
        account = books.account(deposit)
        if deposit is None:
            errors["DepositAccountNumber"] = "A cash purchase needs a DepositAccountNumber"
        elif account is None or not account.deposit:
            errors["DepositAccountNumber"] = f"Account {deposit} is not a deposit account"
        elif account.hidden:
            errors["DepositAccountNumber"] = f"Deposit account {deposit} is hidden"
        if currency != "DKK":
            errors["CurrencyKey"] = "Cash purchases are always in DKK"
        payment_date = payment_date or voucher_date
    elif purchase_type == "credit":
        if data.contact_guid is None:
            errors["ContactGuid"] = "A credit purchase needs a supplier (ContactGuid)"
        _check_contact(books, data.contact_guid, "ContactGuid", errors)
        if currency not in EXCHANGE_RATES:
            errors["CurrencyKey"] = f"Currency {currency} is not supported"
        deposit = None
        payment_date = payment_date or voucher_date
    _check_file(books, data.file_guid, errors)
    lines = purchase_lines(books, data.lines, errors, keep_tags=keep_tags)
    raise_if(errors)
    return CheckedPurchase(
        purchase_type=purchase_type,
        voucher_date=voucher_date,
        payment_date=payment_date,
        deposit_account_number=deposit,
        region_key=region or "DK",
        currency_key=currency,
        lines=lines,
    )


def _input(
    model: PurchaseVoucherCreateModelV2 | PurchaseVoucherUpdateModel,
) -> PurchaseInput:
    return PurchaseInput(
        purchase_type=model.purchase_type,
        lines=model.lines,
        voucher_date=model.voucher_date,
        deposit_account_number=model.deposit_account_number,
        region_key=model.region_key,
        file_guid=model.file_guid,
        contact_guid=model.contact_guid,
        payment_date=model.payment_date,
        currency_key=model.currency_key,
        external_reference=model.external_reference,
    )


# --------------------------------------------------------------------------------------------
# Purchase voucher operations (used by the API and by the accountant's actions)


def create_purchase_voucher(w: Writer, model: PurchaseVoucherCreateModelV2) -> PurchaseVoucher:
    """POST /v1.2/{org}/vouchers/purchase: a new draft."""
    data = _input(model)
    checked = check_purchase(w.books, data, w.today)
    voucher = PurchaseVoucher(
        guid=w.ids.guid(),
        internal_id=w.books.next_internal_id(),
        purchase_type=checked.purchase_type,
        voucher_date=checked.voucher_date,
        lines=checked.lines,
        timestamp=w.books.next_timestamp(),
        created_at=w.now,
        updated_at=w.now,
        payment_date=checked.payment_date,
        deposit_account_number=checked.deposit_account_number,
        region_key=checked.region_key,
        file_guid=data.file_guid or None,
        contact_guid=data.contact_guid,
        currency_key=checked.currency_key,
        external_reference=data.external_reference,
    )
    w.books.purchase_vouchers[voucher.guid] = voucher
    return voucher


def get_purchase_voucher(books: OrgBooks, guid: str) -> PurchaseVoucher:
    voucher = books.purchase_vouchers.get(guid.lower())
    if voucher is None or voucher.deleted_at is not None:
        raise not_found("Purchase voucher")
    return voucher


def refresh_status(voucher: PurchaseVoucher, today: date) -> None:
    """A booked, unpaid credit purchase past its payment date is Overdue."""
    if voucher.purchase_type == "credit" and voucher.status in ("Booked", "Overdue"):
        overdue = voucher.payment_date is not None and voucher.payment_date < today
        voucher.status = "Overdue" if overdue and not voucher.paid else "Booked"


def _check_timestamp(current: str, given: str | None, what: str) -> None:
    if given is not None and given != current:
        raise timestamp_outdated(what)


def update_purchase_voucher(
    w: Writer, voucher: PurchaseVoucher, model: PurchaseVoucherUpdateModel, *, tags: bool
) -> PurchaseVoucher:
    """PUT: replace a draft (Timestamp required and current)."""
    if not voucher.is_draft:
        raise validation_error(
            {"Status": "Booked purchase vouchers cannot be updated"}, "Voucher is booked"
        )
    _check_timestamp(voucher.timestamp, model.timestamp, "The purchase voucher")
    data = _input(model)
    checked = check_purchase(w.books, data, w.today, keep_tags=tags)
    voucher.purchase_type = checked.purchase_type
    voucher.voucher_date = checked.voucher_date
    voucher.payment_date = checked.payment_date
    voucher.deposit_account_number = checked.deposit_account_number
    voucher.region_key = checked.region_key
    voucher.currency_key = checked.currency_key
    voucher.lines = checked.lines
    voucher.file_guid = data.file_guid or None
    voucher.contact_guid = data.contact_guid
    voucher.external_reference = data.external_reference
    voucher.timestamp = w.books.next_timestamp()
    voucher.updated_at = w.now
    return voucher


def _recheck_lines(books: OrgBooks, lines: Sequence[PurchaseLine]) -> None:
    """Booking re-checks the chart: an account hidden since the draft was made is refused."""
    errors: dict[str, str] = {}
    for index, line in enumerate(lines):
        account = books.accounts.get(line.account_number)
        if account is None:
            errors[f"Lines[{index}].AccountNumber"] = f"Account {line.account_number} is gone"
        elif account.hidden:
            errors[f"Lines[{index}].AccountNumber"] = f"Account {line.account_number} is hidden"
        if line.vat_code != "none" and line.vat_code not in books.vat_types:
            errors[f"Lines[{index}].VatCode"] = f"VAT code {line.vat_code} does not exist"
    raise_if(errors)


def purchase_postings(
    books: OrgBooks,
    lines: Sequence[PurchaseLine],
    counter: int,
    contact_guid: str | None,
    currency: str,
    *,
    sign: Decimal = Decimal(1),
) -> list[Posting]:
    postings: list[Posting] = []
    for line in lines:
        vat = resolve_vat(books, line.vat_code, None)
        postings.extend(
            side_postings(line.account_number, sign * line.amount, vat, line.description)
        )
    postings.append(Posting(counter, -side_total(postings), None, None, contact_guid))
    return to_dkk(postings, currency)


def book_purchase_voucher(
    w: Writer, voucher: PurchaseVoucher, *, timestamp: str | None, number: int | None
) -> PurchaseVoucher:
    """Book (Godkend) a draft: entries, voucher number, status Paid (cash) / Booked (credit)."""
    if not voucher.is_draft:
        raise validation_error(
            {"Status": "The purchase voucher is already booked"}, "Voucher is booked"
        )
    _check_timestamp(voucher.timestamp, timestamp, "The purchase voucher")
    if not voucher.lines:
        raise validation_error({"Lines": "A voucher without lines cannot be booked"})
    _recheck_lines(w.books, voucher.lines)
    if voucher.purchase_type == "cash":
        deposit = w.books.account(voucher.deposit_account_number)
        if deposit is None or deposit.hidden or not deposit.deposit:
            raise validation_error(
                {
                    "DepositAccountNumber": f"Deposit account {voucher.deposit_account_number} "
                    "is hidden or gone"
                }
            )
    year = year_for(w.books, voucher.voucher_date)
    if number is not None:
        check_voucher_number_free(w.books, year, number)
    counter = counter_account(voucher.purchase_type, voucher.deposit_account_number)
    postings = purchase_postings(
        w.books, voucher.lines, counter, voucher.contact_guid, voucher.currency_key
    )
    voucher_number = take_voucher_number(w.books, year, number)
    write_entries(
        w.books,
        w.ids,
        postings=postings,
        entry_date=voucher.voucher_date,
        voucher_number=voucher_number,
        voucher_guid=voucher.guid,
        voucher_type=PURCHASES,
        file_guid=voucher.file_guid,
        now=w.now,
        contact_guid=voucher.contact_guid,
    )
    voucher.voucher_number = voucher_number
    voucher.paid = voucher.purchase_type == "cash"
    voucher.status = "Paid" if voucher.paid else "Booked"
    refresh_status(voucher, w.today)
    voucher.booking = Booking(by_type=w.by_type, username=w.username, at=w.now)
    voucher.timestamp = w.books.next_timestamp()
    voucher.updated_at = w.now
    return voucher


def delete_purchase_voucher(w: Writer, voucher: PurchaseVoucher, timestamp: str | None) -> None:
    """Delete: a draft disappears; a booked voucher gets offsetting entries."""
    _check_timestamp(voucher.timestamp, timestamp, "The purchase voucher")
    if not voucher.is_draft:
        reverse_entries(
            w.books,
            w.ids,
            voucher.guid,
            w.now,
            f"Annullering af bilag {voucher.voucher_number}",
        )
    voucher.deleted_at = w.now
    voucher.timestamp = w.books.next_timestamp()
    voucher.updated_at = w.now


def similar_purchase(
    books: OrgBooks, model: PurchaseVoucherCreateModelV2, today: date
) -> PurchaseVoucher | None:
    """A voucher that looks like the same purchase: same external reference, same file, or
    same date, type, total and payer. The newest match wins."""
    total = sum((line.amount for line in model.lines or []), Decimal(0))
    voucher_date = model.voucher_date[:10] if model.voucher_date else today.isoformat()
    best: PurchaseVoucher | None = None
    for voucher in books.purchase_vouchers.values():
        if voucher.deleted_at is not None:
            continue
        same_reference = bool(model.external_reference) and (
            voucher.external_reference == model.external_reference
        )
        same_file = bool(model.file_guid) and voucher.file_guid == model.file_guid
        same_purchase = (
            voucher_date == voucher.voucher_date.isoformat()
            and voucher.purchase_type == model.purchase_type.strip().lower()
            and voucher.total == round2(total)
            and (
                voucher.deposit_account_number == model.deposit_account_number
                if voucher.purchase_type == "cash"
                else voucher.contact_guid == model.contact_guid
            )
        )
        if (same_reference or same_file or same_purchase) and (
            best is None or voucher.created_at >= best.created_at
        ):
            best = voucher
    return best


# --------------------------------------------------------------------------------------------
# Purchase voucher routes


def _voucher_response(voucher: PurchaseVoucher, today: date) -> DineroJSONResponse:
    refresh_status(voucher, today)
    return DineroJSONResponse(voucher.wire())


@router.post("/v1.2/{organizationId}/vouchers/purchase")
async def create_purchase(request: Request, ctx: OrgCtx) -> DineroJSONResponse:
    """Create purchase voucher V2 (draft)."""
    model = parse_model(PurchaseVoucherCreateModelV2, await read_json(request))
    w = ctx.writer()
    return _voucher_response(create_purchase_voucher(w, model), w.today)


@router.post("/v1/{organizationId}/vouchers/purchase/similar")
async def similar(request: Request, ctx: OrgCtx) -> DineroJSONResponse:
    """Get similar purchase."""
    model = parse_model(PurchaseVoucherCreateModelV2, await read_json(request))
    match = similar_purchase(ctx.books, model, ctx.writer().today)
    return DineroJSONResponse(
        {
            "VoucherNumber": match.voucher_number if match else None,
            "SimilarGuid": match.guid if match else None,
            "SimilarFound": match is not None,
        }
    )


@router.get("/v1/{organizationId}/vouchers/purchase/fileguid/{fileGuid}")
async def purchase_by_file(
    file_guid: Annotated[str, Path(alias="fileGuid")], ctx: OrgCtx
) -> DineroJSONResponse:
    """Get purchase voucher guids by fileGuid."""
    guids = [
        v.guid
        for v in sorted(ctx.books.purchase_vouchers.values(), key=lambda v: v.created_at)
        if v.deleted_at is None and v.file_guid == file_guid
    ]
    return DineroJSONResponse(guids)


@router.get("/v1/{organizationId}/vouchers/purchase/{guid}")
async def get_purchase(guid: str, ctx: OrgCtx) -> DineroJSONResponse:
    """Get purchase voucher."""
    voucher = get_purchase_voucher(ctx.books, check_guid(guid, "Purchase voucher"))
    return _voucher_response(voucher, ctx.writer().today)


async def _update(request: Request, guid: str, ctx: OrgCtx, *, tags: bool) -> DineroJSONResponse:
    voucher = get_purchase_voucher(ctx.books, check_guid(guid, "Purchase voucher"))
    model = parse_model(PurchaseVoucherUpdateModel, await read_json(request))
    w = ctx.writer()
    return _voucher_response(update_purchase_voucher(w, voucher, model, tags=tags), w.today)


@router.put("/v1/{organizationId}/vouchers/purchase/{guid}")
async def update_purchase(request: Request, guid: str, ctx: OrgCtx) -> DineroJSONResponse:
    """Update purchase voucher (draft; no AccountTagName)."""
    return await _update(request, guid, ctx, tags=False)


@router.put("/v1.1/{organizationId}/vouchers/purchase/{guid}")
async def update_purchase_v11(request: Request, guid: str, ctx: OrgCtx) -> DineroJSONResponse:
    """Update purchase voucher v2 (draft; with AccountTagName)."""
    return await _update(request, guid, ctx, tags=True)


@router.delete("/v1/{organizationId}/vouchers/purchase/{guid}")
async def delete_purchase(request: Request, guid: str, ctx: OrgCtx) -> Response:
    """Delete purchase voucher."""
    voucher = get_purchase_voucher(ctx.books, check_guid(guid, "Purchase voucher"))
    body = await read_json(request, required=False)
    timestamp = parse_model(TimestampObject, body).timestamp if body is not None else None
    delete_purchase_voucher(ctx.writer(), voucher, timestamp)
    return Response(status_code=200)


@router.post("/v1/{organizationId}/vouchers/purchase/{guid}/book")
async def book_purchase(request: Request, guid: str, ctx: OrgCtx) -> DineroJSONResponse:
    """Book purchase voucher."""
    voucher = get_purchase_voucher(ctx.books, check_guid(guid, "Purchase voucher"))
    model = parse_model(BookModel, await read_json(request))
    w = ctx.writer()
    booked = book_purchase_voucher(w, voucher, timestamp=model.timestamp, number=model.number)
    return _voucher_response(booked, w.today)


# --------------------------------------------------------------------------------------------
# Manual vouchers (Finansbilag)


def manual_lines(
    books: OrgBooks, lines: Sequence[ManuelVoucherLineCreateModel] | None, errors: dict[str, str]
) -> list[ManualLine]:
    """Validate manual lines. The amount is incl. VAT for purchase VAT types, excl. VAT for
    sales and foreign ones (as Dinero documents for ManuelVoucherLineCreateModel)."""
    result: list[ManualLine] = []
    for index, line in enumerate(lines or []):
        where = f"Lines[{index}]"
        if line.account_number is None and line.balancing_account_number is None:
            errors[f"{where}.AccountNumber"] = "An account or a balancing account is required"
        check_line_accounts(books, line, where, errors)
        try:
            amount = check_money(line.amount, f"{where}.Amount")
        except DineroError as exc:
            errors.update(exc.validation_errors or {})
            amount = line.amount
        vat = resolve_vat(books, line.account_vat_code, books.account(line.account_number))
        split = (
            split_incl(amount, vat)
            if vat is not None and vat.kind == "purchase" and vat.rate > 0
            else split_excl(amount, vat)
        )
        result.append(
            ManualLine(
                amount=amount,
                excl_vat=split.excl,
                vat=split.vat,
                incl_vat=split.incl,
                description=line.description,
                account_number=line.account_number,
                balancing_account_number=line.balancing_account_number,
                account_vat_code=line.account_vat_code,
                balancing_account_vat_code=line.balancing_account_vat_code,
            )
        )
    return result


def manual_postings(books: OrgBooks, lines: Sequence[ManualLine]) -> list[Posting]:
    postings: list[Posting] = []
    for line in lines:
        account_side: list[Posting] = []
        if line.account_number is not None:
            vat = resolve_vat(books, line.account_vat_code, books.account(line.account_number))
            incl = vat is not None and vat.kind == "purchase" and vat.rate > 0
            account_side = side_postings(
                line.account_number, line.amount, vat, line.description, incl_vat=incl
            )
            postings.extend(account_side)
        if line.balancing_account_number is not None:
            gross = side_total(account_side) if account_side else line.incl_vat
            vat = resolve_vat(
                books,
                line.balancing_account_vat_code,
                books.account(line.balancing_account_number),
            )
            postings.extend(
                side_postings(line.balancing_account_number, -gross, vat, line.description)
            )
    return postings


def get_manual_voucher(books: OrgBooks, guid: str) -> ManualVoucher:
    voucher = books.manual_vouchers.get(guid.lower())
    if voucher is None or voucher.deleted_at is not None:
        raise not_found("Manual voucher")
    return voucher


def create_manual_voucher(w: Writer, model: ManuelVoucherCreateModel) -> ManualVoucher:
    errors: dict[str, str] = {}
    try:
        voucher_date = parse_date(model.voucher_date, "VoucherDate") or w.today
    except DineroError as exc:
        errors.update(exc.validation_errors or {})
        voucher_date = w.today
    _check_file(w.books, model.file_guid, errors)
    lines = manual_lines(w.books, model.lines, errors)
    raise_if(errors)
    voucher = ManualVoucher(
        guid=w.ids.guid(),
        internal_id=w.books.next_internal_id(),
        voucher_date=voucher_date,
        lines=lines,
        timestamp=w.books.next_timestamp(),
        created_at=w.now,
        updated_at=w.now,
        file_guid=model.file_guid or None,
        external_reference=model.external_reference,
    )
    w.books.manual_vouchers[voucher.guid] = voucher
    return voucher


def book_manual_voucher(
    w: Writer, voucher: ManualVoucher, *, timestamp: str | None, number: int | None
) -> ManualVoucher:
    if not voucher.is_draft:
        raise validation_error({"Status": "The manual voucher is already booked"})
    _check_timestamp(voucher.timestamp, timestamp, "The manual voucher")
    if not voucher.lines:
        raise validation_error({"Lines": "A voucher without lines cannot be booked"})
    year = year_for(w.books, voucher.voucher_date)
    if number is not None:
        check_voucher_number_free(w.books, year, number)
    postings = manual_postings(w.books, voucher.lines)
    if side_total(postings) != ZERO:
        raise validation_error({"Lines": "The voucher does not balance"})
    voucher_number = take_voucher_number(w.books, year, number)
    write_entries(
        w.books,
        w.ids,
        postings=postings,
        entry_date=voucher.voucher_date,
        voucher_number=voucher_number,
        voucher_guid=voucher.guid,
        voucher_type=MANUAL,
        file_guid=voucher.file_guid,
        now=w.now,
    )
    voucher.voucher_number = voucher_number
    voucher.status = "Booked"
    voucher.booking = Booking(by_type=w.by_type, username=w.username, at=w.now)
    voucher.timestamp = w.books.next_timestamp()
    voucher.updated_at = w.now
    return voucher


@router.post("/v1/{organizationId}/vouchers/manuel")
async def create_manual(request: Request, ctx: OrgCtx) -> DineroJSONResponse:
    """Create manual voucher (draft)."""
    model = parse_model(ManuelVoucherCreateModel, await read_json(request))
    return DineroJSONResponse(create_manual_voucher(ctx.writer(), model).wire())


@router.get("/v1/{organizationId}/vouchers/manuel/{guid}")
async def get_manual(guid: str, ctx: OrgCtx) -> DineroJSONResponse:
    """Get manual voucher."""
    return DineroJSONResponse(
        get_manual_voucher(ctx.books, check_guid(guid, "Manual voucher")).wire()
    )


@router.put("/v1/{organizationId}/vouchers/manuel/{guid}")
async def update_manual(request: Request, guid: str, ctx: OrgCtx) -> DineroJSONResponse:
    """Update manual voucher (draft)."""
    voucher = get_manual_voucher(ctx.books, check_guid(guid, "Manual voucher"))
    model = parse_model(ManuelVoucherUpdateModel, await read_json(request))
    if not voucher.is_draft:
        raise validation_error({"Status": "Booked manual vouchers cannot be updated"})
    _check_timestamp(voucher.timestamp, model.timestamp, "The manual voucher")
    w = ctx.writer()
    errors: dict[str, str] = {}
    try:
        voucher_date = parse_date(model.voucher_date, "VoucherDate") or voucher.voucher_date
    except DineroError as exc:
        errors.update(exc.validation_errors or {})
        voucher_date = voucher.voucher_date
    _check_file(w.books, model.file_guid, errors)
    lines = manual_lines(w.books, model.lines, errors)
    raise_if(errors)
    voucher.voucher_date = voucher_date
    voucher.lines = lines
    voucher.file_guid = model.file_guid or None
    voucher.external_reference = model.external_reference
    voucher.timestamp = w.books.next_timestamp()
    voucher.updated_at = w.now
    return DineroJSONResponse(voucher.wire())


@router.delete("/v1/{organizationId}/vouchers/manuel/{guid}")
async def delete_manual(request: Request, guid: str, ctx: OrgCtx) -> Response:
    """Delete manual voucher (Timestamp required)."""
    voucher = get_manual_voucher(ctx.books, check_guid(guid, "Manual voucher"))
    model = parse_model(RequiredTimestampObject, await read_json(request))
    _check_timestamp(voucher.timestamp, model.timestamp, "The manual voucher")
    w = ctx.writer()
    if not voucher.is_draft:
        reverse_entries(
            w.books, w.ids, voucher.guid, w.now, f"Annullering af bilag {voucher.voucher_number}"
        )
    voucher.deleted_at = w.now
    voucher.timestamp = w.books.next_timestamp()
    return Response(status_code=200)


@router.post("/v1/{organizationId}/vouchers/manuel/{guid}/book")
async def book_manual(request: Request, guid: str, ctx: OrgCtx) -> DineroJSONResponse:
    """Book manual voucher."""
    voucher = get_manual_voucher(ctx.books, check_guid(guid, "Manual voucher"))
    model = parse_model(BookModel, await read_json(request))
    booked = book_manual_voucher(
        ctx.writer(), voucher, timestamp=model.timestamp, number=model.number
    )
    return DineroJSONResponse(booked.wire())


# --------------------------------------------------------------------------------------------
# Purchase credit notes (Købskreditnotaer)


def get_credit_note(books: OrgBooks, guid: str) -> PurchaseCreditNote:
    note = books.purchase_credit_notes.get(guid.lower())
    if note is None:
        raise not_found("Purchase credit note")
    return note


@router.post("/v1/{organizationId}/vouchers/purchase/creditnotes")
async def create_credit_note(request: Request, ctx: OrgCtx) -> DineroJSONResponse:
    """Create purchase credit note (draft)."""
    model = parse_model(PurchaseCreditNoteCreateModel, await read_json(request))
    w = ctx.writer()
    if model.guid is not None and model.guid in w.books.purchase_credit_notes:
        raise DineroError(409, DUPLICATED_ENTITY, "Duplicated entity", {"Guid": model.guid})
    errors: dict[str, str] = {}
    if model.credit_note_for is not None:
        original = w.books.purchase_vouchers.get(model.credit_note_for)
        if original is None or original.deleted_at is not None:
            errors["CreditNoteFor"] = f"Purchase voucher {model.credit_note_for} does not exist"
    _check_contact(w.books, model.contact_guid, "ContactGuid", errors)
    _check_file(w.books, model.file_guid, errors)
    currency = (model.currency or "DKK").upper()
    if currency not in EXCHANGE_RATES:
        errors["Currency"] = f"Currency {currency} is not supported"
    try:
        note_date = parse_date(model.date, "Date") or w.today
    except DineroError as exc:
        errors.update(exc.validation_errors or {})
        note_date = w.today
    lines = purchase_lines(w.books, model.lines, errors)
    raise_if(errors)
    note = PurchaseCreditNote(
        guid=model.guid or w.ids.guid(),
        internal_id=w.books.next_internal_id(),
        note_date=note_date,
        lines=lines,
        timestamp=w.books.next_timestamp(),
        created_at=w.now,
        updated_at=w.now,
        credit_note_for=model.credit_note_for,
        file_guid=model.file_guid or None,
        contact_guid=model.contact_guid,
        currency=currency,
    )
    w.books.purchase_credit_notes[note.guid] = note
    return DineroJSONResponse({"Guid": note.guid, "TimeStamp": note.timestamp})


@router.get("/v1/{organizationId}/vouchers/purchase/creditnotes/{guid}")
async def get_credit_note_route(guid: str, ctx: OrgCtx) -> DineroJSONResponse:
    """Get purchase credit note."""
    return DineroJSONResponse(
        get_credit_note(ctx.books, check_guid(guid, "Purchase credit note")).wire()
    )


@router.post("/v1/{organizationId}/vouchers/purchase/creditnotes/{guid}/book")
async def book_credit_note(request: Request, guid: str, ctx: OrgCtx) -> DineroJSONResponse:
    """Book purchase credit note: the purchase reversed against the deposit account it was
    paid from (cash) or the supplier (credit)."""
    note = get_credit_note(ctx.books, check_guid(guid, "Purchase credit note"))
    model = parse_model(BookModel, await read_json(request))
    if note.status != "Draft":
        raise validation_error({"Status": "The credit note is already booked"})
    if note.contact_guid is None:
        # The contract: "Dinero contact guid. Optional for creating a draft, required for
        # booking." (so a cash purchase is reversed with a manual voucher instead)
        raise validation_error({"ContactGuid": "A contact is required to book a credit note"})
    _check_timestamp(note.timestamp, model.timestamp, "The credit note")
    w = ctx.writer()
    _recheck_lines(w.books, note.lines)
    year = year_for(w.books, note.note_date)
    if model.number is not None:
        check_voucher_number_free(w.books, year, model.number)
    original = w.books.purchase_vouchers.get(note.credit_note_for or "")
    counter = counter_account(
        original.purchase_type if original else "credit",
        original.deposit_account_number if original else None,
    )
    postings = purchase_postings(
        w.books, note.lines, counter, note.contact_guid, note.currency, sign=Decimal(-1)
    )
    number = take_voucher_number(w.books, year, model.number)
    write_entries(
        w.books,
        w.ids,
        postings=postings,
        entry_date=note.note_date,
        voucher_number=number,
        voucher_guid=note.guid,
        voucher_type=PURCHASE_CREDIT_NOTE,
        file_guid=note.file_guid,
        now=w.now,
        contact_guid=note.contact_guid,
    )
    note.number = number
    note.status = "Booked"
    note.booking = Booking(by_type=w.by_type, username=w.username, at=w.now)
    note.timestamp = w.books.next_timestamp()
    note.updated_at = w.now
    return DineroJSONResponse(note.wire())


def voucher_summary(voucher: PurchaseVoucher) -> dict[str, Any]:
    """The read model plus what the inspection API adds."""
    return {
        **voucher.wire(),
        "InternalId": voucher.internal_id,
        "DeletedAt": voucher.deleted_at,
        "CreatedAt": voucher.created_at,
    }
