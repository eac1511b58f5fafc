"""Reads: organizations, accounting years, chart of accounts, VAT types, paged lists, entries."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from dinero_sandbox.auth import ApiPrincipal, OrgCtx, sandbox_of
from dinero_sandbox.chart import RETAINED_EARNINGS_ACCOUNT, category_for, is_purchase_account
from dinero_sandbox.errors import validation_error
from dinero_sandbox.ledger import advance
from dinero_sandbox.listing import (
    changed_records,
    envelope,
    free_text,
    matches,
    parse_instant,
    parse_query_filter,
    project,
    requested_fields,
)
from dinero_sandbox.state import Account, AccountingYear, Entry, OrgBooks, Record, vat_wire
from dinero_sandbox.wire import (
    AccountCreateModel,
    DepositCreateModel,
    DineroJSONResponse,
    parse_model,
    read_json,
)

router = APIRouter()

PRIMO_NAMESPACE = uuid.UUID("5b1d3c0e-2f7a-4c55-9a51-8d7f00d1ae01")
MAX_CHANGES_WINDOW = timedelta(days=31)
STATUS_ORDER = {"Draft": 0, "Overdue": 1, "Booked": 2, "OverPaid": 3, "Paid": 4}
STATUSES = tuple(STATUS_ORDER)

Fields = Annotated[str | None, Query()]
Page = Annotated[int, Query()]
PageSize = Annotated[int, Query(alias="pageSize")]
ChangesSince = Annotated[str | None, Query(alias="changesSince")]
DeletedOnly = Annotated[bool, Query(alias="deletedOnly")]
QueryFilter = Annotated[str | None, Query(alias="queryFilter")]
FreeText = Annotated[str | None, Query(alias="freeTextSearch")]


# --------------------------------------------------------------------------------------------
# Organizations and accounting years


@router.get("/v1/organizations")
async def organizations(
    request: Request, principal: ApiPrincipal, fields: Fields = None
) -> DineroJSONResponse:
    """List organizations (the Pro check); default fields `id,name,isPro`."""
    sandbox = sandbox_of(request)
    wanted = requested_fields(fields, "id,name,isPro")
    result = [
        project(sandbox.books[org].organization.wire_v1(), wanted)
        for org in principal.organization_ids()
        if org in sandbox.books
    ]
    return DineroJSONResponse(result)


@router.get("/v1.1/organizations")
async def organizations_v11(request: Request, principal: ApiPrincipal) -> DineroJSONResponse:
    """List organizations with their subscription."""
    sandbox = sandbox_of(request)
    role = principal.login.role if principal.login else "Owner"
    result = [
        sandbox.books[org].organization.wire_v2(role)
        for org in principal.organization_ids()
        if org in sandbox.books
    ]
    return DineroJSONResponse(result)


@router.get("/v1/{organizationId}/accountingyears")
async def accounting_years(ctx: OrgCtx) -> DineroJSONResponse:
    """List accounting years (Regnskabsår)."""
    years = sorted(ctx.books.years.values(), key=lambda y: y.year)
    return DineroJSONResponse([year.wire() for year in years])


# --------------------------------------------------------------------------------------------
# Chart of accounts and VAT types


def _sorted_accounts(books: OrgBooks) -> list[Account]:
    return sorted(books.accounts.values(), key=lambda a: a.number)


@router.get("/v1/{organizationId}/accounts/entry")
async def entry_accounts(
    ctx: OrgCtx,
    fields: Fields = None,
    category_filter: Annotated[str, Query(alias="categoryFilter")] = "",
) -> DineroJSONResponse:
    """List entry accounts: all accounts, hidden ones flagged."""
    wanted = requested_fields(fields, "AccountNumber,Name,IsHidden")
    category = category_filter.strip().lower()
    result = [
        project(a.wire_entry(), wanted)
        for a in _sorted_accounts(ctx.books)
        if not category or a.category.lower() == category
    ]
    return DineroJSONResponse(result)


@router.get("/v1/{organizationId}/accounts/purchase")
async def purchase_accounts(ctx: OrgCtx, fields: Fields = None) -> DineroJSONResponse:
    """List purchase accounts (2000-9399)."""
    wanted = requested_fields(fields, "AccountNumber,Name,VatCode,Category,CategoryName,IsHidden")
    result = [
        project(a.wire_entry(), wanted)
        for a in _sorted_accounts(ctx.books)
        if is_purchase_account(a.number)
    ]
    return DineroJSONResponse(result)


@router.get("/v1/{organizationId}/accounts/deposit")
async def deposit_accounts(ctx: OrgCtx, fields: Fields = None) -> DineroJSONResponse:
    """List deposit accounts (Beholdninger)."""
    wanted = requested_fields(fields, "AccountNumber,Name")
    return DineroJSONResponse(
        [project(a.wire_deposit(), wanted) for a in ctx.books.deposit_accounts()]
    )


def _check_new_number(books: OrgBooks, number: int) -> None:
    if number <= 0:
        raise validation_error({"Number": "The account number must be positive"})
    if number in books.accounts:
        raise validation_error(
            {"Number": f"Account {number} already exists"}, "Account number taken"
        )


@router.post("/v1/{organizationId}/accounts/entry")
async def create_entry_account(request: Request, ctx: OrgCtx) -> Response:
    """Create entry account."""
    model = parse_model(AccountCreateModel, await read_json(request))
    _check_new_number(ctx.books, model.number)
    vat_code: str | None = model.vat_code
    if model.vat_code.lower() == "none":
        vat_code = None
    elif model.vat_code not in ctx.books.vat_types:
        raise validation_error({"VatCode": f"VAT code '{model.vat_code}' does not exist"})
    category = category_for(model.number)
    ctx.books.accounts[model.number] = Account(
        number=model.number,
        name=model.name,
        vat_code=vat_code,
        category=category.key,
        category_name=category.danish,
        public_standard_number=model.public_standard_number,
    )
    return Response(status_code=200)


@router.post("/v1/{organizationId}/accounts/deposit")
async def create_deposit_account(request: Request, ctx: OrgCtx) -> Response:
    """Create deposit account (bank, kasse, PayPal …)."""
    model = parse_model(DepositCreateModel, await read_json(request))
    _check_new_number(ctx.books, model.number)
    ctx.books.accounts[model.number] = Account(
        number=model.number,
        name=model.name,
        vat_code=None,
        category="Liquid Assets",
        category_name="Likvide beholdninger",
        deposit=True,
        public_standard_number=model.public_standard_number,
        bank_registration_number=model.registration_number,
        bank_account_number=model.account_number,
        bank_swift_number=model.swift_number,
        bank_iban_number=model.iban_number,
    )
    return Response(status_code=200)


@router.get("/v1/{organizationId}/vatTypes")
async def vat_types(ctx: OrgCtx) -> DineroJSONResponse:
    """List VAT types (Momstyper)."""
    return DineroJSONResponse([vat_wire(v) for v in ctx.books.vat_types.values()])


# --------------------------------------------------------------------------------------------
# Paged lists


def _records(
    books: OrgBooks, kinds: Sequence[str], since: str | None, deleted_only: bool
) -> list[dict[str, Any]]:
    selected: list[Record] = []
    for kind in kinds:
        selected.extend(books.records[kind].values())
    return [r.wire() for r in changed_records(selected, since, deleted_only)]


def _date_range(
    items: list[dict[str, Any]], start: str | None, end: str | None
) -> list[dict[str, Any]]:
    if start is None and end is None:
        return items
    if start is None or end is None:
        raise validation_error(
            {"startDate": "startDate and endDate must be given together"}, "Invalid date range"
        )
    try:
        low, high = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        raise validation_error({"startDate": "Dates must be YYYY-MM-DD"}) from exc
    return [
        item
        for item in items
        if item.get("Status") == "Draft"  # drafts are not affected by the date filter
        or (item.get("Date") is not None and low <= date.fromisoformat(item["Date"]) <= high)
    ]


def _status_filter(items: list[dict[str, Any]], raw: str | None) -> list[dict[str, Any]]:
    if not raw:
        return items
    wanted = {s.strip().lower() for s in raw.split(",") if s.strip()}
    unknown = wanted - {s.lower() for s in STATUSES}
    if unknown:
        raise validation_error(
            {"statusFilter": f"Unknown status {', '.join(sorted(unknown))}; use {STATUSES}"}
        )
    return [item for item in items if str(item.get("Status", "")).lower() in wanted]


def _sorted(
    items: list[dict[str, Any]], sort: str, order: str, keys: dict[str, Callable[[Any], Any]]
) -> list[dict[str, Any]]:
    if order.lower() not in ("ascending", "descending"):
        raise validation_error({"sortOrder": "sortOrder must be ascending or descending"})
    names = [s.strip() for s in sort.split(",") if s.strip()]
    by_lower = {k.lower(): k for k in keys}
    for name in names:
        if name.lower() not in by_lower:
            raise validation_error({"sort": f"Cannot sort on {name}; use {', '.join(keys)}"})
    result = list(items)
    for name in reversed(names):
        result.sort(key=keys[by_lower[name.lower()]], reverse=order.lower() == "descending")
    return result


def _date_key(item: dict[str, Any]) -> str:
    return str(item.get("Date") or "")


def _status_key(item: dict[str, Any]) -> int:
    return STATUS_ORDER.get(str(item.get("Status")), 9)


SALES_SORT: dict[str, Callable[[Any], Any]] = {
    "VoucherNumber": lambda i: i.get("Number") or 0,
    "VoucherDate": _date_key,
    "Status": _status_key,
    "Contact": lambda i: str(i.get("ContactName") or "").lower(),
}
TRADE_OFFER_SORT: dict[str, Callable[[Any], Any]] = {
    "TradeOfferNumber": lambda i: i.get("Number") or 0,
    "TradeOfferDate": _date_key,
    "Status": lambda i: str(i.get("Status") or ""),
    "ContactName": lambda i: str(i.get("ContactName") or "").lower(),
}


@router.get("/v1/{organizationId}/contacts")
async def contacts(
    ctx: OrgCtx,
    fields: Fields = None,
    query_filter: QueryFilter = None,
    changes_since: ChangesSince = None,
    deleted_only: DeletedOnly = False,
    page: Page = 0,
    page_size: PageSize = 100,
) -> DineroJSONResponse:
    """List contacts."""
    conditions = parse_query_filter(
        query_filter,
        ["ExternalReference", "Name", "Email", "VatNumber", "EanNumber", "IsPerson", "Phone"],
    )
    items = [
        i
        for i in _records(ctx.books, ["contacts"], changes_since, deleted_only)
        if matches(i, conditions)
    ]
    items.sort(key=lambda i: (str(i.get("Name") or "").lower(), i["ContactGuid"]))
    return DineroJSONResponse(
        envelope(items, requested_fields(fields, "name,contactGuid"), page, page_size)
    )


async def _sales_list(
    ctx: OrgCtx,
    kinds: Sequence[str],
    default_fields: str,
    *,
    start_date: str | None,
    end_date: str | None,
    fields: str | None,
    free_text_search: str | None,
    status_filter: str | None,
    query_filter: str | None,
    changes_since: str | None,
    deleted_only: bool,
    page: int,
    page_size: int,
    sort: str,
    sort_order: str,
) -> DineroJSONResponse:
    conditions = parse_query_filter(
        query_filter, ["ExternalReference", "ContactGuid", "Description"]
    )
    items = _records(ctx.books, kinds, changes_since, deleted_only)
    items = _date_range(items, start_date, end_date)
    items = _status_filter(items, status_filter)
    items = [
        i
        for i in items
        if matches(i, conditions)
        and free_text(i, ["Number", "ContactName", "Description", "TotalInclVat"], free_text_search)
    ]
    items = _sorted(items, sort, sort_order, SALES_SORT)
    return DineroJSONResponse(
        envelope(items, requested_fields(fields, default_fields), page, page_size)
    )


@router.get("/v1/{organizationId}/invoices")
async def invoices(
    ctx: OrgCtx,
    start_date: Annotated[str | None, Query(alias="startDate")] = None,
    end_date: Annotated[str | None, Query(alias="endDate")] = None,
    fields: Fields = None,
    free_text_search: FreeText = None,
    status_filter: Annotated[str | None, Query(alias="statusFilter")] = None,
    query_filter: QueryFilter = None,
    changes_since: ChangesSince = None,
    deleted_only: DeletedOnly = False,
    page: Page = 0,
    page_size: PageSize = 100,
    sort: Annotated[str, Query()] = "VoucherNumber,VoucherDate",
    sort_order: Annotated[str, Query(alias="sortOrder")] = "descending",
) -> DineroJSONResponse:
    """List invoices."""
    return await _sales_list(
        ctx,
        ["invoices"],
        "Guid,ContactName,Date,Description",
        start_date=start_date,
        end_date=end_date,
        fields=fields,
        free_text_search=free_text_search,
        status_filter=status_filter,
        query_filter=query_filter,
        changes_since=changes_since,
        deleted_only=deleted_only,
        page=page,
        page_size=page_size,
        sort=sort,
        sort_order=sort_order,
    )


@router.get("/v1/{organizationId}/sales")
async def sales(
    ctx: OrgCtx,
    start_date: Annotated[str | None, Query(alias="startDate")] = None,
    end_date: Annotated[str | None, Query(alias="endDate")] = None,
    fields: Fields = None,
    free_text_search: FreeText = None,
    status_filter: Annotated[str | None, Query(alias="statusFilter")] = None,
    query_filter: QueryFilter = None,
    changes_since: ChangesSince = None,
    deleted_only: DeletedOnly = False,
    page: Page = 0,
    page_size: PageSize = 100,
    sort: Annotated[str, Query()] = "VoucherNumber,VoucherDate",
    sort_order: Annotated[str, Query(alias="sortOrder")] = "descending",
) -> DineroJSONResponse:
    """List invoices and credit notes (Salg)."""
    return await _sales_list(
        ctx,
        ["invoices", "creditnotes"],
        "Guid,ContactName,Date,Description,Type",
        start_date=start_date,
        end_date=end_date,
        fields=fields,
        free_text_search=free_text_search,
        status_filter=status_filter,
        query_filter=query_filter,
        changes_since=changes_since,
        deleted_only=deleted_only,
        page=page,
        page_size=page_size,
        sort=sort,
        sort_order=sort_order,
    )


@router.get("/v1/{organizationId}/products")
async def products(
    ctx: OrgCtx,
    fields: Fields = None,
    free_text_search: FreeText = None,
    query_filter: QueryFilter = None,
    changes_since: ChangesSince = None,
    deleted_only: DeletedOnly = False,
    page: Page = 0,
    page_size: PageSize = 100,
) -> DineroJSONResponse:
    """List products, ordered by UpdatedAt."""
    conditions = parse_query_filter(query_filter, ["Name", "ProductNumber", "ExternalReference"])
    selected = changed_records(ctx.books.records["products"].values(), changes_since, deleted_only)
    selected.sort(key=lambda r: (r.updated_at, r.guid))
    items = [
        i
        for i in (r.wire() for r in selected)
        if matches(i, conditions) and free_text(i, ["Name", "ProductNumber"], free_text_search)
    ]
    return DineroJSONResponse(
        envelope(items, requested_fields(fields, "Name,ProductGuid"), page, page_size)
    )


@router.get("/v1/{organizationId}/tradeoffers")
async def trade_offers(
    ctx: OrgCtx,
    fields: Fields = None,
    query_filter: QueryFilter = None,
    changes_since: ChangesSince = None,
    deleted_only: DeletedOnly = False,
    free_text_search: FreeText = None,
    page: Page = 0,
    page_size: PageSize = 100,
    sort: Annotated[str, Query()] = "TradeOfferNumber",
    sort_order: Annotated[str, Query(alias="sortOrder")] = "descending",
) -> DineroJSONResponse:
    """List trade offers (Tilbud)."""
    conditions = parse_query_filter(
        query_filter,
        [
            "ExternalReference",
            "ContactName",
            "Address",
            "Comment",
            "Description",
            "HasGeneratedAnyVouchers",
            "Currency",
            "Date",
            "Number",
        ],
    )
    items = [
        i
        for i in _records(ctx.books, ["tradeoffers"], changes_since, deleted_only)
        if matches(i, conditions)
        and free_text(i, ["Number", "ContactName", "Description", "TotalInclVat"], free_text_search)
    ]
    items = _sorted(items, sort, sort_order, TRADE_OFFER_SORT)
    return DineroJSONResponse(
        envelope(
            items, requested_fields(fields, "guid,contactName,date,description"), page, page_size
        )
    )


# --------------------------------------------------------------------------------------------
# Entries (Posteringer)


def primo_entries(books: OrgBooks, year: AccountingYear) -> list[Entry]:
    """Opening balances of a year: balance accounts carried over, the earlier result moved to
    Overført resultat. One entry per account and year, with a stable guid."""
    totals: dict[int, Decimal] = {}
    latest: dict[int, datetime] = {}
    for entry in books.entries:
        if entry.type != "Normal" or entry.entry_date >= year.from_date:
            continue
        account = entry.account_number if entry.account_number >= 10000 else None
        key = account if account is not None else RETAINED_EARNINGS_ACCOUNT
        totals[key] = totals.get(key, Decimal(0)) + entry.amount
        if key not in latest or entry.created_at > latest[key]:
            latest[key] = entry.created_at
    result = []
    for number in sorted(totals):
        if totals[number] == 0:
            continue
        result.append(
            Entry(
                guid=str(uuid.uuid5(PRIMO_NAMESPACE, f"{books.id}:{year.year}:{number}")),
                account_number=number,
                account_name=books.account_name(number),
                entry_date=year.from_date,
                amount=totals[number],
                voucher_number=None,
                voucher_guid=None,
                voucher_type="Primo",
                created_at=latest[number],
                description="Primo",
                type="Primo",
            )
        )
    return result


def _entry_day(raw: str | None, field: str) -> date:
    if raw is None or not raw.strip():
        raise validation_error({field: f"The {field} parameter is required"})
    if len(raw.strip()) > 10:
        parse_instant(raw, field)  # a date-time: checked, then its own calendar date is used
    return _plain_date(raw.strip()[:10], field)


def _plain_date(raw: str, field: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise validation_error({field: f"'{raw}' is not a date (YYYY-MM-DD)"}) from exc


def _ordered(entries: list[Entry]) -> list[dict[str, Any]]:
    entries.sort(key=lambda e: (e.entry_date, e.voucher_number or 0, e.created_at))
    return [e.wire() for e in entries]


@router.get("/v1/{organizationId}/entries")
async def entries(
    ctx: OrgCtx,
    from_date: Annotated[str | None, Query(alias="fromDate")] = None,
    to_date: Annotated[str | None, Query(alias="toDate")] = None,
    include_primo: Annotated[bool, Query(alias="includePrimo")] = True,
) -> DineroJSONResponse:
    """List entries of a period within one accounting year."""
    low = _entry_day(from_date, "fromDate")
    high = _entry_day(to_date, "toDate")
    if low > high:
        raise validation_error({"toDate": "toDate is before fromDate"})
    year = next((y for y in ctx.books.years.values() if y.contains(low)), None)
    if year is None:
        raise validation_error(
            {"fromDate": f"{low.isoformat()} is not within an accounting year"},
            "No accounting year",
        )
    if not year.contains(high):
        raise validation_error(
            {"toDate": f"The period cannot cross accounting years ({year.year})"},
            "Cannot cross accounting years",
        )
    advance(ctx.writer(), ctx.sandbox.config)
    selected = [e for e in ctx.books.entries if e.type == "Normal" and low <= e.entry_date <= high]
    if include_primo and low <= year.from_date <= high:
        selected.extend(primo_entries(ctx.books, year))
    return DineroJSONResponse(_ordered(selected))


@router.get("/v1/{organizationId}/entries/changes")
async def entry_changes(
    ctx: OrgCtx,
    changes_from: Annotated[str | None, Query(alias="changesFrom")] = None,
    changes_to: Annotated[str | None, Query(alias="changesTo")] = None,
    include_primo: Annotated[bool, Query(alias="includePrimo")] = True,
) -> DineroJSONResponse:
    """List entries added in a window of at most 31 days."""
    if not changes_from or not changes_to:
        raise validation_error(
            {"changesFrom": "changesFrom and changesTo are required"}, "Missing time range"
        )
    low = parse_instant(changes_from, "changesFrom")
    high = parse_instant(changes_to, "changesTo")
    if low > high:
        raise validation_error({"changesTo": "changesTo is before changesFrom"})
    if high - low > MAX_CHANGES_WINDOW:
        raise validation_error(
            {"changesTo": "The time range cannot be longer than 31 days"}, "Time range too long"
        )
    advance(ctx.writer(), ctx.sandbox.config)
    selected = [e for e in ctx.books.entries if e.type == "Normal" and low <= e.created_at <= high]
    if include_primo:
        for year in ctx.books.years.values():
            selected.extend(
                p for p in primo_entries(ctx.books, year) if low <= p.created_at <= high
            )
    return DineroJSONResponse(_ordered(selected))
