"""Dinero's list conventions: `fields`, paging envelopes, `changesSince`, `queryFilter`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from dinero_sandbox.errors import validation_error
from dinero_sandbox.state import Record

MAX_PAGE_SIZE = 1000


def requested_fields(raw: str | None, default: str) -> list[str]:
    """The names asked for (default when empty); unknown ones are simply not answered."""
    text = raw if raw and raw.strip() else default
    return [name.strip() for name in text.split(",") if name.strip()]


def project(item: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """Only the requested fields, named the way they were requested (case-insensitive)."""
    by_lower = {key.lower(): key for key in item}
    result: dict[str, Any] = {}
    taken: set[str] = set()
    for field in fields:
        key = by_lower.get(field.lower())
        if key is None or key.lower() in taken:
            continue
        taken.add(key.lower())
        result[field] = item[key]
    return result


def page_of(
    items: Sequence[dict[str, Any]], page: int, page_size: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One page and the `Pagination` details. A page size above 1000 is clamped to 1000."""
    if page < 0:
        raise validation_error({"page": "The page number cannot be negative"})
    if page_size < 1:
        raise validation_error({"pageSize": "The page size must be at least 1"})
    size = min(page_size, MAX_PAGE_SIZE)
    start = page * size
    chunk = list(items[start : start + size])
    return chunk, {
        "MaxPageSizeAllowed": MAX_PAGE_SIZE,
        "PageSize": size,
        "Result": len(chunk),
        "ResultWithoutFilter": len(items),
        "Page": page,
    }


def envelope(
    items: Sequence[dict[str, Any]], fields: Sequence[str], page: int, page_size: int
) -> dict[str, Any]:
    """`{Collection, Pagination}` with projected items."""
    chunk, pagination = page_of(items, page, page_size)
    return {"Collection": [project(item, fields) for item in chunk], "Pagination": pagination}


_CHANGES_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")


def parse_instant(raw: str, field: str) -> datetime:
    """A UTC time such as `2015-08-18T06:36:22Z` (a bare date means its midnight)."""
    text = raw.strip()
    try:
        if len(text) == 10:
            moment = datetime.fromisoformat(text)
        elif _CHANGES_RE.match(text):
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            raise ValueError(text)
    except ValueError as exc:
        raise validation_error(
            {field: f"'{raw}' is not a UTC time in the format YYYY-MM-DDTHH:mm:ssZ"}
        ) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def changed_records(
    records: Iterable[Record], changes_since: str | None, deleted_only: bool
) -> list[Record]:
    """Dinero's generic filter options: without `changesSince` only live records (or only
    deleted ones); with it, everything created, updated or deleted at or after that time."""
    since = parse_instant(changes_since, "changesSince") if changes_since else None
    result = []
    for record in records:
        deleted = record.deleted_at is not None
        if deleted_only and not deleted:
            continue
        if since is None:
            if deleted and not deleted_only:
                continue
        else:
            touched = max(
                record.created_at, record.updated_at, record.deleted_at or record.created_at
            )
            if touched < since:
                continue
        result.append(record)
    return result


_CONDITION_RE = re.compile(r"^\s*(\w+)\s+(eq|contains)\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def parse_query_filter(raw: str | None, allowed: Sequence[str]) -> list[tuple[str, str, str]]:
    """`Name contains 'AMINO';IsPerson eq 'false'` → conditions; a bare term is a 400."""
    if raw is None or not raw.strip():
        return []
    by_lower = {name.lower(): name for name in allowed}
    conditions = []
    for part in raw.split(";"):
        if not part.strip():
            continue
        match = _CONDITION_RE.match(part.replace("+", " "))
        if match is None:
            raise validation_error(
                {"queryFilter": f"'{part.strip()}' is not <Field> eq|contains '<value>'"}
            )
        field = by_lower.get(match.group(1).lower())
        if field is None:
            raise validation_error(
                {"queryFilter": f"Cannot filter on {match.group(1)}; allowed: {', '.join(allowed)}"}
            )
        conditions.append((field, match.group(2).lower(), match.group(3).replace("''", "'")))
    return conditions


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def matches(item: dict[str, Any], conditions: Sequence[tuple[str, str, str]]) -> bool:
    """All conditions hold (case-insensitive)."""
    for field, op, value in conditions:
        actual = _text(item.get(field)).lower()
        wanted = value.lower()
        if op == "eq" and actual != wanted:
            return False
        if op == "contains" and wanted not in actual:
            return False
    return True


def free_text(item: dict[str, Any], fields: Sequence[str], term: str | None) -> bool:
    if not term:
        return True
    needle = term.lower()
    return any(needle in _text(item.get(field)).lower() for field in fields)
