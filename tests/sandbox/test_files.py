"""Files (Bilag): multipart upload of any part name, the 6 MB limit, list and download."""

from __future__ import annotations

import httpx
import pytest
from dinero_sandbox import Sandbox

from tests.sandbox.conftest import draft_cash_purchase

ORG = 100001
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.mark.parametrize("part", ["file", "image", "upload", ""])
async def test_upload_with_any_part_name(api: httpx.AsyncClient, part: str) -> None:
    response = await api.post(
        f"/v1/{ORG}/files", files={part: ("kvittering.pdf", PDF, "application/pdf")}
    )
    assert response.status_code == 200, response.text
    guid = response.json()["FileGuid"]
    assert len(guid) == 32
    assert guid.isalnum()
    assert guid == guid.lower()


async def test_download_returns_the_bytes(api: httpx.AsyncClient) -> None:
    guid = (await api.post(f"/v1/{ORG}/files", files={"file": ("bon.png", b"\x89PNG...")})).json()[
        "FileGuid"
    ]
    download = await api.get(f"/v1/{ORG}/files/{guid}")
    assert download.status_code == 200
    assert download.content == b"\x89PNG..."
    assert download.headers["content-type"] == "image/png"
    assert (await api.get(f"/v1/{ORG}/files/nosuchfile")).status_code == 404


async def test_files_above_6_mb_are_413(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    limit = 6 * 1024 * 1024
    at_limit = await api.post(f"/v1/{ORG}/files", files={"file": ("big.pdf", b"x" * limit)})
    assert at_limit.status_code == 200
    above = await api.post(f"/v1/{ORG}/files", files={"file": ("big.pdf", b"x" * (limit + 1))})
    assert above.status_code == 413
    assert above.json()["code"] == 43
    assert len(sandbox.files(ORG)) == 1

    sandbox.configure(oversize_file_status=400)  # what Dinero's spec text says
    spec_style = await api.post(f"/v1/{ORG}/files", files={"file": ("big.pdf", b"x" * (limit + 1))})
    assert spec_style.status_code == 400
    assert isinstance(spec_style.json(), str)


async def test_bad_uploads_are_400_with_a_string_body(api: httpx.AsyncClient) -> None:
    no_file = await api.post(f"/v1/{ORG}/files", data={"note": "hi"})
    assert no_file.status_code == 400
    assert isinstance(no_file.json(), str)
    wrong_type = await api.post(f"/v1/{ORG}/files", files={"file": ("virus.exe", b"MZ")})
    assert wrong_type.status_code == 400
    assert "exe" in wrong_type.json()
    empty = await api.post(f"/v1/{ORG}/files", files={"file": ("tom.pdf", b"")})
    assert empty.status_code == 400


async def test_list_files_with_links_and_filters(api: httpx.AsyncClient) -> None:
    used = (await api.post(f"/v1/{ORG}/files", files={"file": ("a.pdf", PDF)})).json()["FileGuid"]
    unused = (await api.post(f"/v1/{ORG}/files", files={"file": ("b.jpg", b"\xff\xd8")})).json()[
        "FileGuid"
    ]
    voucher = await draft_cash_purchase(
        api, ORG, FileGuid=used, Lines=[{"AccountNumber": 5000, "Amount": 100}]
    )

    everything = (await api.get(f"/v1/{ORG}/files")).json()
    assert [f["FileGuid"] for f in everything] == [used, unused]
    first = everything[0]
    assert first["Name"] == "a.pdf"
    assert first["Extension"] == "pdf"
    assert first["Size"] == len(PDF)
    assert first["UploadedAt"] == "2026-11-03T09:00:00Z"
    assert first["Linked"][0]["VoucherGuid"] == voucher["Guid"]

    in_use = (await api.get(f"/v1/{ORG}/files", params={"fileStatus": "Used"})).json()
    assert [f["FileGuid"] for f in in_use] == [used]
    not_used = (await api.get(f"/v1/{ORG}/files", params={"fileStatus": "Unused"})).json()
    assert [f["FileGuid"] for f in not_used] == [unused]
    pictures = (await api.get(f"/v1/{ORG}/files", params={"extensions": "jpg,png"})).json()
    assert [f["FileGuid"] for f in pictures] == [unused]
    dated = await api.get(f"/v1/{ORG}/files", params={"uploadedAfter": "2026/11/04"})
    assert dated.json() == []
    paged = await api.get(f"/v1/{ORG}/files", params={"page": 1, "pageSize": 1})
    assert [f["FileGuid"] for f in paged.json()] == [unused]
    bad = await api.get(f"/v1/{ORG}/files", params={"uploadedAfter": "2026-11-04"})
    assert bad.status_code == 400


async def test_the_date_filters_can_be_read_as_dinero_documents_them(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """Dinero's document: "uploadedAfter: limits the search to the given before date" (and
    uploadedBefore "… to the given after"); a client must find its files either way."""
    guid = (await api.post(f"/v1/{ORG}/files", files={"file": ("a.pdf", PDF)})).json()["FileGuid"]
    sandbox.configure(uploaded_filters="as_documented")

    after_yesterday = await api.get(f"/v1/{ORG}/files", params={"uploadedAfter": "2026/11/02"})
    assert after_yesterday.json() == []  # an upper bound: today's file is left out
    after_tomorrow = await api.get(f"/v1/{ORG}/files", params={"uploadedAfter": "2026/11/04"})
    assert [f["FileGuid"] for f in after_tomorrow.json()] == [guid]
    before_tomorrow = await api.get(f"/v1/{ORG}/files", params={"uploadedBefore": "2026/11/04"})
    assert before_tomorrow.json() == []  # a lower bound
    unfiltered = await api.get(f"/v1/{ORG}/files", params={"fileStatus": "Unused"})
    assert [f["FileGuid"] for f in unfiltered.json()] == [guid]

    sandbox.configure(uploaded_filters="sensible")
    sensible = await api.get(f"/v1/{ORG}/files", params={"uploadedAfter": "2026/11/02"})
    assert [f["FileGuid"] for f in sensible.json()] == [guid]
    with pytest.raises(ValueError, match="uploaded_filters"):
        sandbox.configure(uploaded_filters="backwards")


async def test_a_deleted_draft_leaves_its_file_in_the_archive_linked_to_nothing(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    guid = (await api.post(f"/v1/{ORG}/files", files={"file": ("a.pdf", PDF)})).json()["FileGuid"]
    voucher = await draft_cash_purchase(
        api, ORG, FileGuid=guid, Lines=[{"AccountNumber": 5000, "Amount": 100}]
    )
    unused = await api.get(f"/v1/{ORG}/files", params={"fileStatus": "Unused"})
    assert unused.json() == []

    deleted = await api.request(
        "DELETE",
        f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}",
        json={"Timestamp": voucher["Timestamp"]},
    )
    assert deleted.status_code == 200

    listed = (await api.get(f"/v1/{ORG}/files", params={"fileStatus": "Unused"})).json()
    assert [(f["FileGuid"], f["Linked"]) for f in listed] == [(guid, [])]
    assert (await api.get(f"/v1/{ORG}/files/{guid}")).status_code == 200
