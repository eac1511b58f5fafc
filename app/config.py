"""One Settings object: every environment variable the service reads (see README)."""

from __future__ import annotations

import base64
import binascii
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.hosts import parse_allowed_host

VISMA_AUTHORIZE_URL = "https://connect.visma.com/connect/authorize"
VISMA_TOKEN_URL = "https://connect.visma.com/connect/token"  # noqa: S105 - a URL
DINERO_LEGACY_TOKEN_URL = "https://authz.dinero.dk/dineroapi/oauth/token"  # noqa: S105
DINERO_API_URL = "https://api.dinero.dk"

DEFAULT_MAX_REQUEST_BYTES = 10 * 13_981_016 + 1024 * 1024
"""140,858,736 bytes: the largest legitimate export, one item with its ten inline receipts at the
10 MB maximum (13,981,016 bytes each in base64) and 1 MiB of JSON around them."""
DEFAULT_JWT_MAX_LIFETIME_SECONDS = 24 * 3600


def standard_webhooks_key(secret: str) -> bytes | None:
    """The key of a Standard Webhooks secret (`whsec_` + standard base64), or None if it has none.

    Strict: a character outside the standard alphabet (`-`, `_`, spaces…) is refused rather
    than skipped, as the library would do, silently signing with another key.
    """
    body = secret.removeprefix("whsec_").rstrip("=")
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (ValueError, binascii.Error):
        return None
    return key or None


class Settings(BaseSettings):
    """Configuration from the environment (or a `.env` file)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_file_encoding="utf-8")

    app_env: Literal["development", "production"] = "development"
    database_url: SecretStr | None = None
    data_dir: Path = Path(".data")

    dinero_api_url: str | None = None
    dinero_authorize_url: str | None = None
    dinero_token_url: str | None = None
    dinero_legacy_token_url: str | None = None
    dinero_client_id: str | None = None
    dinero_client_secret: SecretStr | None = None
    dinero_redirect_uri: str | None = None
    dinero_rate_limit_per_minute: int = Field(default=100, ge=1, le=10_000)
    dinero_follow_up_share: float = Field(default=0.10, gt=0, le=1)
    """Most of the per-minute budget that polling drafts for approval may use (idle only)."""
    dinero_data_source_share: float = Field(default=0.5, gt=0, le=1)
    """Most of the per-minute budget that dashboard data imports may use (idle only)."""

    auth_jwt_secret: SecretStr | None = None
    auth_jwks_url: str | None = None
    auth_jwt_audience: str | None = None
    """When set, a bearer token must carry this `aud`."""
    auth_jwt_issuer: str | None = None
    """When set, a bearer token must carry this `iss`."""
    auth_jwt_max_lifetime_seconds: int = Field(
        default=DEFAULT_JWT_MAX_LIFETIME_SECONDS, ge=60, le=30 * 24 * 3600
    )
    """A bearer token whose `exp` is further than this from its `iat` (or from now) is refused."""
    webhook_secret: SecretStr | None = None
    token_encryption_keys: SecretStr | None = None
    receipt_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    receipt_proxy_url: str | None = None
    """A proxy for receipt downloads only; HTTP(S)_PROXY from the environment is never used."""
    max_request_bytes: int = Field(
        default=DEFAULT_MAX_REQUEST_BYTES, ge=64 * 1024, le=2 * 1024 * 1024 * 1024
    )
    """The largest request body the intake routes take (413 beyond); other routes take 1 MiB."""
    frontend_url: str | None = None

    public_url: str | None = None
    """Where this service is reachable from a browser; defaults to http://{host}:{port}."""
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    chart_sync_interval_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    """How often each connected company's chart of accounts is synced from Dinero."""
    follow_up_interval_seconds: int = Field(default=60, ge=10, le=24 * 60 * 60)
    """How often each company's drafts are followed in Dinero (approved, deleted, edited)."""
    platform_webhook_url: str | None = None
    """Where `export_item.updated` webhooks are sent; unset: they are kept until it is set."""
    platform_webhook_secret: SecretStr | None = None
    """Standard Webhooks secret (`whsec_…`) signing them; WEBHOOK_SECRET when unset."""
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    worker_poll_seconds: float = Field(default=1.0, ge=0.05, le=60)
    """How often an idle worker looks for due jobs (scheduled ones, or ones a lock held back)."""
    worker_heartbeat_seconds: float = Field(default=10, ge=0.2, le=300)
    """How often a worker says it is alive; the jobs of one silent for 3 beats are retried."""

    @field_validator("receipt_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @field_validator("receipt_allowed_hosts")
    @classmethod
    def _exact_hosts(cls, value: list[str]) -> list[str]:
        if not value:
            return value
        for entry in value:
            parse_allowed_host(entry)  # a pattern, a URL or a bad port is refused at start-up
        return value

    @field_validator("platform_webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("PLATFORM_WEBHOOK_URL must be an http(s) URL")
        return value

    @field_validator("receipt_proxy_url")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("RECEIPT_PROXY_URL must be an http(s) URL")
        return value

    @field_validator("webhook_secret", "platform_webhook_secret")
    @classmethod
    def _signing_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and standard_webhooks_key(value.get_secret_value()) is None:
            name = (info.field_name or "webhook_secret").upper()
            raise ValueError(
                f"{name} must be whsec_ followed by a non-empty key in standard base64"
            )
        return value

    @cached_property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def sandbox_mode(self) -> bool:
        """No Dinero client configured and no Dinero URL given: use the stand-in Dinero."""
        return self.dinero_client_id is None and self.dinero_api_url is None


def production_problems(settings: Settings) -> list[str]:
    """Every development-only default that production must not fall back to."""
    problems: list[str] = []
    if settings.database_url is None:
        problems.append("DATABASE_URL is not set (the embedded PostgreSQL is for development only)")
    if settings.auth_jwt_secret is None and settings.auth_jwks_url is None:
        problems.append(
            "neither AUTH_JWT_SECRET nor AUTH_JWKS_URL is set "
            "(a generated secret is for development only)"
        )
    if settings.webhook_secret is None:
        problems.append("WEBHOOK_SECRET is not set (a generated secret is for development only)")
    if settings.token_encryption_keys is None:
        problems.append(
            "TOKEN_ENCRYPTION_KEYS is not set (generated keys are for development only)"
        )
    if settings.dinero_client_id is None:
        problems.append("DINERO_CLIENT_ID is not set (the sandbox Dinero is for development only)")
    if settings.dinero_client_id is not None and settings.dinero_client_secret is None:
        problems.append("DINERO_CLIENT_SECRET is not set")
    if settings.dinero_client_id is not None and settings.dinero_redirect_uri is None:
        problems.append("DINERO_REDIRECT_URI is not set")
    return problems


class ConfigurationError(Exception):
    """The configuration cannot be used; the message says what to set."""
