"""Reversing exported items: one item, every item of an export, and an item's reversals."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header

from app.deps import CompanyAdmin, CompanyMember, SessionDep
from app.errors import problem_doc
from app.exports.intake import request_hash
from app.exports.models import ItemStatus
from app.exports.schemas import ChangeOut
from app.inputs import check_idempotency_key
from app.reversals import service
from app.reversals.flow import LEDGER
from app.reversals.models import Reversal
from app.reversals.schemas import (
    BulkItemOut,
    BulkReversalOut,
    ReversalFailureOut,
    ReversalIn,
    ReversalOut,
    VoucherRefOut,
)

router = APIRouter(tags=["exports"])

COMPANY = "/v1/companies/{company}"
_REFUSED = (
    "Cannot be reversed now: not exported (or reversed already), edited in Dinero (the "
    "differences are in `changes`), no open accounting year for the date, or Dinero must be "
    "(re)connected."
)


def _ref(kind: str | None, guid: uuid.UUID | None, number: int | None) -> VoucherRefOut:
    if kind == "ledger_item":
        return VoucherRefOut(kind=kind, ledger_item_id=guid, voucher_number=number)
    return VoucherRefOut(kind=kind, voucher_guid=guid, voucher_number=number)


def reversal_out(reversal: Reversal, item_status: ItemStatus) -> ReversalOut:
    reversing = None
    if reversal.kind == "manual_voucher":
        reversing = _ref("manual_voucher", reversal.dinero_guid, reversal.voucher_number)
    elif reversal.kind == "ledger_item":
        reversing = _ref(LEDGER, reversal.id, reversal.voucher_number)
    failure = None
    if reversal.failure_code is not None:
        failure = ReversalFailureOut(
            code=reversal.failure_code,
            message=reversal.failure_message or "",
            dinero_message=reversal.dinero_message,
            changes=[ChangeOut.model_validate(c) for c in service.failure_changes(reversal)],
        )
    return ReversalOut(
        id=reversal.id,
        item_id=reversal.item_id,
        item_status=item_status,
        status=reversal.status,
        kind=reversal.kind,
        reason=reversal.reason,
        voucher_date=reversal.voucher_date,
        original=_ref(
            reversal.original_kind, reversal.original_guid, reversal.original_voucher_number
        ),
        reversing=reversing,
        failure=failure,
        created_at=reversal.created_at,
        finished_at=reversal.finished_at,
    )


IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        description="Send the same key with the same body again and get the same reversal; "
        "nothing new is started.",
    ),
]


@router.post(
    f"{COMPANY}/export-items/{{item_id}}/reverse",
    status_code=202,
    response_model=ReversalOut,
    operation_id="reverse_export_item",
    responses={409: problem_doc(_REFUSED)},
)
async def reverse_export_item(
    item_id: uuid.UUID,
    access: CompanyAdmin,
    session: SessionDep,
    body: ReversalIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> ReversalOut:
    """Undo an exported item in Dinero (in the background), so it can be exported again.

    A draft awaiting Godkend is deleted; an approved voucher gets a booked reversing manual
    voucher (its file, our reference); a booked reimbursement or top-up a booked reversing
    ledger item. The item becomes `reversed` (webhook `export_item.updated`); then
    `POST …/exports` with the same `external_id` and `"replace": true` exports it anew.
    """
    check_idempotency_key(idempotency_key)
    wanted = body or ReversalIn()
    started = await service.start_reversal(
        session=session,
        company_id=access.company.id,
        item_id=item_id,
        reason=wanted.reason,
        voucher_date=wanted.voucher_date,
        idempotency_key=idempotency_key,
        request_hash=request_hash(
            {"item_id": str(item_id), **wanted.model_dump(mode="json", exclude_none=True)}
        ),
    )
    return reversal_out(started.reversal, started.item.status)


def _bulk_item(outcome: service.BulkOutcome) -> BulkItemOut:
    started, refused = outcome.started, outcome.refused
    return BulkItemOut(
        item_id=outcome.item.id,
        external_id=outcome.item.external_id,
        outcome="reversing" if started is not None else "refused",
        reversal=None if started is None else reversal_out(started.reversal, started.item.status),
        code=None if refused is None else refused.code,
        message=None if refused is None else refused.detail,
    )


@router.post(
    f"{COMPANY}/exports/{{export_id}}/reverse",
    status_code=202,
    response_model=BulkReversalOut,
    operation_id="reverse_export",
)
async def reverse_export(
    export_id: uuid.UUID,
    access: CompanyAdmin,
    session: SessionDep,
    body: ReversalIn | None = None,
) -> BulkReversalOut:
    """Reverse every item of an export that can be reversed; each item says how it went."""
    wanted = body or ReversalIn()
    outcomes = await service.reverse_export(
        session=session,
        company_id=access.company.id,
        export_id=export_id,
        reason=wanted.reason,
        voucher_date=wanted.voucher_date,
    )
    return BulkReversalOut(export_id=export_id, items=[_bulk_item(o) for o in outcomes])


@router.get(
    f"{COMPANY}/export-items/{{item_id}}/reversals",
    response_model=list[ReversalOut],
    operation_id="list_export_item_reversals",
)
async def list_export_item_reversals(
    item_id: uuid.UUID, access: CompanyMember, session: SessionDep
) -> list[ReversalOut]:
    """The item's reversals, oldest first: each original voucher and the entry reversing it."""
    item, reversals = await service.reversals_of(session, access.company.id, item_id)
    return [reversal_out(r, item.status) for r in reversals]
