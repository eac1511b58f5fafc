"""The posting preview, the live pre-flight and "explain this line", against the stand-in Dinero.

For each kind of item the preview is asked first, then the same body is exported and the runner
takes it to the sandbox: the body the sandbox received is the preview's, byte for byte (only the
item's id, given when it is stored, and Dinero's file guid, given by the upload, differ), and the
file it got is the one the preview described. Pre-flight failures wait without any request to
the voucher or ledger endpoints; an explanation stored at export time survives later edits.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app.chart.models import ChartSync
from app.exports import runner
from app.exports.models import ExportItem, ItemStatus
from tests.conftest import bearer
from tests.receipts.samples import receipt_photo
from tests.sandboxed import (
    BANK,
    CARD,
    OUT_OF_POCKET,
    PRO_ORG,
    Service,
    category_of,
    connected_company,
    patch_category,
    put_settings,
    read_item,
    service_fixture,
    shared,
)

ZERO_ID = str(uuid.UUID(int=0))
WRITES = ("*/vouchers/*", "*/ledgeritems*", "*/files")


service = service_fixture(dinero_rate_limit_per_minute=10_000)


@pytest.fixture
async def company(service: Service) -> str:
    return await connected_company(service)


def jpeg_base64() -> str:
    return base64.b64encode(receipt_photo()).decode()


async def preview(service: Service, company: str, *items: dict[str, Any]) -> list[dict[str, Any]]:
    response = await service.client.post(
        f"/v1/companies/{company}/exports/preview",
        json={"items": list(items)},
        headers=bearer(company),
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def export(service: Service, company: str, item: dict[str, Any]) -> str:
    response = await service.client.post(
        f"/v1/companies/{company}/exports", json={"items": [item]}, headers=bearer(company)
    )
    assert response.status_code == 202, response.text
    return str(response.json()["items"][0]["id"])


async def settle(service: Service, company: str) -> None:
    """Runner passes until nothing is due (ledger bookings completed in between)."""
    for _ in range(6):
        async with shared(service).sessionmaker() as session, session.begin():
            await session.execute(
                update(ExportItem)
                .where(ExportItem.company_id == company)
                .values(next_attempt_at=None)
            )
        result = await runner.run_company(shared(service), company)
        service.sandbox.complete_ledger_bookings(PRO_ORG)
        if result.reschedule_in is None:
            return


async def make_chart_stale(service: Service, company: str) -> None:
    """As if the chart had been synced ten minutes ago."""
    async with shared(service).sessionmaker() as session, session.begin():
        await session.execute(
            update(ChartSync)
            .where(ChartSync.company_id == company)
            .values(succeeded_at=datetime.now(UTC) - timedelta(minutes=10))
        )


def writes(service: Service) -> list[str]:
    """The write requests the sandbox received (uploads, vouchers, ledger items)."""
    return [
        f"{r.method} {r.path}"
        for pattern in WRITES
        for r in service.sandbox.find_requests("POST", pattern)
    ]


def item(external_id: str, kind: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "type": kind,
        "date": "2026-11-03",
        "description": "Taxa Nord, kundebesøg",
        "amount": {"value": amount, "currency": extra.pop("currency", "DKK")},
        "employee": {"id": "emp-1", "name": "Mette Sørensen"},
        **extra,
    }


def expense_line(account: int, amount: int, tax_code: str | None = "I25") -> dict[str, Any]:
    return {"account_number": account, "amount": amount, "tax_code": tax_code}


CASES: dict[str, dict[str, Any]] = {
    "card": item(
        "card-1",
        "card_expense",
        24550,
        lines=[expense_line(2800, 20000), expense_line(2810, 4550, "none")],
        receipts=[
            {"content_base64": jpeg_base64(), "filename": "taxa.jpg", "content_type": "image/jpeg"}
        ],
    ),
    "out_of_pocket": item(
        "oop-1", "out_of_pocket_expense", 12500, lines=[expense_line(2800, 12500, "REP")]
    ),
    "refund": item("refund-1", "card_expense", -12500, lines=[expense_line(2800, -12500)]),
    "reimbursement": item("reimb-1", "reimbursement", 50000),
    "top_up": item("topup-1", "wallet_top_up", 100000),
    "vat_split_rounding": item(
        "eur-1",
        "card_expense",
        3333,
        currency="EUR",
        settled_amount={"value": 24851, "currency": "DKK"},
        lines=[expense_line(2800, 1111), expense_line(2810, 2222, "REP")],
    ),
}

TARGETS = {
    "card": ("purchase_voucher", "*/vouchers/purchase"),
    "out_of_pocket": ("purchase_voucher", "*/vouchers/purchase"),
    "refund": ("manual_voucher", "*/vouchers/manuel"),
    "reimbursement": ("ledger_item", "*/ledgeritems"),
    "top_up": ("ledger_item", "*/ledgeritems"),
    "vat_split_rounding": ("purchase_voucher", "*/vouchers/purchase"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_the_preview_is_what_dinero_then_receives(
    service: Service, company: str, case: str
) -> None:
    body = CASES[case]
    service.sandbox.clear_requests()

    (previewed,) = await preview(service, company, body)

    assert previewed["outcome"] == "would_export", previewed
    assert writes(service) == []  # the preview sends nothing
    async with shared(service).sessionmaker() as session:
        stored = await session.scalar(
            select(func.count()).select_from(ExportItem).where(ExportItem.company_id == company)
        )
    assert stored == 0  # nor stores anything
    posting = previewed["posting"]
    target, path = TARGETS[case]
    assert posting["target"] == target

    item_id = await export(service, company, body)
    await settle(service, company)

    (sent,) = service.sandbox.find_requests("POST", path)
    received = sent.json
    expected = json.loads(posting["request_body"].replace(ZERO_ID, item_id), parse_float=Decimal)
    if target != "ledger_item":
        assert isinstance(received, dict)
        file_guid = received.pop("FileGuid")
        (uploaded,) = service.sandbox.files(PRO_ORG)
        assert uploaded.guid == file_guid
        file = posting["file"]
        hex8 = uuid.UUID(item_id).hex[:8]
        assert file["name"].replace("0" * 8, hex8) in (
            uploaded.name,
            f"{uploaded.name}.{uploaded.extension}",
        )
        if case == "card":
            assert file["size_bytes"] == len(uploaded.content)
        else:  # a note, which shows the item's id: given when it is stored
            assert file["size_bytes"] is None
            assert uploaded.content_type == file["content_type"] == "image/png"
        assert file["pages"] == 1
        assert file["from_receipts"] is (case == "card")
    assert received == expected
    exported = await read_item(service, company, item_id)
    assert exported["status"] in (ItemStatus.AWAITING_APPROVAL.value, ItemStatus.BOOKED.value)
    # The explanation stored with the export is the one the preview gave.
    assert exported["explained_by"] == [ln["explained_by"] for ln in posting["lines"]]
    if target != "ledger_item":
        assert [ln["explained_by"] for ln in exported["lines"]] == exported["explained_by"]


async def test_the_preview_names_accounts_amounts_and_the_rounding_ore(
    service: Service, company: str
) -> None:
    (card, split, top_up) = await preview(
        service, company, CASES["card"], CASES["vat_split_rounding"], CASES["top_up"]
    )

    posting = card["posting"]
    assert posting["voucher_date"] == "2026-11-03"
    assert posting["booked"] is False
    assert posting["amount_minor"] == 24550
    assert posting["paid_from"]["account_number"] == CARD
    assert posting["reference"] is None  # given when it is exported
    assert [
        (ln["account"]["account_number"], ln["vat_code"], ln["amount_minor"])
        for ln in posting["lines"]
    ] == [(2800, "I25", 20000), (2810, "none", 4550)]
    assert all(ln["account"]["name"] for ln in posting["lines"])
    assert posting["file"]["content_type"] in ("image/jpeg", "application/pdf")

    lines = split["posting"]["lines"]
    # 248.51 DKK over 11.11 and 22.22 EUR: 82.83⅔ and 165.67⅓; the leftover øre goes to the first.
    assert [(ln["amount_minor"], ln["rounding_adjustment_minor"]) for ln in lines] == [
        (8284, 1),
        (16567, 0),
    ]
    assert sum(ln["amount_minor"] for ln in lines) == 24851
    assert split["posting"]["file"]["from_receipts"] is False  # a one-page note

    (ledger_line,) = top_up["posting"]["lines"]
    assert top_up["posting"]["target"] == "ledger_item"
    assert top_up["posting"]["booked"] is True
    assert ledger_line["account"]["account_number"] == CARD
    assert ledger_line["balancing_account"]["account_number"] == BANK  # top-up falls back
    assert [m["setting"] for m in ledger_line["explained_by"]["mappings"]] == [
        "deposit_account",
        "top_up_account",
    ]
    assert ledger_line["explained_by"]["mappings"][1]["from_setting"] == "reimbursement_account"


async def test_the_preview_says_why_an_item_would_not_go_with_the_exports_codes(
    service: Service, company: str
) -> None:
    exported = CASES["reimbursement"]
    await export(service, company, exported)
    unknown = item(
        "unknown-cat",
        "card_expense",
        1000,
        lines=[{"category_id": str(uuid.uuid4()), "amount": 1000}],
    )
    old_year = item("old-1", "card_expense", 1000, lines=[expense_line(2800, 1000)])
    old_year["date"] = "2019-05-01"

    answers = await preview(service, company, unknown, old_year, exported)

    assert [(a["outcome"], a["code"]) for a in answers] == [
        ("refused", "category_unknown"),
        ("would_wait", "accounting_year_missing"),
        ("exists", "already_exported"),
    ]
    assert answers[2]["status"] == "queued"
    assert answers[1]["message"]


async def test_preflight_catches_a_hidden_account_without_a_voucher_request(
    service: Service, company: str
) -> None:
    body = item("hidden-1", "card_expense", 5000, lines=[expense_line(2800, 5000)])
    service.sandbox.hide_account(PRO_ORG, 2800)  # after the last sync: the chart says visible
    await make_chart_stale(service, company)
    service.sandbox.clear_requests()

    (previewed,) = await preview(service, company, body)
    assert (previewed["outcome"], previewed["code"]) == ("would_wait", "account_unavailable")

    await make_chart_stale(service, company)
    item_id = await export(service, company, body)
    await settle(service, company)

    exported = await read_item(service, company, item_id)
    assert (exported["status"], exported["waiting"]["code"]) == ("queued", "account_unavailable")
    assert writes(service) == []
    assert len(service.sandbox.find_requests("GET", f"/v1/{PRO_ORG}/accounts/purchase")) == 2


async def test_preflight_catches_a_vat_code_the_account_cannot_take(
    service: Service, company: str
) -> None:
    body = item("sales-vat", "card_expense", 5000, lines=[expense_line(2800, 5000, "U25")])
    service.sandbox.clear_requests()

    (previewed,) = await preview(service, company, body)
    item_id = await export(service, company, body)
    await settle(service, company)

    assert (previewed["outcome"], previewed["code"]) == ("would_wait", "tax_code_not_for_account")
    exported = await read_item(service, company, item_id)
    assert exported["waiting"]["code"] == "tax_code_not_for_account"
    assert "U25" in exported["waiting"]["message"]
    assert writes(service) == []


async def test_an_explanation_stays_as_it_was_when_the_line_was_sent(
    service: Service, company: str
) -> None:
    category = await category_of(service, company, 2000)
    renamed = await patch_category(service, company, category["id"], "erin", name="Indkøb")
    assert renamed.status_code == 200
    body = item(
        "explained-1",
        "card_expense",
        10000,
        lines=[{"category_id": category["id"], "amount": 10000}],
    )
    item_id = await export(service, company, body)
    await settle(service, company)
    before = await read_item(service, company, item_id)
    (line,) = before["lines"]
    explained = line["explained_by"]

    assert explained["category"] == {
        "id": category["id"],
        "name": "Indkøb",
        "account_number": 2000,
        "account_name": category["account_name"],
        "default_tax_code": "I25",
    }
    assert explained["tax_code"] == {"code": "I25", "source": "category_default"}
    (mapping,) = explained["mappings"]
    assert (mapping["setting"], mapping["value"], mapping["changed_by"]) == (
        "deposit_account",
        CARD,
        "dev-user",  # who mapped it (tests.sandboxed.connected_company)
    )
    assert mapping["changed_at"] is not None
    assert explained["chart_sync"]["succeeded_at"] is not None

    moved = await put_settings(
        service,
        company,
        "frank",
        deposit_account=BANK,
        out_of_pocket_account=OUT_OF_POCKET,
        reimbursement_account=BANK,
    )
    assert moved.status_code == 200
    await patch_category(service, company, category["id"], "frank", name="Varer", tax_code="none")

    after = await read_item(service, company, item_id)
    assert after["lines"][0]["explained_by"] == explained
