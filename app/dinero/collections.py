"""Dinero's collections as typed records, for the data sources.

A `DineroRecord` is one record of a collection with what the data sources need typed (its key,
its dates, when Dinero deleted it) and the document itself verbatim (`data`: Dinero's fields,
spelled as Dinero sends them; readers get it unchanged). `COLUMNS` are the fields each
collection asks Dinero for, in a stable order. Every Dinero field name stays in this package.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from app.dinero.fields import (
    CONTACT_FIELDS,
    DEPOSIT_ACCOUNT_FIELDS,
    ENTRY_ACCOUNT_FIELDS,
    ENTRY_FIELDS,
    INVOICE_FIELDS,
    PRODUCT_FIELDS,
    SALES_FIELDS,
    TRADE_OFFER_FIELDS,
)


class Collection(enum.StrEnum):
    """The collections the data sources read (named as the data types are)."""

    CONTACTS = "contacts"
    DEPOSIT_ACCOUNTS = "deposit_accounts"
    ENTRIES = "entries"
    ENTRY_ACCOUNTS = "entry_accounts"
    INVOICES = "invoices"
    PRODUCTS = "products"
    SALES = "sales"
    TRADE_OFFERS = "trade_offers"


def _fields(text: str) -> tuple[str, ...]:
    return tuple(name for name in text.split(",") if name)


COLUMNS: Final[dict[Collection, tuple[str, ...]]] = {
    Collection.ENTRY_ACCOUNTS: _fields(ENTRY_ACCOUNT_FIELDS),
    Collection.DEPOSIT_ACCOUNTS: _fields(DEPOSIT_ACCOUNT_FIELDS),
    Collection.CONTACTS: _fields(CONTACT_FIELDS),
    Collection.PRODUCTS: _fields(PRODUCT_FIELDS),
    Collection.INVOICES: _fields(INVOICE_FIELDS),
    Collection.SALES: _fields(SALES_FIELDS),
    Collection.TRADE_OFFERS: _fields(TRADE_OFFER_FIELDS),
    Collection.ENTRIES: _fields(ENTRY_FIELDS),
}
"""The fields Dinero sends for each collection, in a stable order (the CSV columns)."""

_KEY_FIELDS: Final[dict[Collection, str]] = {
    Collection.ENTRY_ACCOUNTS: "AccountNumber",
    Collection.DEPOSIT_ACCOUNTS: "AccountNumber",
    Collection.CONTACTS: "ContactGuid",
    Collection.PRODUCTS: "ProductGuid",
    Collection.INVOICES: "Guid",
    Collection.SALES: "Guid",
    Collection.TRADE_OFFERS: "Guid",
    Collection.ENTRIES: "EntryGuid",
}
"""The field identifying a record (a Guid, or an account number)."""

_DATE = "Date"
_PAYMENT_DATE = "PaymentDate"
_CREATED_AT = "CreatedAt"
_UPDATED_AT = "UpdatedAt"
_DELETED_AT = "DeletedAt"


@dataclass(frozen=True)
class DineroRecord:
    """One record of a collection: identity and dates typed, the document verbatim."""

    key: str | None
    """Dinero's identifier, lower-cased (Guids compare case-insensitively); None when Dinero
    sent none (entries may lack an EntryGuid)."""
    data: Mapping[str, Any]
    """The record as Dinero sent it (numbers as Decimal)."""
    date: dt.date | None
    """The voucher/entry date (entries, invoices, sales, trade offers)."""
    payment_date: dt.date | None
    """The due date (invoices, sales)."""
    created_at: datetime | None
    updated_at: datetime | None
    deleted_at: datetime | None
    """When Dinero deleted it (None: not deleted, as far as this record says)."""


@dataclass(frozen=True)
class RecordPage:
    """One page of a paged collection."""

    records: list[DineroRecord]
    last: bool
    """No further page can hold records."""


def column(data: Mapping[str, Any], name: str) -> Any:
    """A field of a record by its column name, matched case-insensitively (Dinero echoes the
    requested spelling)."""
    if name in data:
        return data[name]
    lowered = name.lower()
    for key, value in data.items():
        if key.lower() == lowered:
            return value
    return None


class _Fields:
    """Case-insensitive lookups in one record, the lowered index built only if needed."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self._doc = doc
        self._lowered: dict[str, Any] | None = None

    def get(self, name: str) -> Any:
        if name in self._doc:
            return self._doc[name]
        if self._lowered is None:
            self._lowered = {key.lower(): value for key, value in self._doc.items()}
        return self._lowered.get(name.lower())


def _day(value: Any) -> dt.date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def to_record(collection: Collection, doc: Mapping[str, Any]) -> DineroRecord:
    """The typed record of one document of `collection` as Dinero sent it."""
    fields = _Fields(doc)
    raw_key = fields.get(_KEY_FIELDS[collection])
    return DineroRecord(
        key=None if raw_key is None or raw_key == "" else str(raw_key).lower(),
        data=doc,
        date=_day(fields.get(_DATE)),
        payment_date=_day(fields.get(_PAYMENT_DATE)),
        created_at=_moment(fields.get(_CREATED_AT)),
        updated_at=_moment(fields.get(_UPDATED_AT)),
        deleted_at=_moment(fields.get(_DELETED_AT)),
    )


def to_records(collection: Collection, docs: Iterable[Mapping[str, Any]]) -> list[DineroRecord]:
    return [to_record(collection, doc) for doc in docs]


__all__ = [
    "COLUMNS",
    "Collection",
    "DineroRecord",
    "RecordPage",
    "column",
    "to_record",
    "to_records",
]
