"""The export runner against the stand-in Dinero: what Dinero ends up holding, under faults.

Items are stored as the intake stores them; the runner is run pass by pass until everything
settles, and the sandbox is asked what it holds: exactly one voucher or ledger item per item,
with the right accounts, VAT codes, amounts (to the øre), dates and files.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select, text, update

from app.exports import runner
from app.exports.models import ExportItem, InlineReceipt, ItemStatus, ItemType
from app.services import Services
from tests.conftest import bearer
from tests.exports.intake_support import card, reimbursement
from tests.killing import Killed, kill_at
from tests.receipts.samples import receipt_photo
from tests.sandboxed import (
    BANK,
    CARD,
    OUT_OF_POCKET,
    PRO_ORG,
    Service,
    connected_company,
    put_settings,
    read_item,
    service_fixture,
    shared,
)
from tests.stored import line, store_item

RECEIPT_HOST = "receipts.example.com"


service = service_fixture(dinero_rate_limit_per_minute=10_000, receipt_allowed_hosts=[RECEIPT_HOST])


@pytest.fixture
async def company(service: Service) -> str:
    return await connected_company(service)


def jpeg() -> bytes:
    return receipt_photo()


async def add_item(
    service: Service,
    company: str,
    item_type: ItemType,
    amount: int,
    *,
    lines: list[dict[str, Any]] | None = None,
    receipt: bytes | None = None,
    day: date = date(2026, 11, 3),
) -> uuid.UUID:
    """Store an item the way the intake does."""
    services = shared(service)
    async with services.sessionmaker() as session, session.begin():
        item = await store_item(
            session,
            company,
            amount,
            type=item_type,
            voucher_date=day,
            description="Taxa Nord, kundebesøg",
            lines=lines or [],
            employee={"id": "emp-1", "name": "Mette Sørensen"},
        )
        item_id = item.id
        if receipt is not None:
            blob = InlineReceipt(item_id=item_id, content=receipt, created_at=datetime.now(UTC))
            session.add(blob)
            await session.flush()
            item.receipts = [
                {"blob_id": str(blob.id), "filename": "taxa.jpg", "content_type": "image/jpeg"}
            ]
    return item_id


async def card_expense(
    service: Service, company: str, amount: int, *, receipt: bytes | None = None
) -> uuid.UUID:
    """A card expense of `amount` øre in one line on purchase account 2800, stored."""
    return await add_item(
        service, company, ItemType.CARD_EXPENSE, amount, lines=[line(2800, amount)], receipt=receipt
    )


async def item_row(service: Service, item_id: uuid.UUID) -> ExportItem:
    async with shared(service).sessionmaker() as session:
        return (
            await session.execute(select(ExportItem).where(ExportItem.id == item_id))
        ).scalar_one()


async def fast_forward(service: Service, company: str) -> None:
    """As if the backoff and any 429 pause had passed (tests do not wait them out)."""
    async with shared(service).sessionmaker() as session, session.begin():
        await session.execute(
            update(ExportItem).where(ExportItem.company_id == company).values(next_attempt_at=None)
        )
        await session.execute(text("UPDATE dinero_rate_budgets SET paused_until = now()"))


async def settle(service: Service, company: str, passes: int = 8) -> None:
    """Run passes until nothing is left to do now (ledger bookings need a follow-up pass)."""
    for _ in range(passes):
        await fast_forward(service, company)
        result = await runner.run_company(shared(service), company)
        service.sandbox.complete_ledger_bookings(PRO_ORG)
        async with shared(service).sessionmaker() as session:
            open_items = (
                await session.execute(
                    select(ExportItem.id).where(
                        ExportItem.company_id == company,
                        ExportItem.status.in_([ItemStatus.QUEUED, ItemStatus.EXPORTING]),
                        ExportItem.waiting_code.is_(None),
                    )
                )
            ).all()
        if not open_items and result.reschedule_in is None:
            return


async def test_card_expense_becomes_one_draft_with_its_receipt(
    service: Service, company: str
) -> None:
    item_id = await add_item(
        service,
        company,
        ItemType.CARD_EXPENSE,
        24550,
        lines=[line(2800, 20000), line(2810, 4550, "none")],
        receipt=jpeg(),
    )

    await settle(service, company)

    drafts = service.sandbox.drafts(PRO_ORG)
    assert len(drafts) == 1
    voucher = drafts[0]
    assert voucher.purchase_type == "cash"
    assert voucher.deposit_account_number == CARD
    assert voucher.voucher_date == date(2026, 11, 3)
    assert voucher.external_reference == f"bridge:{item_id}"
    assert [(ln.account_number, ln.amount, ln.vat_code) for ln in voucher.lines] == [
        (2800, Decimal("200.00"), "I25"),
        (2810, Decimal("45.50"), "none"),
    ]
    files = {f.guid: f for f in service.sandbox.files(PRO_ORG)}
    assert len(files) == 1
    assert voucher.file_guid in files
    assert files[voucher.file_guid].content == jpeg()
    row = await item_row(service, item_id)
    assert row.status == ItemStatus.AWAITING_APPROVAL
    assert str(row.dinero_guid) == voucher.guid
    assert row.dinero_file_guid == voucher.file_guid
    detail = await read_item(service, company, item_id)
    assert detail["status"] == "awaiting_approval"
    assert detail["dinero"]["voucher_guid"] == voucher.guid


async def test_expense_without_receipt_gets_a_note_and_a_refund_reverses(
    service: Service, company: str
) -> None:
    expense = await add_item(
        service, company, ItemType.OUT_OF_POCKET_EXPENSE, 10000, lines=[line(2800, 10000)]
    )
    refund = await card_expense(service, company, -5000)

    await settle(service, company)

    drafts = service.sandbox.drafts(PRO_ORG)
    assert [(d.deposit_account_number, d.lines[0].amount) for d in drafts] == [
        (OUT_OF_POCKET, Decimal("100.00"))
    ]
    files = {f.guid: f for f in service.sandbox.files(PRO_ORG)}
    assert drafts[0].file_guid is not None
    assert files[drafts[0].file_guid].extension == "png"  # the "no receipt" note
    manual = service.sandbox.manual_vouchers(PRO_ORG)
    assert len(manual) == 1
    reversal = manual[0]
    assert reversal.external_reference == f"bridge:{refund}"
    assert [
        (ln.account_number, ln.balancing_account_number, ln.amount) for ln in reversal.lines
    ] == [(CARD, 2800, Decimal("50.00"))]
    assert (await item_row(service, refund)).status == ItemStatus.AWAITING_APPROVAL
    assert (await item_row(service, expense)).status == ItemStatus.AWAITING_APPROVAL


async def test_reimbursements_and_top_ups_are_booked_in_the_ledger(
    service: Service, company: str
) -> None:
    paid = await add_item(service, company, ItemType.REIMBURSEMENT, 123456)
    back = await add_item(service, company, ItemType.REIMBURSEMENT, -2500)
    top_up = await add_item(service, company, ItemType.WALLET_TOP_UP, 500000)

    await settle(service, company)

    items = {i.id: i for i in service.sandbox.ledger_items(PRO_ORG)}
    assert set(items) == {str(paid), str(back), str(top_up)}
    assert all(i.status == "Booked" for i in items.values())
    lines = {
        k: (v.lines[0].account_number, v.lines[0].balancing_account_number, v.lines[0].amount)
        for k, v in items.items()
    }
    assert lines[str(paid)] == (OUT_OF_POCKET, BANK, Decimal("1234.56"))
    assert lines[str(back)] == (OUT_OF_POCKET, BANK, Decimal("-25.00"))
    assert lines[str(top_up)] == (CARD, BANK, Decimal("5000.00"))
    creates = service.sandbox.find_requests("POST", f"/v1.2/{PRO_ORG}/ledgeritems")
    assert len(creates) == 1  # one batch
    row = await item_row(service, paid)
    assert row.status == ItemStatus.BOOKED
    assert row.dinero_voucher_number == items[str(paid)].booked_voucher_number


KILL_POINTS = [
    "before_upload",
    "after_upload",
    "before_create",
    "after_create",
]
LEDGER_KILL_POINTS = ["before_ledger_create", "after_ledger_create", "before_book", "after_book"]


@pytest.mark.parametrize("point", KILL_POINTS)
async def test_a_worker_killed_mid_voucher_still_gives_one_voucher(
    service: Service, company: str, point: str
) -> None:
    item_id = await card_expense(service, company, 9900, receipt=jpeg())

    with pytest.raises(Killed):
        await runner.run_company(shared(service), company, checkpoint=kill_at(point))
    # The restarted worker sees the item where the dead one left it. Backoff is not waited for.
    await settle(service, company)

    drafts = service.sandbox.drafts(PRO_ORG)
    assert len(drafts) == 1
    assert len(service.sandbox.files(PRO_ORG)) == 1  # no orphan uploads either
    row = await item_row(service, item_id)
    assert row.status == ItemStatus.AWAITING_APPROVAL
    assert str(row.dinero_guid) == drafts[0].guid


@pytest.mark.parametrize("point", LEDGER_KILL_POINTS)
async def test_a_worker_killed_mid_ledger_still_gives_one_booked_item(
    service: Service, company: str, point: str
) -> None:
    item_id = await add_item(service, company, ItemType.REIMBURSEMENT, 4200)

    with pytest.raises(Killed):
        await runner.run_company(shared(service), company, checkpoint=kill_at(point))
    await settle(service, company)

    items = service.sandbox.ledger_items(PRO_ORG)
    assert [(i.id, i.status) for i in items] == [(str(item_id), "Booked")]
    assert (await item_row(service, item_id)).status == ItemStatus.BOOKED


@pytest.mark.parametrize("reading", ["sensible", "as_documented"])
@pytest.mark.parametrize(
    ("value", "create_path"),
    [(7700, "v1.2/{org}/vouchers/purchase"), (-4400, "v1/{org}/vouchers/manuel")],
)
async def test_timeout_after_dinero_accepted_does_not_duplicate(
    service: Service, company: str, reading: str, value: int, create_path: str
) -> None:
    """The upload and the voucher both reach Dinero but their answers are lost: the look-ups
    find them, whichever way Dinero reads the archive's upload-date filters (its document
    words uploadedAfter as an upper bound), for an expense and for a refund."""
    service.sandbox.configure(uploaded_filters=reading)
    item_id = await card_expense(service, company, value, receipt=jpeg())
    path = "/" + create_path.format(org=PRO_ORG)
    service.sandbox.add_fault(kind="drop", method="POST", path=path, count=1)
    service.sandbox.add_fault(kind="drop", method="POST", path=f"/v1/{PRO_ORG}/files", count=1)

    for _ in range(4):
        await runner.run_company(shared(service), company)
        async with shared(service).sessionmaker() as session, session.begin():
            await session.execute(
                update(ExportItem)
                .where(ExportItem.id == item_id)
                .values(next_attempt_at=None)  # do not wait out the backoff in a test
            )

    vouchers = (
        service.sandbox.drafts(PRO_ORG) if value > 0 else service.sandbox.manual_vouchers(PRO_ORG)
    )
    assert [v.external_reference for v in vouchers] == [f"bridge:{item_id}"]
    assert len(service.sandbox.files(PRO_ORG)) == 1
    assert len(service.sandbox.find_requests("POST", path)) == 1
    assert (await item_row(service, item_id)).status == ItemStatus.AWAITING_APPROVAL


async def test_dinero_validation_error_fails_the_item_with_dinero_message(
    service: Service, company: str
) -> None:
    service.sandbox.add_fault(
        kind="error", method="POST", path=f"/v1.2/{PRO_ORG}/vouchers/purchase", status=400
    )
    item_id = await card_expense(service, company, 1000)

    await runner.run_company(shared(service), company)

    row = await item_row(service, item_id)
    assert row.status == ItemStatus.FAILED
    assert row.failure_code == "dinero_rejected"
    assert row.dinero_message
    assert service.sandbox.drafts(PRO_ORG) == []


async def test_an_item_waits_with_a_reason_and_goes_once_fixed(
    service: Service, company: str
) -> None:
    await put_settings(service, company, deposit_account=CARD)
    item_id = await add_item(
        service, company, ItemType.OUT_OF_POCKET_EXPENSE, 1000, lines=[line(2800, 1000)]
    )
    too_early = await add_item(
        service,
        company,
        ItemType.CARD_EXPENSE,
        1000,
        lines=[line(2800, 1000)],
        day=date(2031, 1, 1),
    )

    await runner.run_company(shared(service), company)

    row = await item_row(service, item_id)
    assert (row.status, row.waiting_code) == (ItemStatus.QUEUED, "mapping_missing")
    assert "out of pocket" in (row.waiting_message or "")
    early = await item_row(service, too_early)
    assert early.waiting_code == "accounting_year_missing"
    assert service.sandbox.drafts(PRO_ORG) == []

    await put_settings(service, company, deposit_account=CARD, out_of_pocket_account=OUT_OF_POCKET)
    await settle(service, company)
    assert (await item_row(service, item_id)).status == ItemStatus.AWAITING_APPROVAL
    assert len(service.sandbox.drafts(PRO_ORG)) == 1


async def test_an_inline_receipt_is_uploaded_unchanged_under_our_name(
    service: Service, company: str
) -> None:
    content = jpeg()
    item_id = await card_expense(service, company, 500, receipt=content)
    await settle(service, company)
    row = await item_row(service, item_id)
    assert row.receipt_sha256 == hashlib.sha256(content).hexdigest()
    assert row.receipt_filename == f"{row.external_id}-{item_id.hex[:8]}.jpg"
    stored = {f.guid: f for f in service.sandbox.files(PRO_ORG)}[row.dinero_file_guid or ""]
    assert (stored.name, stored.content) == (row.receipt_filename, content)


async def test_a_429_burst_pauses_the_organization_and_fails_nothing(
    service: Service, company: str
) -> None:
    ids = [await card_expense(service, company, 1000 + n) for n in range(3)]
    service.sandbox.add_fault(
        kind="error", method="POST", path=f"/v1/{PRO_ORG}/files", status=429, count=2
    )

    first = await runner.run_company(shared(service), company)

    assert first.reschedule_in is not None
    assert 30 < first.reschedule_in <= runner.RATE_LIMIT_PAUSE_SECONDS  # paused, not failed
    rows = [await item_row(service, i) for i in ids]
    assert [r.status for r in rows] == [ItemStatus.EXPORTING, ItemStatus.QUEUED, ItemStatus.QUEUED]
    assert (
        len(service.sandbox.find_requests("POST", f"/v1/{PRO_ORG}/files")) == 1
    )  # stopped at once
    await settle(service, company)
    assert len(service.sandbox.drafts(PRO_ORG)) == 3
    assert len(service.sandbox.files(PRO_ORG)) == 3
    settled = [(await item_row(service, i)).status for i in ids]
    assert settled == [ItemStatus.AWAITING_APPROVAL] * 3
    assert len(service.sandbox.find_requests("POST", f"/v1/{PRO_ORG}/files", status=429)) == 2


async def test_a_500_on_create_is_checked_in_dinero_before_trying_again(
    service: Service, company: str
) -> None:
    item_id = await card_expense(service, company, 3300, receipt=jpeg())
    service.sandbox.add_fault(
        kind="error", method="POST", path=f"/v1.2/{PRO_ORG}/vouchers/purchase", status=500, count=1
    )

    await runner.run_company(shared(service), company)
    row = await item_row(service, item_id)
    assert (row.status, row.step, row.attempts) == (ItemStatus.EXPORTING, "create_sent", 1)
    await settle(service, company)

    assert len(service.sandbox.drafts(PRO_ORG)) == 1
    lookups = service.sandbox.find_requests("GET", f"/v1/{PRO_ORG}/vouchers/purchase/fileguid/*")
    assert len(lookups) == 1
    assert (await item_row(service, item_id)).status == ItemStatus.AWAITING_APPROVAL


async def test_expired_tokens_are_refreshed_mid_export(service: Service, company: str) -> None:
    first = await card_expense(service, company, 100)
    await settle(service, company)
    service.sandbox.expire_access_tokens()
    second = await add_item(service, company, ItemType.REIMBURSEMENT, 200)

    await settle(service, company)

    assert (await item_row(service, first)).status == ItemStatus.AWAITING_APPROVAL
    assert (await item_row(service, second)).status == ItemStatus.BOOKED
    assert len(service.sandbox.drafts(PRO_ORG)) == 1
    assert len(service.sandbox.ledger_items(PRO_ORG)) == 1


async def test_an_export_lists_its_items_with_their_dinero_references(
    service: Service, company: str
) -> None:
    api, admin = service.client, bearer(company)
    sent = await api.post(
        f"/v1/companies/{company}/exports",
        json={
            "items": [
                card("exp_taxa", account=2800),
                reimbursement("rb_mette", 123456),
            ]
        },
        headers=admin,
    )
    assert sent.status_code == 202, sent.text
    ids = {item["external_id"]: item["id"] for item in sent.json()["items"]}

    await settle(service, company)

    [draft] = service.sandbox.drafts(PRO_ORG)
    [ledger_item] = service.sandbox.ledger_items(PRO_ORG)
    assert ledger_item.status == "Booked"
    assert isinstance(ledger_item.booked_voucher_number, int)
    export = await api.get(f"/v1/companies/{company}/exports/{sent.json()['id']}", headers=admin)
    assert export.status_code == 200, export.text
    listed = {item["external_id"]: item for item in export.json()["items"]}
    assert listed["exp_taxa"]["status"] == "awaiting_approval"
    assert listed["exp_taxa"]["dinero"] == {
        "kind": "purchase_voucher",
        "voucher_guid": draft.guid,
        "ledger_item_id": None,
        "voucher_number": None,  # a draft has none until it is approved (Godkend)
        "file_guid": draft.file_guid,
        "url": None,
    }
    assert listed["rb_mette"]["status"] == "booked"
    assert listed["rb_mette"]["dinero"] == {
        "kind": "ledger_item",
        "voucher_guid": None,
        "ledger_item_id": ids["rb_mette"],  # the Id we gave the ledger item in Dinero
        "voucher_number": ledger_item.booked_voucher_number,  # from Dinero's ledger status
        "file_guid": None,
        "url": None,
    }
    assert ledger_item.id == ids["rb_mette"]
    # The export's list and the item's own read say the same.
    for external_id, item_id in ids.items():
        one = await api.get(f"/v1/companies/{company}/export-items/{item_id}", headers=admin)
        assert one.status_code == 200, one.text
        assert one.json()["dinero"] == listed[external_id]["dinero"]
    feed = await api.get(f"/v1/companies/{company}/export-items", headers=admin)
    assert {i["external_id"]: i["dinero"] for i in feed.json()["items"]} == {
        k: v["dinero"] for k, v in listed.items()
    }


RECEIPT_LINK = f"https://{RECEIPT_HOST}/r/1.jpg?sig=secret-signature"


async def _linked_expense(services: Services, company: str) -> uuid.UUID:
    async with services.sessionmaker() as session, session.begin():
        item = await store_item(
            session,
            company,
            10000,
            external_id="exp_link",
            description="Taxa",
            lines=[line(2800, 10000)],
            receipts=[{"url": RECEIPT_LINK, "filename": "1.jpg", "content_type": "image/jpeg"}],
        )
    return item.id


async def _item(services: Services, item_id: uuid.UUID) -> ExportItem:
    async with services.sessionmaker() as session:
        return (
            await session.execute(select(ExportItem).where(ExportItem.id == item_id))
        ).scalar_one()


async def test_a_failing_receipt_host_is_named_as_such_and_the_export_goes_on_once_it_answers(
    service: Service, company: str
) -> None:
    """The receipt host is faked with respx; Dinero (the sandbox) is not reached through it."""
    services = shared(service)
    item_id = await _linked_expense(services, company)

    with respx.mock(assert_all_called=True) as hosts:
        route = hosts.get(RECEIPT_LINK)
        route.side_effect = [
            httpx.Response(503),
            httpx.Response(200, content=jpeg(), headers={"Set-Cookie": "s=1; Path=/"}),
        ]
        await runner.run_company(services, company)
        waiting = await item_row(service, item_id)

        async with services.sessionmaker() as session, session.begin():
            await session.execute(
                update(ExportItem).where(ExportItem.id == item_id).values(next_attempt_at=None)
            )
        await runner.run_company(services, company)
        done = await item_row(service, item_id)

    assert waiting.status == ItemStatus.QUEUED
    assert waiting.waiting_code == "receipt_host_unavailable"
    assert waiting.waiting_message is not None
    assert RECEIPT_HOST in waiting.waiting_message
    assert "Dinero" not in waiting.waiting_message
    assert "secret-signature" not in waiting.waiting_message
    assert route.call_count == 2
    assert all("cookie" not in call.request.headers for call in route.calls)
    assert done.status == ItemStatus.AWAITING_APPROVAL
    (draft,) = service.sandbox.drafts(PRO_ORG)
    files = {f.guid: f for f in service.sandbox.files(PRO_ORG)}
    assert draft.file_guid is not None
    assert files[draft.file_guid].content == jpeg()
