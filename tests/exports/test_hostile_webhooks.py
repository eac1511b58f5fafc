"""Webhooks that try to confuse the intake: a webhook-id reused by another company or with another
body, JSON nested to break a parser, secrets that cannot sign. Never a 500, never another
company's answer, nothing half-stored."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings, standard_webhooks_key
from app.exports.models import Export
from app.runtime import load_dev_secrets, new_webhook_secret
from tests.conftest import bearer
from tests.exports.intake_support import (
    card,
    count_exports,
    deliver,
    items_of,
    webhook_body,
)


async def test_a_webhook_id_is_replayed_per_company_not_across_companies(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await deliver(client, webhook_body("acme", card("exp_1")), webhook_id="msg_1")
    globex = await deliver(client, webhook_body("globex", card("exp_9")), webhook_id="msg_1")

    assert (acme.status_code, globex.status_code) == (202, 202), globex.text
    assert "Idempotent-Replayed" not in globex.headers
    assert [i["external_id"] for i in globex.json()["items"]] == ["exp_9"]
    assert [i.external_id for i in await items_of(db, "globex")] == ["exp_9"]
    assert [i.external_id for i in await items_of(db, "acme")] == ["exp_1"]
    stored = (await db.execute(select(Export.company_id).where(Export.webhook_id == "msg_1"))).all()
    assert sorted(company for (company,) in stored) == ["acme", "globex"]


async def test_the_same_webhook_id_with_another_body_is_409_and_stores_nothing(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    first = await deliver(client, webhook_body("acme", card("exp_1")), webhook_id="msg_1")
    other = await deliver(
        client, webhook_body("acme", card("exp_1"), card("exp_2")), webhook_id="msg_1"
    )
    again = await deliver(client, webhook_body("acme", card("exp_1")), webhook_id="msg_1")

    assert first.status_code == 202
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "webhook_id_reused"
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [i.external_id for i in await items_of(db, "acme")] == ["exp_1"]
    assert await count_exports(db, "acme") == 1


async def test_a_reused_id_whose_items_are_all_refused_is_409_too(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    assert (await deliver(client, webhook_body("acme", card("exp_1")), webhook_id="m")).is_success

    refused = await deliver(client, webhook_body("acme", card("")), webhook_id="m")

    assert (refused.status_code, refused.json()["code"]) == (409, "webhook_id_reused")
    assert await count_exports(db, "acme") == 1


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


async def test_deeply_nested_json_is_refused_not_a_500(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    for depth in (40, 990, 100_000):  # past our limit; at Python's recursion limit; far past
        body = webhook_body("acme", card("exp_1", extra="[]"))
        raw = json.dumps(body).encode().replace(b'"[]"', b"[" * depth + b"]" * depth)

        response = await deliver(client, raw)

        assert response.status_code == 422, (depth, response.text)
        assert response.json()["code"] == "json_too_deep"
    for depth in (40, 800):
        exported = await client.post(
            "/v1/companies/acme/exports",
            content=json.dumps({"items": [card("exp_1", extra=_nested(depth))]}),
            headers={"content-type": "application/json"} | bearer(),
        )

        assert exported.status_code in (400, 422), (depth, exported.text)
        assert exported.json()["code"] in ("json_too_deep", "malformed_body")
    assert await count_exports(db, "acme") == 0


async def test_a_signed_body_that_cannot_be_used_is_422(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    for raw, code in [
        (b"not json", "invalid_json"),
        (b'{"type": "\\ud800", "company_id": "acme", "items": []}', "validation_error"),
        (b'{"type": "a\\u0000b", "company_id": "acme", "items": []}', "validation_error"),
        (
            b'{"type": "export.requested", "company_id": "ac\\u0000me", "items": [{}]}',
            "validation_error",
        ),
    ]:
        response = await deliver(client, raw)

        assert response.status_code == 422, (raw, response.text)
        assert response.json()["code"] == code
    assert await count_exports(db, "acme") == 0


def test_a_webhook_secret_without_a_standard_base64_key_is_refused_at_start() -> None:
    for secret in ("whsec_", "whsec_====", "whsec_not base64!", "whsec_a-b_c"):
        with pytest.raises(ValidationError, match="WEBHOOK_SECRET must be whsec_"):
            Settings(_env_file=None, webhook_secret=SecretStr(secret))

        result = CliRunner().invoke(cli, ["migrate"], env={"WEBHOOK_SECRET": secret})

        assert result.exit_code == 2, result.output
        assert "WEBHOOK_SECRET must be whsec_ followed by" in result.output
        key = secret.removeprefix("whsec_")
        if key.strip("="):
            assert key not in result.output  # the reason is told, the value is not


def test_generated_development_webhook_secrets_always_sign_and_verify() -> None:
    now = datetime.now(UTC)
    for _ in range(100):
        secret = new_webhook_secret()
        assert standard_webhooks_key(secret) is not None
        hook = Webhook(secret)
        signature = hook.sign("msg_1", now, "{}")
        hook.verify(
            "{}",
            {
                "webhook-id": "msg_1",
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signature,
            },
        )


def test_a_stored_development_secret_that_is_not_standard_base64_is_replaced(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dev-secrets.json"
    path.write_text(
        json.dumps(
            {
                "auth_jwt_secret": "jwt",
                "webhook_secret": "whsec_abc-def_ghi",
                "token_encryption_key": "k",
            }
        )
    )
    os.chmod(path, 0o600)

    stored, created = load_dev_secrets(tmp_path)

    assert not created
    assert standard_webhooks_key(stored["webhook_secret"]) is not None
    assert json.loads(path.read_text()) == stored
    assert stored["auth_jwt_secret"] == "jwt"  # the others are kept
    assert path.stat().st_mode & 0o777 == 0o600
