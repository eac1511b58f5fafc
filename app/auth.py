"""Bearer tokens from the expense platform: HS256 with a shared secret, or RS256 via JWKS."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import jwt
from pydantic import SecretStr

from app.errors import AppError, Unauthorized

Role = Literal["admin", "member"]
JWKS_MIN_REFRESH_SECONDS = 60.0


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
    ) -> None:
        if secret is None and jwks_url is None:
            raise ValueError("a JWT secret or a JWKS URL is required")
        self._secret = secret
        self._jwks_url = jwks_url
        self._http = http
        self._leeway = leeway_seconds
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
                options={"require": ["exp", "sub", "company_id", "role"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized(
                "The bearer token has expired; sign in again.", code="token_expired"
            ) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(
                f"The bearer token lacks the '{exc.claim}' claim.", code="token_invalid"
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(
                "The bearer token is not valid (bad signature or malformed).",
                code="token_invalid",
            ) from exc
        role = claims.get("role")
        if role not in ("admin", "member"):
            raise Unauthorized(
                "The bearer token's role must be 'admin' or 'member'.", code="token_invalid"
            )
        company_id = claims.get("company_id")
        if not isinstance(company_id, str | int) or str(company_id) == "":
            raise Unauthorized("The bearer token has no usable company_id.", code="token_invalid")
        return Principal(subject=str(claims["sub"]), company_id=str(company_id), role=role)

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
) -> str:
    """An HS256 token in the platform's format (development and tests)."""
    now = int(time.time())
    payload = {
        "sub": subject,
        "company_id": company_id,
        "role": role,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(payload, secret.get_secret_value(), algorithm="HS256")
