"""The eight data types a data source can import, and how each is read.

Every type names the Dinero collection it reads (whose client gives typed records with their
key, dates and columns), the date fields records can be filtered by, and how it is read: a
paged collection (changes since, deleted only), an unpaged full list (accounts: compared in
full each time), or entries (by accounting year, then changes in windows).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from app.dinero.collections import COLUMNS, Collection


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
    """The voucher/entry date: entries, invoices, sales, trade offers."""
    PAYMENT_DATE = "payment_date"
    """The due date: invoices, sales."""
    CREATED_AT = "created_at"
    """When Dinero created the record."""
    UPDATED_AT = "updated_at"
    """When Dinero last changed the record."""


class Kind(enum.Enum):
    PAGED = "paged"
    """A paged list that can be read by changes since a time and by deleted only."""
    FULL_LIST = "full_list"
    """An unpaged list without change tracking: every refresh reads and compares all of it."""
    ENTRIES = "entries"
    """Entries ("Posteringer"): one accounting year, then windows of changes."""


_TIMESTAMPS = frozenset({DateField.CREATED_AT, DateField.UPDATED_AT})


@dataclass(frozen=True)
class TypeSpec:
    """How one data type is read, keyed and filtered."""

    name: DataType
    label: str
    kind: Kind
    date_fields: frozenset[DateField]

    @property
    def collection(self) -> Collection:
        """The Dinero collection this type reads (named alike)."""
        return Collection(self.name.value)

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields Dinero sends, in a stable order (CSV columns)."""
        return COLUMNS[self.collection]


SPECS: Final[dict[DataType, TypeSpec]] = {
    spec.name: spec
    for spec in (
        TypeSpec(
            DataType.ENTRY_ACCOUNTS,
            "Entry accounts",
            Kind.FULL_LIST,
            frozenset(),
        ),
        TypeSpec(
            DataType.DEPOSIT_ACCOUNTS,
            "Deposit accounts",
            Kind.FULL_LIST,
            frozenset(),
        ),
        TypeSpec(
            DataType.CONTACTS,
            "Contacts",
            Kind.PAGED,
            _TIMESTAMPS,
        ),
        TypeSpec(
            DataType.PRODUCTS,
            "Products",
            Kind.PAGED,
            _TIMESTAMPS,
        ),
        TypeSpec(
            DataType.INVOICES,
            "Invoices",
            Kind.PAGED,
            _TIMESTAMPS | {DateField.DATE, DateField.PAYMENT_DATE},
        ),
        TypeSpec(
            DataType.SALES,
            "Sales",
            Kind.PAGED,
            _TIMESTAMPS | {DateField.DATE, DateField.PAYMENT_DATE},
        ),
        TypeSpec(
            DataType.TRADE_OFFERS,
            "Trade offers",
            Kind.PAGED,
            _TIMESTAMPS | {DateField.DATE},
        ),
        TypeSpec(
            DataType.ENTRIES,
            "Entries",
            Kind.ENTRIES,
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
    "IMPORT_ORDER",
    "PUBLIC_ORDER",
    "SPECS",
    "DataType",
    "DateField",
    "Kind",
    "TypeSpec",
    "date_fields_of",
]
