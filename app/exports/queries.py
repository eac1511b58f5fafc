"""Reading exports and their items: one export with its items, a filtered feed, one item in full."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.exports.intake import export_status
from app.exports.models import Export, ExportItem, ItemStatus, ItemType
from app.exports.schemas import (
    DineroRefOut,
    EditedOut,
    EmployeeOut,
    ExportOut,
    FailureOut,
    ItemOut,
    ItemPage,
    ItemSummary,
    LateReceiptOut,
    LineOut,
    MoneyOut,
    ReceiptOut,
    RejectedItem,
    WaitingOut,
)
from app.exports.service import company_item
from app.inputs import InvalidCursor
from app.preview.models import ExportExplanation
from app.preview.schemas import LineExplanation

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def item_summary(item: ExportItem) -> ItemSummary:
    return ItemSummary(**_summary_fields(item))


def _summary_fields(item: ExportItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "export_id": item.export_id,
        "external_id": item.external_id,
        "type": item.type,
        "status": item.status,
        "date": item.voucher_date,
        "posting_date": item.posting_date,
        "description": item.description,
        "amount": MoneyOut(value=item.amount_minor, currency=item.currency),
        "waiting": None
        if item.waiting_code is None
        else WaitingOut(code=item.waiting_code, message=item.waiting_message),
        "failure": None
        if item.failure_code is None
        else FailureOut(
            code=item.failure_code,
            message=item.failure_message,
            dinero_message=item.dinero_message,
        ),
        "dinero": _dinero_ref(item),
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


def _dinero_ref(item: ExportItem) -> DineroRefOut | None:
    if item.dinero_kind is None and item.dinero_guid is None and item.dinero_file_guid is None:
        return None
    ledger = item.dinero_kind == "ledger_item"
    # No link into Dinero's web app: its deep-link paths are not documented (only that the
    # organization id follows app.dinero.dk/), so a guessed URL could lead nowhere.
    return DineroRefOut(
        kind=item.dinero_kind,
        voucher_guid=None if ledger else item.dinero_guid,
        # A ledger item's Id in Dinero is our item id, chosen before sending.
        ledger_item_id=(item.dinero_guid or item.ledger_id) if ledger else None,
        voucher_number=item.dinero_voucher_number,
        file_guid=item.dinero_file_guid,
        url=None,
    )


def item_out(item: ExportItem) -> ItemOut:
    settled = (
        MoneyOut(value=item.dkk_amount_minor, currency="DKK") if item.currency != "DKK" else None
    )
    return ItemOut(
        **_summary_fields(item),
        settled_amount=settled,
        lines=[LineOut.model_validate(line) for line in item.lines],
        employee=None if item.employee is None else EmployeeOut.model_validate(item.employee),
        receipts=[
            ReceiptOut(
                source="url" if "url" in receipt else "inline",
                filename=receipt.get("filename"),
                content_type=receipt.get("content_type"),
            )
            for receipt in item.receipts
        ],
        attempts=item.attempts,
        next_attempt_at=item.next_attempt_at,
        exported_at=item.exported_at,
        booked_at=item.booked_at,
        edited_in_dinero=None
        if item.dinero_changes is None
        else EditedOut.model_validate(item.dinero_changes),
        late_receipt=None
        if item.late_receipt_status is None
        else LateReceiptOut.model_validate(
            {"status": item.late_receipt_status, "message": item.late_receipt_message}
        ),
    )


async def get_export(*, session: AsyncSession, company_id: str, export_id: uuid.UUID) -> ExportOut:
    export = (
        await session.execute(
            select(Export).where(Export.id == export_id, Export.company_id == company_id)
        )
    ).scalar_one_or_none()
    if export is None:
        raise NotFound("No such export.", code="export_not_found")
    ids = [uuid.UUID(i) for i in export.item_ids]
    found = {
        item.id: item
        for item in (
            await session.execute(
                select(ExportItem).where(
                    ExportItem.company_id == company_id, ExportItem.id.in_(ids)
                )
            )
        ).scalars()
    }
    items = [found[i] for i in dict.fromkeys(ids) if i in found]
    counts = Counter(item.status.value for item in items)
    return ExportOut(
        id=export.id,
        status=export_status(item.status for item in items),
        source="webhook" if export.source == "webhook" else "api",
        created_at=export.created_at,
        items=[item_summary(item) for item in items],
        rejected=[RejectedItem.model_validate(r) for r in export.rejected],
        counts=dict(sorted(counts.items())),
    )


async def get_item(*, session: AsyncSession, company_id: str, item_id: uuid.UUID) -> ItemOut:
    item = await company_item(session, company_id, item_id)
    out = item_out(item)
    explanation = await session.get(ExportExplanation, item.id)
    if explanation is not None:
        out.explained_by = [LineExplanation.model_validate(e) for e in explanation.lines]
        if item.type.is_expense:  # one posted line per expense line
            for line, explained in zip(out.lines, out.explained_by, strict=False):
                line.explained_by = explained
    return out


@dataclass(frozen=True)
class Cursor:
    """A position in the feed (newest first): the last item shown."""

    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), str(self.id)], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The position a cursor stands for; anything else is 400 `invalid_cursor`."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            decoded = json.loads(raw)
            if not (
                isinstance(decoded, list)
                and len(decoded) == 2
                and all(isinstance(part, str) for part in decoded)
            ):
                raise InvalidCursor()
            moment = datetime.fromisoformat(decoded[0])
            if moment.tzinfo is None:
                raise InvalidCursor()
            # In UTC, as the database compares it; a moment outside the calendar is no cursor.
            return cls(created_at=moment.astimezone(UTC), id=uuid.UUID(decoded[1]))
        except (binascii.Error, ValueError, TypeError, OverflowError, RecursionError):
            raise InvalidCursor() from None


async def list_items(
    *,
    session: AsyncSession,
    company_id: str,
    statuses: Sequence[ItemStatus] = (),
    types: Sequence[ItemType] = (),
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> ItemPage:
    """The company's items, newest first, filtered by status and type; keyset-paginated."""
    query = select(ExportItem).where(ExportItem.company_id == company_id)
    if statuses:
        query = query.where(ExportItem.status.in_(statuses))
    if types:
        query = query.where(ExportItem.type.in_(types))
    if cursor is not None:
        position = Cursor.decode(cursor)
        query = query.where(
            tuple_(ExportItem.created_at, ExportItem.id) < (position.created_at, position.id)
        )
    query = query.order_by(ExportItem.created_at.desc(), ExportItem.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    page, more = rows[:limit], len(rows) > limit
    next_cursor = Cursor(created_at=page[-1].created_at, id=page[-1].id).encode() if more else None
    return ItemPage(items=[item_summary(item) for item in page], next_cursor=next_cursor)
