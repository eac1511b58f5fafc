"""Configuration: production refuses development defaults; development says what it chose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from app.config import ConfigurationError, Settings
from app.runtime import resolve


def _production(data_dir: Path, **values: Any) -> Settings:
    """Production settings with a data directory, a database URL and `values`; no .env file."""
    return Settings(
        _env_file=None,
        app_env="production",
        data_dir=data_dir,
        database_url=SecretStr("postgresql://u:p@db/app"),
        **values,
    )


def test_production_with_everything_set_is_accepted(tmp_path: Path) -> None:
    settings = _production(
        tmp_path,
        auth_jwks_url="https://idp.example/jwks.json",
        webhook_secret=SecretStr("whsec_abc"),
        token_encryption_keys=SecretStr("r6Q3pJcTtH2kqC0m6bJXc6GJw8b8a2mXq0L0c5bQ8yI="),
        dinero_client_id="isv_acme",
        dinero_client_secret=SecretStr("s"),
        dinero_redirect_uri="https://bridge.example/v1/dinero/oauth/callback",
    )
    runtime = resolve(settings, database_url=None, public_url="https://bridge.example")
    assert runtime.defaults_chosen == ()
    assert runtime.dinero.sandbox is False
    assert runtime.dinero.api_url == "https://api.dinero.dk"
    assert runtime.dinero.authorize_url == "https://connect.visma.com/connect/authorize"
    assert not any(tmp_path.iterdir())  # no development secret was generated


def test_production_names_each_missing_setting(tmp_path: Path) -> None:
    settings = _production(tmp_path, dinero_client_id="isv_acme")
    with pytest.raises(ConfigurationError) as raised:
        resolve(settings, database_url=None, public_url="https://bridge.example")
    message = str(raised.value)
    assert "AUTH_JWT_SECRET" in message
    assert "WEBHOOK_SECRET" in message
    assert "TOKEN_ENCRYPTION_KEYS" in message
    assert "DINERO_CLIENT_SECRET" in message
    assert "DINERO_REDIRECT_URI" in message
    assert "DATABASE_URL" not in message


def test_bad_encryption_key_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=SecretStr("postgresql://u:p@db/app"),
        token_encryption_keys=SecretStr("not-a-key"),
    )
    with pytest.raises(ConfigurationError, match="Fernet"):
        resolve(settings, database_url=None, public_url="http://127.0.0.1:8000")


def test_development_generates_secrets_once_and_reuses_them(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    first = resolve(settings, database_url="postgresql://x/y", public_url="http://h:1")
    second = resolve(settings, database_url="postgresql://x/y", public_url="http://h:1")
    assert first.jwt_secret is not None
    assert second.jwt_secret is not None
    assert first.jwt_secret.get_secret_value() == second.jwt_secret.get_secret_value()
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o777 == 0o600
    assert any("generated development secrets" in c for c in first.defaults_chosen)
    assert not any("generated development secrets" in c for c in second.defaults_chosen)
    assert first.dinero.sandbox
    assert first.dinero.api_url == "http://h:1/sandbox"
    assert first.dinero.redirect_uri == "http://h:1/v1/dinero/oauth/callback"
