"""Export endpoints: items in (REST or signed webhook), their state out, and retrying failures."""

from __future__ import annotations

import contextlib
import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

from app.deps import (
    AuthenticatedBeforeBody,
    CompanyAdmin,
    CompanyMember,
    SessionDep,
    get_session,
)
from app.errors import AppError, ValidationFailed, app_error_response, problem_doc
from app.exports import intake, queries, retry, webhooks
from app.exports.intake_store import Link, OnSession, on_connection
from app.exports.models import ItemStatus, ItemType
from app.exports.schemas import (
    REPLACE_DESCRIPTION,
    ExportAccepted,
    ExportOut,
    ExportRequest,
    ItemOut,
    ItemPage,
    WebhookEnvelope,
    WebhookIgnored,
)
from app.exports.validation import ReceiptRules
from app.inputs import (
    check_idempotency_key,
    is_safe_text,
    json_too_deep_error,
    parse_json_body,
    too_deep,
)
from app.receipts import ReceiptFetcher
from app.runtime import Runtime
from app.services import Services

router = APIRouter(tags=["exports"], route_class=AuthenticatedBeforeBody)
"""Company-scoped routes (bearer token, checked before a body is read)."""
webhooks_router = APIRouter(tags=["webhooks"])
"""The platform's signed webhooks (no bearer token)."""

COMPANY = "/v1/companies/{company}"
REPLAYED_HEADER = "Idempotent-Replayed"
JSON_MEDIA_TYPE = JSONResponse.media_type
MAX_EVENT_TYPE_LENGTH = 200

_REJECTED_422 = (
    "The body is malformed (`json_too_deep`: nested more than 32 levels), or no item can be "
    "exported (`items_rejected`: each item's reason is in `rejected`, nothing was stored)."
)
_TOO_LARGE_413 = problem_doc(
    "The body is larger than MAX_REQUEST_BYTES (`payload_too_large`, with `max_bytes`); "
    "refused from its declared length before anything is read."
)


async def get_receipt_rules(request: Request) -> ReceiptRules:
    """Built once per app: the receipt host allow-list, normalized.

    async although it awaits nothing: FastAPI runs a plain function dependency in its thread
    pool, a hop per request on the benchmarked intake path.
    """
    rules: ReceiptRules | None = getattr(request.app.state, "receipt_rules", None)
    if rules is None:
        runtime: Runtime = request.app.state.runtime
        services: Services = request.app.state.services
        fetcher = ReceiptFetcher(services.receipt_http, runtime.settings.receipt_allowed_hosts)
        rules = ReceiptRules(fetcher=fetcher)
        request.app.state.receipt_rules = rules
    return rules


ReceiptRulesDep = Annotated[ReceiptRules, Depends(get_receipt_rules)]


def _accepted(outcome: intake.Outcome) -> Response:
    # Sent as serialized once by intake (this path is benchmarked); the shape is ExportAccepted.
    headers = {REPLAYED_HEADER: "true"} if outcome.replayed else None
    if outcome.text is not None:  # the text stored with the export, as JSONResponse renders it
        return Response(
            outcome.text.encode(), status_code=202, headers=headers, media_type=JSON_MEDIA_TYPE
        )
    return JSONResponse(outcome.content, status_code=202, headers=headers)


@router.post(
    f"{COMPANY}/exports",
    status_code=202,
    response_model=ExportAccepted,
    operation_id="create_export",
    responses={
        409: problem_doc(
            "The Idempotency-Key was used before with a different body (`idempotency_key_reused`)."
        ),
        413: _TOO_LARGE_413,
        422: problem_doc(_REJECTED_422),
    },
)
async def create_export(
    body: ExportRequest,
    request: Request,
    access: CompanyAdmin,
    session: SessionDep,
    rules: ReceiptRulesDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description="Send the same key with the same body again and get the first answer "
            "(statuses as they are now, header `Idempotent-Replayed: true`); nothing new is "
            "stored.",
        ),
    ] = None,
) -> Response:
    """Export items: stored and queued at once (202); bad items are refused one by one."""
    check_idempotency_key(idempotency_key)
    payload = await request.json()
    if too_deep(payload):
        raise json_too_deep_error()
    outcome = await intake.accept_export(
        session=session,
        company_id=access.company.id,
        source="api",
        # ExportRequest leaves items unvalidated (see there): intake checks each one.
        raw_items=body.items,
        request_hash=intake.request_hash(payload),
        rules=rules,
        idempotency_key=idempotency_key,
        replace=body.replace,
    )
    return _accepted(outcome)


_WEBHOOK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["type", "company_id", "items"],
                    "properties": {
                        "type": {
                            "type": "string",
                            "description": "`export.requested`; other types are acknowledged "
                            "and ignored.",
                        },
                        "company_id": {"type": "string", "minLength": 1, "maxLength": 128},
                        "items": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"$ref": "#/components/schemas/ExportItemIn"},
                        },
                        "replace": {
                            "type": "boolean",
                            "default": False,
                            "description": REPLACE_DESCRIPTION,
                        },
                    },
                }
            }
        },
    },
    "parameters": [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    ],
}


WEBHOOK_PATH = "/v1/webhooks/expenses"


@webhooks_router.post(
    WEBHOOK_PATH,
    status_code=202,
    response_model=ExportAccepted | WebhookIgnored,
    operation_id="receive_expense_webhook",
    openapi_extra=_WEBHOOK_BODY,
    responses={
        400: problem_doc(
            "Standard Webhooks headers missing or malformed (`webhook_headers_missing`, "
            "`webhook_id_invalid`, `webhook_timestamp_invalid`), or the timestamp is more than "
            "5 minutes from now (`webhook_timestamp_stale`); checked before the body is read."
        ),
        401: problem_doc("The signature does not match (`webhook_signature_invalid`)."),
        409: problem_doc(
            "This company sent this webhook-id before with a different body (`webhook_id_reused`)."
        ),
        413: _TOO_LARGE_413,
        422: problem_doc(_REJECTED_422),
    },
)
async def receive_expense_webhook(
    request: Request, session: SessionDep, rules: ReceiptRulesDep
) -> Response:
    """The platform's signed webhook (Standard Webhooks): verified, stored, then answered 202.

    A replay (same webhook-id, same company, same body) answers the first 202 again with nothing
    new stored; the same webhook-id with another body is refused (409). A verified webhook of
    another type than `export.requested` is acknowledged with `ignored` (202), so the sender does
    not retry it forever.
    """
    return await _receive_webhook(request, session, rules)


async def _receive_webhook(
    request: Request, session: AsyncSession | Link, rules: ReceiptRules
) -> Response:
    signed = webhooks.check_webhook_headers(request.headers)  # before a byte of the body is read
    raw = await request.body()
    runtime: Runtime = request.app.state.runtime
    webhooks.verify_webhook_signature(raw, signed, secret=runtime.webhook_secret.get_secret_value())
    payload = parse_json_body(raw)
    kind = payload.get("type") if isinstance(payload, dict) else None
    if isinstance(kind, str) and kind != webhooks.EXPORT_REQUESTED:
        if not is_safe_text(kind) or len(kind) > MAX_EVENT_TYPE_LENGTH:
            raise ValidationFailed(
                f"The webhook's type must be text of at most {MAX_EVENT_TYPE_LENGTH} characters.",
                errors={"type": "Not a usable event type."},
            )
        ignored = WebhookIgnored(
            status="ignored", type=kind, detail=f"Webhooks of type {kind!r} are not handled here."
        )
        return JSONResponse(ignored.model_dump(mode="json"), status_code=202)
    try:
        envelope = WebhookEnvelope.model_validate(payload)
    except ValidationError as exc:
        errors = {
            ".".join(str(p) for p in err["loc"]) or "body": err["msg"] for err in exc.errors()
        }
        raise ValidationFailed(
            f"The webhook body is not valid: {', '.join(errors)}.", errors=errors
        ) from None
    outcome = await intake.accept_export(
        session=session,
        company_id=envelope.company_id,
        source="webhook",
        raw_items=envelope.items,
        request_hash=intake.request_hash(payload),
        rules=rules,
        webhook_id=signed.id,
        replace=envelope.replace,
    )
    return _accepted(outcome)


class WebhookFastPath:
    """Pure ASGI, inside the request-id, metrics, access-line and body-limit middleware: POST
    /v1/webhooks/expenses is answered here, by the route's own code (`_receive_webhook`), without
    FastAPI's exception middleware, routing and dependency solving.

    The same work as the route: one transaction, committed before the answer is sent and
    rolled back on an error (on a pooled connection of its own, `intake_store.on_connection`:
    no SQLAlchemy session unless the request needs more than the store statement; in the tests,
    the session their override of `get_session` gives), the receipt rules, the route set on the
    scope as FastAPI sets it (the metrics' route label), an AppError answered by the app's own
    handler (`app_error_response`); any other error goes on, as from the route, to the app's 500
    handler (the intake calls no Dinero, so no PacerBusy). The route stays in the app and its
    OpenAPI document, and answers when this route's dependencies are overridden in a way this
    path does not take (`_link_opener`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != WEBHOOK_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        open_link = _link_opener(scope["app"])
        if open_link is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _WEBHOOK_ROUTE
        request = Request(scope, receive, send)
        response: Response
        try:
            async with open_link(request) as link:
                response = await _receive_webhook(request, link, await get_receipt_rules(request))
        except AppError as exc:
            response = await app_error_response(request, exc)
        await response(scope, receive, send)


_WEBHOOK_ROUTE = next(
    route
    for route in webhooks_router.routes
    if isinstance(route, APIRoute) and route.endpoint is receive_expense_webhook
)
"""The route FastAPI puts on the scope for this path (its `path_format` is the metrics' label)."""

OpenLink = Callable[[Request], contextlib.AbstractAsyncContextManager[Link]]


def _open_connection(request: Request) -> contextlib.AbstractAsyncContextManager[Link]:
    services: Services = request.app.state.services
    return on_connection(services.engine, services.sessionmaker)


def _link_opener(application: FastAPI) -> OpenLink | None:
    """The transaction the route would get: `get_session`'s (a pooled connection of its own,
    as `get_session`'s session would hold), or the session of an override of it that is an
    async generator taking no parameters (the tests' `bind_to_connection`); None, so the route
    answers, for any other override of the route's two dependencies."""
    overrides = application.dependency_overrides
    if get_receipt_rules in overrides:
        return None
    override = overrides.get(get_session)
    if override is None:
        return _open_connection
    if not inspect.isasyncgenfunction(override) or inspect.signature(override).parameters:
        return None
    opened = contextlib.asynccontextmanager(override)

    @contextlib.asynccontextmanager
    async def on_override(_request: Request) -> AsyncIterator[Link]:
        async with opened() as session:
            yield OnSession(session)

    return on_override


class _ExportId(StringConvertor):
    """Any path segment but `preview` (POST …/exports/preview is the posting preview's)."""

    regex = "(?!preview$)[^/]+"


register_url_convertor("export_id", _ExportId())


@router.get(
    f"{COMPANY}/exports/{{export_id:export_id}}",
    response_model=ExportOut,
    operation_id="get_export",
)
async def get_export(export_id: uuid.UUID, access: CompanyMember, session: SessionDep) -> ExportOut:
    """An export: its status, its items with their Dinero references, and those refused."""
    return await queries.get_export(
        session=session, company_id=access.company.id, export_id=export_id
    )


@router.get(
    f"{COMPANY}/export-items",
    response_model=ItemPage,
    operation_id="list_export_items",
    responses={400: problem_doc("The cursor is not one this API gave out (`invalid_cursor`).")},
)
async def list_export_items(
    access: CompanyMember,
    session: SessionDep,
    status: Annotated[
        list[ItemStatus] | None, Query(description="Only these statuses (repeatable).")
    ] = None,
    type: Annotated[
        list[ItemType] | None, Query(description="Only these types (repeatable).")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE_SIZE)] = queries.DEFAULT_PAGE_SIZE,
) -> ItemPage:
    """The company's export items, newest first; filter by status and type, page by cursor."""
    return await queries.list_items(
        session=session,
        company_id=access.company.id,
        statuses=status or (),
        types=type or (),
        cursor=cursor,
        limit=limit,
    )


@router.get(
    f"{COMPANY}/export-items/{{item_id}}",
    response_model=ItemOut,
    operation_id="get_export_item",
)
async def get_export_item(
    item_id: uuid.UUID, access: CompanyMember, session: SessionDep
) -> ItemOut:
    """One item in full: what was sent, its state, why it waits or failed, and its Dinero ids."""
    return await queries.get_item(session=session, company_id=access.company.id, item_id=item_id)


@router.post(
    f"{COMPANY}/export-items/{{item_id}}/retry",
    status_code=202,
    response_model=ItemOut,
    operation_id="retry_export_item",
    responses={
        409: problem_doc(
            "Only failed items, items deleted in Dinero, or items waiting for an accounting "
            "year Dinero refused as closed can be retried (`item_not_retryable`)."
        )
    },
)
async def retry_export_item(
    item_id: uuid.UUID, access: CompanyAdmin, session: SessionDep
) -> ItemOut:
    """Export a failed item again; an item deleted in Dinero is exported as a new voucher.

    An item waiting for an accounting year Dinero refused as closed (`accounting_year_closed`):
    the refusal is forgotten (reopen the year in Dinero first), and the next pass sends the
    year's items again; the item keeps its status until then.
    """
    item = await retry.retry_item(session=session, company_id=access.company.id, item_id=item_id)
    return queries.item_out(item)
