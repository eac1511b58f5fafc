"""The Dinero API client for one organization: paths, versions, pacing, auth, retries, errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal, TypeVar, Unpack
from uuid import UUID

import httpx
from pydantic import TypeAdapter, ValidationError

from app.dinero.collections import (
    Collection,
    DineroRecord,
    RecordPage,
    to_record,
    to_records,
)
from app.dinero.errors import DineroError, DineroPayloadTooLarge
from app.dinero.fields import (
    CONTACT_FIELDS,
    DEPOSIT_ACCOUNT_FIELDS,
    ENTRY_ACCOUNT_FIELDS,
    INVOICE_FIELDS,
    ORGANIZATION_FIELDS,
    PRODUCT_FIELDS,
    SALES_FIELDS,
    TRADE_OFFER_FIELDS,
)
from app.dinero.models import (
    AccountingYear,
    ArchivedFile,
    CreatedRef,
    DepositAccount,
    DepositAccountCreate,
    Entry,
    EntryAccount,
    LedgerItem,
    LedgerItemRef,
    LedgerItemStatus,
    ManualVoucher,
    ManualVoucherCreate,
    Organization,
    Page,
    PurchaseCreditNote,
    PurchaseCreditNoteCreate,
    PurchaseVoucher,
    PurchaseVoucherCreate,
    PurchaseVoucherUpdate,
    RawRecord,
    UploadedFile,
    VatType,
)
from app.dinero.pacing import Pacer
from app.dinero.paging import (
    MAX_CHANGES_WINDOW,
    change_windows,
    check_page,
    is_last_page,
)
from app.dinero.tokens import TokenProvider
from app.dinero.transport import Call, Transport, TransportOptions
from app.dinero.wire import format_utc

T = TypeVar("T")

MAX_UPLOAD_BYTES: Final = 6 * 1024 * 1024
"""Dinero refuses files above 6 MB (413, or 400 per its spec)."""
MAX_LEDGER_ITEMS_PER_CALL: Final = 1000

_PAGED_COLLECTIONS: Final[dict[Collection, tuple[str, str]]] = {
    Collection.CONTACTS: ("contacts", CONTACT_FIELDS),
    Collection.INVOICES: ("invoices", INVOICE_FIELDS),
    Collection.SALES: ("sales", SALES_FIELDS),
    Collection.PRODUCTS: ("products", PRODUCT_FIELDS),
    Collection.TRADE_OFFERS: ("tradeoffers", TRADE_OFFER_FIELDS),
}
"""The paged collections: path and `fields=` of each."""

FileStatus = Literal["All", "Used", "Unused"]

_ORGS = TypeAdapter(list[Organization])
_YEARS = TypeAdapter(list[AccountingYear])
_ENTRY_ACCOUNTS = TypeAdapter(list[EntryAccount])
_DEPOSIT_ACCOUNTS = TypeAdapter(list[DepositAccount])
_VAT_TYPES = TypeAdapter(list[VatType])
_FILES = TypeAdapter(list[ArchivedFile])
_ENTRIES = TypeAdapter(list[Entry])
_ENTRY = TypeAdapter(Entry)
_RAW_LIST = TypeAdapter(list[Any])
_UUIDS = TypeAdapter(list[UUID])
_STATUSES = TypeAdapter(list[LedgerItemStatus])
_REFS = TypeAdapter(list[LedgerItemRef])
_RAW_PAGE = TypeAdapter(Page[RawRecord])
_UPLOADED = TypeAdapter(UploadedFile)
_PURCHASE_VOUCHER = TypeAdapter(PurchaseVoucher)
_MANUAL_VOUCHER = TypeAdapter(ManualVoucher)
_CREDIT_NOTE = TypeAdapter(PurchaseCreditNote)
_CREATED = TypeAdapter(CreatedRef)


def _bool(value: bool) -> str:
    return "true" if value else "false"


_REQUIRED_ENTRY_FIELDS: Final = frozenset({"accountnumber", "amount"})


def _lenient_entry(raw: Any) -> Entry:
    """An entry with its unparseable optional fields left out (ValidationError if a required
    field, AccountNumber or Amount, is the one that does not parse)."""
    try:
        return _ENTRY.validate_python(raw)
    except ValidationError as exc:
        if not isinstance(raw, dict):
            raise
        broken = {str(error["loc"][0]).lower() for error in exc.errors() if error["loc"]}
        if not broken or broken & _REQUIRED_ENTRY_FIELDS:
            raise
        kept = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.lower() in broken)}
        return _ENTRY.validate_python(kept)


def _lenient_entries(
    raw: list[Any], on_invalid: Callable[[Any, ValidationError], None]
) -> list[Entry]:
    entries: list[Entry] = []
    for item in raw:
        try:
            entries.append(_lenient_entry(item))
        except ValidationError as exc:
            on_invalid(item, exc)
    return entries


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class DineroClient:
    """Talks to Dinero for one organization ("Firma ID") with a shared httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        organization_id: int,
        tokens: TokenProvider,
        pacer: Pacer,
        *,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        ledger_chunk_size: int = MAX_LEDGER_ITEMS_PER_CALL,
        max_changes_window: timedelta = MAX_CHANGES_WINDOW,
        **transport: Unpack[TransportOptions],
    ) -> None:
        """`transport` (retry, sleep, random_fraction, rate_limit_penalty_seconds, lane,
        max_wait) goes to the Transport that sends the calls."""
        self._transport = Transport(http, base_url, organization_id, tokens, pacer, **transport)
        self.base_url = self._transport.base_url
        self.organization_id = organization_id
        self._max_upload = max_upload_bytes
        self._chunk = ledger_chunk_size
        self._window = max_changes_window

    def _org(self, version: str, rest: str) -> str:
        return f"/{version}/{self.organization_id}/{rest}"

    # --- transport -------------------------------------------------------------------------

    async def _send(self, call: Call) -> httpx.Response:
        return await self._transport.send(call)

    async def _call(self, call: Call) -> Any:
        return await self._transport.json(call)

    async def _parsed(self, call: Call, adapter: TypeAdapter[T]) -> T:
        return await self._transport.parsed(call, adapter)

    # --- organizations, accounting years, chart of accounts, VAT types ----------------------

    async def list_organizations(
        self, *, version: Literal["v1", "v1.1"] = "v1"
    ) -> list[Organization]:
        """Organizations the login can reach, with their Pro status (the only call without Pro)."""
        if version == "v1":
            call = Call(
                "GET",
                "/v1/organizations",
                safe_to_repeat=True,
                org_scoped=False,
                params={"fields": ORGANIZATION_FIELDS},
            )
        else:
            call = Call("GET", "/v1.1/organizations", safe_to_repeat=True, org_scoped=False)
        return await self._parsed(call, _ORGS)

    async def accounting_years(self) -> list[AccountingYear]:
        """The organization's accounting years ("Regnskabsår")."""
        call = Call("GET", self._org("v1", "accountingyears"), safe_to_repeat=True)
        return await self._parsed(call, _YEARS)

    async def entry_accounts(self, *, category: str | None = None) -> list[EntryAccount]:
        """All accounts of the chart ("Kontoplan"), optionally one category only."""
        params = {"fields": ENTRY_ACCOUNT_FIELDS}
        if category:
            params["categoryFilter"] = category
        call = Call("GET", self._org("v1", "accounts/entry"), safe_to_repeat=True, params=params)
        return await self._parsed(call, _ENTRY_ACCOUNTS)

    async def purchase_accounts(self) -> list[EntryAccount]:
        """Accounts usable on purchase vouchers (2000-9399, expenses before tax)."""
        call = Call(
            "GET",
            self._org("v1", "accounts/purchase"),
            safe_to_repeat=True,
            params={"fields": ENTRY_ACCOUNT_FIELDS},
        )
        return await self._parsed(call, _ENTRY_ACCOUNTS)

    async def deposit_accounts(self) -> list[DepositAccount]:
        """Deposit accounts ("Beholdning": bank, cash, card…)."""
        call = Call(
            "GET",
            self._org("v1", "accounts/deposit"),
            safe_to_repeat=True,
            params={"fields": DEPOSIT_ACCOUNT_FIELDS},
        )
        return await self._parsed(call, _DEPOSIT_ACCOUNTS)

    async def create_deposit_account(self, account: DepositAccountCreate) -> None:
        """Add a deposit account ("Beholdning") to the chart; never retried (Dinero answers 200
        without a body: read `deposit_accounts` to see it, also after an uncertain outcome)."""
        call = Call(
            "POST",
            self._org("v1", "accounts/deposit"),
            safe_to_repeat=False,
            body=account.to_wire(),
        )
        await self._send(call)

    async def vat_types(self) -> list[VatType]:
        """The organization's VAT types ("Momstyper"), incl. its own partial purchase VAT types."""
        call = Call("GET", self._org("v1", "vatTypes"), safe_to_repeat=True)
        return await self._parsed(call, _VAT_TYPES)

    # --- files ------------------------------------------------------------------------------

    async def upload_file(self, content: bytes, filename: str, content_type: str) -> UploadedFile:
        """Upload a receipt to the file archive; refuses files above 6 MB without sending."""
        if not content:
            raise ValueError("refusing to upload an empty file")
        if len(content) > self._max_upload:
            raise DineroPayloadTooLarge.refused_locally(filename, len(content), self._max_upload)
        call = Call(
            "POST",
            self._org("v1", "files"),
            safe_to_repeat=False,
            files={"file": (filename, content, content_type)},
        )
        return await self._parsed(call, _UPLOADED)

    async def list_files(
        self,
        *,
        extensions: Sequence[str] = (),
        uploaded_after: date | None = None,
        uploaded_before: date | None = None,
        file_status: FileStatus = "All",
        page: int = 0,
        page_size: int = 1000,
    ) -> list[ArchivedFile]:
        """Files in the archive, with the vouchers each is attached to.

        Dinero's own document describes `uploadedAfter` as "limits the search to the given
        before date" and `uploadedBefore` as "… to the given after": which bound each one is
        cannot be relied on, so code that must not miss a file sends neither.
        """
        check_page(page, page_size)
        params = {"fileStatus": file_status, "page": str(page), "pageSize": str(page_size)}
        if extensions:
            params["extensions"] = ",".join(extensions)
        if uploaded_after:
            params["uploadedAfter"] = uploaded_after.strftime("%Y/%m/%d")
        if uploaded_before:
            params["uploadedBefore"] = uploaded_before.strftime("%Y/%m/%d")
        call = Call("GET", self._org("v1", "files"), safe_to_repeat=True, params=params)
        return await self._parsed(call, _FILES)

    # --- purchase vouchers ("Købsbilag") -----------------------------------------------------

    async def create_purchase_voucher(self, voucher: PurchaseVoucherCreate) -> PurchaseVoucher:
        """Create a purchase voucher draft ("Kladde" in Bilagsoversigt); never retried."""
        call = Call(
            "POST",
            self._org("v1.2", "vouchers/purchase"),
            safe_to_repeat=False,
            body=voucher.to_wire(),
        )
        return await self._parsed(call, _PURCHASE_VOUCHER)

    async def get_purchase_voucher(self, guid: UUID) -> PurchaseVoucher:
        """A purchase voucher by guid (status, timestamp, voucher number, lines)."""
        call = Call("GET", self._org("v1", f"vouchers/purchase/{guid}"), safe_to_repeat=True)
        return await self._parsed(call, _PURCHASE_VOUCHER)

    async def update_purchase_voucher(
        self, guid: UUID, update: PurchaseVoucherUpdate
    ) -> PurchaseVoucher:
        """Replace a draft (full PUT); never retried: a stale Timestamp is DineroStaleVersion."""
        call = Call(
            "PUT",
            self._org("v1", f"vouchers/purchase/{guid}"),
            safe_to_repeat=False,
            body=update.to_wire(),
        )
        return await self._parsed(call, _PURCHASE_VOUCHER)

    async def delete_purchase_voucher(self, guid: UUID, timestamp: str | None) -> None:
        """Delete a draft; a booked voucher gets a reversing entry instead (Danish law)."""
        call = Call(
            "DELETE",
            self._org("v1", f"vouchers/purchase/{guid}"),
            safe_to_repeat=False,
            body={"Timestamp": timestamp},
        )
        await self._send(call)

    async def purchase_vouchers_by_file(self, file_guid: str) -> list[UUID]:
        """Guids of purchase vouchers using an uploaded file."""
        call = Call(
            "GET",
            self._org("v1", f"vouchers/purchase/fileguid/{file_guid}"),
            safe_to_repeat=True,
        )
        return await self._parsed(call, _UUIDS)

    # --- purchase credit notes ("Købskreditnotaer") ------------------------------------------

    async def create_purchase_credit_note(self, note: PurchaseCreditNoteCreate) -> CreatedRef:
        """Create a purchase credit note draft; never retried (give it our `guid` and read it
        with `get_purchase_credit_note` after an uncertain outcome)."""
        body = note.to_wire()
        if isinstance(body.get("Date"), date):  # a date-time in the contract, e.g. …T00:00:00Z
            body["Date"] = f"{body['Date'].isoformat()}T00:00:00Z"
        call = Call(
            "POST",
            self._org("v1", "vouchers/purchase/creditnotes"),
            safe_to_repeat=False,
            body=body,
        )
        return await self._parsed(call, _CREATED)

    async def get_purchase_credit_note(self, guid: UUID) -> PurchaseCreditNote:
        """A purchase credit note by guid (DineroNotFound when Dinero has none)."""
        call = Call(
            "GET", self._org("v1", f"vouchers/purchase/creditnotes/{guid}"), safe_to_repeat=True
        )
        return await self._parsed(call, _CREDIT_NOTE)

    async def book_purchase_credit_note(
        self, guid: UUID, timestamp: str, *, number: int | None = None
    ) -> PurchaseCreditNote:
        """Book a purchase credit note draft; consumes a voucher number, so never retried."""
        body: dict[str, Any] = {"Timestamp": timestamp}
        if number is not None:
            body["Number"] = number
        call = Call(
            "POST",
            self._org("v1", f"vouchers/purchase/creditnotes/{guid}/book"),
            safe_to_repeat=False,
            body=body,
        )
        return await self._parsed(call, _CREDIT_NOTE)

    # --- manual vouchers ("Finansbilag") -----------------------------------------------------

    async def create_manual_voucher(self, voucher: ManualVoucherCreate) -> ManualVoucher:
        """Create a manual voucher draft; never retried."""
        call = Call(
            "POST",
            self._org("v1", "vouchers/manuel"),
            safe_to_repeat=False,
            body=voucher.to_wire(),
        )
        return await self._parsed(call, _MANUAL_VOUCHER)

    async def get_manual_voucher(self, guid: UUID) -> ManualVoucher:
        """A manual voucher by guid."""
        call = Call("GET", self._org("v1", f"vouchers/manuel/{guid}"), safe_to_repeat=True)
        return await self._parsed(call, _MANUAL_VOUCHER)

    async def book_manual_voucher(
        self, guid: UUID, timestamp: str, *, number: int | None = None
    ) -> ManualVoucher:
        """Book a manual voucher draft; never retried blindly."""
        body: dict[str, Any] = {"Timestamp": timestamp}
        if number is not None:
            body["Number"] = number
        call = Call(
            "POST",
            self._org("v1", f"vouchers/manuel/{guid}/book"),
            safe_to_repeat=False,
            body=body,
        )
        return await self._parsed(call, _MANUAL_VOUCHER)

    async def delete_manual_voucher(self, guid: UUID, timestamp: str) -> None:
        """Delete a draft manual voucher, or reverse a booked one."""
        call = Call(
            "DELETE",
            self._org("v1", f"vouchers/manuel/{guid}"),
            safe_to_repeat=False,
            body={"Timestamp": timestamp},
        )
        await self._send(call)

    # --- ledger items ("Kassekladde") --------------------------------------------------------

    async def create_ledger_items(self, items: Sequence[LedgerItem]) -> list[LedgerItemRef]:
        """Add ledger items in calls of at most 1000; returns one ref per item, in order.

        Dinero's answer may be one `{Id, Version}` or a list; items it did not report come back
        with `version=None` (read it with `ledger_item_status`). If a later chunk fails, the
        error's `completed_ids` names the items earlier chunks created.
        """
        refs: list[LedgerItemRef] = []
        for chunk in _chunks(items, self._chunk):
            try:
                refs.extend(await self._create_ledger_chunk(chunk))
            except DineroError as exc:
                exc.completed_ids = tuple(ref.id for ref in refs)
                raise
        return refs

    async def _create_ledger_chunk(self, chunk: Sequence[LedgerItem]) -> list[LedgerItemRef]:
        call = Call(
            "POST",
            self._org("v1.2", "ledgeritems"),
            safe_to_repeat=False,
            body=[item.to_wire() for item in chunk],
        )
        data = await self._call(call)
        try:
            return ledger_refs_from_answer(data, [item.id for item in chunk])
        except ValidationError as exc:
            raise self._transport.bad_response(
                call, f"unexpected ledger item answer: {exc}"
            ) from exc

    async def book_ledger_items(self, refs: Sequence[LedgerItemRef]) -> None:
        """Queue ledger items for booking (asynchronous: poll `ledger_item_status`)."""
        call = Call(
            "POST",
            self._org("v1", "ledgeritems/book"),
            safe_to_repeat=False,
            body=[_ref_body(ref) for ref in refs],
        )
        await self._send(call)

    async def ledger_item_status(self, ids: Sequence[UUID]) -> list[LedgerItemStatus]:
        """Booking status (Draft, PendingBooking, Booked) and voucher number per ledger item."""
        call = Call(
            "POST",
            self._org("v1", "ledgeritems/status"),
            safe_to_repeat=True,
            body=[{"Id": item_id} for item_id in ids],
        )
        return await self._parsed(call, _STATUSES)

    async def delete_ledger_items(self, refs: Sequence[LedgerItemRef]) -> None:
        """Delete unbooked ledger items; never retried."""
        call = Call(
            "DELETE",
            self._org("v1", "ledgeritems/delete"),
            safe_to_repeat=False,
            body=[_ref_body(ref) for ref in refs],
        )
        await self._send(call)

    # --- entries ("Posteringer") -------------------------------------------------------------

    async def entries(
        self, from_date: date, to_date: date, *, include_primo: bool = True
    ) -> list[Entry]:
        """Booked entries in a period inside one accounting year (heavy: initial sync only)."""
        if to_date < from_date:
            raise ValueError("to_date is before from_date")
        call = Call(
            "GET",
            self._org("v1", "entries"),
            safe_to_repeat=True,
            params={
                "fromDate": from_date.isoformat(),
                "toDate": to_date.isoformat(),
                "includePrimo": _bool(include_primo),
            },
        )
        return await self._parsed(call, _ENTRIES)

    async def entry_changes(
        self,
        changes_from: datetime,
        changes_to: datetime,
        *,
        include_primo: bool = True,
        on_invalid: Callable[[Any, ValidationError], None] | None = None,
    ) -> list[Entry]:
        """Entries added or changed in a time range, fetched in windows of at most 31 days.

        An entry reported by two windows (same EntryGuid, e.g. an updated primo) appears once,
        with its latest value. With `on_invalid`, entries are read one by one: an optional field
        that does not parse is left out of its entry, and an entry whose AccountNumber or Amount
        does not parse is handed to `on_invalid` and skipped, so one odd entry does not hide the
        others (without it, any such entry fails the whole answer).
        """
        collected: dict[UUID, Entry] = {}
        unkeyed: list[Entry] = []
        order: list[UUID | int] = []
        for start, stop in change_windows(changes_from, changes_to, self._window):
            call = Call(
                "GET",
                self._org("v1", "entries/changes"),
                safe_to_repeat=True,
                params={
                    "changesFrom": format_utc(start),
                    "changesTo": format_utc(stop),
                    "includePrimo": _bool(include_primo),
                },
            )
            if on_invalid is None:
                answered = await self._parsed(call, _ENTRIES)
            else:
                answered = _lenient_entries(await self._parsed(call, _RAW_LIST), on_invalid)
            for entry in answered:
                if entry.entry_guid is None:
                    order.append(len(unkeyed))
                    unkeyed.append(entry)
                    continue
                if entry.entry_guid not in collected:
                    order.append(entry.entry_guid)
                collected[entry.entry_guid] = entry
        return [collected[key] if isinstance(key, UUID) else unkeyed[key] for key in order]

    # --- paged lists (contacts, invoices, sales, products, trade offers) ---------------------

    async def record_page(
        self,
        collection: Collection,
        *,
        page: int = 0,
        page_size: int = 100,
        changes_since: datetime | None = None,
        deleted_only: bool = False,
    ) -> RecordPage:
        """One page of a paged collection as typed records (documents verbatim)."""
        paged = _PAGED_COLLECTIONS.get(collection)
        if paged is None:
            raise ValueError(f"{collection} is not a paged collection")
        path, fields = paged
        check_page(page, page_size)
        params = {"fields": fields, "page": str(page), "pageSize": str(page_size)}
        if changes_since is not None:
            params["changesSince"] = format_utc(changes_since)
        if deleted_only:
            params["deletedOnly"] = "true"
        call = Call("GET", self._org("v1", path), safe_to_repeat=True, params=params)
        raw = await self._parsed(call, _RAW_PAGE)
        return RecordPage(
            records=to_records(collection, raw.collection),
            last=is_last_page(raw, page, page_size),
        )

    async def account_records(self, collection: Collection) -> list[DineroRecord]:
        """The whole chart of entry or deposit accounts as typed records (an unpaged list)."""
        items: Sequence[EntryAccount | DepositAccount]
        if collection is Collection.ENTRY_ACCOUNTS:
            items = await self.entry_accounts()
        elif collection is Collection.DEPOSIT_ACCOUNTS:
            items = await self.deposit_accounts()
        else:
            raise ValueError(f"{collection} is not an account list")
        return to_records(collection, (item.model_dump(by_alias=True) for item in items))

    async def entry_records(self, from_date: date, to_date: date) -> list[DineroRecord]:
        """`entries` in a period as typed records."""
        return _entry_records(await self.entries(from_date, to_date))

    async def entry_change_records(
        self, changes_from: datetime, changes_to: datetime
    ) -> list[DineroRecord]:
        """`entry_changes` in a time range as typed records."""
        return _entry_records(await self.entry_changes(changes_from, changes_to))


def _entry_records(entries: list[Entry]) -> list[DineroRecord]:
    """Entries as typed records, letting go of each model once it is converted."""
    entries.reverse()
    records: list[DineroRecord] = []
    while entries:
        records.append(to_record(Collection.ENTRIES, entries.pop().model_dump(by_alias=True)))
    return records


def ledger_refs_from_answer(data: Any, sent_ids: Sequence[UUID]) -> list[LedgerItemRef]:
    """One ref per sent id, with the versions Dinero reported (one object, a list, or nothing)."""
    reported: list[LedgerItemRef]
    if data is None:
        reported = []
    elif isinstance(data, list):
        reported = _REFS.validate_python(data)
    else:
        reported = [LedgerItemRef.model_validate(data)]
    versions = {ref.id: ref.version for ref in reported}
    return [LedgerItemRef(id=item_id, version=versions.get(item_id)) for item_id in sent_ids]


def _ref_body(ref: LedgerItemRef) -> dict[str, Any]:
    return {"Id": ref.id, "Version": ref.version}


__all__ = [
    "MAX_LEDGER_ITEMS_PER_CALL",
    "MAX_UPLOAD_BYTES",
    "DineroClient",
    "ledger_refs_from_answer",
]
