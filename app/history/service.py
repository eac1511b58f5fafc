"""Recording mapping and category changes where they are written, and reading them back.

The chart's services call `record_mapping_changes` / `record_category_change` in the same
transaction as the edit itself, and a chart sync calls `record_synced_categories`, so a change
and its history row commit (or roll back) together whichever path made it.
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
    before: Mapping[str, int | None],
    after: Mapping[str, int | None],
    changed_by: str | None,
) -> None:
    """One history row per mapping whose value changed (none when the PUT changed nothing)."""
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


CategoryStates = dict[uuid.UUID, dict[str, Any]]


async def category_states(session: AsyncSession, company_id: str) -> CategoryStates:
    """Every category of the company as its history keeps it, read from the database."""
    columns = [getattr(Category, field) for field in CATEGORY_FIELDS]
    rows = await session.execute(
        select(Category.id, *columns).where(Category.company_id == company_id)
    )
    return {row[0]: dict(zip(CATEGORY_FIELDS, row[1:], strict=True)) for row in rows}


async def record_synced_categories(
    session: AsyncSession,
    *,
    company_id: str,
    before: CategoryStates,
    after: CategoryStates | None = None,
) -> int:
    """History rows for what a chart sync changed (new, renamed, hidden, removed accounts).

    `before` is the categories' states before the sync wrote (`category_states`, or only the
    ones it changed); `after` their states now, when the sync has them at hand (the changed
    ones: nothing is read again), else every category is read again (flushed). Every
    difference becomes a row by `dinero_sync`. Returns how many.
    """
    if after is None:
        after = await category_states(session, company_id)
    rows = []
    for category_id, state in after.items():
        changes = _diff(before.get(category_id, {}), state)
        if changes:
            rows.append(
                {
                    "company_id": company_id,
                    "kind": ChangeKind.CATEGORY.value,
                    "category_id": category_id,
                    "changes": changes,
                    "state": state,
                    "changed_by": None,
                    "source": ChangeSource.DINERO_SYNC.value,
                }
            )
    if rows:
        # RETURNING: one statement per 1,000 rows (insertmanyvalues), not one per row
        await session.execute(_INSERT.returning(SettingsChange.id), rows)
    return len(rows)


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
