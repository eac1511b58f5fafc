"""Checking items at intake, one by one: schema, money, lines, receipts, then categories.

Each item is checked by itself; a bad one becomes a `Refusal` with its reason and the rest go
on. What passes becomes a `Candidate`: its row, JSON-ready for the store statement
(app/exports/intake_store.py), and its inline receipts decoded. Nothing here reads the
database except through the store's answer (which categories exist, `split_by_category`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from pydantic import ValidationError

from app.exports.allocation import dkk_line_amounts
from app.exports.models import ItemType
from app.exports.schemas import ExportItemIn, RejectedItem
from app.inputs import escaped_text, is_safe_text
from app.receipts import ReceiptError, ReceiptFetcher, decode_inline
from app.receipts.errors import TOO_LARGE, describe_size

MAX_RECEIPT_BYTES: Final = 10 * 1024 * 1024
"""Per inline receipt, decoded (the export shrinks it further to Dinero's 6 MB)."""
_DECODE_IN_THREAD_AT: Final = 256 * 1024
"""Base64 longer than this is decoded off the event loop."""


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


def item_columns(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a candidate's row sets on its `ExportItem` (besides its ids, type and state)."""
    return {
        "voucher_date": date.fromisoformat(row["voucher_date"]),
        "description": row["description"],
        "currency": row["currency"],
        "amount_minor": row["amount_minor"],
        "dkk_amount_minor": row["dkk_amount_minor"],
        "lines": row["lines"],
        "employee": row["employee"],
        "receipts": row["receipts"],
    }


def _row(
    item: ExportItemIn, *, item_id: uuid.UUID, receipts: list[dict[str, Any]]
) -> dict[str, Any]:
    """The item's columns as JSON (inserted with jsonb_to_recordset, see intake_store)."""
    amount = item.amount
    dkk_amount = amount.value if item.settled_amount is None else item.settled_amount.value
    dkk_lines = dkk_line_amounts(amount.currency, dkk_amount, [line.amount for line in item.lines])
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


def split_by_category(
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
