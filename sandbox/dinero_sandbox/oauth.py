"""Visma Connect's OAuth 2.0 endpoints and Dinero's legacy API-key token endpoint.

- `GET /connect/authorize` renders a consent page ("Godkend" / "Afvis") as a plain HTML form
  (`<form method="post" action="…/connect/authorize">` with hidden inputs, a `login` select and
  two `decision` buttons), so tests can parse and post it.
- `POST /connect/authorize` answers with a 302 to the redirect URI (`response_mode=query`) or an
  auto-submitting form posting `code`, `scope` and `state` (`response_mode=form_post`).
- `POST /connect/token`: `authorization_code` (single use, PKCE S256) and `refresh_token`
  (rotating with grace, or reusable); client auth by HTTP Basic or `client_secret_post`.
- `POST /connect/revocation` (RFC 7009) and `POST /dineroapi/oauth/token` (password grant with
  username = password = API key; the token reaches only the key's organization).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from dinero_sandbox.auth import sandbox_of
from dinero_sandbox.errors import OAuthError
from dinero_sandbox.state import Client
from dinero_sandbox.tokens import (
    KNOWN_SCOPES,
    LEGACY_SCOPES,
    OFFLINE_SCOPE,
    READ_SCOPE,
    WRITE_SCOPE,
)

if TYPE_CHECKING:
    from dinero_sandbox.sandbox import Sandbox

router = APIRouter()

AUTHORIZE_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "nonce",
    "ui_locales",
)
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def base_url(request: Request) -> str:
    """The sandbox's own base URL, mount prefix (`root_path`) included, never hard-coded."""
    return f"{request.url.scheme}://{request.url.netloc}{_root(request)}"


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


class AuthorizeProblem(Exception):
    """An authorize error shown on the page itself (bad client or redirect URI)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class RedirectProblem(Exception):
    """An authorize error sent back to the client's redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html>\n<html lang="da"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n",
        status_code=status,
        headers=NO_STORE,
    )


def _check_authorize(sandbox: Sandbox, params: Mapping[str, str]) -> tuple[Client, str]:
    """Validate an authorize request; returns the client and redirect URI."""
    client_id = params.get("client_id", "")
    client = sandbox.clients.get(client_id)
    if not client_id or client is None:
        raise AuthorizeProblem("invalid_client", f"Unknown client_id '{client_id}'")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise AuthorizeProblem("invalid_request", "redirect_uri is required")
    if urlsplit(redirect_uri).scheme not in ("http", "https"):
        raise AuthorizeProblem("invalid_request", "redirect_uri must be an absolute http(s) URL")
    if client.redirect_uris is not None and redirect_uri not in client.redirect_uris:
        raise AuthorizeProblem("invalid_request", "redirect_uri is not registered for the client")
    if params.get("response_type") != "code":
        raise RedirectProblem("unsupported_response_type", "response_type must be 'code'")
    mode = params.get("response_mode") or "query"
    if mode not in ("query", "form_post"):
        raise RedirectProblem("invalid_request", "response_mode must be query or form_post")
    scopes = set((params.get("scope") or "").split())
    unknown = scopes - KNOWN_SCOPES
    if unknown:
        raise RedirectProblem("invalid_scope", f"Unknown scope: {' '.join(sorted(unknown))}")
    if not scopes & {READ_SCOPE, WRITE_SCOPE}:
        raise RedirectProblem("invalid_scope", "Request dineropublicapi:read and/or :write")
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge:
        if (method or "plain") != "S256":
            raise RedirectProblem(
                "invalid_request", "code_challenge_method must be S256 (plain is not allowed)"
            )
        if not _CHALLENGE_RE.match(challenge):
            raise RedirectProblem("invalid_request", "code_challenge must be 43 base64url chars")
    elif sandbox.config.require_pkce:
        raise RedirectProblem("invalid_request", "code_challenge is required (PKCE, S256)")
    elif method:
        raise RedirectProblem("invalid_request", "code_challenge_method without code_challenge")
    return client, redirect_uri


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _respond(redirect_uri: str, mode: str, params: dict[str, str]) -> Response:
    """Send the result back: 302 with a query, or an auto-submitting form_post page."""
    if mode == "form_post":
        inputs = "\n".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        return _page(
            "Visma Connect",
            f'<form method="post" action="{html.escape(redirect_uri)}">\n{inputs}\n'
            '<noscript><button type="submit">Fortsæt</button></noscript>\n</form>\n'
            "<script>document.forms[0].submit();</script>",
        )
    return RedirectResponse(_with_query(redirect_uri, params), status_code=302, headers=NO_STORE)


def _error_back(params: Mapping[str, str], redirect_uri: str, error: str, text: str) -> Response:
    answer = {"error": error, "error_description": text}
    if params.get("state"):
        answer["state"] = params["state"]
    return _respond(redirect_uri, params.get("response_mode") or "query", answer)


def _authorize_or_refusal(
    sandbox: Sandbox, params: Mapping[str, str]
) -> tuple[Client, str] | Response:
    """The checked client and redirect URI, or the answer that refuses the request: an error
    page (bad client or redirect URI) or the error sent back to the redirect URI."""
    try:
        return _check_authorize(sandbox, params)
    except AuthorizeProblem as exc:
        return _page(
            "Fejl", f"<h1>Fejl: {exc.error}</h1><p>{html.escape(exc.description)}</p>", 400
        )
    except RedirectProblem as exc:
        return _error_back(params, params["redirect_uri"], exc.error, exc.description)


def _consent_page(
    request: Request, sandbox: Sandbox, client: Client, params: Mapping[str, str]
) -> HTMLResponse:
    chosen = params.get("login") or sandbox.default_login or ""
    hidden = "\n".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in AUTHORIZE_PARAMS
        if params.get(name)
    )
    options = []
    sections = []
    for login in sandbox.logins.values():
        selected = " selected" if login.email == chosen else ""
        options.append(
            f'<option value="{html.escape(login.email)}"{selected}>'
            f"{html.escape(login.name)} ({html.escape(login.email)})</option>"
        )
        items = []
        for org_id in login.organization_ids:
            books = sandbox.books.get(org_id)
            if books is None:
                continue
            org = books.organization
            plan = "Pro" if org.pro else "uden Pro"
            items.append(
                f'<li data-organization-id="{org.id}">{html.escape(org.name)} '
                f"(Firma ID {org.id}, {plan})</li>"
            )
        sections.append(
            f'<section data-login="{html.escape(login.email)}">'
            f"<h2>Organisationer for {html.escape(login.email)}</h2>\n"
            f"<ul>{''.join(items) or '<li>Ingen organisationer</li>'}</ul></section>"
        )
    scopes = ", ".join(html.escape(s) for s in (params.get("scope") or "").split())
    body = (
        "<h1>Godkend adgang til Dinero</h1>\n"
        f"<p><strong>{html.escape(client.name or client.client_id)}</strong> "
        f"({html.escape(client.client_id)}) beder om adgang: {scopes}</p>\n"
        f'<form method="post" action="{html.escape(_root(request))}/connect/authorize">\n'
        f"{hidden}\n"
        f'<label>Login <select name="login">{"".join(options)}</select></label>\n'
        f"{''.join(sections)}\n"
        '<button type="submit" name="decision" value="approve">Godkend</button>\n'
        '<button type="submit" name="decision" value="decline">Afvis</button>\n'
        "</form>"
    )
    return _page("Visma Connect - Godkend adgang", body)


@router.get("/connect/authorize")
async def authorize_page(request: Request) -> Response:
    """The consent page of Visma Connect."""
    sandbox = sandbox_of(request)
    params = dict(request.query_params)
    checked = _authorize_or_refusal(sandbox, params)
    if isinstance(checked, Response):
        return checked
    client, _ = checked
    if not sandbox.logins:
        return _page("Fejl", "<h1>Ingen Dinero-logins</h1>", 400)
    return _consent_page(request, sandbox, client, params)


@router.post("/connect/authorize")
async def authorize_decision(request: Request) -> Response:
    """The user pressed Godkend (approve) or Afvis (decline)."""
    sandbox = sandbox_of(request)
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    checked = _authorize_or_refusal(sandbox, params)
    if isinstance(checked, Response):
        return checked
    client, redirect_uri = checked
    if params.get("decision") != "approve":
        return _error_back(params, redirect_uri, "access_denied", "The user declined the request")
    login = sandbox.logins.get(params.get("login") or sandbox.default_login or "")
    if login is None:
        return _page("Fejl", "<h1>Ukendt login</h1>", 400)
    scopes = frozenset((params.get("scope") or "").split())
    code = sandbox.tokens.issue_code(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        login_email=login.email,
        code_challenge=params.get("code_challenge"),
        nonce=params.get("nonce"),
    )
    answer = {"code": code, "scope": " ".join(sorted(scopes))}
    if params.get("state"):
        answer["state"] = params["state"]
    return _respond(redirect_uri, params.get("response_mode") or "query", answer)


def _oauth_error(exc: OAuthError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers={**NO_STORE, **exc.headers})


def _client_auth(sandbox: Sandbox, request: Request, form: Mapping[str, Any]) -> Client:
    """HTTP Basic (client_secret_basic) or form fields (client_secret_post)."""
    header = request.headers.get("authorization", "")
    client_id: str | None = None
    secret: str | None = None
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError(
                "invalid_client",
                "Malformed Basic credentials",
                401,
                headers={"WWW-Authenticate": 'Basic realm="connect"'},
            ) from exc
        raw_id, _, raw_secret = decoded.partition(":")
        client_id, secret = unquote(raw_id), unquote(raw_secret)
        posted = form.get("client_id")
        if posted and posted != client_id:
            raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
    else:
        client_id = str(form.get("client_id") or "") or None
        secret = str(form.get("client_secret") or "") or None
    if not client_id:
        raise OAuthError(
            "invalid_client",
            "Client authentication is required",
            401,
            headers={"WWW-Authenticate": 'Basic realm="connect"'},
        )
    client = sandbox.clients.get(client_id)
    if client is None or secret is None or secret != client.secret:
        raise OAuthError(
            "invalid_client",
            "Client authentication failed",
            401,
            headers={"WWW-Authenticate": 'Basic realm="connect"'},
        )
    return client


@router.post("/connect/token")
async def token(request: Request) -> Response:
    """Token endpoint: authorization_code and refresh_token grants."""
    sandbox = sandbox_of(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        client = _client_auth(sandbox, request, form)
        grant_type = form.get("grant_type")
        store = sandbox.tokens
        if grant_type == "authorization_code":
            if not form.get("code"):
                raise OAuthError("invalid_request", "code is required")
            entry, grant = store.redeem_code(
                client_id=client.client_id,
                code=form["code"],
                redirect_uri=form.get("redirect_uri"),
                verifier=form.get("code_verifier"),
            )
            refresh = store.issue_refresh(grant) if OFFLINE_SCOPE in grant.scopes else None
            body = store.token_response(
                grant,
                refresh=refresh,
                issuer=base_url(request),
                nonce=entry.nonce,
                client_secret=client.secret,
            )
        elif grant_type == "refresh_token":
            if not form.get("refresh_token"):
                raise OAuthError("invalid_request", "refresh_token is required")
            grant, refresh = store.rotate(client_id=client.client_id, token=form["refresh_token"])
            body = store.token_response(
                grant, refresh=refresh, issuer=base_url(request), client_secret=client.secret
            )
        elif not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        else:
            raise OAuthError(
                "unsupported_grant_type", f"grant_type '{grant_type}' is not supported for Dinero"
            )
    except OAuthError as exc:
        return _oauth_error(exc)
    return JSONResponse(body, headers=NO_STORE)


@router.post("/connect/revocation")
async def revocation(request: Request) -> Response:
    """Token revocation (RFC 7009): always 200 for a known client."""
    sandbox = sandbox_of(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        client = _client_auth(sandbox, request, form)
        if not form.get("token"):
            raise OAuthError("invalid_request", "token is required")
    except OAuthError as exc:
        return _oauth_error(exc)
    sandbox.tokens.revoke_token(client_id=client.client_id, token=form["token"])
    return Response(status_code=200)


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> JSONResponse:
    """OpenID Connect discovery, pointing at this sandbox."""
    base = base_url(request)
    return JSONResponse(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/connect/authorize",
            "token_endpoint": f"{base}/connect/token",
            "revocation_endpoint": f"{base}/connect/revocation",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": sorted(KNOWN_SCOPES),
        }
    )


@router.post("/dineroapi/oauth/token")
async def legacy_token(request: Request) -> Response:
    """Personal integration: API key → access token for the key's organization."""
    sandbox = sandbox_of(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        if not request.headers.get("authorization", "").lower().startswith("basic "):
            raise OAuthError(
                "invalid_client",
                "Basic client authentication is required",
                401,
                headers={"WWW-Authenticate": 'Basic realm="dineroapi"'},
            )
        client = _client_auth(sandbox, request, form)
        if form.get("grant_type") != "password":
            raise OAuthError("unsupported_grant_type", "Only grant_type=password is supported")
        scopes = frozenset((form.get("scope") or "read write").split())
        if not scopes or not scopes <= LEGACY_SCOPES:
            raise OAuthError("invalid_scope", "scope must be 'read write'")
        username, password = form.get("username", ""), form.get("password", "")
        key = sandbox.api_keys.get(username)
        if key is None or password != username:
            raise OAuthError("invalid_grant", "The API key is invalid")
        grant = sandbox.tokens.new_grant(
            client_id=client.client_id,
            scopes=scopes,
            kind="legacy",
            organization_id=key.organization_id,
        )
        body = sandbox.tokens.token_response(grant, refresh=None, issuer=base_url(request))
    except OAuthError as exc:
        return _oauth_error(exc)
    return JSONResponse(body, headers=NO_STORE)
