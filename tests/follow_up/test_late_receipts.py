"""A receipt sent after its expense goes onto the same draft (never a second voucher); after
approval it is not attached and the item says so."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from sqlalchemy import text

from app.exports.models import ItemStatus
from tests.conftest import bearer
from tests.exports.intake_support import card
from tests.follow_up.conftest import World, deliver, follow, item_api, item_row, jpeg, settle
from tests.sandboxed import PRO_ORG


def _expense(external_id: str, *, receipt: bytes | None = None) -> dict[str, Any]:
    item = card(external_id, account=2800)
    if receipt is not None:
        item["receipts"] = [
            {
                "content_base64": base64.b64encode(receipt).decode(),
                "filename": "taxa.jpg",
                "content_type": "image/jpeg",
            }
        ]
    return item


async def _send(w: World, company: str, item: dict[str, Any]) -> dict[str, Any]:
    response = await w.service.client.post(
        f"/v1/companies/{company}/exports", json={"items": [item]}, headers=bearer(company)
    )
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()["items"][0]
    return accepted


async def _follow_up_queued(w: World, company: str) -> bool:
    async with w.services.sessionmaker() as session:
        found = await session.execute(
            text(
                "SELECT 1 FROM procrastinate_jobs WHERE queueing_lock = :lock AND status = 'todo'"
            ),
            {"lock": f"follow-up:{company}"},
        )
        return found.first() is not None


async def test_a_late_receipt_replaces_the_note_on_the_same_draft(w: World, company: str) -> None:
    first = await _send(w, company, _expense("exp_late"))
    item_id = uuid.UUID(first["id"])
    await settle(w.service, company)
    [draft] = w.service.sandbox.drafts(PRO_ORG)
    note_file = draft.file_guid
    assert w.service.sandbox.org(PRO_ORG).files[note_file or ""].extension == "png"

    again = await _send(w, company, _expense("exp_late", receipt=jpeg()))

    assert (again["id"], again["repeated"]) == (str(item_id), True)
    assert (await item_api(w, company, item_id))["late_receipt"]["status"] == "pending"
    assert await _follow_up_queued(w, company)  # kicked at once, not at the next tick

    result = await follow(w, company)

    assert result.receipts_attached == 1
    [after] = w.service.sandbox.drafts(PRO_ORG)
    assert after.guid == draft.guid  # the same voucher
    assert after.file_guid != note_file
    assert w.service.sandbox.org(PRO_ORG).files[after.file_guid or ""].content == jpeg()
    creates = w.service.sandbox.find_requests("POST", f"/v1.2/{PRO_ORG}/vouchers/purchase")
    assert len(creates) == 1  # no second voucher
    assert len(w.service.sandbox.find_requests("PUT", f"/v1/{PRO_ORG}/vouchers/purchase/*")) == 1
    body = await item_api(w, company, item_id)
    assert body["late_receipt"] == {"status": "attached", "message": None}
    assert body["dinero"]["file_guid"] == after.file_guid
    assert body["edited_in_dinero"] is None  # our own change is not an edit
    assert [r["source"] for r in body["receipts"]] == ["inline"]

    again_result = await follow(w, company)  # nothing more to do
    assert again_result.receipts_attached == 0
    await deliver(w)
    last = w.platform.accepted[-1].json["data"]
    assert (last["status"], last["late_receipt"]["status"]) == ("awaiting_approval", "attached")


async def test_the_accountants_edits_survive_the_new_file(w: World, company: str) -> None:
    first = await _send(w, company, _expense("exp_edited"))
    item_id = uuid.UUID(first["id"])
    await settle(w.service, company)
    [draft] = w.service.sandbox.drafts(PRO_ORG)
    w.service.sandbox.edit_purchase_voucher(PRO_ORG, draft.guid, line=0, account_number=2900)

    await _send(w, company, _expense("exp_edited", receipt=jpeg()))
    await follow(w, company)

    [after] = w.service.sandbox.drafts(PRO_ORG)
    assert after.guid == draft.guid
    assert after.lines[0].account_number == 2900  # kept, not undone
    assert w.service.sandbox.org(PRO_ORG).files[after.file_guid or ""].content == jpeg()
    body = await item_api(w, company, item_id)
    assert body["late_receipt"]["status"] == "attached"


async def test_a_receipt_after_approval_is_not_attached(w: World, company: str) -> None:
    first = await _send(w, company, _expense("exp_approved"))
    item_id = uuid.UUID(first["id"])
    await settle(w.service, company)
    [draft] = w.service.sandbox.drafts(PRO_ORG)
    approved = w.service.sandbox.approve_purchase_voucher(PRO_ORG, draft.guid)
    await follow(w, company)
    assert (await item_row(w.service, item_id)).status == ItemStatus.BOOKED

    await _send(w, company, _expense("exp_approved", receipt=jpeg()))

    body = await item_api(w, company, item_id)
    assert body["status"] == "booked"
    assert body["late_receipt"]["status"] == "not_attached"
    assert str(approved.voucher_number) in body["late_receipt"]["message"]
    await follow(w, company)
    assert w.service.sandbox.find_requests("PUT", f"/v1/{PRO_ORG}/vouchers/purchase/*") == []
    assert w.service.sandbox.find_requests("POST", f"/v1/{PRO_ORG}/files") != []  # the note only
    assert len(w.service.sandbox.find_requests("POST", f"/v1/{PRO_ORG}/files")) == 1


async def test_a_receipt_before_the_export_is_simply_exported(w: World, company: str) -> None:
    first = await _send(w, company, _expense("exp_early"))
    item_id = uuid.UUID(first["id"])
    await _send(w, company, _expense("exp_early", receipt=jpeg()))  # before the runner ran

    await settle(w.service, company)
    [draft] = w.service.sandbox.drafts(PRO_ORG)
    assert w.service.sandbox.org(PRO_ORG).files[draft.file_guid or ""].content == jpeg()
    result = await follow(w, company)

    assert result.receipts_attached == 0  # the export already carried it: nothing to send
    assert "receipts" not in result.requests
    body = await item_api(w, company, item_id)
    assert body["late_receipt"]["status"] == "attached"


async def test_the_same_item_again_changes_nothing(w: World, company: str) -> None:
    first = await _send(w, company, _expense("exp_same", receipt=jpeg()))
    item_id = uuid.UUID(first["id"])
    await settle(w.service, company)

    await _send(w, company, _expense("exp_same", receipt=jpeg()))  # a webhook retry

    body = await item_api(w, company, item_id)
    assert body["late_receipt"] is None
    assert not await _follow_up_queued(w, company)
