"""Reading exports and items (members may), the export's status roll-up, the paginated item
feed, and retrying (admins; only failed items or items deleted in Dinero)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.exports.models import ExportItem, ItemStatus, Step
from tests.conftest import bearer
from tests.exports.intake_support import (
    card,
    inline_receipt,
    items_of,
    queued_runs,
    reimbursement,
)
from tests.stored import line

COMPANY = "/v1/companies/acme"


async def export(client: httpx.AsyncClient, *items: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        f"{COMPANY}/exports", json={"items": list(items)}, headers=bearer("acme")
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def set_status(db: AsyncSession, external_id: str, status: ItemStatus, **values: Any) -> None:
    await db.execute(
        update(ExportItem)
        .where(ExportItem.external_id == external_id)
        .values(status=status, **values)
    )


async def exported_in(
    client: httpx.AsyncClient, db: AsyncSession, status: ItemStatus, **values: Any
) -> str:
    """Export one card item, exp_1, then put it in `status` with `values`; the item's id."""
    created = await export(client, card("exp_1"))
    await set_status(db, "exp_1", status, **values)
    item_id: str = created["items"][0]["id"]
    return item_id


async def read(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{COMPANY}{path}", params=params, headers=bearer("acme", "member"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((ItemStatus.QUEUED, ItemStatus.BOOKED), "accepted"),
        ((ItemStatus.EXPORTING, ItemStatus.FAILED), "accepted"),
        ((ItemStatus.AWAITING_APPROVAL, ItemStatus.BOOKED), "completed"),
        ((ItemStatus.DELETED_IN_DINERO, ItemStatus.BOOKED), "completed"),
        ((ItemStatus.FAILED, ItemStatus.BOOKED), "completed_with_errors"),
    ],
)
async def test_an_export_is_completed_when_every_item_is_settled(
    client: httpx.AsyncClient,
    db: AsyncSession,
    statuses: tuple[ItemStatus, ItemStatus],
    expected: str,
) -> None:
    created = await export(client, card("exp_1"), reimbursement("rb_1"), {"external_id": "bad"})
    await set_status(db, "exp_1", statuses[0])
    await set_status(db, "rb_1", statuses[1])

    body = await read(client, f"/exports/{created['id']}")

    assert body["status"] == expected
    assert [(i["external_id"], i["status"]) for i in body["items"]] == [
        ("exp_1", statuses[0].value),
        ("rb_1", statuses[1].value),
    ]
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status.value] = counts.get(status.value, 0) + 1
    assert body["counts"] == counts
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(2, "invalid_item")]
    assert body["source"] == "api"


async def test_the_item_feed_pages_newest_first_and_filters(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await export(client, *(card(f"exp_{n}") for n in range(5)))
    await export(client, reimbursement("rb_1"), reimbursement("rb_2"))
    await set_status(db, "exp_1", ItemStatus.FAILED, failure_code="category_inactive")
    await set_status(db, "rb_2", ItemStatus.FAILED, failure_code="mapping_missing")

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await read(client, "/export-items", **params)
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len({i["id"] for i in seen}) == 7
    keys = [(i["created_at"], i["id"]) for i in seen]
    assert keys == sorted(keys, reverse=True)

    failed = await read(client, "/export-items", status="failed")
    assert sorted(i["external_id"] for i in failed["items"]) == ["exp_1", "rb_2"]
    assert {i["failure"]["code"] for i in failed["items"]} == {
        "category_inactive",
        "mapping_missing",
    }
    failed_refunds = await read(client, "/export-items", status="failed", type="reimbursement")
    assert [i["external_id"] for i in failed_refunds["items"]] == ["rb_2"]
    either = await client.get(
        f"{COMPANY}/export-items?status=failed&status=queued&type=card_expense",
        headers=bearer("acme", "member"),
    )
    assert len(either.json()["items"]) == 5


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"status": "lost"}, "status.0"),
    ],
)
async def test_a_bad_feed_query_is_422(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get(
        f"{COMPANY}/export-items", params=params, headers=bearer("acme", "member")
    )
    assert response.status_code == 422
    assert field in response.json()["errors"]


async def test_an_item_in_full(client: httpx.AsyncClient, db: AsyncSession) -> None:
    receipts = [inline_receipt(), {"url": "https://x.invalid/r.pdf?sig=secret"}]
    created = await export(client, card("exp_1"), reimbursement("rb_1"))
    item_id = created["items"][0]["id"]
    await db.execute(
        update(ExportItem)
        .where(ExportItem.external_id == "exp_1")
        .values(receipts=[{"blob_id": str(uuid.uuid4()), "filename": "a.png"}, receipts[1]])
    )

    body = await read(client, f"/export-items/{item_id}")
    assert body["id"] == item_id
    assert body["export_id"] == created["id"]
    assert (body["external_id"], body["type"], body["status"]) == (
        "exp_1",
        "card_expense",
        "queued",
    )
    assert body["date"] == "2026-11-03"
    assert body["amount"] == {"value": 24500, "currency": "DKK"}
    assert body["settled_amount"] is None
    # explained_by: None until its request to Dinero is built
    assert body["lines"] == [{**line(7000, 24500), "explained_by": None}]
    assert body["employee"] == {"id": "emp_7", "name": "Mette Jensen"}
    # Receipt links are not shown back (pre-signed links carry secrets).
    assert body["receipts"] == [
        {"source": "inline", "filename": "a.png", "content_type": None},
        {"source": "url", "filename": None, "content_type": None},
    ]
    assert (body["waiting"], body["failure"], body["dinero"]) == (None, None, None)
    assert body["attempts"] == 0

    voucher = uuid.uuid4()
    await set_status(
        db,
        "exp_1",
        ItemStatus.FAILED,
        failure_code="dinero_refused",
        failure_message="Dinero refused the voucher.",
        dinero_message="Account 7000 is not a purchase account.",
        dinero_kind="purchase_voucher",
        dinero_guid=voucher,
        dinero_file_guid="file-1",
        dinero_voucher_number=17,
        attempts=3,
    )
    await set_status(
        db,
        "rb_1",
        ItemStatus.QUEUED,
        waiting_code="mapping_missing",
        waiting_message="Choose a reimbursement account.",
        dinero_kind="ledger_item",
    )
    failed = await read(client, f"/export-items/{item_id}")
    assert failed["failure"] == {
        "code": "dinero_refused",
        "message": "Dinero refused the voucher.",
        "dinero_message": "Account 7000 is not a purchase account.",
    }
    assert failed["dinero"] == {
        "kind": "purchase_voucher",
        "voucher_guid": str(voucher),
        "ledger_item_id": None,
        "voucher_number": 17,
        "file_guid": "file-1",
        "url": None,
    }
    assert failed["attempts"] == 3
    ledger = await read(client, f"/export-items/{created['items'][1]['id']}")
    assert ledger["waiting"] == {
        "code": "mapping_missing",
        "message": "Choose a reimbursement account.",
    }
    assert ledger["dinero"]["ledger_item_id"] == created["items"][1]["id"]


async def test_nothing_of_another_company_is_visible(
    client: httpx.AsyncClient,
) -> None:
    created = await export(client, card("exp_1"))
    item_id = created["items"][0]["id"]
    for path in (f"/exports/{created['id']}", f"/export-items/{item_id}"):
        # Another company's token, on its own path, with our ids.
        theirs = await client.get(f"/v1/companies/globex{path}", headers=bearer("globex"))
        assert theirs.status_code == 404
        assert theirs.json()["code"] in {"export_not_found", "item_not_found"}
        # Another company's token on our path.
        ours = await client.get(f"{COMPANY}{path}", headers=bearer("globex"))
        assert ours.status_code == 404
        assert ours.json()["code"] == "company_not_found"
    listed = await client.get("/v1/companies/globex/export-items", headers=bearer("globex"))
    assert listed.json()["items"] == []
    retry = await client.post(
        f"/v1/companies/globex/export-items/{item_id}/retry", headers=bearer("globex")
    )
    assert retry.status_code == 404
    unknown = await client.get(f"{COMPANY}/exports/{uuid.uuid4()}", headers=bearer("acme"))
    assert unknown.status_code == 404


async def test_retry_requeues_a_failed_item_where_it_stopped(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    item_id = await exported_in(
        client,
        db,
        ItemStatus.FAILED,
        step=Step.CREATE_SENT,
        failure_code="dinero_unavailable",
        failure_message="Dinero did not answer.",
        waiting_code="x",
        attempts=5,
    )
    await db.execute(text("DELETE FROM procrastinate_jobs"))

    member = await client.post(
        f"{COMPANY}/export-items/{item_id}/retry", headers=bearer("acme", "member")
    )
    assert member.status_code == 403
    response = await client.post(f"{COMPANY}/export-items/{item_id}/retry", headers=bearer("acme"))

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["status"], body["failure"], body["waiting"], body["attempts"]) == (
        "queued",
        None,
        None,
        0,
    )
    (item,) = await items_of(db, "acme")
    # Dinero may hold the voucher already: the runner looks before creating again.
    assert item.step == Step.CREATE_SENT
    assert item.next_attempt_at is None
    assert await queued_runs(db, "acme") == 1

    again = await client.post(f"{COMPANY}/export-items/{item_id}/retry", headers=bearer("acme"))
    assert again.status_code == 409
    assert again.json()["code"] == "item_not_retryable"


async def test_retry_after_deletion_in_dinero_exports_a_new_voucher(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    item_id = await exported_in(
        client,
        db,
        ItemStatus.DELETED_IN_DINERO,
        step=Step.CREATED,
        dinero_kind="purchase_voucher",
        dinero_guid=uuid.uuid4(),
        dinero_file_guid="file-1",
        dinero_voucher_number=3,
        dinero_timestamp="ts",
    )

    response = await client.post(f"{COMPANY}/export-items/{item_id}/retry", headers=bearer("acme"))

    assert response.status_code == 202
    assert response.json()["dinero"] is None
    (item,) = await items_of(db, "acme")
    assert (item.status, item.step) == (ItemStatus.QUEUED, Step.NEW)
    assert (item.dinero_guid, item.dinero_file_guid, item.dinero_voucher_number) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    "status",
    [
        ItemStatus.QUEUED,
        ItemStatus.EXPORTING,
        ItemStatus.AWAITING_APPROVAL,
        ItemStatus.BOOKED,
    ],
)
async def test_only_failed_or_deleted_items_can_be_retried(
    client: httpx.AsyncClient, db: AsyncSession, status: ItemStatus
) -> None:
    created = await export(client, card("exp_1"))
    await set_status(db, "exp_1", status)
    response = await client.post(
        f"{COMPANY}/export-items/{created['items'][0]['id']}/retry", headers=bearer("acme")
    )
    assert response.status_code == 409
    assert response.json()["code"] == "item_not_retryable"
    assert response.json()["item_status"] == status.value
    (item,) = await items_of(db, "acme")
    assert item.status == status
