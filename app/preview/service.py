"""The posting preview: the items of an export request, as Dinero would receive them now.

Nothing is stored and nothing is sent to Dinero. Each item is checked as the intake checks it
(app/exports/validation.py), then as the runner would: `checks.check` and the live pre-flight
(`preflight.confirm`, against a chart no older than a few minutes), and mapped by
`mapping.plan`, the very function whose `request` the runner sends. The receipts are combined
and shrunk as the export would (links are downloaded) to say which file would be attached.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chart.models import Category, DineroAccount
from app.connection.models import ConnectionStatus, get_connection
from app.dinero.models import LedgerItem
from app.dinero.wire import dumps
from app.exports.checks import Books, Fail, Wait, check
from app.exports.context import load_books
from app.exports.files import EXTENSIONS, base_name
from app.exports.intake_store import existing_items
from app.exports.mapping import LEDGER, Plan, plan
from app.exports.models import ExportItem, ItemStatus, ItemType, Step
from app.exports.note import receipt_note
from app.exports.preflight import Freshness, confirm, fresh_books
from app.exports.validation import (
    Candidate,
    ReceiptRules,
    check_items,
    item_columns,
    split_by_category,
)
from app.preview.explain import explain
from app.preview.schemas import (
    AccountRef,
    FileOut,
    LineExplanation,
    PostedLineOut,
    PostingOut,
    PreviewItemOut,
    PreviewOut,
)
from app.receipts import ReceiptBlob, ReceiptError, prepare_receipts
from app.services import Services

NOT_STORED_ID: Final = uuid.UUID(int=0)
"""The id shown for an item that is not stored yet (its own is given when it is exported)."""


def in_memory_item(company_id: str, row: Mapping[str, Any], item_id: uuid.UUID) -> ExportItem:
    """The item as the intake would store it, not added to any session."""
    return ExportItem(
        id=item_id,
        company_id=company_id,
        external_id=row["external_id"],
        type=ItemType(row["type"]),
        status=ItemStatus.QUEUED,
        step=Step.NEW,
        **item_columns(row),
    )


def rounding_adjustments(item: ExportItem) -> list[int]:
    """Per line, the øre the allocation of a foreign amount's settled DKK added (app/exports/
    allocation.py: the largest remainders take the leftover øre); zeros for DKK items."""
    weights = [int(line["amount"]) for line in item.lines]
    base = sum(weights)
    if item.currency == "DKK" or base == 0:
        return [0] * len(weights)
    sign = -1 if base < 0 else 1
    floors = [(item.dkk_amount_minor * w * sign) // (base * sign) for w in weights]
    return [int(line["dkk_amount"]) - floor for line, floor in zip(item.lines, floors, strict=True)]


async def _receipt_blobs(candidate: Candidate, rules: ReceiptRules) -> list[ReceiptBlob]:
    inline = dict(candidate.blobs)
    blobs: list[ReceiptBlob] = []
    for receipt in candidate.row["receipts"]:
        filename = receipt.get("filename") or "receipt"
        content_type = receipt.get("content_type") or "application/octet-stream"
        if receipt.get("blob_id"):
            content = inline[uuid.UUID(receipt["blob_id"])]
            blobs.append(ReceiptBlob(content=content, filename=filename, content_type=content_type))
        elif receipt.get("url"):
            blobs.append(await rules.fetcher.fetch(str(receipt["url"])))
    return blobs


async def attached_file(candidate: Candidate, item: ExportItem, rules: ReceiptRules) -> FileOut:
    """The voucher's one file as the export would make it (app/exports/files.py)."""
    blobs = await _receipt_blobs(candidate, rules)
    base = base_name(item)
    if not blobs:
        content = await asyncio.to_thread(receipt_note, item)
        return FileOut(
            name=f"{base}.png",
            content_type="image/png",
            pages=1,
            size_bytes=len(content) if item.id != NOT_STORED_ID else None,
            from_receipts=False,
        )
    prepared = await asyncio.to_thread(prepare_receipts, blobs, base_name=base)
    extension = EXTENSIONS.get(prepared.content_type, "pdf")
    return FileOut(
        name=f"{base}.{extension}",
        content_type=prepared.content_type,
        pages=prepared.pages,
        size_bytes=len(prepared.content),
        from_receipts=True,
    )


async def account_names(session: AsyncSession, company_id: str) -> dict[int, str]:
    rows = await session.execute(
        select(DineroAccount.account_number, DineroAccount.name).where(
            DineroAccount.company_id == company_id
        )
    )
    return {number: name for number, name in rows.tuples()}


def request_body(planned: Plan) -> str:
    """The body exactly as the Dinero client encodes it (ledger items go as a list)."""
    wire = planned.request.to_wire()
    return dumps([wire] if isinstance(planned.request, LedgerItem) else wire).decode("utf-8")


def posting(
    item: ExportItem,
    planned: Plan,
    *,
    names: Mapping[int, str],
    explanations: Sequence[dict[str, Any]],
    file: FileOut | None,
    stored: bool,
) -> PostingOut:
    def ref(number: int | None) -> AccountRef | None:
        return None if number is None else AccountRef(account_number=number, name=names.get(number))

    adjustments = rounding_adjustments(item) if item.type.is_expense else [0]
    return PostingOut(
        target=planned.target,
        booked=planned.target == LEDGER,
        voucher_date=planned.voucher_date,
        amount_minor=item.dkk_amount_minor,
        paid_from=ref(planned.balancing_account_number),
        lines=[
            PostedLineOut(
                account=ref(line.account_number),
                vat_code=line.vat_code,
                amount_minor=line.amount_minor,
                rounding_adjustment_minor=adjustments[index],
                description=line.description,
                balancing_account=ref(line.balancing_account_number),
                balancing_vat_code=line.balancing_vat_code,
                explained_by=LineExplanation.model_validate(explanations[index]),
            )
            for index, line in enumerate(planned.lines)
        ],
        file=file,
        reference=str(item.id)
        if stored and planned.target == LEDGER
        else (f"bridge:{item.id}" if stored else None),
        request_body=request_body(planned),
    )


async def _preview_one(
    session: AsyncSession,
    *,
    company_id: str,
    candidate: Candidate,
    books: Books,
    fresh: Freshness | None,
    names: Mapping[int, str],
    rules: ReceiptRules,
) -> PreviewItemOut:
    item = in_memory_item(company_id, candidate.row, NOT_STORED_ID)
    head = {
        "index": candidate.index,
        "external_id": candidate.item.external_id,
        "type": candidate.item.type.value,
    }
    try:
        if fresh is None:
            raise Wait("not_connected", "Connect Dinero before exporting.")
        check(books, item)
        if fresh.problem is not None:
            raise fresh.problem
        confirm(books, item)
        planned = plan(item, books)
        file = await attached_file(candidate, item, rules) if item.type.is_expense else None
    except Wait as wait:
        return PreviewItemOut(**head, outcome="would_wait", code=wait.code, message=wait.message)
    except Fail as failure:
        return PreviewItemOut(
            **head, outcome="would_fail", code=failure.code, message=failure.message
        )
    except ReceiptError as exc:
        outcome = "would_wait" if exc.transient else "would_fail"
        return PreviewItemOut(**head, outcome=outcome, code=exc.code, message=exc.message)
    explanations = await explain(
        session, company_id=company_id, item=item, books=books, plan=planned
    )
    return PreviewItemOut(
        **head,
        outcome="would_export",
        posting=posting(
            item, planned, names=names, explanations=explanations, file=file, stored=False
        ),
    )


async def preview(
    *,
    services: Services,
    session: AsyncSession,
    company_id: str,
    raw_items: Sequence[object],
    rules: ReceiptRules,
    replace: bool = False,
) -> PreviewOut:
    """Per item of an export request: what Dinero would receive, or why it would not go.

    With `replace`, a reversed item is previewed anew, as the export would send it again."""
    candidates, refusals = await check_items(raw_items, company_id=company_id, rules=rules)
    known = set(
        (
            await session.execute(select(Category.id).where(Category.company_id == company_id))
        ).scalars()
    )
    candidates, unknown = split_by_category(candidates, known)
    out: dict[int, PreviewItemOut] = {
        r.index: PreviewItemOut(
            index=r.index,
            external_id=r.external_id,
            type=None,
            outcome="refused",
            code=r.code,
            message=r.message,
            errors=r.errors,
        )
        for r in [*refusals, *unknown]
    }
    existing = await existing_items(session, company_id, [c.key for c in candidates])
    if replace:
        existing = {k: v for k, v in existing.items() if v[1] != ItemStatus.REVERSED}
    connection = await get_connection(session=session, company_id=company_id)
    books = await load_books(session, company_id)
    fresh: Freshness | None = None
    connected = connection is not None and connection.status == ConnectionStatus.CONNECTED
    if connected and any(c.key not in existing for c in candidates):
        fresh = await fresh_books(services, company_id, books)
        books = fresh.books
    names = await account_names(session, company_id)
    for candidate in candidates:
        if candidate.key in existing:
            item_id, status = existing[candidate.key]
            out[candidate.index] = PreviewItemOut(
                index=candidate.index,
                external_id=candidate.item.external_id,
                type=candidate.item.type.value,
                outcome="exists",
                code="already_exported",
                message="This item was sent before; the export points at it and sends "
                "nothing new (a new receipt goes onto its draft).",
                item_id=item_id,
                status=status.value,
            )
            continue
        out[candidate.index] = await _preview_one(
            session,
            company_id=company_id,
            candidate=candidate,
            books=books,
            fresh=fresh,
            names=names,
            rules=rules,
        )
    return PreviewOut(
        items=[out[index] for index in sorted(out)],
        chart_synced_at=fresh.synced_at if fresh is not None else None,
        chart_refreshed=fresh.refreshed if fresh is not None else False,
    )
