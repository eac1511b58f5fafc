"""Log lines are JSON, carry the request id, and never contain a secret."""

from __future__ import annotations

import io
import json
import logging

import httpx
import structlog

from tests.conftest import bearer, log_lines


def test_secrets_are_redacted_whatever_the_caller_passes(
    json_logs: io.StringIO,
) -> None:
    log = structlog.get_logger("test")
    log.info(
        "calling",
        access_token="eyJhbGciOi.secret.value",
        headers={"Authorization": "Bearer abc.def.ghi", "Accept": "application/json"},
        url="postgresql://bridge:hunter2@db:5432/app",
        note="sent Bearer abc.def.ghi to Dinero",
        client_secret="sandbox-secret",
    )
    logging.getLogger("stdlib").warning("api_key=%s", {"api_key": "k-123"})
    text = "\n".join(json.dumps(line) for line in log_lines(json_logs))
    for secret in ("eyJhbGciOi.secret.value", "abc.def.ghi", "hunter2", "sandbox-secret", "k-123"):
        assert secret not in text
    assert "application/json" in text


async def test_access_line_has_request_id(
    client: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    headers = {**bearer(), "X-Request-ID": "req-42"}
    await client.get("/v1/companies/acme", headers=headers)
    lines = log_lines(json_logs)
    access = [line for line in lines if line.get("event") == "request"]
    assert access, lines
    assert access[-1]["request_id"] == "req-42"
    assert access[-1]["status"] == 200
    assert headers["Authorization"].split()[1] not in json.dumps(lines)
