"""Bearer tokens from the expense platform: HS256 with a shared secret, or RS256 via JWKS."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import jwt
from pydantic import SecretStr

from app.config import DEFAULT_JWT_MAX_LIFETIME_SECONDS
from app.errors import AppError, Unauthorized
from app.inputs import text_problem

Role = Literal["admin", "member"]
JWKS_MIN_REFRESH_SECONDS = 60.0
MAX_COMPANY_ID_LENGTH = 128
"""As long as `companies.id` (and the path's `{company}`) may be."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the JWT's subject, company and role."""

    subject: str
    company_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class TokenVerifier:
    """Verifies bearer tokens; keeps the JWKS cached and refetches it for an unknown key id."""

    def __init__(
        self,
        *,
        secret: SecretStr | None,
        jwks_url: str | None,
        http: httpx.AsyncClient | None = None,
        leeway_seconds: int = 30,
        audience: str | None = None,
        issuer: str | None = None,
        max_lifetime_seconds: int = DEFAULT_JWT_MAX_LIFETIME_SECONDS,
    ) -> None:
        if secret is None and jwks_url is None:
            raise ValueError("a JWT secret or a JWKS URL is required")
        self._secret = secret
        self._jwks_url = jwks_url
        self._http = http
        self._leeway = leeway_seconds
        self._audience = audience
        self._issuer = issuer
        self._max_lifetime = max_lifetime_seconds
        self._required = ["exp", "sub", "company_id", "role"]
        self._required += ["aud"] if audience is not None else []
        self._required += ["iss"] if issuer is not None else []
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_fetched_at = 0.0
        self._jwks_lock = asyncio.Lock()

    async def verify(self, token: str) -> Principal:
        key: Any
        algorithms: list[str]
        if self._secret is not None:
            key, algorithms = self._secret.get_secret_value(), ["HS256"]
        else:
            key, algorithms = await self._signing_key(token), ["RS256"]
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                leeway=self._leeway,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": self._required},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized(
                "The bearer token has expired; sign in again.", code="token_expired"
            ) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(
                f"The bearer token lacks the '{exc.claim}' claim.", code="token_invalid"
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized(
                "The bearer token was issued for another audience (aud).",
                code="token_audience_invalid",
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized(
                "The bearer token was issued by another issuer (iss).",
                code="token_issuer_invalid",
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(
                "The bearer token is not valid (bad signature or malformed).",
                code="token_invalid",
            ) from exc
        self._check_lifetime(claims)
        role = claims.get("role")
        if role not in ("admin", "member"):
            raise Unauthorized(
                "The bearer token's role must be 'admin' or 'member'.", code="token_invalid"
            )
        return Principal(
            subject=str(claims["sub"]), company_id=_company_id(claims.get("company_id")), role=role
        )

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """Refuse a token meant to live longer than the bound, from its `iat` (else from now)."""
        expires = int(claims["exp"])  # PyJWT checked it is an integer date
        issued = int(claims["iat"]) if "iat" in claims else int(time.time())
        if expires - issued > self._max_lifetime:
            raise Unauthorized(
                f"The bearer token is valid for longer than {self._max_lifetime} seconds "
                "(AUTH_JWT_MAX_LIFETIME_SECONDS); issue a shorter-lived one.",
                code="token_lifetime_too_long",
            )

    async def _signing_key(self, token: str) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("The bearer token is malformed.", code="token_invalid") from exc
        kid = header.get("kid")
        jwks = await self._load_jwks(force=False)
        key = _find_key(jwks, kid)
        if key is None and time.monotonic() - self._jwks_fetched_at > JWKS_MIN_REFRESH_SECONDS:
            key = _find_key(await self._load_jwks(force=True), kid)
        if key is None:
            raise Unauthorized(
                "The bearer token was signed with an unknown key.", code="token_invalid"
            )
        return key

    async def _load_jwks(self, *, force: bool) -> jwt.PyJWKSet:
        async with self._jwks_lock:
            if self._jwks is not None and not force:
                return self._jwks
            assert self._jwks_url is not None
            try:
                if self._http is None:
                    async with httpx.AsyncClient(timeout=5.0) as http:
                        response = await http.get(self._jwks_url)
                else:
                    response = await self._http.get(self._jwks_url, timeout=5.0)
                response.raise_for_status()
                self._jwks = jwt.PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                if self._jwks is not None:
                    return self._jwks
                raise AppError(
                    "The signing keys for bearer tokens could not be fetched; try again shortly.",
                    code="jwks_unavailable",
                    status=503,
                    title="Service unavailable",
                ) from exc
            self._jwks_fetched_at = time.monotonic()
            return self._jwks


def _company_id(value: object) -> str:
    """The company_id claim as the company's id: a string (or a whole number, not a boolean) of
    1-128 characters that can be stored as text."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Unauthorized("The bearer token's company_id must be a string.", code="token_invalid")
    company_id = value if isinstance(value, str) else str(value)
    if not 0 < len(company_id) <= MAX_COMPANY_ID_LENGTH or text_problem(company_id):
        raise Unauthorized(
            f"The bearer token's company_id must be 1-{MAX_COMPANY_ID_LENGTH} characters of "
            "text (no NUL, valid Unicode).",
            code="token_invalid",
        )
    return company_id


def _find_key(jwks: jwt.PyJWKSet, kid: str | None) -> Any:
    for jwk in jwks.keys:
        if kid is None or jwk.key_id == kid:
            return jwk.key
    return None


def issue_token(
    *,
    secret: SecretStr,
    company_id: str,
    role: Role,
    subject: str = "dev-user",
    ttl_seconds: int = 8 * 3600,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """An HS256 token in the platform's format (development and tests)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": subject,
        "company_id": company_id,
        "role": role,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if audience is not None:
        payload["aud"] = audience
    if issuer is not None:
        payload["iss"] = issuer
    return jwt.encode(payload, secret.get_secret_value(), algorithm="HS256")
