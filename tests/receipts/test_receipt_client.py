"""Receipt downloads go through a client of their own: no cookie carried from one receipt host
to the next, no proxy taken from the environment, and hosts allowed by name and port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings
from app.receipts import ReceiptError, ReceiptFetcher
from app.services import create_receipt_http_client
from tests.receipts.samples import png

PNG = png((4, 4))


class _Host(BaseHTTPRequestHandler):
    """A receipt host that sets a cookie on every answer and notes the cookies it is sent."""

    cookies_seen: list[str | None] = []

    def do_GET(self) -> None:
        type(self).cookies_seen.append(self.headers.get("Cookie"))
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Set-Cookie", "session=tracking-id; Path=/")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receipt_host() -> Iterator[str]:
    _Host.cookies_seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Host)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_no_cookie_reaches_the_next_download_and_the_environments_proxy_is_not_used(
    receipt_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead_proxy = "http://127.0.0.1:9"  # nothing listens on the discard port
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    url = f"http://{receipt_host}/receipt.png"

    # A client that trusts the environment goes through the dead proxy and fails...
    async with httpx.AsyncClient() as trusting:
        with pytest.raises(httpx.TransportError):
            await trusting.get(url)
    # ...the receipt client goes straight to the host, and keeps none of its cookies.
    async with create_receipt_http_client() as client:
        fetcher = ReceiptFetcher(client, [receipt_host], allow_http=True)
        first = await fetcher.fetch(url)
        second = await fetcher.fetch(url.replace("receipt", "another"))

    assert first.content == second.content == PNG
    assert _Host.cookies_seen == [None, None]


@pytest.mark.parametrize(
    ("entries", "url", "allowed"),
    [
        (["files.test"], "https://files.test/r.pdf", True),
        (["files.test"], "https://files.test:443/r.pdf", True),
        (["files.test"], "https://files.test:8443/r.pdf", False),
        (["files.test:8443"], "https://files.test:8443/r.pdf", True),
        (["files.test:8443"], "https://files.test/r.pdf", False),
        (["files.test:443"], "https://files.test/r.pdf", True),
        (["[::1]:8443"], "https://[::1]:8443/r.pdf", True),
        (["::1"], "https://[::1]/r.pdf", True),
        (["::1"], "https://[::1]:8443/r.pdf", False),
        (["Files.Test."], "https://files.test/r.pdf", True),
    ],
)
def test_the_allow_list_names_host_and_port(entries: list[str], url: str, allowed: bool) -> None:
    fetcher = ReceiptFetcher(httpx.AsyncClient(), entries)
    if allowed:
        assert fetcher.check_url(url)
        return
    with pytest.raises(ReceiptError) as refused:
        fetcher.check_url(url)
    assert refused.value.code == "receipt_host_not_allowed"
    assert ":8443" in refused.value.message or "files.test'" in refused.value.message


def test_a_bad_allow_list_entry_stops_the_start() -> None:
    with pytest.raises(ValidationError, match="RECEIPT_ALLOWED_HOSTS"):
        Settings(_env_file=None, receipt_allowed_hosts="ok.test, bad.test:99999")
    settings = Settings(_env_file=None, receipt_allowed_hosts="a.test, b.test:8443")
    assert settings.receipt_allowed_hosts == ["a.test", "b.test:8443"]
