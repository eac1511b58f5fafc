"""The sandbox's books: organizations, chart, vouchers, ledger items, entries, files, records.

Everything lives in memory. Each dataclass knows its Dinero read model (`wire()`), so the HTTP
API, the inspection API and tests see the same thing.
"""

from __future__ import annotations

import base64
import random
import string
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from dinero_sandbox.chart import VatTypeSpec
from dinero_sandbox.wire import TWO_PLACES, iso_datetime

RecordKind = Literal["contacts", "invoices", "creditnotes", "products", "tradeoffers"]
RECORD_KINDS: tuple[RecordKind, ...] = (
    "contacts",
    "invoices",
    "creditnotes",
    "products",
    "tradeoffers",
)


class Ids:
    """Deterministic identifiers (seeded), so two runs of a test see the same GUIDs."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)  # noqa: S311 - identifiers, not secrets

    def guid(self) -> str:
        """A random (v4) GUID, lower case."""
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def file_guid(self) -> str:
        """A file guid like Dinero's examples: 32 lower-case letters and digits."""
        alphabet = string.ascii_lowercase + string.digits
        return "".join(self._random.choice(alphabet) for _ in range(32))


def money(value: Decimal) -> Decimal:
    """Two decimals."""
    return value.quantize(TWO_PLACES)


# --------------------------------------------------------------------------------------------
# People and access


@dataclass
class Client:
    """An OAuth client registered with Visma Connect (`isv_…`)."""

    client_id: str
    secret: str
    redirect_uris: list[str] | None = None  # None: any redirect URI is accepted
    name: str = ""


@dataclass
class Login:
    """A Dinero user login; a token issued to it reaches its organizations."""

    email: str
    name: str
    organization_ids: list[int]
    role: str = "Owner"


@dataclass
class ApiKey:
    """A personal-integration API key; it reaches exactly one organization."""

    key: str
    organization_id: int


@dataclass
class Organization:
    """A Dinero organization (Firma) with its subscription."""

    id: int
    name: str
    pro: bool = True
    paying_pro: bool | None = None
    company_type: str = "ApS"
    vat_free: bool = False
    tax_free_union: bool = False
    email: str | None = None
    phone: str | None = None
    street: str | None = None
    city: str | None = None
    zip_code: str | None = None
    att_person: str | None = None
    vat_number: str | None = None
    country_key: str = "DK"
    website: str | None = None
    starter_plus: bool = False
    total: bool = False
    yfs: bool = False

    @property
    def has_paying_pro(self) -> bool:
        return self.pro if self.paying_pro is None else self.paying_pro

    def wire_v1(self) -> dict[str, Any]:
        """OrganizationReadModel (before `fields` projection)."""
        return {
            "Name": self.name,
            "Id": self.id,
            "Type": self.company_type,
            "IsPro": self.pro,
            "IsPayingPro": self.has_paying_pro,
            "IsVatFree": self.vat_free,
            "Email": self.email,
            "Phone": self.phone,
            "Street": self.street,
            "City": self.city,
            "ZipCode": self.zip_code,
            "AttPerson": self.att_person,
            "IsTaxFreeUnion": self.tax_free_union,
            "VatNumber": self.vat_number,
            "CountryKey": self.country_key,
            "Website": self.website,
        }

    def wire_v2(self, role: str) -> dict[str, Any]:
        """OrganizationReadModelV2."""
        return {
            "Name": self.name,
            "Id": self.id,
            "CompanyTypeKey": self.company_type,
            "IsVatFree": self.vat_free,
            "Email": self.email,
            "Phone": self.phone,
            "Street": self.street,
            "City": self.city,
            "ZipCode": self.zip_code,
            "AttPerson": self.att_person,
            "IsTaxFreeUnion": self.tax_free_union,
            "VatNumber": self.vat_number,
            "CountryKey": self.country_key,
            "Website": self.website,
            "RoleKey": role,
            "Subscription": {
                "HasPro": self.pro,
                "HasPayingPro": self.has_paying_pro,
                "HasStarterPlus": self.starter_plus,
                "HasTotal": self.total,
                "HasYfs": self.yfs,
            },
        }


# --------------------------------------------------------------------------------------------
# Chart (Kontoplan), VAT (Momstyper), years (Regnskabsår)


@dataclass
class Account:
    """An account in the chart; deposit accounts (Beholdninger) carry bank details."""

    number: int
    name: str
    vat_code: str | None
    category: str
    category_name: str
    hidden: bool = False
    deposit: bool = False
    is_default_deposit: bool = False
    is_default_sales: bool = False
    public_standard_number: int | None = None
    bank_registration_number: str | None = None
    bank_account_number: str | None = None
    bank_swift_number: str | None = None
    bank_iban_number: str | None = None

    def wire_entry(self) -> dict[str, Any]:
        """EntryAccountReadModel."""
        return {
            "AccountNumber": self.number,
            "PublicStandardNumber": self.public_standard_number,
            "Name": self.name,
            "VatCode": self.vat_code,
            "Category": self.category,
            "CategoryName": self.category_name,
            "IsHidden": self.hidden,
            "IsDefaultSalesAccount": self.is_default_sales,
        }

    def wire_deposit(self) -> dict[str, Any]:
        """DepositAccountReadModel."""
        return {
            "AccountNumber": self.number,
            "PublicStandardNumber": self.public_standard_number,
            "Name": self.name,
            "IsDefault": self.is_default_deposit,
            "IsHidden": self.hidden,
            "BankRegistrationNumber": self.bank_registration_number,
            "BankAccountNumber": self.bank_account_number,
            "BankSwiftNumber": self.bank_swift_number,
            "BankIbanNumber": self.bank_iban_number,
        }


def vat_wire(vat: VatTypeSpec) -> dict[str, Any]:
    """VatTypeReadModel."""
    return {"VatCode": vat.code, "Name": vat.name, "VatRate": vat.rate}


@dataclass
class AccountingYear:
    """A calendar accounting year; a locked (closed) year takes no bookings."""

    year: int
    locked: bool = False
    salary_sum_tax_state: str = "None"

    @property
    def from_date(self) -> date:
        return date(self.year, 1, 1)

    @property
    def to_date(self) -> date:
        return date(self.year, 12, 31)

    def contains(self, day: date) -> bool:
        return self.from_date <= day <= self.to_date

    def wire(self) -> dict[str, Any]:
        """AccountingYearReadModel."""
        return {
            "Name": str(self.year),
            "FromDate": self.from_date.isoformat(),
            "ToDate": self.to_date.isoformat(),
            "SalarySumTaxStateEnum": self.salary_sum_tax_state,
        }


# --------------------------------------------------------------------------------------------
# Files (Bilag)


@dataclass
class StoredFile:
    """A file in the archive (uploaded with POST /files)."""

    guid: str
    name: str
    extension: str
    content: bytes
    content_type: str
    uploaded_at: datetime
    uploaded_by: str | None = None
    note: str | None = None

    @property
    def size(self) -> int:
        return len(self.content)


# --------------------------------------------------------------------------------------------
# Vouchers


@dataclass
class PurchaseLine:
    """A purchase voucher line: `amount` is what was paid (incl. VAT), split by the VAT type."""

    account_number: int
    amount: Decimal
    vat_code: str  # the effective code; "none" for no VAT
    excl_vat: Decimal
    vat: Decimal
    description: str | None = None
    account_tag_name: str | None = None
    tag_id: str | None = None
    tag_version: int | None = None
    tag_synonym: str | None = None

    def wire(self) -> dict[str, Any]:
        """PurchaseVoucherLineReadModel."""
        return {
            "Description": self.description,
            "VatCode": self.vat_code,
            "AccountNumber": self.account_number,
            "AmountExclVatValue": self.excl_vat,
            "AmountInclVatValue": self.amount,
            "VatAmountValue": self.vat,
            "AccountTagName": self.account_tag_name,
            "AccountWeightTagId": self.tag_id,
            "AccountWeightTagVersion": self.tag_version,
            "AccountTagSynonym": self.tag_synonym,
        }


def _totals(lines: list[PurchaseLine]) -> list[dict[str, Any]]:
    excl = sum((line.excl_vat for line in lines), Decimal(0))
    vat = sum((line.vat for line in lines), Decimal(0))
    incl = sum((line.amount for line in lines), Decimal(0))
    return [
        {"Label": "Subtotal", "Total": money(excl), "Type": "SubTotal", "Position": 0},
        {"Label": "Moms", "Total": money(vat), "Type": "Vat", "Position": 1},
        {"Label": "Total", "Total": money(incl), "Type": "Total", "Position": 2},
    ]


@dataclass
class Booking:
    """Who booked a voucher and when (BookedByType/BookedByUsername/BookingTime)."""

    by_type: str
    username: str
    at: datetime


@dataclass
class PurchaseVoucher:
    """A purchase voucher (Købsbilag): a draft (Kladde) until booked (Godkend)."""

    guid: str
    internal_id: int
    purchase_type: str  # "cash" | "credit"
    voucher_date: date
    lines: list[PurchaseLine]
    timestamp: str
    created_at: datetime
    updated_at: datetime
    status: str = "Draft"
    voucher_number: int | None = None
    payment_date: date | None = None
    deposit_account_number: int | None = None
    region_key: str | None = "DK"
    file_guid: str | None = None
    contact_guid: str | None = None
    currency_key: str = "DKK"
    external_reference: str | None = None
    booking: Booking | None = None
    deleted_at: datetime | None = None
    paid: bool = False

    @property
    def is_draft(self) -> bool:
        return self.status == "Draft"

    @property
    def total(self) -> Decimal:
        return money(sum((line.amount for line in self.lines), Decimal(0)))

    def wire(self) -> dict[str, Any]:
        """PurchaseVoucherReadModelV2."""
        return {
            "Guid": self.guid,
            "Timestamp": self.timestamp,
            "Status": self.status,
            "FileGuid": self.file_guid,
            "VoucherNumber": self.voucher_number,
            "VoucherDate": self.voucher_date.isoformat(),
            "PaymentDate": self.payment_date.isoformat() if self.payment_date else None,
            "RegionKey": self.region_key,
            "PurchaseType": self.purchase_type,
            "Lines": [line.wire() for line in self.lines],
            "DepositAccountNumber": self.deposit_account_number,
            "ContactGuid": self.contact_guid,
            "ExternalReference": self.external_reference,
            "VoucherTotals": _totals(self.lines),
            "CurrencyKey": self.currency_key,
            "BookedByType": self.booking.by_type if self.booking else None,
            "BookedByUsername": self.booking.username if self.booking else None,
            "BookingTime": iso_datetime(self.booking.at) if self.booking else None,
        }


@dataclass
class ManualLine:
    """A manual voucher line: `amount` debits the account and credits the balancing account."""

    amount: Decimal
    excl_vat: Decimal
    vat: Decimal
    incl_vat: Decimal
    description: str | None = None
    account_number: int | None = None
    balancing_account_number: int | None = None
    account_vat_code: str | None = None
    balancing_account_vat_code: str | None = None

    def wire(self) -> dict[str, Any]:
        """ManuelVoucherLineReadModel."""
        return {
            "Description": self.description,
            "AmountExclVatValue": self.excl_vat,
            "AmountInclVatValue": self.incl_vat,
            "VatAmountValue": self.vat,
            "AccountNumber": self.account_number,
            "BalancingAccountNumber": self.balancing_account_number,
            "AccountVatCode": self.account_vat_code,
            "BalancingAccountVatCode": self.balancing_account_vat_code,
            "CurrencyKey": "DKK",
            "AmountInForeignCurrency": None,
        }


@dataclass
class ManualVoucher:
    """A manual voucher (Finansbilag)."""

    guid: str
    internal_id: int
    voucher_date: date
    lines: list[ManualLine]
    timestamp: str
    created_at: datetime
    updated_at: datetime
    status: str = "Draft"
    voucher_number: int | None = None
    file_guid: str | None = None
    external_reference: str | None = None
    credit_note_for: str | None = None
    booking: Booking | None = None
    deleted_at: datetime | None = None

    @property
    def is_draft(self) -> bool:
        return self.status == "Draft"

    def wire(self) -> dict[str, Any]:
        """ManuelVoucherReadModel."""
        return {
            "VoucherNumber": self.voucher_number,
            "VoucherDate": self.voucher_date.isoformat(),
            "TotalInclVat": money(sum((line.incl_vat for line in self.lines), Decimal(0))),
            "TotalExclVat": money(sum((line.excl_vat for line in self.lines), Decimal(0))),
            "FileGuid": self.file_guid,
            "Guid": self.guid,
            "CreditNoteFor": self.credit_note_for,
            "Status": self.status,
            "Lines": [line.wire() for line in self.lines],
            "Timestamp": self.timestamp,
            "ExternalReference": self.external_reference,
            "BookedByType": self.booking.by_type if self.booking else None,
            "BookedByUsername": self.booking.username if self.booking else None,
            "BookingTime": iso_datetime(self.booking.at) if self.booking else None,
        }


@dataclass
class PurchaseCreditNote:
    """A purchase credit note (Købskreditnota)."""

    guid: str
    internal_id: int
    note_date: date
    lines: list[PurchaseLine]
    timestamp: str
    created_at: datetime
    updated_at: datetime
    status: str = "Draft"
    number: int | None = None
    credit_note_for: str | None = None
    file_guid: str | None = None
    contact_guid: str | None = None
    currency: str = "DKK"
    booking: Booking | None = None

    def wire(self) -> dict[str, Any]:
        """PurchaseCreditNoteReadModel."""
        return {
            "Guid": self.guid,
            "CreditNoteFor": self.credit_note_for,
            "FileGuid": self.file_guid,
            "CreditNoteNumber": self.number,
            "ContactGuid": self.contact_guid,
            "Date": f"{self.note_date.isoformat()}T00:00:00Z",
            "Currency": self.currency,
            "Lines": [line.wire() for line in self.lines],
            "Timestamp": self.timestamp,
            "Status": self.status,
            "BookedByType": self.booking.by_type if self.booking else None,
            "BookedByUsername": self.booking.username if self.booking else None,
            "BookingTime": iso_datetime(self.booking.at) if self.booking else None,
            "Totals": _totals(self.lines),
        }


# --------------------------------------------------------------------------------------------
# Ledger items (Kassekladde)

LedgerStatus = Literal["Draft", "PendingBooking", "Booked"]


@dataclass
class LedgerLine:
    """A kassekladde line: positive `amount` debits the account, credits the balancing one."""

    id: str
    amount: Decimal
    description: str | None = None
    account_number: int | None = None
    account_vat_code: str | None = None
    balancing_account_number: int | None = None
    balancing_account_vat_code: str | None = None
    is_payment_for_voucher_id: str | None = None

    def wire(self) -> dict[str, Any]:
        """LedgerItemLineModelV2."""
        return {
            "Id": self.id,
            "Description": self.description,
            "Amount": self.amount,
            "AccountNumber": self.account_number,
            "AccountVatCode": self.account_vat_code,
            "BalancingAccountNumber": self.balancing_account_number,
            "BalancingAccountVatCode": self.balancing_account_vat_code,
            "IsPaymentForVoucherId": self.is_payment_for_voucher_id,
        }


@dataclass
class LedgerItem:
    """A ledger item: Draft → (book) → PendingBooking → Booked (asynchronously)."""

    id: str
    version: str
    voucher_date: date
    lines: list[LedgerLine]
    created_at: datetime
    updated_at: datetime
    voucher_number: int | None = None
    file_guid: str | None = None
    status: LedgerStatus = "Draft"
    booked_voucher_number: int | None = None
    pending_since: datetime | None = None
    polls_while_pending: int = 0
    booked_at: datetime | None = None
    deleted_at: datetime | None = None

    def wire(self) -> dict[str, Any]:
        """LedgerItemModelV2."""
        return {
            "Id": self.id,
            "Version": self.version,
            "VoucherNumber": self.voucher_number,
            "VoucherDate": self.voucher_date.isoformat(),
            "FileGuid": self.file_guid,
            "Lines": [line.wire() for line in self.lines],
        }

    def wire_status(self) -> dict[str, Any]:
        """LedgerItemStatusReadModel."""
        return {
            "Status": self.status,
            "VoucherNumber": self.booked_voucher_number,
            "Id": self.id,
            "Version": self.version,
        }


# --------------------------------------------------------------------------------------------
# Entries (Posteringer)


@dataclass
class Entry:
    """One booked posting; positive amounts are debits."""

    guid: str
    account_number: int
    account_name: str
    entry_date: date
    amount: Decimal
    voucher_number: int | None
    voucher_guid: str | None
    voucher_type: str
    created_at: datetime
    description: str | None = None
    file_guid: str | None = None
    vat_type: str | None = None
    vat_code: str | None = None
    contact_guid: str | None = None
    type: str = "Normal"

    def wire(self) -> dict[str, Any]:
        """EntryReadModel."""
        return {
            "AccountNumber": self.account_number,
            "AccountName": self.account_name,
            "Date": self.entry_date.isoformat(),
            "VoucherNumber": self.voucher_number,
            "VoucherGuid": self.voucher_guid,
            "FileGuid": self.file_guid,
            "VoucherType": self.voucher_type,
            "Description": self.description,
            "VatType": self.vat_type,
            "VatCode": self.vat_code,
            "Amount": self.amount,
            "EntryGuid": self.guid,
            "ContactGuid": self.contact_guid,
            "Type": self.type,
        }


# --------------------------------------------------------------------------------------------
# Records read through Dinero's paged lists (contacts, invoices, products, trade offers)


@dataclass
class Record:
    """A contact, invoice, credit note, product or trade offer, kept in its read-model shape."""

    guid: str
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    def wire(self) -> dict[str, Any]:
        return {
            **self.data,
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at,
            "DeletedAt": self.deleted_at,
        }


# --------------------------------------------------------------------------------------------
# One organization's books


@dataclass
class OrgBooks:
    """Everything one organization has in Dinero."""

    organization: Organization
    accounts: dict[int, Account] = field(default_factory=dict)
    vat_types: dict[str, VatTypeSpec] = field(default_factory=dict)
    years: dict[int, AccountingYear] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    purchase_vouchers: dict[str, PurchaseVoucher] = field(default_factory=dict)
    manual_vouchers: dict[str, ManualVoucher] = field(default_factory=dict)
    purchase_credit_notes: dict[str, PurchaseCreditNote] = field(default_factory=dict)
    ledger_items: dict[str, LedgerItem] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    records: dict[str, dict[str, Record]] = field(
        default_factory=lambda: {kind: {} for kind in RECORD_KINDS}
    )
    # Voucher numbers (Bilagsnumre) taken per accounting year.
    voucher_numbers: dict[int, set[int]] = field(default_factory=dict)
    credit_note_numbers: dict[int, set[int]] = field(default_factory=dict)
    _counter: int = 0x20A5E00
    _internal_ids: int = 1000

    @property
    def id(self) -> int:
        return self.organization.id

    def tick(self) -> int:
        """The next row version of this organization (every write takes one)."""
        self._counter += 1
        return self._counter

    def next_timestamp(self) -> str:
        """A voucher Timestamp like `00000000020A5EA8`."""
        return f"{self.tick():016X}"

    def next_version(self) -> str:
        """A ledger item Version like `AAAAAAIKXqk1` (base64 of a row version)."""
        return base64.b64encode(self.tick().to_bytes(9, "big")).decode("ascii")

    def next_internal_id(self) -> int:
        """Dinero's integer voucher id (FileLinkReadModel.VoucherId)."""
        self._internal_ids += 1
        return self._internal_ids

    def account(self, number: int | None) -> Account | None:
        return None if number is None else self.accounts.get(number)

    def account_name(self, number: int) -> str:
        account = self.accounts.get(number)
        return account.name if account else str(number)

    def deposit_accounts(self) -> list[Account]:
        return [a for a in sorted(self.accounts.values(), key=lambda a: a.number) if a.deposit]
