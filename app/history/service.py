"""Recording mapping and category changes where they are written, and reading them back.

The chart's services call `record_mapping_changes` / `record_category_change` in the same
transaction as the edit itself, and a chart sync writes its history rows in the statement that
writes the categories (`synced_category_history`), so a change and its history row commit (or
roll back) together whichever path made it.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.chart.models import Category
from app.history.models import ChangeKind, ChangeSource, SettingsChange
from app.inputs import InvalidCursor

CATEGORY_FIELDS = (
    "account_number",
    "account_name",
    "name",
    "tax_code",
    "hidden",
    "active",
    "inactive_reason",
)
"""What a category's history keeps of it (all of what an export or an accountant looks at)."""

_INSERT = insert(SettingsChange).values(changed_at=func.clock_timestamp())
"""Rows take the time they are written, not the transaction's start (a sync takes a while)."""

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: {"from": before.get(key), "to": value}
        for key, value in after.items()
        if before.get(key) != value
    }


async def record_mapping_changes(
    session: AsyncSession,
    *,
    company_id: str,
    before: Mapping[str, int | str | None],
    after: Mapping[str, int | str | None],
    changed_by: str | None,
) -> None:
    """One history row per setting whose value changed (none when the PUT changed nothing)."""
    rows = [
        {
            "company_id": company_id,
            "kind": ChangeKind.MAPPING.value,
            "setting": setting,
            "changes": {setting: change},
            "state": dict(after),
            "changed_by": changed_by,
            "source": ChangeSource.ADMIN.value,
        }
        for setting, change in _diff(before, after).items()
    ]
    if rows:
        await session.execute(_INSERT, rows)


def category_state(category: Category) -> dict[str, Any]:
    """The category as its history keeps it."""
    return {field: getattr(category, field) for field in CATEGORY_FIELDS}


async def record_category_change(
    session: AsyncSession,
    *,
    category: Category,
    before: Mapping[str, Any],
    changed_by: str | None,
) -> None:
    """A history row for an admin's edit of a category, if it changed anything."""
    after = category_state(category)
    changes = _diff(before, after)
    if changes:
        await session.execute(
            insert(SettingsChange).values(
                company_id=category.company_id,
                kind=ChangeKind.CATEGORY.value,
                category_id=category.id,
                changes=changes,
                state=after,
                changed_at=func.clock_timestamp(),
                changed_by=changed_by,
                source=ChangeSource.ADMIN.value,
            )
        )


def category_state_sql(alias: str) -> str:
    """SQL: the category row `alias` as JSON, as `category_state` has it."""
    return "jsonb_build_object({})".format(
        ", ".join(f"'{field}', {alias}.{field}" for field in CATEGORY_FIELDS)
    )


def category_changes_sql(alias: str) -> str:
    """SQL: what changed in the category row `alias`, as `_diff` has it: each field whose value
    differs from its `was_{field}` column, with its from and to (`{}` when nothing changed).

    Typed comparisons of plain columns, and one object built per row with the unchanged fields
    then deleted (NULLs in the key array delete nothing): a chart sync writes thousands of rows
    in one statement, and this is its costliest expression.
    """
    every = ", ".join(
        f"'{field}', jsonb_build_object('from', {alias}.was_{field}, 'to', {alias}.{field})"
        for field in CATEGORY_FIELDS
    )
    same = ", ".join(
        f"CASE WHEN {alias}.was_{field} IS NOT DISTINCT FROM {alias}.{field} THEN '{field}' END"
        for field in CATEGORY_FIELDS
    )
    return f"jsonb_build_object({every}) - CAST(ARRAY[{same}] AS text[])"


def synced_category_history(source: str) -> str:
    """The end of a chart sync's statement that writes categories: the history rows by
    `dinero_sync`, written by the same statement (one statement for a whole chart).

    `source` names a relation the statement defines with, per category written: its `id`, its
    columns after the write (`CATEGORY_FIELDS`), the same columns before it as `was_{field}`
    (all NULL for a new category) and an order `n`. Each category whose state differs from
    before gets a row: `changes` holds each differing field's from and to (a new category's
    from is null), `state` the whole category. Binds :company_id. (`OFFSET 0` keeps the
    planner from copying `changes` into the WHERE clause, which computed it twice per row.)
    """
    return f"""
    INSERT INTO settings_history
        (company_id, kind, category_id, changes, state, changed_by, source, changed_at)
    SELECT :company_id, '{ChangeKind.CATEGORY.value}', d.id, d.changes, d.state, NULL,
        '{ChangeSource.DINERO_SYNC.value}', clock_timestamp()
    FROM (
        SELECT s.id, s.n, {category_state_sql("s")} AS state, {category_changes_sql("s")} AS changes
        FROM {source} AS s
        OFFSET 0
    ) AS d
    WHERE d.changes <> '{{}}'::jsonb
    ORDER BY d.n
    """  # noqa: S608 - built from this module's constants and the caller's relation name


async def latest_mapping_change(
    session: AsyncSession, *, company_id: str, setting: str
) -> SettingsChange | None:
    """The change that set a mapping to its current value (None if it predates history)."""
    row = await session.execute(
        select(SettingsChange)
        .where(
            SettingsChange.company_id == company_id,
            SettingsChange.kind == ChangeKind.MAPPING.value,
            SettingsChange.setting == setting,
        )
        .order_by(SettingsChange.changed_at.desc(), SettingsChange.id.desc())
        .limit(1)
    )
    return row.scalar_one_or_none()


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """A position in a history (oldest first): the last change shown."""

    changed_at: datetime
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.changed_at.isoformat(), self.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The position a cursor stands for; anything else is 400 `invalid_cursor`."""
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if not (
                isinstance(decoded, list)
                and len(decoded) == 2
                and isinstance(decoded[0], str)
                and type(decoded[1]) is int
            ):
                raise InvalidCursor()
            moment = datetime.fromisoformat(decoded[0])
            if moment.tzinfo is None or not 0 < decoded[1] < 2**63:
                raise InvalidCursor()
            return cls(changed_at=moment.astimezone(UTC), id=decoded[1])
        except (binascii.Error, ValueError, TypeError, OverflowError, RecursionError):
            raise InvalidCursor() from None


@dataclass(frozen=True)
class Page:
    changes: Sequence[SettingsChange]
    next_cursor: str | None


async def list_changes(
    session: AsyncSession,
    *,
    company_id: str,
    since: datetime | None = None,
    category_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page:
    """The company's mapping and category changes (or one category's), oldest first."""
    query = select(SettingsChange).where(SettingsChange.company_id == company_id)
    if category_id is not None:
        query = query.where(SettingsChange.category_id == category_id)
    if since is not None:
        query = query.where(SettingsChange.changed_at >= since)
    if cursor is not None:
        position = Cursor.decode(cursor)
        after = (position.changed_at, position.id)
        query = query.where(tuple_(SettingsChange.changed_at, SettingsChange.id) > after)
    query = query.order_by(SettingsChange.changed_at, SettingsChange.id).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    page, more = rows[:limit], len(rows) > limit
    next_cursor = Cursor(page[-1].changed_at, page[-1].id).encode() if more else None
    return Page(changes=page, next_cursor=next_cursor)
