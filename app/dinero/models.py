"""Dinero's data as typed Python: snake_case attributes, PascalCase wire aliases, Decimal money."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_pascal

from app.dinero.status import LedgerStatus, VoucherStatus, voucher_is_booked
from app.dinero.wire import TWO_PLACES

T = TypeVar("T")


def _reject_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("money must be a Decimal (or int/str), never a float")
    return value


def _two_decimals(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("money must be a finite number")
    if value != value.quantize(TWO_PLACES):
        raise ValueError("money has at most two decimals (øre); round before sending")
    return value


def _none_to_list(value: Any) -> Any:
    return [] if value is None else value


Money = Annotated[Decimal, BeforeValidator(_reject_float), AfterValidator(_two_decimals)]
"""An amount we send: Decimal with at most two decimals, serialised as XXXX.YY."""

NullableList = Annotated[list[T], BeforeValidator(_none_to_list)]
"""A list Dinero may send as null."""

PurchaseType = Literal["cash", "credit"]
RegionKey = Literal["DK", "EU", "World"]


class DineroModel(BaseModel):
    """Base: PascalCase on the wire, snake_case in Python, keys matched case-insensitively."""

    model_config = ConfigDict(
        alias_generator=to_pascal,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    _lower_aliases: ClassVar[dict[str, str]]

    @classmethod
    def _aliases_by_lower(cls) -> dict[str, str]:
        cached = cls.__dict__.get("_lower_aliases")
        if cached is None:
            cached = {
                (info.alias or name).lower(): (info.alias or name)
                for name, info in cls.model_fields.items()
            }
            cls._lower_aliases = cached
        return cached

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Adjust incoming wire data before validation (overridden per model)."""
        return data

    @model_validator(mode="before")
    @classmethod
    def _match_keys(cls, data: Any) -> Any:
        # Dinero echoes `fields=` names "the way you request it" (e.g. `contactGuid`).
        if not isinstance(data, dict):
            return data
        aliases = cls._aliases_by_lower()
        out: dict[str, Any] = {}
        for key, value in data.items():
            canonical = aliases.get(key.lower(), key) if isinstance(key, str) else key
            if canonical in data and canonical != key:
                canonical = key  # the exact spelling wins; keep this one as an extra
            out[canonical] = value
        return cls._prepare(out)

    def to_wire(self) -> dict[str, Any]:
        """The body Dinero expects: PascalCase keys, unset optionals left out."""
        return self.model_dump(by_alias=True, exclude_none=True)


class WriteModel(DineroModel):
    """Something we send: unknown keyword arguments are mistakes."""

    model_config = ConfigDict(extra="forbid")


# --- organizations (GET /v1/organizations, GET /v1.1/organizations) --------------------------


class Subscription(DineroModel):
    """The /v1.1 subscription summary."""

    has_pro: bool = False
    has_paying_pro: bool = False
    has_starter_plus: bool = False
    has_total: bool = False
    has_yfs: bool = False


class Organization(DineroModel):
    """One organization ("Firma") the login can reach; /v1 and /v1.1 shapes read into one type."""

    id: int
    name: str | None = None
    is_pro: bool = False
    """Dinero Pro is required for every API call except listing organizations."""
    is_paying_pro: bool | None = None
    type: str | None = None
    company_type_key: str | None = None
    role_key: str | None = None
    is_vat_free: bool | None = None
    is_tax_free_union: bool | None = None
    email: str | None = None
    phone: str | None = None
    street: str | None = None
    city: str | None = None
    zip_code: str | None = None
    att_person: str | None = None
    vat_number: str | None = None
    country_key: str | None = None
    website: str | None = None
    subscription: Subscription | None = None

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        sub = data.get("Subscription")
        if isinstance(sub, dict):
            lowered = {str(k).lower(): v for k, v in sub.items()}
            if data.get("IsPro") is None:
                data["IsPro"] = bool(lowered.get("haspro"))
            if data.get("IsPayingPro") is None and lowered.get("haspayingpro") is not None:
                data["IsPayingPro"] = bool(lowered.get("haspayingpro"))
        if data.get("IsPro") is None:
            data["IsPro"] = False
        return data


# --- accounting years, chart of accounts ("Kontoplan"), VAT types ("Momstyper") --------------


class AccountingYear(DineroModel):
    """An accounting year ("Regnskabsår")."""

    name: str | None = None
    from_date: dt.date | None = None
    to_date: dt.date | None = None
    salary_sum_tax_state: str | None = Field(default=None, alias="SalarySumTaxStateEnum")

    def contains(self, day: dt.date) -> bool:
        """True when the day falls inside this accounting year."""
        return (
            self.from_date is not None
            and self.to_date is not None
            and self.from_date <= day <= self.to_date
        )


class EntryAccount(DineroModel):
    """An account in the chart of accounts ("Kontoplan"); purchase accounts are 2000-9399."""

    account_number: int
    name: str | None = None
    vat_code: str | None = None
    category: str | None = None
    category_name: str | None = None
    """Danish display name of the category."""
    is_hidden: bool = False
    is_default_sales_account: bool = False
    public_standard_number: int | None = None


class DepositAccount(DineroModel):
    """A deposit account ("Beholdning": bank, cash, card…), usually 55000-55999."""

    account_number: int
    name: str | None = None
    is_default: bool = False
    is_hidden: bool = False
    bank_registration_number: str | None = None
    bank_account_number: str | None = None
    bank_swift_number: str | None = None
    bank_iban_number: str | None = None
    public_standard_number: int | None = None


class DepositAccountCreate(WriteModel):
    """A new deposit account ("Beholdning") (POST /v1/{org}/accounts/deposit, 200 without body)."""

    number: int
    """The account number in the chart, usually 55000-55999."""
    name: str = Field(min_length=1)
    registration_number: str | None = None
    account_number: str | None = None
    """The bank account number (text), not the chart's number."""
    swift_number: str | None = None
    iban_number: str | None = None
    public_standard_number: int | None = None


class VatType(DineroModel):
    """A VAT type ("Momstype"), e.g. I25 "Dansk købsmoms" at 0.25."""

    vat_code: str | None = None
    name: str | None = None
    vat_rate: Decimal


# --- files ("Bilag" in the archive) -----------------------------------------------------------


class UploadedFile(DineroModel):
    """The answer to a file upload; the FileGuid is an opaque string, not always a UUID."""

    file_guid: str


class FileLink(DineroModel):
    """A voucher a file is attached to."""

    voucher_id: int
    voucher_guid: UUID
    linked_at: str | None = None


class ArchivedFile(DineroModel):
    """A file in the organization's file archive."""

    file_guid: str | None = None
    name: str | None = None
    extension: str | None = None
    size: int
    uploaded_at: dt.datetime
    note: str | None = None
    number_of_pages: int | None = None
    linked: NullableList[FileLink] = []
    uploaded_by: str | None = None


# --- purchase vouchers ("Købsbilag", Bogføring > Bilagsoversigt) -----------------------------


class PurchaseVoucherLine(WriteModel):
    """One line of a purchase voucher we create: the amount paid, incl. VAT."""

    amount: Money
    account_number: int | None = None
    description: str | None = None
    vat_code: str | None = None
    """None: the account's default VAT code (e.g. I25)."""
    account_tag_name: str | None = None
    synonym_with_most_weight: str | None = None
    tag_id: UUID | None = None
    tag_version: int | None = None


class PurchaseVoucherCreate(WriteModel):
    """A purchase voucher draft (POST /v1.2/{org}/vouchers/purchase; also the "similar" query)."""

    purchase_type: PurchaseType
    voucher_date: dt.date | None = None
    lines: list[PurchaseVoucherLine] = Field(min_length=1)
    deposit_account_number: int | None = None
    """Cash purchases: the deposit account ("Beholdning") the money was paid from."""
    region_key: RegionKey | None = None
    file_guid: str | None = None
    contact_guid: UUID | None = None
    payment_date: dt.date | None = None
    currency_key: str | None = None
    external_reference: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _cash_rules(self) -> PurchaseVoucherCreate:
        if self.purchase_type == "cash":
            if self.currency_key is not None:
                raise ValueError("cash purchases are always DKK; leave currency_key unset")
            if self.payment_date is not None:
                raise ValueError("cash purchases take no payment_date (it equals voucher_date)")
        return self


class PurchaseVoucherLineRead(DineroModel):
    """A purchase voucher line as Dinero reports it, split into excl. VAT, VAT and incl. VAT."""

    description: str | None = None
    vat_code: str | None = None
    account_number: int | None = None
    amount_excl_vat_value: Decimal
    amount_incl_vat_value: Decimal
    vat_amount_value: Decimal
    account_tag_name: str | None = None
    account_weight_tag_id: UUID | None = None
    account_weight_tag_version: int | None = None
    account_tag_synonym: str | None = None


class PurchaseVoucherTotal(DineroModel):
    """A total line (SubTotal, Vat, Total)."""

    label: str | None = None
    total: Decimal
    type: str | None = None
    position: int = 0


class PurchaseVoucher(DineroModel):
    """A purchase voucher as Dinero holds it (draft "Kladde" or booked)."""

    guid: UUID
    timestamp: str | None = None
    """Version for optimistic concurrency; send it back to book, update or delete."""
    status: VoucherStatus | None = None
    """Cash: Draft, Paid, Editing. Credit: Draft, Paid, Editing, Booked, Overdue, Overpaid."""
    file_guid: str | None = None
    voucher_number: int | None = None
    voucher_date: dt.date | None = None
    payment_date: dt.date | None = None
    region_key: str | None = None
    purchase_type: str | None = None
    lines: NullableList[PurchaseVoucherLineRead] = []
    deposit_account_number: int | None = None
    contact_guid: UUID | None = None
    external_reference: str | None = None
    voucher_totals: NullableList[PurchaseVoucherTotal] = []
    currency_key: str | None = None
    booked_by_type: str | None = None
    booked_by_username: str | None = None
    booking_time: str | None = None

    @property
    def is_draft(self) -> bool:
        """Still a draft ("Kladde"), i.e. not approved ("Godkend") yet."""
        return self.status is VoucherStatus.DRAFT

    @property
    def is_booked(self) -> bool:
        """Booked in the books (approved), also when paid or reopened for editing since."""
        return voucher_is_booked(self.status, self.voucher_number)

    @property
    def total_incl_vat(self) -> Decimal:
        """Sum of the lines incl. VAT."""
        return sum((line.amount_incl_vat_value for line in self.lines), Decimal("0"))


NIL_GUID = UUID(int=0)
"""Sent as ContactGuid when updating a cash purchase: Dinero's update model requires the field
although a cash purchase has no supplier (an empty .NET Guid is what such a field holds)."""


class PurchaseVoucherUpdate(WriteModel):
    """A full replacement of a draft (PUT /v1/{org}/vouchers/purchase/{guid}); drafts only."""

    timestamp: str = Field(min_length=1)
    """The voucher's current Timestamp; a stale one is refused with error code 58."""
    voucher_date: dt.date
    purchase_type: PurchaseType
    lines: list[PurchaseVoucherLine] = Field(min_length=1)
    contact_guid: UUID = NIL_GUID
    deposit_account_number: int | None = None
    region_key: RegionKey | None = None
    file_guid: str | None = None
    payment_date: dt.date | None = None
    currency_key: str | None = None
    external_reference: str | None = Field(default=None, max_length=128)

    @classmethod
    def keeping(cls, voucher: PurchaseVoucher, **changes: Any) -> PurchaseVoucherUpdate:
        """The draft as Dinero holds it now (lines, accounts, amounts incl. VAT), with `changes`.

        Built from a fresh read, so nothing the accountant changed in the draft is undone.
        """
        if voucher.timestamp is None or voucher.voucher_date is None:
            raise ValueError("the voucher read lacks its Timestamp or VoucherDate")
        cash = (voucher.purchase_type or "cash").lower() == "cash"
        region = voucher.region_key if voucher.region_key in ("DK", "EU", "World") else None
        values: dict[str, Any] = {
            "timestamp": voucher.timestamp,
            "voucher_date": voucher.voucher_date,
            "purchase_type": "cash" if cash else "credit",
            "lines": [
                PurchaseVoucherLine(
                    amount=line.amount_incl_vat_value.quantize(TWO_PLACES),
                    account_number=line.account_number,
                    description=line.description,
                    vat_code=line.vat_code,
                )
                for line in voucher.lines
            ],
            "contact_guid": voucher.contact_guid or NIL_GUID,
            "deposit_account_number": voucher.deposit_account_number if cash else None,
            "region_key": region if cash else None,
            "file_guid": voucher.file_guid,
            "payment_date": None if cash else voucher.payment_date,
            "currency_key": None if cash else voucher.currency_key,
            "external_reference": voucher.external_reference,
        }
        values.update(changes)
        return cls(**values)

    def to_wire(self) -> dict[str, Any]:
        """PascalCase, unset optionals left out; ContactGuid is always sent (required)."""
        body = super().to_wire()
        body["ContactGuid"] = str(self.contact_guid)
        return body


class PurchaseCreditNoteCreate(WriteModel):
    """A purchase credit note draft (POST /v1/{org}/vouchers/purchase/creditnotes).

    `guid` is ours (chosen before sending), so an uncertain create is found by reading it.
    Dinero needs `contact_guid` to book one, so it suits credit purchases only; a cash purchase
    is reversed with a manual voucher (whose `CreditNoteFor` Dinero then reports).
    """

    guid: UUID | None = None
    credit_note_for: UUID | None = None
    file_guid: str | None = None
    contact_guid: UUID | None = None
    date: dt.date | None = None
    currency: str | None = None
    lines: list[PurchaseVoucherLine] = Field(min_length=1)


class PurchaseCreditNote(DineroModel):
    """A purchase credit note ("Købskreditnota") as Dinero holds it."""

    guid: UUID
    credit_note_for: UUID | None = None
    file_guid: str | None = None
    credit_note_number: int | None = None
    contact_guid: UUID | None = None
    date: dt.date | None = None
    currency: str | None = None
    lines: NullableList[PurchaseVoucherLineRead] = []
    timestamp: str | None = None
    status: VoucherStatus | None = None
    """Draft, Paid, Editing, Booked, Overdue or Overpaid."""
    booked_by_type: str | None = None
    booked_by_username: str | None = None
    booking_time: str | None = None
    totals: NullableList[PurchaseVoucherTotal] = []

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        raw = data.get("Date")
        if isinstance(raw, str) and len(raw) > 10:
            data = {**data, "Date": raw[:10]}  # a date-time in the spec, a date in its example
        return data


class CreatedRef(DineroModel):
    """Dinero's CreatedResponseModel: the new object's guid and timestamp."""

    guid: UUID
    time_stamp: str | None = None


# --- manual vouchers ("Finansbilag") -----------------------------------------------------------


class ManualVoucherLine(WriteModel):
    """A manual voucher line: positive amount debits account_number, credits the balancing one."""

    amount: Money
    """Incl. VAT for purchase VAT types; excl. VAT for sales and foreign VAT types."""
    description: str | None = None
    account_number: int | None = None
    balancing_account_number: int | None = None
    account_vat_code: str | None = None
    balancing_account_vat_code: str | None = None


class ManualVoucherCreate(WriteModel):
    """A manual voucher draft (POST /v1/{org}/vouchers/manuel)."""

    voucher_date: dt.date | None = None
    lines: list[ManualVoucherLine] = Field(min_length=1)
    file_guid: str | None = None
    external_reference: str | None = Field(default=None, max_length=128)


class ManualVoucherLineRead(DineroModel):
    """A manual voucher line as Dinero reports it."""

    description: str | None = None
    amount_excl_vat_value: Decimal
    amount_incl_vat_value: Decimal
    vat_amount_value: Decimal
    account_number: int | None = None
    balancing_account_number: int | None = None
    account_vat_code: str | None = None
    balancing_account_vat_code: str | None = None
    currency_key: str | None = None
    amount_in_foreign_currency: Decimal | None = None


class ManualVoucher(DineroModel):
    """A manual voucher ("Finansbilag") as Dinero holds it."""

    guid: UUID
    voucher_number: int | None = None
    voucher_date: dt.date | None = None
    status: VoucherStatus | None = None
    """Draft, Editing or Booked."""
    timestamp: str | None = None
    lines: NullableList[ManualVoucherLineRead] = []
    file_guid: str | None = None
    external_reference: str | None = None
    credit_note_for: UUID | None = None
    booked_by_type: str | None = None
    booked_by_username: str | None = None
    booking_time: str | None = None
    total_incl_vat: Decimal | None = None
    total_excl_vat: Decimal | None = None

    @property
    def is_draft(self) -> bool:
        """Not booked yet."""
        return self.status in (VoucherStatus.DRAFT, VoucherStatus.EDITING)

    @property
    def is_booked(self) -> bool:
        """Booked in the books."""
        return self.status is VoucherStatus.BOOKED


# --- ledger items ("Kassekladde", Bogføring > Kassekladde) ------------------------------------


class LedgerItemLine(WriteModel):
    """A Kassekladde line in DKK: positive amount debits account_number, credits the balancing."""

    amount: Money
    id: UUID | None = None
    description: str | None = None
    account_number: int | None = None
    account_vat_code: str | None = None
    """None: the account's default VAT code; "none": no VAT."""
    balancing_account_number: int | None = None
    balancing_account_vat_code: str | None = None
    is_payment_for_voucher_id: UUID | None = None

    @model_validator(mode="after")
    def _payment_rule(self) -> LedgerItemLine:
        if self.is_payment_for_voucher_id is not None and self.account_number is not None:
            raise ValueError("a payment line (is_payment_for_voucher_id) takes no account_number")
        return self


class LedgerItem(WriteModel):
    """A ledger item we add to the Kassekladde; `id` is ours, recorded before sending."""

    id: UUID
    voucher_date: dt.date
    lines: list[LedgerItemLine] = Field(min_length=1)
    version: str | None = None
    """Only for updates (PUT); leave unset when creating."""
    voucher_number: int | None = None
    file_guid: str | None = None


class LedgerItemRef(DineroModel):
    """A ledger item's id and version, as booking and deleting need them."""

    id: UUID
    version: str | None = None


class LedgerItemStatus(DineroModel):
    """Booking progress of a ledger item: Draft, PendingBooking or Booked."""

    id: UUID
    status: LedgerStatus | None = None
    voucher_number: int | None = None
    version: str | None = None

    @property
    def is_booked(self) -> bool:
        """Booked in the books (a voucher number is assigned)."""
        return self.status is LedgerStatus.BOOKED

    @property
    def is_pending_booking(self) -> bool:
        """Booking asked for and not done yet (Dinero books asynchronously)."""
        return self.status is LedgerStatus.PENDING_BOOKING

    def ref(self) -> LedgerItemRef:
        """The id and version, e.g. to book or delete it."""
        return LedgerItemRef(id=self.id, version=self.version)


# --- entries ("Posteringer") -----------------------------------------------------------------


def _calendar_date(value: Any) -> Any:
    # EntryReadModel.Date is only "a string" (example `2022-05-16`); a date-time such as
    # `2022-05-16T00:00:00` or `2022-05-16T14:03:00+02:00` names the same calendar day.
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 10 and text[10] in "Tt ":
            return text[:10]
        return text
    return value


EntryDate = Annotated[dt.date | None, BeforeValidator(_calendar_date)]
"""A date Dinero may write as a date or as a date-time (its calendar day is kept)."""


def guid_key(value: str | UUID | None) -> str | None:
    """One spelling of a guid that Dinero may write in several (for comparing, not sending).

    The contract's examples show file guids both as 32-character strings
    (`web0crmck5v0ndcx3313g6zn61tc7wgc`) and as uuids (`d29f89bf-4148-…`), and uuids may come in
    either case, with or without hyphens, braces or `urn:uuid:`: all of those compare equal.
    """
    if value is None:
        return None
    if isinstance(value, UUID):
        return value.hex
    text = value.strip().lower()
    if text.startswith("urn:uuid:"):
        text = text[len("urn:uuid:") :]
    text = text.strip("{}").replace("-", "")
    return text or None


class Entry(DineroModel):
    """A booked accounting entry.

    Dinero's EntryReadModel: `VoucherGuid` names the voucher the entry belongs to (for manual and
    purchase vouchers, the guid they are fetched by), `FileGuid` the file on that voucher.
    """

    account_number: int
    amount: Decimal
    account_name: str | None = None
    date: EntryDate = None
    voucher_number: int | None = None
    voucher_guid: UUID | None = None
    file_guid: str | None = None
    voucher_type: str | None = None
    """E.g. "Purchases", "manuel"."""
    description: str | None = None
    vat_type: str | None = None
    vat_code: str | None = None
    entry_guid: UUID | None = None
    contact_guid: UUID | None = None
    type: str | None = None
    """Normal, Primo or Ultimo."""


# --- paged lists (the data-source import) ----------------------------------------------------


class Pagination(DineroModel):
    """Dinero's pagination details; `page` is 0-based."""

    max_page_size_allowed: int
    page_size: int
    result: int
    """Items in this page."""
    result_without_filter: int
    """Items before paging."""
    page: int


class Page(DineroModel, Generic[T]):
    """One page of a `{Collection, Pagination}` envelope."""

    collection: NullableList[T] = []
    pagination: Pagination


RawRecord = dict[str, Any]
"""A record exactly as Dinero sent it (numbers as Decimal), for storing unchanged."""

__all__ = [
    "AccountingYear",
    "ArchivedFile",
    "CreatedRef",
    "DepositAccount",
    "DepositAccountCreate",
    "DineroModel",
    "Entry",
    "EntryAccount",
    "EntryDate",
    "FileLink",
    "LedgerItem",
    "LedgerItemLine",
    "LedgerItemRef",
    "LedgerItemStatus",
    "ManualVoucher",
    "ManualVoucherCreate",
    "ManualVoucherLine",
    "ManualVoucherLineRead",
    "Money",
    "Organization",
    "Page",
    "Pagination",
    "PurchaseCreditNote",
    "PurchaseCreditNoteCreate",
    "PurchaseType",
    "PurchaseVoucher",
    "PurchaseVoucherCreate",
    "PurchaseVoucherLine",
    "PurchaseVoucherLineRead",
    "PurchaseVoucherTotal",
    "RawRecord",
    "RegionKey",
    "Subscription",
    "UploadedFile",
    "VatType",
    "guid_key",
]
