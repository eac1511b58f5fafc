"""Every request the sandbox received, with what it answered (for tests and the control API)."""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from dinero_sandbox.faults import (
    RECORD_KEY,
    DineroApiMiddleware,
    Message,
    Receive,
    Scope,
    Send,
)
from dinero_sandbox.wire import iso_datetime, jsonable

if TYPE_CHECKING:
    pass

_ORG_PATH = re.compile(r"^/v\d+(?:\.\d+)?/(\d+)(?:/|$)")
MAX_JSON_BYTES = 1_000_000


@dataclass
class RecordedRequest:
    """One request: what came in and what went out."""

    seq: int
    at: datetime
    method: str
    path: str
    query: dict[str, str]
    json: Any
    content_type: str | None
    body_size: int
    organization_id: int | None
    client_id: str | None = None
    status: int | None = None
    fault: str | None = None
    written: bool = False  # a drop/timeout fault served the request before failing
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": iso_datetime(self.at),
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "json": jsonable(self.json),
            "content_type": self.content_type,
            "body_size": self.body_size,
            "organization_id": self.organization_id,
            "client_id": self.client_id,
            "status": self.status,
            "fault": self.fault,
            "written": self.written,
            "error": self.error,
        }


def organization_in(path: str) -> int | None:
    """The organization id of an org-scoped Dinero path (`/v1/100001/...`)."""
    match = _ORG_PATH.match(path)
    return int(match.group(1)) if match else None


class RequestLog:
    """A bounded, ordered log of requests."""

    def __init__(self, limit: int) -> None:
        self._items: deque[RecordedRequest] = deque(maxlen=limit)
        self._seq = 0

    def new(self, **fields: Any) -> RecordedRequest:
        self._seq += 1
        record = RecordedRequest(seq=self._seq, **fields)
        self._items.append(record)
        return record

    def clear(self) -> None:
        self._items.clear()

    def all(self) -> list[RecordedRequest]:
        return list(self._items)


def _parse_json(body: bytes, content_type: str | None) -> Any:
    if not body or not content_type or "json" not in content_type or len(body) > MAX_JSON_BYTES:
        return None
    try:
        return json.loads(body, parse_float=Decimal)
    except ValueError:
        return None


class RecordMiddleware(DineroApiMiddleware):
    """Buffers the body, records the request, notes the answered status."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        content_type = headers.get("content-type")
        query: dict[str, str] = {}
        for key, value in parse_qsl(
            scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
        ):
            query[key] = f"{query[key]},{value}" if key in query else value
        record = self.sandbox.log.new(
            at=self.sandbox.clock.now(),
            method=scope["method"],
            path=path,
            query=query,
            json=_parse_json(body, content_type),
            content_type=content_type,
            body_size=len(body),
            organization_id=organization_in(path),
        )
        scope[RECORD_KEY] = record
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            # A dropped or timed-out answer never reached the client: keep the status the app
            # gave (set by the fault middleware), not the aborted one.
            if (
                message["type"] == "http.response.start"
                and record.status is None
                and record.fault not in ("timeout", "drop")
            ):
                record.status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, replay, capture)
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
