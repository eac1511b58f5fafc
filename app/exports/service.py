"""An export item's lifecycle: which status may follow which, and the one way to change it.

Every path that changes an item's `status` (the runner, the follow-up, a retry) goes through
`transition()`, which refuses a move the table below does not list. The outbox trigger on
`export_items` (app/outbox) turns each committed change into the platform's event, as before.

Adding a status is one line in `LIFECYCLE` (plus the enum member and its migration): its row
says where it may go and where it may be reached from; `TRANSITIONS` is derived from the rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.selectable import Exists

from app.errors import NotFound
from app.exports.models import ExportItem, ItemStatus

_Q, _E, _A, _B, _F, _D = (
    ItemStatus.QUEUED,
    ItemStatus.EXPORTING,
    ItemStatus.AWAITING_APPROVAL,
    ItemStatus.BOOKED,
    ItemStatus.FAILED,
    ItemStatus.DELETED_IN_DINERO,
)

INITIAL: Final = ItemStatus.QUEUED
"""The status an item is stored with at intake."""


async def company_item(
    session: AsyncSession, company_id: str, item_id: uuid.UUID, *, lock: bool = False
) -> ExportItem:
    """The company's item (locked for this transaction with `lock`), or 404 `item_not_found`:
    another company's item is not found either."""
    query = select(ExportItem).where(ExportItem.id == item_id, ExportItem.company_id == company_id)
    item = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if item is None:
        raise NotFound("No such export item.", code="item_not_found")
    return item


@dataclass(frozen=True)
class Row:
    """One status's line in the table: where it may go, and (for a status added later without
    touching the other lines) where it may be reached from."""

    to: frozenset[ItemStatus] = frozenset()
    reached_from: frozenset[ItemStatus] = frozenset()


LIFECYCLE: Final[Mapping[ItemStatus, Row]] = {
    # queued/exporting: waiting (back to queued before anything was sent), sending, failing, done.
    # A retried item keeps an uncertain step, so queued can end at once when Dinero has it.
    _Q: Row(to=frozenset({_Q, _E, _A, _B, _F})),
    _E: Row(to=frozenset({_Q, _E, _A, _B, _F})),
    _A: Row(to=frozenset({_B, _D})),  # the follow-up: approved, or deleted in Dinero
    _B: Row(),  # booked books are not touched
    _F: Row(to=frozenset({_Q})),  # retry
    _D: Row(to=frozenset({_Q})),  # retry: exported again as a new voucher
    # app/reversals: undone in Dinero (a refusal puts it back), then exported again (replace).
    ItemStatus.REVERSING: Row(
        to=frozenset({ItemStatus.REVERSED, _A, _B}), reached_from=frozenset({_A, _B})
    ),
    ItemStatus.REVERSED: Row(to=frozenset({_Q})),
}
"""The lifecycle, one line per status. A new status is one line here, e.g.
`ItemStatus.REVERSING: Row(to=frozenset({...}), reached_from=frozenset({_A, _B}))`."""


def _transitions(rows: Mapping[ItemStatus, Row]) -> dict[ItemStatus, frozenset[ItemStatus]]:
    moves: dict[ItemStatus, set[ItemStatus]] = {status: set(row.to) for status, row in rows.items()}
    for status, row in rows.items():
        for source in row.reached_from:
            moves[source].add(status)
    return {status: frozenset(targets) for status, targets in moves.items()}


TRANSITIONS: Final[Mapping[ItemStatus, frozenset[ItemStatus]]] = _transitions(LIFECYCLE)
"""Allowed moves: status -> the statuses it may become (itself only where listed)."""


FRESH: Final[Mapping[str, Any]] = {
    "attempts": 0,
    "next_attempt_at": None,
    "waiting_code": None,
    "waiting_message": None,
    "failure_code": None,
    "failure_message": None,
    "dinero_message": None,
}
"""What an item no longer carries once it got through (or is retried): no tries counted, no
wait, no failure."""


class TransitionRefused(RuntimeError):
    """The code asked for a status change the lifecycle does not allow (a bug, never input)."""

    def __init__(self, item_id: uuid.UUID, current: ItemStatus, to: ItemStatus) -> None:
        super().__init__(
            f"export item {item_id}: {current.value} -> {to.value} is not an allowed transition"
        )
        self.item_id = item_id
        self.current = current
        self.to = to


def allowed(current: ItemStatus, to: ItemStatus) -> bool:
    return to in TRANSITIONS[current]


def check(item_id: uuid.UUID, current: ItemStatus, to: ItemStatus) -> None:
    """Raise `TransitionRefused` unless `current -> to` is in the table."""
    if not allowed(current, to):
        raise TransitionRefused(item_id, current, to)


async def transition(
    session: AsyncSession,
    item_id: uuid.UUID,
    *,
    from_: ItemStatus | Collection[ItemStatus],
    to: ItemStatus,
    **values: Any,
) -> bool:
    """Move one item from `from_` (its status as the caller knows it) to `to`, in `session`.

    `values` are written in the same UPDATE (with `updated_at`). Every `from_ -> to` must be
    in `TRANSITIONS` (else `TransitionRefused`, before anything is written). The UPDATE only
    matches while the item is still in `from_`: True when it moved, False when someone moved
    it first (or it is gone); the caller's transaction commits it.
    """
    sources = {from_} if isinstance(from_, ItemStatus) else set(from_)
    if "status" in values:
        raise TypeError("transition() sets the status itself: pass it as `to`")
    for current in sources:
        check(item_id, current, to)
    values.setdefault("updated_at", datetime.now(UTC))
    done = await session.execute(
        update(ExportItem)
        .where(ExportItem.id == item_id, ExportItem.status.in_(sources))
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(done, "rowcount", 0))


def has_drafts(company_id: str | InstrumentedAttribute[str]) -> Exists:
    """The company (a value, or a column to correlate with) has drafts awaiting approval."""
    return exists().where(
        ExportItem.company_id == company_id,
        ExportItem.status == ItemStatus.AWAITING_APPROVAL,
    )
