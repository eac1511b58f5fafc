"""Getting receipts: downloads from allow-listed hosts only (no SSRF), and inline base64.

The receipt hosts are faked with respx; a refused link must not cause any request at all.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from app.receipts import ReceiptError, ReceiptFetcher, decode_inline
from tests.receipts.samples import jpeg, png, text_pdf

HOST = "files.expenses.test"
BASE = f"https://{HOST}"
EVIL = "https://evil.test"


@pytest.fixture
def hosts() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def fetcher(client: httpx.AsyncClient) -> ReceiptFetcher:
    return ReceiptFetcher(client, [HOST, "cdn.expenses.test"])


async def refused(fetcher: ReceiptFetcher, url: str) -> ReceiptError:
    with pytest.raises(ReceiptError) as caught:
        await fetcher.fetch(url)
    return caught.value


# --- allowed downloads -----------------------------------------------------------------------


async def test_a_receipt_is_downloaded_from_an_allowed_host(
    fetcher: ReceiptFetcher, hosts: respx.MockRouter
) -> None:
    content = jpeg()
    route = hosts.get(f"{BASE}/r/42/Taxa%20Nord.jpg").respond(
        200, content=content, headers={"Content-Type": "image/jpeg"}
    )

    blob = await fetcher.fetch(f"{BASE}/r/42/Taxa%20Nord.jpg?X-Amz-Signature=secret")

    assert (blob.content, blob.filename, blob.content_type) == (
        content,
        "Taxa Nord.jpg",
        "image/jpeg",
    )
    assert route.call_count == 1
    assert "pdf" in route.calls.last.request.headers["Accept"]


async def test_the_name_comes_from_content_disposition_and_the_type_from_the_bytes(
    fetcher: ReceiptFetcher, hosts: respx.MockRouter
) -> None:
    hosts.get(f"{BASE}/download").respond(
        200,
        content=text_pdf("Hotel"),
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": "attachment; filename*=UTF-8''kvittering%20%C3%A6%C3%B8.pdf",
        },
    )

    blob = await fetcher.fetch(f"{BASE}/download")

    assert (blob.filename, blob.content_type) == ("kvittering æø.pdf", "application/pdf")


async def test_the_host_is_compared_case_insensitively(
    fetcher: ReceiptFetcher, hosts: respx.MockRouter
) -> None:
    hosts.get(f"{BASE}/a.png").respond(200, content=png())

    blob = await fetcher.fetch("https://FILES.Expenses.TEST/a.png")

    assert blob.content_type == "image/png"
    assert fetcher.check_url("https://files.expenses.test./a.png").host == f"{HOST}."


async def test_redirects_within_allowed_hosts_are_followed(
    fetcher: ReceiptFetcher, hosts: respx.MockRouter
) -> None:
    hosts.get(f"{BASE}/r/1").respond(302, headers={"Location": "https://cdn.expenses.test/x/1"})
    hosts.get("https://cdn.expenses.test/x/1").respond(301, headers={"Location": "../y/1.png"})
    hosts.get("https://cdn.expenses.test/y/1.png").respond(200, content=png())

    blob = await fetcher.fetch(f"{BASE}/r/1")

    assert (blob.filename, blob.content_type) == ("1.png", "image/png")


# --- refused links: no request sent ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"{EVIL}/receipt.jpg",
        f"https://{HOST}@evil.test/receipt.jpg",  # user info: the host is evil.test
        f"https://{HOST}:pw@evil.test/receipt.jpg",
        f"{EVIL}\\@{HOST}/receipt.jpg",  # parsers disagree; refused for its user info
        f"{EVIL}#@{HOST}",
        f"https://{HOST}.evil.test/receipt.jpg",
        f"http://{HOST}/receipt.jpg",  # plain http
        f"ftp://{HOST}/receipt.jpg",
        "https://127.0.0.1/receipt.jpg",  # IP literals only when listed
        "https://[::1]/receipt.jpg",
        "https://169.254.169.254/latest/meta-data/",
        f"//{HOST}/receipt.jpg",
        "not a url",
    ],
)
async def test_a_link_outside_the_allow_list_is_refused_without_any_request(
    fetcher: ReceiptFetcher, hosts: respx.MockRouter, url: str
) -> None:
    anything = hosts.route().respond(200, content=jpeg())

    error = await refused(fetcher, url)

    assert error.code == "receipt_host_not_allowed"
    assert not error.transient
    assert anything.call_count == 0


async def test_an_empty_allow_list_allows_only_inline_receipts(
    client: httpx.AsyncClient, hosts: respx.MockRouter
) -> None:
    anything = hosts.route().respond(200, content=jpeg())

    error = await refused(ReceiptFetcher(client, []), f"{BASE}/a.jpg")

    assert error.code == "receipt_host_not_allowed"
    assert "only inline receipts" in error.message
    assert anything.call_count == 0


async def test_a_listed_ip_address_and_http_for_tests_can_be_allowed(
    client: httpx.AsyncClient, hosts: respx.MockRouter
) -> None:
    hosts.get("http://127.0.0.1:8080/a.png").respond(200, content=png())
    fetcher = ReceiptFetcher(client, ["127.0.0.1:8080"], allow_http=True)

    blob = await fetcher.fetch("http://127.0.0.1:8080/a.png")

    assert blob.content_type == "image/png"


async def test_a_redirect_to_a_host_outside_the_allow_list_is_not_followed(
    fetcher: ReceiptFetcher, hosts: respx.MockRouter
) -> None:
    hosts.get(f"{BASE}/r/1").respond(302, headers={"Location": f"{EVIL}/steal"})
    evil = hosts.get(f"{EVIL}/steal").respond(200, content=jpeg())

    error = await refused(fetcher, f"{BASE}/r/1")

    assert error.code == "receipt_host_not_allowed"
    assert "evil.test" in error.message
    assert evil.call_count == 0


async def test_a_redirect_to_an_internal_address_is_not_followed(
    fetcher: ReceiptFetcher, hosts: respx.MockRouter
) -> None:
    hosts.get(f"{BASE}/r/1").respond(
        307, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    metadata = hosts.route(host="169.254.169.254").respond(200, text="secrets")

    error = await refused(fetcher, f"{BASE}/r/1")

    assert error.code == "receipt_host_not_allowed"
    assert metadata.call_count == 0


async def test_more_than_three_redirects_are_refused(
    fetcher: ReceiptFetcher, hosts: respx.MockRouter
) -> None:
    for hop in range(4):
        hosts.get(f"{BASE}/r/{hop}").respond(302, headers={"Location": f"/r/{hop + 1}"})
    last = hosts.get(f"{BASE}/r/4").respond(200, content=png())

    error = await refused(fetcher, f"{BASE}/r/0")

    assert error.code == "receipt_download_failed"
    assert not error.transient
    assert last.call_count == 0


@pytest.mark.parametrize(
    "entry", ["*.expenses.test", "https://x.test", "files.expenses.test:99999", "a.test:x"]
)
def test_the_allow_list_takes_exact_host_names_and_ports_only(
    client: httpx.AsyncClient, entry: str
) -> None:
    with pytest.raises(ValueError, match="RECEIPT_ALLOWED_HOSTS"):
        ReceiptFetcher(client, [entry])


# --- size cap --------------------------------------------------------------------------------


async def test_a_body_declared_over_the_cap_is_not_read(
    client: httpx.AsyncClient, hosts: respx.MockRouter
) -> None:
    hosts.get(f"{BASE}/big.pdf").respond(200, content=b"%PDF-1.7\n" + bytes(2000))

    error = await refused(ReceiptFetcher(client, [HOST], max_bytes=1000), f"{BASE}/big.pdf")

    assert error.code == "receipt_too_large"
    assert "1000 bytes" in error.message


async def test_an_endless_body_is_abandoned_at_the_cap(
    client: httpx.AsyncClient, hosts: respx.MockRouter
) -> None:
    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            sent.append(1)
            yield bytes(64 * 1024)

    hosts.get(f"{BASE}/stream").mock(return_value=httpx.Response(200, content=endless()))
    fetcher = ReceiptFetcher(client, [HOST], max_bytes=1024 * 1024)

    error = await refused(fetcher, f"{BASE}/stream")

    assert error.code == "receipt_too_large"
    assert len(sent) <= 17  # stopped right after passing 1 MB of 64 KB chunks


# --- failures: transient or not --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "transient", "hint"),
    [
        (404, False, "no longer exists"),
        (410, False, "no longer exists"),
        (403, False, "expired"),
        (400, False, "refused"),
        (429, True, "unavailable"),
        (500, True, "unavailable"),
        (503, True, "unavailable"),
    ],
)
async def test_an_error_status_says_whether_trying_later_can_help(
    fetcher: ReceiptFetcher, hosts: respx.MockRouter, status: int, transient: bool, hint: str
) -> None:
    hosts.get(f"{BASE}/r.jpg").respond(status, text="nope")

    error = await refused(fetcher, f"{BASE}/r.jpg?signature=s3cr3t")

    assert error.code == "receipt_download_failed"
    assert (error.transient, error.status) == (transient, status)
    assert hint in error.message
    assert HOST in error.message
    assert "s3cr3t" not in error.message  # pre-signed links carry secrets


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
async def test_network_failures_are_transient(
    fetcher: ReceiptFetcher, hosts: respx.MockRouter, failure: Exception
) -> None:
    hosts.get(f"{BASE}/r.jpg").mock(side_effect=failure)

    error = await refused(fetcher, f"{BASE}/r.jpg")

    assert (error.code, error.transient, error.status) == ("receipt_download_failed", True, None)


async def test_a_host_trickling_bytes_is_cut_off_by_the_deadline(
    client: httpx.AsyncClient, hosts: respx.MockRouter
) -> None:
    async def trickle() -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.01)
            yield b"x"

    hosts.get(f"{BASE}/slow").mock(return_value=httpx.Response(200, content=trickle()))
    fetcher = ReceiptFetcher(client, [HOST], deadline_seconds=0.2)

    error = await refused(fetcher, f"{BASE}/slow")

    assert (error.code, error.transient) == ("receipt_download_failed", True)


async def test_an_empty_download_is_unreadable(
    fetcher: ReceiptFetcher, hosts: respx.MockRouter
) -> None:
    hosts.get(f"{BASE}/empty").respond(200, content=b"")

    error = await refused(fetcher, f"{BASE}/empty")

    assert error.code == "receipt_unreadable"


# --- inline receipts -------------------------------------------------------------------------


def test_an_inline_receipt_is_decoded() -> None:
    content = png()
    encoded = base64.b64encode(content).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))

    blob = decode_inline(wrapped, "parking.png", None)

    assert (blob.content, blob.filename, blob.content_type) == (content, "parking.png", "image/png")


def test_an_inline_receipt_keeps_its_declared_type_and_gets_a_default_name() -> None:
    blob = decode_inline(base64.b64encode(b"%PDF-1.4").decode(), None, "application/pdf")

    assert (blob.filename, blob.content_type) == ("receipt", "application/pdf")


@pytest.mark.parametrize(
    "content_base64",
    [
        "not base64!",
        "aGVsbG8",  # missing padding
        "aGVs-G8=",  # URL-safe alphabet
        "data:image/png;base64,aGVsbG8=",
        "",
        "æøå=",
    ],
)
def test_invalid_inline_content_is_unreadable(content_base64: str) -> None:
    with pytest.raises(ReceiptError) as refused:
        decode_inline(content_base64, "r.png", "image/png")

    assert refused.value.code == "receipt_unreadable"
    assert not refused.value.transient


def test_inline_content_over_the_cap_is_too_large() -> None:
    with pytest.raises(ReceiptError) as refused:
        decode_inline(base64.b64encode(bytes(4000)).decode(), "r.png", None, max_bytes=1000)

    assert refused.value.code == "receipt_too_large"
