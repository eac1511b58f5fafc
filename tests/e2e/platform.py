"""The expense platform's webhook endpoint, as a real HTTP server the workers deliver to.

It checks every delivery's Standard Webhooks signature with the secret the stack signs with,
answers 204, and keeps what it received (in order) for the tests to read.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import WEBHOOK_SECRET


class Platform:
    def __init__(self) -> None:
        self.url = ""
        self.events: list[dict[str, Any]] = []
        self.forged = 0
        self._lock = threading.Lock()

    def received(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)

    def statuses(self, item_id: str) -> list[str]:
        """The statuses the platform was told about for one item, in the order they came."""
        with self._lock:
            return [
                e["data"]["status"]
                for e in self.events
                if e.get("type") == "export_item.updated" and e["data"]["id"] == item_id
            ]


@contextlib.contextmanager
def running_platform() -> Iterator[Platform]:
    platform = Platform()
    verifier = Webhook(WEBHOOK_SECRET.get_secret_value())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                event = verifier.verify(body, dict(self.headers.items()))
            except WebhookVerificationError:
                platform.forged += 1
                self.send_response(401)
                self.end_headers()
                return
            platform.received(event if isinstance(event, dict) else json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    platform.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/dinero-bridge"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield platform
    finally:
        server.shutdown()
        server.server_close()
