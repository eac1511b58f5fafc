"""FastAPI dependency aliases: the request's unit of work, the caller, and company access."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal, TokenVerifier
from app.companies.models import Company
from app.companies.service import ensure_company
from app.errors import Forbidden, NotFound, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="A JWT from the expense platform.")


@contextlib.asynccontextmanager
async def unit_of_work(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """`session`, committed when the block ends, rolled back if it raises."""
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the endpoint returns, rolled back on error.

    Services only flush; this is where a request commits, besides the company dependency's own
    upsert and `app.db.release_transaction` (reads committed before a call to Dinero).
    """
    async with request.app.state.services.sessionmaker() as session, unit_of_work(session):
        yield session


SessionFactory = Callable[[], AsyncSession]


def get_session_factory(request: Request) -> SessionFactory:
    """For flows that need several short transactions in one request (the OAuth callback)."""
    factory: SessionFactory = request.app.state.services.sessionmaker
    return factory


SessionFactoryDep = Annotated[SessionFactory, Depends(get_session_factory)]

# scope="function": commit before the response is sent, so a failed commit is never a 2xx.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


_PRINCIPAL = "principal"
"""Where a principal verified before the body was read is kept for the request (scope state)."""


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    verified: Principal | None = getattr(request.state, _PRINCIPAL, None)
    if verified is not None:
        return verified
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send 'Authorization: Bearer <token>'.", code="token_missing")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify(credentials.credentials)
    setattr(request.state, _PRINCIPAL, principal)
    return principal


class AuthenticatedBeforeBody(APIRoute):
    """A company route whose bearer token (and path company) is checked before its body is read.

    FastAPI reads and parses a request's body before it resolves any dependency, so without
    this a large body sent with no token or another company's would be read in full just to
    answer 401 or 404. The principal is kept for `get_principal`, so it is verified once.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated_first(request: Request) -> Response:
            principal = await get_principal(request, await _bearer(request))
            company = request.path_params.get("company")
            if company is not None and company != principal.company_id:
                raise NotFound("No such company.", code="company_not_found")
            return await handler(request)

        return authenticated_first


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True)
class CompanyAccess:
    """The caller and the company in the path, which is always the caller's own."""

    principal: Principal
    company: Company


CompanyPath = Annotated[str, Path(min_length=1, max_length=128, description="The company id.")]


async def _company_access(
    principal: Principal, session: AsyncSession, company: str, *, admin: bool
) -> CompanyAccess:
    # Another company's path answers exactly like a company that does not exist.
    if company != principal.company_id:
        raise NotFound("No such company.", code="company_not_found")
    if admin and not principal.is_admin:
        raise Forbidden("Only a finance admin may do this.", code="admin_required")
    row = await ensure_company(session=session, company_id=company)
    # The upsert is a transaction of its own, committed at once: the handler's transaction
    # begins with its own first statement, so a handler that commits its reads before calling
    # Dinero (app.db.release_transaction) leaves none open while Dinero answers, and a new
    # company's row is not locked for the whole request. What the handler writes is still
    # committed when it returns and rolled back if it raises.
    await session.commit()
    return CompanyAccess(principal=principal, company=row)


async def company_member(
    principal: PrincipalDep, session: SessionDep, company: CompanyPath
) -> CompanyAccess:
    return await _company_access(principal, session, company, admin=False)


async def company_admin(
    principal: PrincipalDep, session: SessionDep, company: CompanyPath
) -> CompanyAccess:
    """Like `company_member`, for finance admins only (a member is refused before anything is
    written)."""
    return await _company_access(principal, session, company, admin=True)


CompanyMember = Annotated[CompanyAccess, Depends(company_member)]
CompanyAdmin = Annotated[CompanyAccess, Depends(company_admin)]
