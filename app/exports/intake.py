"""Intake: items arriving by REST or signed webhook become export items, durably, in milliseconds.

Each item is checked by itself (schema, money, lines, receipts, categories); a bad one is refused
with its reason and the rest go on. What is accepted is stored in one short transaction together
with the job that exports it, so the 202 is only ever given for work that cannot be lost.

Exactly once starts here: an item is unique per (company, type, external_id) and is inserted with
`ON CONFLICT DO NOTHING`, so a repeated item (a webhook retry, a double click, two deliveries at
the same moment) points at the existing item instead of creating another. A request is replayed
by its webhook id or its Idempotency-Key: same answer, nothing new stored.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

import structlog
from pydantic import ValidationError
from sqlalchemy import Table, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.errors import AppError, Conflict, NotFound, ValidationFailed
from app.exports import late_receipts
from app.exports.models import Export, ExportItem, ItemStatus, ItemType, Step
from app.exports.schemas import (
    AcceptedItem,
    ExportAccepted,
    ExportItemIn,
    ExportStatus,
    RejectedItem,
)
from app.exports.tasks import kick

# The runner's queueing lock: a waiting runner for the company makes the kick unnecessary.
from app.exports.tasks import run_lock as run_queueing_lock
from app.inputs import escaped_text, is_safe_text
from app.receipts import ReceiptError, ReceiptFetcher, decode_inline
from app.receipts.errors import TOO_LARGE, describe_size

log = structlog.get_logger(__name__)

MAX_RECEIPT_BYTES: Final = 10 * 1024 * 1024
"""Per inline receipt, decoded (the export shrinks it further to Dinero's 6 MB)."""
WEBHOOK_TOLERANCE_SECONDS: Final = 5 * 60
"""Standard Webhooks' tolerance for webhook-timestamp, both ways."""
EXPORT_REQUESTED: Final = "export.requested"
_DECODE_IN_THREAD_AT: Final = 256 * 1024
"""Base64 longer than this is decoded off the event loop."""

Source = Literal["api", "webhook"]

# Core tables: this path is hot (benchmarked); Core skips the ORM's unit of work.
_exports = cast(Table, Export.__table__)
_items = cast(Table, ExportItem.__table__)


# --- Checking items ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptRules:
    """How receipts are checked at intake: links against the allow-list, inline size."""

    fetcher: ReceiptFetcher
    """Only its offline `check_url` is used here; downloads happen in the export."""
    max_bytes: int = MAX_RECEIPT_BYTES


@dataclass(frozen=True, slots=True)
class Refusal:
    index: int
    external_id: str | None
    code: str
    message: str
    errors: dict[str, str]

    def out(self) -> RejectedItem:
        return RejectedItem(
            index=self.index,
            external_id=self.external_id,
            code=self.code,
            message=self.message,
            errors=self.errors,
        )


@dataclass(slots=True)
class Candidate:
    """An item that passed every check: its row (JSON-ready), ready to insert, and its receipts."""

    index: int
    item: ExportItemIn
    id: uuid.UUID
    row: dict[str, Any]
    blobs: list[tuple[uuid.UUID, bytes]] = field(default_factory=list)
    category_ids: set[uuid.UUID] = field(default_factory=set)

    @property
    def key(self) -> tuple[ItemType, str]:
        return self.item.type, self.item.external_id


@dataclass(frozen=True, slots=True)
class _Problem:
    code: str
    field: str
    message: str


def _raw_external_id(raw: object) -> str | None:
    """A refused item's external_id, kept with its reason only if it can be stored as text."""
    if isinstance(raw, Mapping):
        value = raw.get("external_id")
        if isinstance(value, str) and 0 < len(value) <= 255 and is_safe_text(value):
            return value
    return None


def _raw_key(raw: object) -> tuple[str, str] | None:
    external_id = _raw_external_id(raw)
    if external_id is None or not isinstance(raw, Mapping):
        return None
    kind = raw.get("type")
    return (kind, external_id) if isinstance(kind, str) else None


def _field(loc: Iterable[int | str]) -> str:
    return ".".join(str(part) for part in loc) or "item"


def _schema_refusal(index: int, raw: object, exc: ValidationError) -> Refusal:
    errors: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        # A message may quote the input ("found `\x00` at 2"): kept, escaped, with the reason.
        errors.setdefault(escaped_text(_field(err["loc"])), escaped_text(err["msg"]))
    return Refusal(
        index=index,
        external_id=_raw_external_id(raw),
        code="invalid_item",
        message=f"The item is not valid: {', '.join(errors)}.",
        errors=errors,
    )


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` over `weights` in proportion; the largest remainders take the leftover units.

    The parts always sum exactly to `total` (works for negative amounts and mixed signs).
    """
    base = sum(weights)
    if base == 0:
        raise ValueError("cannot allocate over weights summing to 0")
    sign = -1 if base < 0 else 1
    parts: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        quotient, remainder = divmod(total * weight * sign, base * sign)
        parts.append(quotient)
        remainders.append(remainder)
    leftover = total - sum(parts)
    for i in sorted(range(len(parts)), key=lambda i: (-remainders[i], i))[:leftover]:
        parts[i] += 1
    return parts


def _money_problems(item: ExportItemIn) -> list[_Problem]:
    amount, settled = item.amount, item.settled_amount
    problems: list[_Problem] = []
    if amount.value == 0:
        problems.append(
            _Problem("amount_zero", "amount.value", "The amount is 0; there is nothing to export.")
        )
    if amount.currency != "DKK" and settled is None:
        problems.append(
            _Problem(
                "settled_amount_required",
                "settled_amount",
                f"The amount is in {amount.currency}; Dinero books these in DKK only, so send "
                "the amount settled in DKK as settled_amount.",
            )
        )
    if settled is None:
        return problems
    if settled.currency != "DKK":
        problems.append(
            _Problem(
                "settled_amount_invalid",
                "settled_amount.currency",
                f"The settled amount must be in DKK, not {settled.currency}.",
            )
        )
    elif amount.currency == "DKK" and settled.value != amount.value:
        problems.append(
            _Problem(
                "settled_amount_invalid",
                "settled_amount.value",
                "The amount is already in DKK, so a settled amount must equal it.",
            )
        )
    elif amount.value != 0 and (settled.value == 0 or (settled.value > 0) != (amount.value > 0)):
        problems.append(
            _Problem(
                "settled_amount_invalid",
                "settled_amount.value",
                "The settled amount must have the same sign as the amount (and not be 0).",
            )
        )
    return problems


def _line_problems(item: ExportItemIn) -> list[_Problem]:
    if item.type.is_expense:
        if not item.lines:
            return [
                _Problem(
                    "lines_required",
                    "lines",
                    "An expense needs at least one line: a category (or account), a tax code "
                    "and an amount.",
                )
            ]
        total = sum(line.amount for line in item.lines)
        if total != item.amount.value:
            return [
                _Problem(
                    "lines_sum_mismatch",
                    "lines",
                    f"The lines sum to {total} but the amount is {item.amount.value} "
                    "(minor units); they must be equal.",
                )
            ]
        return []
    if item.lines:
        kind = "A reimbursement" if item.type == ItemType.REIMBURSEMENT else "A wallet top-up"
        return [
            _Problem(
                "lines_not_allowed",
                "lines",
                f"{kind} is booked as one amount between two accounts; send it without lines.",
            )
        ]
    return []


async def _decode(content_base64: str, filename: str | None, content_type: str | None) -> Any:
    if len(content_base64) > _DECODE_IN_THREAD_AT:
        return await asyncio.to_thread(
            decode_inline,
            content_base64,
            filename,
            content_type,
            max_bytes=MAX_RECEIPT_BYTES + 3,
        )
    return decode_inline(content_base64, filename, content_type, max_bytes=MAX_RECEIPT_BYTES + 3)


async def _receipts(
    item: ExportItemIn, rules: ReceiptRules
) -> tuple[list[dict[str, Any]], list[tuple[uuid.UUID, bytes]], list[_Problem]]:
    stored: list[dict[str, Any]] = []
    blobs: list[tuple[uuid.UUID, bytes]] = []
    problems: list[_Problem] = []
    for i, receipt in enumerate(item.receipts):
        if receipt.url is not None:
            try:
                rules.fetcher.check_url(receipt.url)
            except ReceiptError as exc:
                problems.append(_Problem(exc.code, f"receipts.{i}.url", exc.message))
                continue
            stored.append(
                {
                    "url": receipt.url,
                    "filename": receipt.filename,
                    "content_type": receipt.content_type,
                }
            )
            continue
        assert receipt.content_base64 is not None
        try:
            blob = await _decode(receipt.content_base64, receipt.filename, receipt.content_type)
        except ReceiptError as exc:
            problems.append(_Problem(exc.code, f"receipts.{i}.content_base64", exc.message))
            continue
        if blob.size > rules.max_bytes:
            problems.append(
                _Problem(
                    TOO_LARGE,
                    f"receipts.{i}.content_base64",
                    f"The receipt is {describe_size(blob.size)}; inline receipts may be at most "
                    f"{describe_size(rules.max_bytes)}.",
                )
            )
            continue
        blob_id = uuid.uuid4()
        blobs.append((blob_id, blob.content))
        stored.append(
            {
                "blob_id": str(blob_id),
                "filename": blob.filename,
                "content_type": blob.content_type,
            }
        )
    return stored, blobs, problems


def _row(
    item: ExportItemIn, *, item_id: uuid.UUID, receipts: list[dict[str, Any]]
) -> dict[str, Any]:
    """The item's columns as JSON (inserted with jsonb_to_recordset, see _STORE)."""
    amount = item.amount
    dkk_amount = amount.value if item.settled_amount is None else item.settled_amount.value
    if item.lines:
        line_amounts = [line.amount for line in item.lines]
        dkk_lines = line_amounts if amount.currency == "DKK" else allocate(dkk_amount, line_amounts)
    else:
        dkk_lines = []
    return {
        "id": str(item_id),
        "external_id": item.external_id,
        "type": item.type.value,
        "voucher_date": item.date.isoformat(),
        "description": item.description,
        "currency": amount.currency,
        "amount_minor": amount.value,
        "dkk_amount_minor": dkk_amount,
        "lines": [
            {
                "category_id": None if line.category_id is None else str(line.category_id),
                "account_number": line.account_number,
                "tax_code": line.tax_code,
                "amount": line.amount,
                "dkk_amount": dkk,
                "description": line.description,
            }
            for line, dkk in zip(item.lines, dkk_lines, strict=True)
        ],
        "employee": None if item.employee is None else item.employee.model_dump(),
        "receipts": receipts,
        "category_ids": sorted({str(line.category_id) for line in item.lines if line.category_id}),
    }


async def check_item(
    index: int, raw: object, *, company_id: str, rules: ReceiptRules
) -> Candidate | Refusal:
    """Everything that can be checked without the database; the category check comes later."""
    if not isinstance(raw, Mapping):
        return Refusal(
            index=index,
            external_id=None,
            code="invalid_item",
            message="The item is not a JSON object.",
            errors={"item": "Each item must be a JSON object."},
        )
    try:
        item = ExportItemIn.model_validate(raw)
    except ValidationError as exc:
        return _schema_refusal(index, raw, exc)
    problems = _money_problems(item) + _line_problems(item)
    receipts, blobs, receipt_problems = await _receipts(item, rules)
    problems += receipt_problems
    if problems:
        errors: dict[str, str] = {}
        for problem in problems:
            errors.setdefault(problem.field, problem.message)
        return Refusal(
            index=index,
            external_id=item.external_id,
            code=problems[0].code,
            message=" ".join(dict.fromkeys(p.message for p in problems)),
            errors=errors,
        )
    item_id = uuid.uuid4()
    return Candidate(
        index=index,
        item=item,
        id=item_id,
        row=_row(item, item_id=item_id, receipts=receipts),
        blobs=blobs,
        category_ids={line.category_id for line in item.lines if line.category_id is not None},
    )


async def check_items(
    raw_items: Sequence[object], *, company_id: str, rules: ReceiptRules
) -> tuple[list[Candidate], list[Refusal]]:
    """Check each item by itself; a repeat of (type, external_id) in the batch is refused."""
    candidates: list[Candidate] = []
    refusals: list[Refusal] = []
    seen: dict[tuple[str, str], int] = {}
    for index, raw in enumerate(raw_items):
        key = _raw_key(raw)
        if key is not None and key in seen:
            refusals.append(
                Refusal(
                    index=index,
                    external_id=key[1],
                    code="duplicate_in_batch",
                    message=f"The same item ({key[0]} {key[1]!r}) is already item {seen[key]} "
                    "of this request; it is exported once.",
                    errors={"external_id": f"Repeats item {seen[key]} of this request."},
                )
            )
            continue
        if key is not None:
            seen[key] = index
        outcome = await check_item(index, raw, company_id=company_id, rules=rules)
        if isinstance(outcome, Candidate):
            candidates.append(outcome)
        else:
            refusals.append(outcome)
    return candidates, refusals


def _split_by_category(
    candidates: list[Candidate], known: set[uuid.UUID]
) -> tuple[list[Candidate], list[Refusal]]:
    """Refuse the items naming a category the company does not have (`category_unknown`)."""
    kept: list[Candidate] = []
    refused: list[Refusal] = []
    for candidate in candidates:
        if candidate.category_ids <= known:
            kept.append(candidate)
            continue
        unknown = {
            f"lines.{i}.category_id": f"No category {line.category_id} in this company; "
            "sync the chart of accounts or pick one from the categories list."
            for i, line in enumerate(candidate.item.lines)
            if line.category_id is not None and line.category_id not in known
        }
        refused.append(
            Refusal(
                index=candidate.index,
                external_id=candidate.item.external_id,
                code="category_unknown",
                message="The item names a category this company does not have.",
                errors=unknown,
            )
        )
    return kept, refused


# --- Requests: replay, store, answer ---------------------------------------------------------


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


# One statement, one round trip, for the whole request: the company (first sight), the export
# (ON CONFLICT: a webhook id or Idempotency-Key seen before stores nothing), the items whose
# categories all exist (ON CONFLICT: a repeated item stays as it is), and their inline receipts.
# Sorted by the items' unique key so concurrent batches take the key locks in the same order.
# Foreign keys between rows inserted by one statement are checked at its end, so they hold.
#
# `queued_run` saves the kick (a savepoint and two more round trips) when the company's runner
# is already waiting to start: the waiting job is locked FOR KEY SHARE until this transaction
# commits, and procrastinate claims jobs with FOR UPDATE SKIP LOCKED, so that runner cannot
# start before these items are visible to it. A job being claimed at this very moment is
# re-checked after its claim commits ('doing': no longer waiting), and then we kick as usual.
_STORE = text(
    """
WITH queued_run AS (
    SELECT id FROM procrastinate_jobs
    WHERE queueing_lock = :run_lock AND status = 'todo'
    FOR KEY SHARE
),
new_company AS (
    INSERT INTO companies (id) VALUES (:company_id) ON CONFLICT (id) DO NOTHING
),
known_categories AS (
    SELECT id FROM categories
    WHERE company_id = :company_id AND id = ANY(CAST(:category_ids AS uuid[]))
),
new_export AS (
    INSERT INTO exports (id, company_id, source, idempotency_key, request_hash, webhook_id,
                         item_ids, rejected, response, created_at)
    VALUES (:export_id, :company_id, :source, :idempotency_key, :request_hash, :webhook_id,
            CAST(:item_ids AS jsonb), CAST(:rejected AS jsonb), CAST(:response AS jsonb),
            :created_at)
    ON CONFLICT DO NOTHING
    RETURNING id
),
new_items AS (
    INSERT INTO export_items (id, company_id, export_id, external_id, type, status, step,
                              voucher_date, description, currency, amount_minor,
                              dkk_amount_minor, lines, employee, receipts, attempts)
    SELECT r.id, :company_id, new_export.id, r.external_id, r.type, 'queued', 'new',
           r.voucher_date, r.description, r.currency, r.amount_minor, r.dkk_amount_minor,
           r.lines, r.employee, r.receipts, 0
    FROM new_export, jsonb_to_recordset(CAST(:items AS jsonb)) AS r(
        id uuid, external_id text, type export_item_type, voucher_date date, description text,
        currency text, amount_minor bigint, dkk_amount_minor bigint, lines jsonb,
        employee jsonb, receipts jsonb, category_ids uuid[])
    WHERE r.category_ids <@ ARRAY(SELECT id FROM known_categories)
    ORDER BY r.type, r.external_id
    ON CONFLICT (company_id, type, external_id) DO NOTHING
    RETURNING id
),
new_blobs AS (
    INSERT INTO export_receipt_blobs (id, item_id, content, created_at)
    SELECT b.id, b.item_id, b.content, :created_at
    FROM unnest(CAST(:blob_ids AS uuid[]), CAST(:blob_item_ids AS uuid[]),
                CAST(:blob_contents AS bytea[])) AS b(id, item_id, content)
    WHERE b.item_id IN (SELECT id FROM new_items)
)
SELECT EXISTS (SELECT FROM new_export) AS stored,
       ARRAY(SELECT id FROM new_items) AS inserted,
       ARRAY(SELECT id FROM known_categories) AS known,
       EXISTS (SELECT FROM queued_run) AS run_queued
"""
)


@dataclass(frozen=True)
class _Stored:
    stored: bool
    """False: the webhook id or Idempotency-Key is known already; nothing was stored."""
    inserted: set[uuid.UUID]
    known_categories: set[uuid.UUID]
    run_queued: bool
    """The company's runner is waiting to start (and cannot start before this commits)."""


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def _store(
    session: AsyncSession,
    *,
    body: ExportAccepted,
    answer: dict[str, Any],
    company_id: str,
    candidates: list[Candidate],
    request_hash: str,
    idempotency_key: str | None,
    webhook_id: str | None,
) -> _Stored:
    blobs = [(blob_id, c.id, content) for c in candidates for blob_id, content in c.blobs]
    row = (
        await session.execute(
            _STORE,
            {
                "run_lock": run_queueing_lock(company_id),
                "company_id": company_id,
                "category_ids": sorted(set().union(*(c.category_ids for c in candidates))),
                "export_id": body.id,
                "source": body.source,
                "idempotency_key": idempotency_key,
                "request_hash": request_hash,
                "webhook_id": webhook_id,
                "item_ids": _json([item["id"] for item in answer["items"]]),
                "rejected": _json(answer["rejected"]),
                "response": _json(answer),
                "created_at": body.created_at,
                "items": _json([c.row for c in candidates]),
                "blob_ids": [b[0] for b in blobs],
                "blob_item_ids": [b[1] for b in blobs],
                "blob_contents": [b[2] for b in blobs],
            },
        )
    ).one()
    return _Stored(
        stored=row.stored,
        inserted=set(row.inserted),
        known_categories=set(row.known),
        run_queued=row.run_queued,
    )


async def _existing_items(
    session: AsyncSession, company_id: str, keys: list[tuple[ItemType, str]]
) -> dict[tuple[ItemType, str], tuple[uuid.UUID, ItemStatus]]:
    if not keys:
        return {}
    result = await session.execute(
        select(_items.c.type, _items.c.external_id, _items.c.id, _items.c.status).where(
            _items.c.company_id == company_id,
            tuple_(_items.c.type, _items.c.external_id).in_(keys),
        )
    )
    return {(kind, ext): (item_id, status) for kind, ext, item_id, status in result.tuples()}


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
    session: AsyncSession,
    company_id: str,
    source: Source,
    raw_items: Sequence[object],
    request_hash: str,
    rules: ReceiptRules,
    idempotency_key: str | None = None,
    webhook_id: str | None = None,
) -> Outcome:
    """Store what can be exported of a request (and enqueue it), or replay the first answer.

    Creates the company on first sight. Raises `idempotency_key_reused` (409) for a known key
    with another body, and `items_rejected` (422) when no item can be accepted: then nothing
    is stored.
    """
    lookup = functools.partial(
        _existing_export,
        session,
        company_id=company_id,
        webhook_id=webhook_id,
        idempotency_key=idempotency_key,
    )
    replay = functools.partial(
        _replay_or_conflict, session, request_hash=request_hash, idempotency_key=idempotency_key
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
    stored = await _store(
        session,
        body=body,
        answer=answer,
        company_id=company_id,
        candidates=candidates,
        request_hash=request_hash,
        idempotency_key=idempotency_key,
        webhook_id=webhook_id,
    )
    if not stored.stored:
        # The same webhook or Idempotency-Key was stored first, maybe a moment ago.
        existing = await lookup()
        if existing is None:  # pragma: no cover - a unique key conflicted, so the row exists
            raise Conflict("The request conflicted with another; send it again.")
        return await replay(existing)

    candidates, unknown = _split_by_category(candidates, stored.known_categories)
    if unknown:
        refusals = refusals + unknown
        if not candidates:
            raise _all_refused(sorted(refusals, key=lambda r: r.index))
    repeated = await _existing_items(
        session, company_id, [c.key for c in candidates if c.id not in stored.inserted]
    )
    if repeated:  # a receipt sent after its expense goes onto the same draft
        await late_receipts.accept(
            session, company_id=company_id, candidates=candidates, repeated=repeated
        )
    if unknown or repeated:
        body = _answer(
            export_id=export_id,
            source=source,
            created_at=created_at,
            candidates=candidates,
            refusals=refusals,
            repeated=repeated,
        )
        answer = body.model_dump(mode="json")
        await session.execute(
            update(_exports)
            .where(_exports.c.id == export_id)
            .values(
                item_ids=[item["id"] for item in answer["items"]],
                rejected=answer["rejected"],
                response=answer,
            )
        )
    if stored.inserted and not stored.run_queued:
        await kick(session, company_id)
    log.info(
        "export_accepted",
        export_id=str(export_id),
        company_id=company_id,
        source=source,
        new=len(stored.inserted),
        repeated=len(repeated),
        rejected=len(body.rejected),
    )
    return Outcome(body=body, content=answer, replayed=False)


# --- Webhooks --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _webhook(secret: str) -> Webhook:
    return Webhook(secret)


@dataclass(frozen=True, slots=True)
class WebhookHeaders:
    """The Standard Webhooks headers of a request, checked for shape (not yet for signature)."""

    id: str
    timestamp: str
    signature: str


_WEBHOOK_ID: Final = re.compile(r"[\x21-\x7e]{1,255}")
"""Printable ASCII, as the ids senders generate (`msg_…`); stored per company."""
_UNIX_SECONDS: Final = re.compile(r"[0-9]{1,12}")


def check_webhook_headers(headers: Mapping[str, str]) -> WebhookHeaders:
    """Presence, id, and a timestamp within tolerance: all from the headers, before any body."""
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "").strip()
    signature = headers.get("webhook-signature", "")
    missing = [
        name
        for name, value in (
            ("webhook-id", webhook_id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        )
        if not value
    ]
    if missing:
        raise AppError(
            f"The webhook lacks the {', '.join(missing)} header(s) of Standard Webhooks.",
            code="webhook_headers_missing",
            title="Webhook not signed",
            errors={name: "Missing." for name in missing},
        )
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise AppError(
            "The webhook-id header must be 1-255 printable ASCII characters.",
            code="webhook_id_invalid",
            errors={"webhook-id": "1-255 printable ASCII characters."},
        )
    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise AppError(
            "The webhook-timestamp header must be Unix seconds.",
            code="webhook_timestamp_invalid",
            errors={"webhook-timestamp": "Not an integer number of seconds."},
        )
    if abs(time.time() - int(timestamp)) > WEBHOOK_TOLERANCE_SECONDS:
        raise AppError(
            "The webhook-timestamp is more than 5 minutes away from now, so the webhook may be "
            "a replay; it was not accepted (check the sender's clock).",
            code="webhook_timestamp_stale",
            errors={"webhook-timestamp": "More than 5 minutes from now."},
        )
    return WebhookHeaders(id=webhook_id, timestamp=timestamp, signature=signature)


def verify_webhook_signature(body: bytes, signed: WebhookHeaders, *, secret: str) -> None:
    """Check the Standard Webhooks signature of `body` (401 `webhook_signature_invalid`)."""
    try:
        text = body.decode("utf-8")
        _webhook(secret).verify(
            text,
            {
                "webhook-id": signed.id,
                "webhook-timestamp": signed.timestamp,
                "webhook-signature": signed.signature,
            },
            json_parse=False,
        )
    except (WebhookVerificationError, UnicodeDecodeError, ValueError) as exc:
        # ValueError covers a malformed signature list or bad base64 in it (binascii.Error).
        raise AppError(
            "The webhook signature does not match its body with our WEBHOOK_SECRET; it was "
            "not accepted.",
            code="webhook_signature_invalid",
            status=401,
            title="Webhook signature invalid",
        ) from exc


def verify_webhook(body: bytes, headers: Mapping[str, str], *, secret: str) -> str:
    """Check a Standard Webhooks request (headers, then signature); returns the webhook id."""
    signed = check_webhook_headers(headers)
    verify_webhook_signature(body, signed, secret=secret)
    return signed.id


# --- Retry -----------------------------------------------------------------------------------

RETRYABLE: Final = frozenset({ItemStatus.FAILED, ItemStatus.DELETED_IN_DINERO})


async def retry_item(*, session: AsyncSession, company_id: str, item_id: uuid.UUID) -> ExportItem:
    """Queue a failed item again (or, deleted in Dinero, export it again as a new voucher)."""
    item = (
        await session.execute(
            select(ExportItem)
            .where(ExportItem.id == item_id, ExportItem.company_id == company_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if item is None:
        raise NotFound("No such export item.", code="item_not_found")
    if item.status not in RETRYABLE:
        raise Conflict(
            f"The item is {item.status.value.replace('_', ' ')}; only failed items, or items "
            "deleted in Dinero, can be retried.",
            code="item_not_retryable",
            extra={"item_status": item.status.value},
        )
    if item.status == ItemStatus.DELETED_IN_DINERO:
        # The voucher is gone from Dinero: export again from the start, as a new voucher.
        item.step = Step.NEW
        item.dinero_file_guid = None
        item.dinero_kind = None
        item.dinero_guid = None
        item.dinero_timestamp = None
        item.dinero_version = None
        item.dinero_voucher_number = None
        item.sent_at = None
        item.exported_at = None
        item.booked_at = None
        item.dinero_sent = None
        item.dinero_changes = None
        item.follow_up_checked_at = None
    item.status = ItemStatus.QUEUED
    item.failure_code = None
    item.failure_message = None
    item.dinero_message = None
    item.waiting_code = None
    item.waiting_message = None
    item.attempts = 0
    item.next_attempt_at = None
    await session.flush()
    await session.refresh(item)
    await kick(session, company_id)
    log.info("export_item_retried", item_id=str(item.id), company_id=company_id)
    return item
