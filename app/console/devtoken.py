"""`POST /v1/dev/token`: a bearer token for trying the service locally (development only).

The console's "sign in as demo admin" button uses it; it is what `dinero-bridge dev-token`
prints. With `APP_ENV=production` it refuses (403 `development_only`) whatever is asked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from app.auth import issue_token
from app.errors import Conflict, Forbidden, problem_doc
from app.inputs import SafeStr

router = APIRouter(tags=["development"])

DEV_TOKEN_HOURS = 8


class DevTokenRequest(BaseModel):
    model_config = {"extra": "forbid"}

    company_id: SafeStr = Field(
        default="demo", min_length=1, max_length=128, description="The token's company."
    )
    role: Literal["admin", "member"] = "admin"


class DevTokenOut(BaseModel):
    token: str = Field(description="An HS256 bearer token in the platform's format.")
    company_id: str
    role: Literal["admin", "member"]
    expires_at: datetime


@router.post(
    "/v1/dev/token",
    response_model=DevTokenOut,
    status_code=201,
    operation_id="create_dev_token",
    responses={
        403: problem_doc("Refused with APP_ENV=production (`development_only`)."),
        409: problem_doc("Tokens are verified with JWKS keys, which this service cannot sign."),
        422: problem_doc("The request is not valid; `errors` names each bad field."),
    },
)
async def create_dev_token(
    request: Request, response: Response, body: DevTokenRequest | None = None
) -> DevTokenOut:
    """Development only: a bearer token (default: company `demo`, role admin, 8 hours)."""
    runtime = request.app.state.runtime
    if runtime.settings.is_production:
        raise Forbidden(
            "Development tokens are not minted in production; sign in through the expense "
            "platform.",
            code="development_only",
        )
    if runtime.jwt_secret is None:
        raise Conflict(
            "Bearer tokens are verified with the platform's keys (AUTH_JWKS_URL); this service "
            "cannot mint one. Paste a token from the platform instead.",
            code="dev_token_unavailable",
        )
    response.headers["Cache-Control"] = "no-store"
    wanted = body or DevTokenRequest()
    settings = runtime.settings
    # A token the service's own verifier accepts: within its lifetime bound, and with the
    # audience and issuer it is configured to require (when it is).
    ttl = min(DEV_TOKEN_HOURS * 3600, getattr(settings, "auth_jwt_max_lifetime_seconds", 10**9))
    claims: dict[str, Any] = {}
    for claim in ("audience", "issuer"):
        value = getattr(settings, f"auth_jwt_{claim}", None)
        if value:
            claims[claim] = value
    token = issue_token(
        secret=runtime.jwt_secret,
        company_id=wanted.company_id,
        role=wanted.role,
        subject=f"dev-{wanted.role}",
        ttl_seconds=ttl,
        **claims,
    )
    return DevTokenOut(
        token=token,
        company_id=wanted.company_id,
        role=wanted.role,
        expires_at=datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ttl),
    )
