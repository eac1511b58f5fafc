"""Log lines are JSON, carry the request id, and never contain a secret."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest
import structlog

from app import logging as app_logging
from app.logging import FastLines
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


def test_fast_lines_are_the_lines_structlog_writes(
    json_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`FastLines` (the access line) writes what structlog writes for the same call: the same
    fields in the same order, the bound context, redacted alike; only the timestamp differs."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "stream", None) is json_logs]
    assert len(ours) == 1
    fields = {"method": "GET", "path": "/x", "status": 200, "note": "sent Bearer abc.def.ghi"}
    rendered: list[object] = []
    render = app_logging._JSON

    def counted(*args: Any) -> Any:
        rendered.append(args)
        return render(*args)

    monkeypatch.setattr(app_logging, "_JSON", counted)
    structlog.contextvars.bind_contextvars(request_id="r-1")
    try:
        # pytest's log capture adds a handler of its own: then the line goes through structlog.
        FastLines("app.access").info("request", **fields)
        monkeypatch.setattr(root, "handlers", ours)  # only configure_logging's handler
        FastLines("app.access").info("request", **fields)
        structlog.get_logger("app.access").info("request", **fields)
        logging.getLogger("app.access").setLevel(logging.WARNING)
        FastLines("app.access").info("request", **fields)  # below the level: nothing
    finally:
        logging.getLogger("app.access").setLevel(logging.NOTSET)
        structlog.contextvars.clear_contextvars()

    lines = [json.loads(text) for text in json_logs.getvalue().splitlines()]
    assert len(lines) == 3
    assert len(rendered) == 1  # the second line only: rendered by FastLines itself
    for line in lines:
        assert line.pop("timestamp")
    assert [list(line) for line in lines[1:]] == [list(lines[0])] * 2
    assert lines[1:] == [lines[0]] * 2
    assert lines[0] == fields | {
        "event": "request",
        "note": "sent Bearer [redacted]",
        "request_id": "r-1",
        "level": "info",
        "logger": "app.access",
    }
