"""Turn Settings into what the process runs with, choosing development defaults out loud."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from cryptography.fernet import Fernet
from pydantic import SecretStr

from app.config import (
    DINERO_API_URL,
    DINERO_LEGACY_TOKEN_URL,
    VISMA_AUTHORIZE_URL,
    VISMA_TOKEN_URL,
    ConfigurationError,
    Settings,
    production_problems,
)

log = structlog.get_logger(__name__)

SANDBOX_PREFIX = "/sandbox"
SANDBOX_CLIENT_ID = "isv_sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - the sandbox's published demo secret


@dataclass(frozen=True)
class DineroEndpoints:
    """Where Dinero and its OAuth server are, and who we are to them."""

    api_url: str
    authorize_url: str
    token_url: str
    legacy_token_url: str
    revocation_url: str | None
    client_id: str
    client_secret: SecretStr
    redirect_uri: str
    sandbox: bool


@dataclass(frozen=True)
class Runtime:
    """Resolved configuration: no optional secrets left, every default decided."""

    settings: Settings
    database_url: SecretStr
    public_url: str
    dinero: DineroEndpoints
    jwt_secret: SecretStr | None
    jwks_url: str | None
    webhook_secret: SecretStr
    encryption_keys: tuple[SecretStr, ...]
    defaults_chosen: tuple[str, ...] = field(default=())


def _dev_secrets_file(data_dir: Path) -> Path:
    return data_dir / "dev-secrets.json"


def load_dev_secrets(data_dir: Path) -> tuple[dict[str, str], bool]:
    """Read (or create once) the generated development secrets kept in the data directory."""
    path = _dev_secrets_file(data_dir)
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        return stored, False
    data_dir.mkdir(parents=True, exist_ok=True)
    created = {
        "auth_jwt_secret": secrets.token_urlsafe(32),
        "webhook_secret": "whsec_" + secrets.token_urlsafe(24),
        "token_encryption_key": Fernet.generate_key().decode(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(created, fh)
    return created, True


def resolve(settings: Settings, *, database_url: str | None, public_url: str) -> Runtime:
    """Decide every default; refuse development defaults in production (all problems at once)."""
    if settings.is_production:
        problems = production_problems(settings)
        if problems:
            raise ConfigurationError(
                "APP_ENV=production refuses development-only defaults:\n  - "
                + "\n  - ".join(problems)
            )
    chosen: list[str] = []
    dev_secrets: dict[str, str] = {}
    needs_dev_secret = (
        (settings.auth_jwt_secret is None and settings.auth_jwks_url is None)
        or settings.webhook_secret is None
        or settings.token_encryption_keys is None
    )
    if needs_dev_secret:
        dev_secrets, created = load_dev_secrets(settings.data_dir)
        where = _dev_secrets_file(settings.data_dir)
        if created:
            chosen.append(f"generated development secrets into {where}")

    db_url = settings.database_url
    if db_url is None:
        if database_url is None:
            raise ConfigurationError("no DATABASE_URL and no embedded database was started")
        db_url = SecretStr(database_url)
        chosen.append(f"DATABASE_URL unset: using the embedded PostgreSQL in {settings.data_dir}")

    jwt_secret = settings.auth_jwt_secret
    if jwt_secret is None and settings.auth_jwks_url is None:
        jwt_secret = SecretStr(dev_secrets["auth_jwt_secret"])
        chosen.append(
            "AUTH_JWT_SECRET unset: using a generated development secret "
            "(`dinero-bridge dev-token` prints a bearer token signed with it)"
        )
    webhook_secret = settings.webhook_secret
    if webhook_secret is None:
        webhook_secret = SecretStr(dev_secrets["webhook_secret"])
        chosen.append("WEBHOOK_SECRET unset: using a generated development secret")
    if settings.token_encryption_keys is None:
        keys: tuple[SecretStr, ...] = (SecretStr(dev_secrets["token_encryption_key"]),)
        chosen.append("TOKEN_ENCRYPTION_KEYS unset: using a generated development key")
    else:
        raw = settings.token_encryption_keys.get_secret_value()
        keys = tuple(SecretStr(k.strip()) for k in raw.split(",") if k.strip())
        if not keys:
            raise ConfigurationError("TOKEN_ENCRYPTION_KEYS is set but holds no key")
        for key in keys:
            try:
                Fernet(key.get_secret_value())
            except ValueError as exc:
                raise ConfigurationError(
                    "TOKEN_ENCRYPTION_KEYS must be comma-separated Fernet keys "
                    "(32 url-safe base64-encoded bytes each)"
                ) from exc

    dinero = _dinero_endpoints(settings, public_url, chosen)
    return Runtime(
        settings=settings,
        database_url=db_url,
        public_url=public_url,
        dinero=dinero,
        jwt_secret=jwt_secret,
        jwks_url=settings.auth_jwks_url,
        webhook_secret=webhook_secret,
        encryption_keys=keys,
        defaults_chosen=tuple(chosen),
    )


def _dinero_endpoints(settings: Settings, public_url: str, chosen: list[str]) -> DineroEndpoints:
    redirect = settings.dinero_redirect_uri or f"{public_url}/v1/dinero/oauth/callback"
    if settings.sandbox_mode:
        base = public_url + SANDBOX_PREFIX
        chosen.append(
            f"no DINERO_CLIENT_ID or DINERO_API_URL: the sandbox Dinero is mounted at {base} "
            "and used (its state lives in memory)"
        )
        return DineroEndpoints(
            api_url=base,
            authorize_url=f"{base}/connect/authorize",
            token_url=f"{base}/connect/token",
            legacy_token_url=f"{base}/dineroapi/oauth/token",
            revocation_url=f"{base}/connect/revocation",
            client_id=SANDBOX_CLIENT_ID,
            client_secret=SecretStr(SANDBOX_CLIENT_SECRET),
            redirect_uri=redirect,
            sandbox=True,
        )
    token_url = settings.dinero_token_url or VISMA_TOKEN_URL
    revocation = token_url.rsplit("/", 1)[0] + "/revocation"
    return DineroEndpoints(
        api_url=(settings.dinero_api_url or DINERO_API_URL).rstrip("/"),
        authorize_url=settings.dinero_authorize_url or VISMA_AUTHORIZE_URL,
        token_url=token_url,
        legacy_token_url=settings.dinero_legacy_token_url or DINERO_LEGACY_TOKEN_URL,
        revocation_url=revocation,
        client_id=settings.dinero_client_id or SANDBOX_CLIENT_ID,
        client_secret=settings.dinero_client_secret or SecretStr(SANDBOX_CLIENT_SECRET),
        redirect_uri=redirect,
        sandbox=False,
    )
