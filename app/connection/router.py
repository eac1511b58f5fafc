"""Connection endpoints: connect (OAuth or API key), read, disconnect, and the OAuth callback."""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.connection import service
from app.connection.gateway import DineroGateway
from app.connection.models import ConnectionStatus, DineroConnection, get_connection
from app.connection.schemas import ConnectionOut, ConnectionRequest, RefusedAttemptOut
from app.deps import (
    CompanyAdmin,
    CompanyMember,
    SessionDep,
    SessionFactory,
    SessionFactoryDep,
)
from app.dinero.errors import DineroError, DineroOAuthError
from app.errors import AppError, problem_doc, problem_response
from app.inputs import cleaned_text

log = structlog.get_logger(__name__)

router = APIRouter(tags=["connection"])


def get_gateway(request: Request) -> DineroGateway:
    gateway: DineroGateway = request.app.state.services.dinero
    return gateway


GatewayDep = Annotated[DineroGateway, Depends(get_gateway)]


def get_export_history(request: Request) -> service.ExportHistory:
    """Whether a company's exports went to Dinero (handed in by `create_app`)."""
    exported: service.ExportHistory = request.app.state.export_history
    return exported


ExportHistoryDep = Annotated[service.ExportHistory, Depends(get_export_history)]


def _refused_attempt(conn: DineroConnection) -> RefusedAttemptOut | None:
    if conn.attempt_problem_code is None or conn.attempt_failed_at is None:
        return None
    return RefusedAttemptOut(
        failed_at=conn.attempt_failed_at,
        problem=conn.attempt_problem_message or conn.attempt_problem_code,
        problem_code=conn.attempt_problem_code,
        dinero_message=conn.attempt_dinero_message,
    )


def _out(conn: DineroConnection | None, authorization_url: str | None = None) -> ConnectionOut:
    if conn is None:
        return ConnectionOut(status=ConnectionStatus.NOT_CONNECTED)
    attempt = _refused_attempt(conn)
    problem, problem_code = conn.problem_message, conn.problem_code
    if (
        problem_code is None
        and attempt is not None
        and conn.status in (ConnectionStatus.NOT_CONNECTED, ConnectionStatus.PENDING)
    ):
        # Not connected because the last approval was refused: that is the problem to show.
        # A working connection is not in trouble because a new approval failed; the refusal is
        # in last_attempt then.
        problem, problem_code = attempt.problem, attempt.problem_code
    # The row's own status, organization, method and times; the problem as chosen above.
    return ConnectionOut.model_validate(conn, from_attributes=True).model_copy(
        update={
            "problem": problem,
            "problem_code": problem_code,
            "last_attempt": attempt,
            "authorization_url": authorization_url,
        }
    )


@router.put(
    "/v1/companies/{company}/dinero/connection",
    response_model=ConnectionOut,
    responses={
        400: problem_doc("Dinero refused: the code says why (API key, access, state…)."),
        403: problem_doc("Not an admin, or the organization lacks Dinero Pro."),
        409: problem_doc("Switching organization needs confirm_switch."),
        503: problem_doc("Dinero could not be reached."),
    },
)
async def connect(
    body: ConnectionRequest,
    access: CompanyAdmin,
    session: SessionDep,
    gateway: GatewayDep,
    exported: ExportHistoryDep,
) -> ConnectionOut:
    """Connect Dinero: OAuth returns the approval URL; an API key is checked and connects now."""
    if body.method == "oauth":
        conn, url = await service.start_oauth(
            session=session,
            gateway=gateway,
            company_id=access.company.id,
            organization_id=body.organization_id,
            confirm_switch=body.confirm_switch,
            exported=exported,
        )
        out = _out(conn, authorization_url=url)
        out.status = ConnectionStatus.PENDING
        return out
    assert body.api_key is not None
    conn = await service.connect_api_key(
        session=session,
        gateway=gateway,
        company_id=access.company.id,
        organization_id=body.organization_id,
        api_key=body.api_key,
        confirm_switch=body.confirm_switch,
        exported=exported,
    )
    return _out(conn)


@router.get("/v1/companies/{company}/dinero/connection", response_model=ConnectionOut)
async def read_connection(access: CompanyMember, session: SessionDep) -> ConnectionOut:
    """The company's Dinero connection and what, if anything, needs attention."""
    return _out(await get_connection(session=session, company_id=access.company.id))


@router.delete("/v1/companies/{company}/dinero/connection", status_code=204)
async def disconnect(
    access: CompanyAdmin, session: SessionDep, gateway: GatewayDep, background: BackgroundTasks
) -> Response:
    """Disconnect: Dinero credentials are destroyed (and revoked); history stays."""
    refresh_token = await service.disconnect(
        session=session, gateway=gateway, company_id=access.company.id
    )
    if refresh_token is not None:
        # SessionDep commits when this function returns (scope="function"), before the
        # response is sent; background tasks run after the response, so after the commit.
        background.add_task(
            service.revoke_after_disconnect,
            gateway=gateway,
            company_id=access.company.id,
            refresh_token=refresh_token,
        )
    return Response(status_code=204)


_CALLBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    303: {"description": "Back to FRONTEND_URL with `dinero=connected` or the error code."},
    400: problem_doc("The approval failed; the code says why."),
}


@router.get(
    "/v1/dinero/oauth/callback",
    response_class=HTMLResponse,
    responses=_CALLBACK_RESPONSES,
    operation_id="oauth_callback_get",
)
async def oauth_callback_get(request: Request, sessionmaker: SessionFactoryDep) -> Response:
    """Where Dinero's approval page (Visma Connect) sends the admin back (query callback)."""
    return await _oauth_callback(request, sessionmaker)


@router.post(
    "/v1/dinero/oauth/callback",
    response_class=HTMLResponse,
    responses=_CALLBACK_RESPONSES,
    operation_id="oauth_callback_post",
)
async def oauth_callback_post(request: Request, sessionmaker: SessionFactoryDep) -> Response:
    """Where Dinero's approval page sends the admin back (`response_mode=form_post`)."""
    return await _oauth_callback(request, sessionmaker)


async def _oauth_callback(request: Request, sessionmaker: SessionFactory) -> Response:
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    # Shown to the admin and kept on the connection (error_description): text only.
    params = {key: cleaned_text(value) for key, value in params.items()}
    gateway = get_gateway(request)
    company_id: str | None = None
    try:
        async with sessionmaker() as session, session.begin():
            consumed = await service.consume_state(
                session=session, gateway=gateway, state=params.get("state")
            )
        company_id = consumed.company_id
        await _check_caller_company(request, consumed.company_id)
        if params.get("error"):
            reason = params.get("error_description") or params["error"]
            declined = params["error"] == "access_denied"
            raise service.ConnectError(
                "The connection was declined in Dinero; nothing was connected."
                if declined
                else f"Dinero's approval failed: {reason}.",
                code="oauth_declined" if declined else "oauth_failed",
                extra={"dinero_message": params.get("error_description")},
            )
        code = params.get("code")
        if not code:
            raise service.ConnectError("The callback carries no code.", code="oauth_failed")
        try:
            tokens = await gateway.oauth.exchange_code(
                code, consumed.code_verifier.get_secret_value()
            )
        except DineroOAuthError as exc:
            raise service.ConnectError(
                "Dinero did not accept the approval (the code was refused); connect again.",
                code="oauth_code_rejected",
                extra={"dinero_message": exc.dinero_message},
            ) from exc
        except DineroError as exc:
            raise service.ConnectError(
                f"Dinero could not be reached to finish connecting: {exc}",
                code="dinero_unavailable",
                status=503,
            ) from exc
        organization = await service.verify_organization(
            gateway=gateway, organization_id=consumed.organization_id, tokens=tokens
        )
        async with sessionmaker() as session, session.begin():
            await service.finish_oauth(
                session=session,
                gateway=gateway,
                consumed=consumed,
                organization=organization,
                tokens=tokens,
                exported=get_export_history(request),
            )
    except AppError as exc:
        if isinstance(exc, service.ConnectError) and exc.company_id is not None:
            company_id = exc.company_id
        # An unknown state names no company; a platform session the callback carries does.
        attempt_of = company_id if company_id is not None else await _caller_company(request)
        # A reused state's attempt already ended (connected or refused): a replayed callback
        # must neither overwrite how it ended nor abandon a newer approval still pending.
        replayed = exc.code == "oauth_state_reused"
        record = attempt_of is not None and not replayed
        abandon = company_id is not None and not replayed
        if abandon or record:
            async with sessionmaker() as session, session.begin():
                if abandon and company_id is not None:
                    await service.abandon_pending(session=session, company_id=company_id)
                if record and attempt_of is not None:
                    dinero_message = exc.extra.get("dinero_message")
                    await service.record_refused_attempt(
                        session=session,
                        company_id=attempt_of,
                        code=exc.code,
                        message=exc.detail,
                        dinero_message=dinero_message if isinstance(dinero_message, str) else None,
                    )
        log.info("dinero_connect_refused", code=exc.code, company_id=attempt_of)
        return _callback_outcome(request, error=exc)
    return _callback_outcome(request, error=None, organization_name=organization.name)


async def _caller_company(request: Request) -> str | None:
    """The company of the platform token the callback carries, if it carries a valid one."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    try:
        principal = await request.app.state.token_verifier.verify(header.split(" ", 1)[1])
    except AppError:
        return None
    company: str = principal.company_id
    return company


async def _check_caller_company(request: Request, company_id: str) -> None:
    """If the browser's request carries a platform token, it must be the same company's."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return
    principal = await request.app.state.token_verifier.verify(header.split(" ", 1)[1])
    if principal.company_id != company_id:
        raise service.ConnectError(
            "This approval was started by a different company than the one signed in.",
            code="oauth_company_mismatch",
            status=403,
        )


def _callback_outcome(
    request: Request, *, error: AppError | None, organization_name: str | None = None
) -> Response:
    frontend = request.app.state.runtime.settings.frontend_url
    if frontend:
        query = (
            {"dinero": "connected"}
            if error is None
            else {"dinero": "error", "code": error.code, "message": error.detail}
        )
        separator = "&" if "?" in frontend else "?"
        return RedirectResponse(f"{frontend}{separator}{urlencode(query)}", status_code=303)
    accept = request.headers.get("accept", "")
    if "text/html" not in accept and "application/json" in accept:
        if error is None:
            return Response(
                content='{"status": "connected", "code": "connected"}',
                media_type="application/json",
            )
        return problem_response(
            status=error.status,
            code=error.code,
            title=error.title,
            detail=error.detail,
            extra=error.extra,
            headers=error.headers or None,
        )
    if error is None:
        title = "Dinero is connected"
        text = f"{html.escape(organization_name or 'Your organization')} is now connected."
        status = 200
    else:
        title = "Dinero was not connected"
        text = f"{html.escape(error.detail)} <small>(code: {html.escape(error.code)})</small>"
        status = error.status
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{title}</title>"
        "<body style='font-family:sans-serif;max-width:40em;margin:4em auto'>"
        f"<h1>{title}</h1><p data-code='{html.escape(error.code if error else 'connected')}'>"
        f"{text}</p><p>You can close this window.</p></body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=error.headers if error else None)
