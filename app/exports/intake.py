"""Intake: items arriving by REST or signed webhook become export items, durably, in milliseconds.

Each item is checked by itself (app/exports/validation.py: schema, money, lines, receipts); a
bad one is refused with its reason and the rest go on. What is accepted is stored in one short
transaction (app/exports/intake_store.py: one statement) together with the runner's wake-up,
so the 202 is only ever given for work that cannot be lost.

Exactly once starts here: an item is unique per (company, type, external_id) and is inserted with
`ON CONFLICT DO NOTHING`, so a repeated item (a webhook retry, a double click, two deliveries at
the same moment) points at the existing item instead of creating another. A request is replayed
by its webhook id or its Idempotency-Key: same answer, nothing new stored.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

import structlog
from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.errors import Conflict, ValidationFailed
from app.exports import late_receipts
from app.exports.intake_store import (
    Link,
    OnSession,
    dumps,
    existing_items,
    linger,
    parameters,
    store,
)
from app.exports.models import Export, ExportItem, ItemStatus, ItemType
from app.exports.schemas import AcceptedItem, ExportAccepted, ExportStatus
from app.exports.validation import (
    Candidate,
    ReceiptRules,
    Refusal,
    check_items,
    split_by_category,
)
from app.reversals import reexport

Source = Literal["api", "webhook"]

_exports = cast(Table, Export.__table__)
_items = cast(Table, ExportItem.__table__)


def request_hash(body: object) -> str:
    """SHA-256 of the body's canonical JSON (sorted keys, no spaces): equal bodies, equal hash.

    The caller has refused JSON nested too deep to encode (`app.inputs.too_deep`). An unpaired
    surrogate (in a field the request does not use) is hashed as its code point, not a crash.
    """
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def export_status(statuses: Iterable[ItemStatus]) -> ExportStatus:
    """accepted while an item is on its way; then completed, or completed_with_errors."""
    failed = False
    for status in statuses:
        if not status.settled:
            return "accepted"
        failed = failed or status == ItemStatus.FAILED
    return "completed_with_errors" if failed else "completed"


@dataclass(frozen=True)
class Outcome:
    body: ExportAccepted
    content: dict[str, Any]
    """`body` as JSON, serialized once (the 202 is sent as it was stored)."""
    replayed: bool
    text: str | None = None
    """`content` as the JSON text stored with the export, when it was (sent as it is)."""


async def _replay(session: AsyncSession, export: Export) -> Outcome:
    """The 202 first given for this request, with each item's status as it is now."""
    assert export.response is not None
    body = ExportAccepted.model_validate(export.response)
    ids = [item.id for item in body.items]
    result = await session.execute(select(_items.c.id, _items.c.status).where(_items.c.id.in_(ids)))
    # (Not dict(result): a Result has keys(), so dict() would treat it as a mapping.)
    current = {item_id: status for item_id, status in result.tuples()}
    for item in body.items:
        item.status = current.get(item.id, item.status)
    body.status = export_status(item.status for item in body.items)
    return Outcome(body=body, content=body.model_dump(mode="json"), replayed=True)


async def _existing_export(
    session: AsyncSession,
    *,
    company_id: str,
    webhook_id: str | None,
    idempotency_key: str | None,
) -> Export | None:
    if webhook_id is not None:
        # Per company: another company's webhook with the same id is another webhook.
        condition = (Export.company_id == company_id) & (Export.webhook_id == webhook_id)
    elif idempotency_key is not None:
        condition = (Export.company_id == company_id) & (Export.idempotency_key == idempotency_key)
    else:
        return None
    export: Export | None = (
        await session.execute(select(Export).where(condition))
    ).scalar_one_or_none()
    return export


async def _replay_or_conflict(
    session: AsyncSession, export: Export, *, request_hash: str, idempotency_key: str | None
) -> Outcome:
    if export.request_hash != request_hash:
        if idempotency_key is not None:
            raise Conflict(
                "This Idempotency-Key was already used for a different request. Use a new key "
                "for a new request, or send exactly the same body to get the first answer again.",
                code="idempotency_key_reused",
            )
        raise Conflict(
            "This webhook-id was already used for this company with a different body; nothing "
            "was stored. A retry must carry the same body, and a new webhook a new webhook-id.",
            code="webhook_id_reused",
        )
    return await _replay(session, export)


def _all_refused(refusals: list[Refusal]) -> ValidationFailed:
    errors: dict[str, str] = {}
    for refusal in refusals:
        for name, message in refusal.errors.items():
            errors.setdefault(f"items.{refusal.index}.{name}", message)
    return ValidationFailed(
        "None of the items can be exported; each one's reason is in `rejected`.",
        code="items_rejected",
        errors=errors,
        extra={"rejected": [r.out().model_dump(mode="json") for r in refusals]},
    )


def _answer(
    *,
    export_id: uuid.UUID,
    source: Source,
    created_at: datetime,
    candidates: list[Candidate],
    refusals: list[Refusal],
    repeated: Mapping[tuple[ItemType, str], tuple[uuid.UUID, ItemStatus]],
) -> ExportAccepted:
    accepted: list[AcceptedItem] = []
    for c in candidates:
        item_id, status = repeated.get(c.key, (c.id, ItemStatus.QUEUED))
        accepted.append(
            AcceptedItem(
                id=item_id,
                external_id=c.item.external_id,
                type=c.item.type,
                status=status,
                repeated=c.key in repeated,
            )
        )
    return ExportAccepted(
        id=export_id,
        status=export_status(a.status for a in accepted),
        source=source,
        created_at=created_at,
        items=accepted,
        rejected=[r.out() for r in sorted(refusals, key=lambda r: r.index)],
    )


async def accept_export(
    *,
    session: AsyncSession | Link,
    company_id: str,
    source: Source,
    raw_items: Sequence[object],
    request_hash: str,
    rules: ReceiptRules,
    idempotency_key: str | None = None,
    webhook_id: str | None = None,
    replace: bool = False,
) -> Outcome:
    """Store what can be exported of a request (and enqueue it), or replay the first answer.

    Creates the company on first sight. Raises `idempotency_key_reused` (409) for a known key
    with another body, and `items_rejected` (422) when no item can be accepted: then nothing
    is stored. `session` is the request's transaction: a session, or a `Link` whose session is
    only made when a statement beyond the store needs one.
    """
    link = OnSession(session) if isinstance(session, AsyncSession) else session

    async def lookup() -> Export | None:
        return await _existing_export(
            await link.session(),
            company_id=company_id,
            webhook_id=webhook_id,
            idempotency_key=idempotency_key,
        )

    async def replay(export: Export) -> Outcome:
        return await _replay_or_conflict(
            await link.session(),
            export,
            request_hash=request_hash,
            idempotency_key=idempotency_key,
        )

    if idempotency_key is not None:
        # First: a reused key with another body is a conflict whatever that body holds.
        existing = await lookup()
        if existing is not None:
            return await replay(existing)

    candidates, refusals = await check_items(raw_items, company_id=company_id, rules=rules)
    if not candidates:
        # A webhook accepted before, delivered again after a configuration change, is still
        # answered as it was the first time.
        existing = await lookup() if webhook_id is not None else None
        if existing is not None:
            return await replay(existing)
        raise _all_refused(refusals)

    # Stored as if every item is new and every category exists (the common case, one round
    # trip); corrected below when the database says otherwise.
    export_id, created_at = uuid.uuid4(), datetime.now(UTC)
    body = _answer(
        export_id=export_id,
        source=source,
        created_at=created_at,
        candidates=candidates,
        refusals=refusals,
        repeated={},
    )
    answer = body.model_dump(mode="json")
    stored_text = dumps(answer)
    answer_text: str | None = stored_text
    params = parameters(
        body=body,
        answer=answer,
        answer_text=stored_text,
        company_id=company_id,
        candidates=candidates,
        request_hash=request_hash,
        idempotency_key=idempotency_key,
        webhook_id=webhook_id,
    )
    stored = await store(link, params, candidates)
    if not stored.stored:
        # The same webhook or Idempotency-Key was stored first, maybe a moment ago.
        existing = await lookup()
        if existing is None:  # pragma: no cover - a unique key conflicted, so the row exists
            raise Conflict("The request conflicted with another; send it again.")
        return await replay(existing)

    candidates, unknown = split_by_category(candidates, stored.known_categories)
    if unknown:
        refusals = refusals + unknown
        if not candidates:
            raise _all_refused(sorted(refusals, key=lambda r: r.index))
    unsure = [c.key for c in candidates if c.id not in stored.inserted]
    repeated = await existing_items(await link.session(), company_id, unsure) if unsure else {}
    replaced: dict[tuple[ItemType, str], tuple[uuid.UUID, ItemStatus]] = {}
    if replace and repeated:  # a reversed item exported anew (app/reversals/reexport.py)
        replaced = await reexport.replace_reversed(
            await link.session(), candidates=candidates, repeated=repeated
        )
    if late := {key: found for key, found in repeated.items() if key not in replaced}:
        # a receipt sent after its expense goes onto the same draft
        await late_receipts.accept(
            await link.session(), company_id=company_id, candidates=candidates, repeated=late
        )
    repeated = {**repeated, **replaced}
    if unknown or repeated:
        body = _answer(
            export_id=export_id,
            source=source,
            created_at=created_at,
            candidates=candidates,
            refusals=refusals,
            repeated=repeated,
        )
        answer, answer_text = body.model_dump(mode="json"), None
        await (await link.session()).execute(
            update(_exports)
            .where(_exports.c.id == export_id)
            .values(
                item_ids=[item["id"] for item in answer["items"]],
                rejected=answer["rejected"],
                response=answer,
            )
        )
    if replaced:
        await jobs.wake_exports(await link.session(), company_id)
    elif stored.inserted and not stored.run_queued:
        # Within a burst the runner waits for the burst's next items (they ride on this job).
        at = datetime.now(UTC) + linger() if stored.in_burst else None
        await jobs.wake_exports(await link.session(), company_id, at=at)
    # On the request's access line (and any line after it), instead of a line of its own.
    structlog.contextvars.bind_contextvars(
        export_id=str(export_id),
        company_id=company_id,
        items_new=len(stored.inserted),
        items_repeated=len(repeated),
        items_rejected=len(body.rejected),
    )
    return Outcome(body=body, content=answer, replayed=False, text=answer_text)
