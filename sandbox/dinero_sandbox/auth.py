"""Who is calling the API: bearer token → principal → rate limit → organization access."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Request

from dinero_sandbox.bookkeeping import Writer
from dinero_sandbox.errors import NO_PRO, NOT_FOUND, UNAUTHORIZED, DineroError
from dinero_sandbox.faults import RECORD_KEY
from dinero_sandbox.requestlog import RecordedRequest
from dinero_sandbox.state import Login, OrgBooks
from dinero_sandbox.tokens import AccessToken, Grant
from dinero_sandbox.wire import UUID_RE

if TYPE_CHECKING:
    from dinero_sandbox.sandbox import Sandbox

DENIED = "Authorization has been denied for this request."

# POSTs that only read (they need the read scope, not the write scope).
READ_ONLY_POSTS = ("/ledgeritems/ledgers", "/ledgeritems/status", "/vouchers/purchase/similar")


class RateLimited(Exception):
    """Over Dinero's per-minute quota: answered as 429 text without Retry-After."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"API calls quota exceeded! maximum admitted {limit} per 1m.")
        self.limit = limit


def sandbox_of(request: Request) -> Sandbox:
    """The sandbox handle of the app serving this request."""
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


@dataclass
class Principal:
    """The caller behind a valid access token."""

    token: AccessToken
    login: Login | None

    @property
    def grant(self) -> Grant:
        return self.token.grant

    @property
    def client_id(self) -> str:
        return self.grant.client_id

    @property
    def username(self) -> str:
        return self.login.email if self.login else self.client_id

    def organization_ids(self) -> list[int]:
        """What the token reaches: the login's organizations, or the API key's one."""
        if self.grant.kind == "legacy":
            return [self.grant.organization_id] if self.grant.organization_id else []
        return list(self.login.organization_ids) if self.login else []


def _unauthorized(description: str) -> DineroError:
    return DineroError(
        401,
        UNAUTHORIZED,
        DENIED,
        headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'
        },
    )


def authenticate(request: Request) -> Principal:
    """The bearer token's principal; 401 when missing, unknown, revoked or expired."""
    sandbox = sandbox_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise DineroError(401, UNAUTHORIZED, DENIED, headers={"WWW-Authenticate": "Bearer"})
    token = sandbox.tokens.authenticate(value.strip())
    if token is None:
        raise _unauthorized("The access token is invalid, revoked or expired")
    record: RecordedRequest | None = request.scope.get(RECORD_KEY)
    if record is not None:
        record.client_id = token.grant.client_id
    login = sandbox.logins.get(token.grant.login_email or "")
    return Principal(token=token, login=login)


def _check_scope(request: Request, principal: Principal) -> None:
    path = request.url.path
    read_only = request.method == "GET" or any(path.endswith(p) for p in READ_ONLY_POSTS)
    allowed = principal.grant.can_read if read_only else principal.grant.can_write
    if not allowed:
        scope = "dineropublicapi:read" if read_only else "dineropublicapi:write"
        raise DineroError(403, UNAUTHORIZED, f"The access token lacks the scope {scope}")


def _rate_limit(sandbox: Sandbox, principal: Principal, organization: int | None) -> None:
    if not sandbox.rate_limiter.hit(principal.client_id, organization):
        raise RateLimited(sandbox.config.rate_limit_per_minute)


async def api_principal(request: Request) -> Principal:
    """Dependency for calls outside an organization (`/v1/organizations`)."""
    principal = authenticate(request)
    _rate_limit(sandbox_of(request), principal, None)
    _check_scope(request, principal)
    return principal


@dataclass
class OrgContext:
    """An authorized call on one organization's books."""

    sandbox: Sandbox
    books: OrgBooks
    principal: Principal

    def writer(self) -> Writer:
        return Writer(
            books=self.books,
            ids=self.sandbox.ids,
            now=self.sandbox.clock.now(),
            username=self.principal.username,
        )


async def org_context(
    request: Request, organization_id: Annotated[str, Path(alias="organizationId")]
) -> OrgContext:
    """Dependency for `/{version}/{organizationId}/…`: 401 → 429 → 403 (41: no access, 90: no
    Pro) → scope."""
    sandbox = sandbox_of(request)
    principal = authenticate(request)
    org_id = int(organization_id) if organization_id.isdigit() else None
    _rate_limit(sandbox, principal, org_id)
    books = sandbox.books.get(org_id) if org_id is not None else None
    if books is None or org_id not in principal.organization_ids():
        raise DineroError(
            403,
            UNAUTHORIZED,
            f"You do not have access to organization {organization_id}",
        )
    if not books.organization.pro:
        raise DineroError(
            403,
            NO_PRO,
            "The organization does not have an active Dinero Pro subscription",
        )
    _check_scope(request, principal)
    return OrgContext(sandbox=sandbox, books=books, principal=principal)


OrgCtx = Annotated[OrgContext, Depends(org_context)]
ApiPrincipal = Annotated[Principal, Depends(api_principal)]


def check_guid(value: str, what: str) -> str:
    """A GUID path segment; anything else is a 404 like an unmatched route."""
    if not UUID_RE.match(value):
        raise DineroError(404, NOT_FOUND, f"{what} not found")
    return value.lower()
