"""The posting preview endpoint: an export request answered with what Dinero would receive."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.deps import AuthenticatedBeforeBody, CompanyAdmin, SessionDep
from app.errors import problem_doc
from app.exports.router import ReceiptRulesDep
from app.exports.schemas import ExportRequest
from app.inputs import json_too_deep_error, too_deep
from app.preview import service
from app.preview.schemas import PreviewOut
from app.services import Services

router = APIRouter(tags=["exports"], route_class=AuthenticatedBeforeBody)

COMPANY = "/v1/companies/{company}"


@router.post(
    f"{COMPANY}/exports/preview",
    response_model=PreviewOut,
    operation_id="preview_export",
    responses={
        413: problem_doc(
            "The body is larger than MAX_REQUEST_BYTES (`payload_too_large`, with `max_bytes`)."
        ),
        422: problem_doc("The body is malformed (`json_too_deep`: nested more than 32 levels)."),
    },
)
async def preview_export(
    body: ExportRequest,
    request: Request,
    access: CompanyAdmin,
    session: SessionDep,
    rules: ReceiptRulesDep,
) -> PreviewOut:
    """What an export of these items would send to Dinero now, item by item; nothing is stored
    or sent. Built by the same code as the export's own requests, after the same checks."""
    payload = await request.json()
    if too_deep(payload):
        raise json_too_deep_error()
    services: Services = request.app.state.services
    return await service.preview(
        services=services,
        session=session,
        company_id=access.company.id,
        raw_items=body.items,
        rules=rules,
        replace=body.replace,
    )
