"""The eight data types a data source can import, and what each means on Dinero's side.

Every type names its key (what makes a record the same record across refreshes), the fields
Dinero sends (the CSV columns), the date fields records can be filtered by, and how it is read:
a paged collection (`changesSince`, `deletedOnly`), an unpaged full list (accounts: compared in
full each time), or entries (by accounting year, then `entries/changes`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from app.dinero.client import (
    CONTACT_FIELDS,
    DEPOSIT_ACCOUNT_FIELDS,
    ENTRY_ACCOUNT_FIELDS,
    INVOICE_FIELDS,
    PRODUCT_FIELDS,
    SALES_FIELDS,
    TRADE_OFFER_FIELDS,
    ListResource,
)


class DataType(enum.StrEnum):
    """The public names of the data types (a fixed contract, see api.md)."""

    CONTACTS = "contacts"
    DEPOSIT_ACCOUNTS = "deposit_accounts"
    ENTRIES = "entries"
    ENTRY_ACCOUNTS = "entry_accounts"
    INVOICES = "invoices"
    PRODUCTS = "products"
    SALES = "sales"
    TRADE_OFFERS = "trade_offers"


class DateField(enum.StrEnum):
    """Record dates that can be filtered on; each type has some of them."""

    DATE = "date"
    """The voucher/entry date (`Date`): entries, invoices, sales, trade offers."""
    PAYMENT_DATE = "payment_date"
    """The due date (`PaymentDate`): invoices, sales."""
    CREATED_AT = "created_at"
    """When Dinero created the record (`CreatedAt`)."""
    UPDATED_AT = "updated_at"
    """When Dinero last changed the record (`UpdatedAt`)."""


WIRE_DATE_FIELDS: Final[dict[DateField, str]] = {
    DateField.DATE: "Date",
    DateField.PAYMENT_DATE: "PaymentDate",
    DateField.CREATED_AT: "CreatedAt",
    DateField.UPDATED_AT: "UpdatedAt",
}


class Kind(enum.Enum):
    PAGED = "paged"
    """A `{Collection, Pagination}` list with `changesSince` and `deletedOnly`."""
    FULL_LIST = "full_list"
    """An unpaged list without change tracking: every refresh reads and compares all of it."""
    ENTRIES = "entries"
    """Entries ("Posteringer"): one accounting year, then `entries/changes` windows."""


ENTRY_FIELDS: Final = (
    "EntryGuid,AccountNumber,AccountName,Date,VoucherNumber,VoucherGuid,FileGuid,VoucherType,"
    "Description,VatType,VatCode,Amount,ContactGuid,Type"
)

_TIMESTAMPS = frozenset({DateField.CREATED_AT, DateField.UPDATED_AT})


@dataclass(frozen=True)
class TypeSpec:
    """How one data type is read, keyed and filtered."""

    name: DataType
    label: str
    kind: Kind
    key_field: str
    """The Dinero field identifying a record (a Guid, or an account number)."""
    fields: tuple[str, ...]
    """The fields Dinero sends, in a stable order (CSV columns)."""
    date_fields: frozenset[DateField]
    resource: ListResource | None = None
    """The client's name of the paged collection."""


def _fields(text: str) -> tuple[str, ...]:
    return tuple(name for name in text.split(",") if name)


SPECS: Final[dict[DataType, TypeSpec]] = {
    spec.name: spec
    for spec in (
        TypeSpec(
            DataType.ENTRY_ACCOUNTS,
            "Entry accounts",
            Kind.FULL_LIST,
            "AccountNumber",
            _fields(ENTRY_ACCOUNT_FIELDS),
            frozenset(),
        ),
        TypeSpec(
            DataType.DEPOSIT_ACCOUNTS,
            "Deposit accounts",
            Kind.FULL_LIST,
            "AccountNumber",
            _fields(DEPOSIT_ACCOUNT_FIELDS),
            frozenset(),
        ),
        TypeSpec(
            DataType.CONTACTS,
            "Contacts",
            Kind.PAGED,
            "ContactGuid",
            _fields(CONTACT_FIELDS),
            _TIMESTAMPS,
            "contacts",
        ),
        TypeSpec(
            DataType.PRODUCTS,
            "Products",
            Kind.PAGED,
            "ProductGuid",
            _fields(PRODUCT_FIELDS),
            _TIMESTAMPS,
            "products",
        ),
        TypeSpec(
            DataType.INVOICES,
            "Invoices",
            Kind.PAGED,
            "Guid",
            _fields(INVOICE_FIELDS),
            _TIMESTAMPS | {DateField.DATE, DateField.PAYMENT_DATE},
            "invoices",
        ),
        TypeSpec(
            DataType.SALES,
            "Sales",
            Kind.PAGED,
            "Guid",
            _fields(SALES_FIELDS),
            _TIMESTAMPS | {DateField.DATE, DateField.PAYMENT_DATE},
            "sales",
        ),
        TypeSpec(
            DataType.TRADE_OFFERS,
            "Trade offers",
            Kind.PAGED,
            "Guid",
            _fields(TRADE_OFFER_FIELDS),
            _TIMESTAMPS | {DateField.DATE},
            "trade_offers",
        ),
        TypeSpec(
            DataType.ENTRIES,
            "Entries",
            Kind.ENTRIES,
            "EntryGuid",
            _fields(ENTRY_FIELDS),
            frozenset({DateField.DATE}),
        ),
    )
}

IMPORT_ORDER: Final[tuple[DataType, ...]] = tuple(SPECS)
"""Cheap types first (one request each), entries last: progress shows early."""

PUBLIC_ORDER: Final[tuple[DataType, ...]] = tuple(sorted(DataType, key=lambda t: t.value))


def date_fields_of(types: list[DataType] | tuple[DataType, ...]) -> set[DateField]:
    """The date fields at least one of the types has."""
    found: set[DateField] = set()
    for data_type in types:
        found |= SPECS[data_type].date_fields
    return found


__all__ = [
    "ENTRY_FIELDS",
    "IMPORT_ORDER",
    "PUBLIC_ORDER",
    "SPECS",
    "WIRE_DATE_FIELDS",
    "DataType",
    "DateField",
    "Kind",
    "TypeSpec",
    "date_fields_of",
]
