"""Turning what Dinero sent into stored rows, and stored rows into what readers get.

Records are stored as JSON text cast to JSONB and read back as text, so an amount such as
`1234.50` is never a float on its way through: Decimals are written as exact JSON numbers, and
CSV cells are parsed with `Decimal`.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from app.datasources.types import Kind, TypeSpec
from app.dinero.collections import DineroRecord, column

# Decimals leave the C encoder as marked strings, and the marks are then swapped for the digits:
# exact numbers at the speed of `json.dumps`. A NUL cannot occur in stored text (PostgreSQL's
# jsonb refuses \u0000), so no string of Dinero's can look like a mark.
_MARK = "\x00D"
_MARKED = re.compile(r'"\\u0000D(-?[0-9.]+)\\u0000"')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value}")
        return f"{_MARK}{value:f}\x00"
    if isinstance(value, date):  # dates and datetimes
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def dumps_exact(value: Any) -> str:
    """JSON text with Decimals as exact numbers (`1234.50` stays `1234.50`)."""
    text = json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
    return _MARKED.sub(r"\1", text) if "\\u0000D" in text else text


def loads_exact(text: str) -> Any:
    """JSON text back into Python with non-integer numbers as Decimal."""
    return json.loads(text, parse_float=Decimal)


@dataclass(frozen=True)
class Row:
    """One record ready to be upserted."""

    key: str
    doc: Mapping[str, Any]
    record_date: date | None
    payment_date: date | None
    created_at: datetime | None
    updated_at: datetime | None
    deleted: bool
    deleted_at: datetime | None


def _entry_fallback_key(doc: Mapping[str, Any]) -> str:
    # Booked entries never change in Dinero (corrections are new entries), so without its
    # own key the content identifies one; an exact twin in the same answer gets a suffix.
    return "sha256:" + hashlib.sha256(dumps_exact(doc).encode("utf-8")).hexdigest()[:40]


def to_rows(
    spec: TypeSpec, records: Iterable[DineroRecord], *, force_deleted: bool = False
) -> list[Row]:
    """Rows for a batch of records; a key met twice in one batch keeps the last version."""
    rows: dict[str, Row] = {}
    twins: dict[str, int] = {}
    for record in records:
        if record.key is None:
            if spec.kind is not Kind.ENTRIES:
                continue  # not addressable; Dinero always sends its keys
            base = _entry_fallback_key(record.data)
            twins[base] = twins.get(base, 0) + 1
            key = base if twins[base] == 1 else f"{base}:{twins[base]}"
        else:
            key = record.key
        rows[key] = Row(
            key=key,
            doc=record.data,
            record_date=record.date,
            payment_date=record.payment_date,
            created_at=record.created_at,
            updated_at=record.updated_at,
            deleted=force_deleted or record.deleted_at is not None,
            deleted_at=record.deleted_at,
        )
    return list(rows.values())


def batch_json(rows: Iterable[Row]) -> str:
    """A page of rows as one JSON array, unpacked by the database in one statement."""
    return dumps_exact(
        [
            {
                "k": row.key,
                "d": row.doc,
                "rd": row.record_date,
                "pd": row.payment_date,
                "ca": row.created_at,
                "ua": row.updated_at,
                "x": row.deleted,
                "da": row.deleted_at,
            }
            for row in rows
        ]
    )


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRecord:
    """A stored record as the records endpoint reads it (the document as JSON text)."""

    seq: int
    data_type: str
    key: str
    deleted: bool
    deleted_at: datetime | None
    changed_at: datetime
    doc: str


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso(moment: datetime | None) -> str:
    return "null" if moment is None else f'"{_utc(moment)}"'


def json_item(record: StoredRecord) -> str:
    """One record as the JSON and NDJSON formats show it; `data` is Dinero's record verbatim."""
    return (
        f'{{"data_type":{json.dumps(record.data_type)},"key":{json.dumps(record.key)},'
        f'"deleted":{"true" if record.deleted else "false"},'
        f'"deleted_at":{_iso(record.deleted_at)},"changed_at":{_iso(record.changed_at)},'
        f'"data":{record.doc}}}'
    )


CSV_META_COLUMNS = ("key", "deleted", "deleted_at")

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""How a spreadsheet recognises a formula (OWASP's CSV injection list)."""


def neutralized(text: str) -> str:
    """Text a spreadsheet opening the CSV shows as text, never runs as a formula.

    A cell starting like a formula (`=HYPERLINK(…)`, `+1+cmd|…`, `@SUM(…)`) gets a leading
    apostrophe, which spreadsheets take to mean "text". Numbers are written as numbers and never
    pass through here, so `-1234.50` stays a negative amount.
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, str):
        return neutralized(value)
    return neutralized(dumps_exact(value))


def csv_header(spec: TypeSpec) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([*CSV_META_COLUMNS, *spec.fields])
    return buffer.getvalue()


def csv_rows(spec: TypeSpec, records: Sequence[StoredRecord]) -> str:
    """CSV lines (RFC 4180) for records of one type: our columns, then Dinero's fields."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for record in records:
        doc = loads_exact(record.doc)
        writer.writerow(
            [
                neutralized(record.key),
                "true" if record.deleted else "false",
                "" if record.deleted_at is None else _utc(record.deleted_at),
                *(_cell(column(doc, name)) for name in spec.fields),
            ]
        )
    return buffer.getvalue()


__all__ = [
    "CSV_META_COLUMNS",
    "Row",
    "StoredRecord",
    "batch_json",
    "csv_header",
    "csv_rows",
    "dumps_exact",
    "json_item",
    "loads_exact",
    "to_rows",
]
