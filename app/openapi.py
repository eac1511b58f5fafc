"""Render the service's OpenAPI document; `openapi.yaml` in the repository is its committed copy.

Regenerate with `./dev run openapi > openapi.yaml` (a test fails when the two differ).
"""

from __future__ import annotations

from typing import Any

import yaml
from cryptography.fernet import Fernet
from pydantic import SecretStr

from app.config import Settings
from app.main import create_app
from app.runtime import resolve


def schema() -> dict[str, Any]:
    settings = Settings(
        _env_file=None,
        database_url=SecretStr("postgresql://schema-only/none"),
        auth_jwt_secret=SecretStr("schema-only-" + "x" * 32),
        webhook_secret=SecretStr("whsec_c2NoZW1hLW9ubHk="),
        token_encryption_keys=SecretStr(Fernet.generate_key().decode()),
    )
    runtime = resolve(settings, database_url=None, public_url="http://127.0.0.1:8000")
    return create_app(runtime, open_job_queue=False, mount_sandbox=False).openapi()


def render() -> str:
    return yaml.safe_dump(schema(), sort_keys=False, allow_unicode=True, width=100)
