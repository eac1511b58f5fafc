"""Writes: exact bodies Dinero receives (two-decimal amounts, PascalCase) and parsed answers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest
import respx

from app.dinero import (
    DineroClient,
    DineroDuplicate,
    DineroError,
    DineroNotFound,
    DineroOutcomeUnknown,
    DineroPayloadTooLarge,
    DineroStaleVersion,
    LedgerItem,
    LedgerItemLine,
    LedgerItemRef,
    ManualVoucherCreate,
    ManualVoucherLine,
    PurchaseVoucherCreate,
    PurchaseVoucherLine,
)
from app.dinero.client import ledger_refs_from_answer
from tests.dinero.conftest import ORG, RecordingPacer, sent_json
from tests.dinero.examples import example

VOUCHER_GUID = UUID("0713954e-f3b0-4fb0-8b95-0dc0772d5ea0")
FILE_GUID = "web0crmck5v0ndcx3313g6zn61tc7wgc"


def _card_expense() -> PurchaseVoucherCreate:
    return PurchaseVoucherCreate(
        purchase_type="cash",
        voucher_date=date(2026, 11, 3),
        deposit_account_number=55010,
        region_key="DK",
        file_guid=FILE_GUID,
        external_reference="exp_8f2c",
        lines=[
            PurchaseVoucherLine(
                amount=Decimal("200"), account_number=7300, vat_code="I25", description="Taxa"
            ),
            PurchaseVoucherLine(
                amount=Decimal("45.5"),
                account_number=2750,
                vat_code="none",
                description="Drikkepenge",
            ),
        ],
    )


def _voucher_answer(**overrides: Any) -> dict[str, Any]:
    answer = example("PurchaseVoucherReadModelV2", **overrides)
    answer["Lines"] = [
        example(
            "PurchaseVoucherLineReadModel",
            AccountNumber=7300,
            AmountExclVatValue=160,
            VatAmountValue=40,
            AmountInclVatValue=200,
        ),
        example(
            "PurchaseVoucherLineReadModel",
            AccountNumber=2750,
            VatCode="none",
            AmountExclVatValue=45.5,
            VatAmountValue=0,
            AmountInclVatValue=45.5,
        ),
    ]
    answer["VoucherTotals"] = [example("PurchaseVoucherTotalReadModel", Total=245.5, Position=2)]
    return answer


async def test_upload_file_is_multipart(
    client: DineroClient, dinero: respx.MockRouter, pacer: RecordingPacer
) -> None:
    route = dinero.post(f"/v1/{ORG}/files").respond(200, json=example("FileSavedReadModel"))
    uploaded = await client.upload_file(b"%PDF-1.7 receipt", "kvittering.pdf", "application/pdf")

    assert uploaded.file_guid == FILE_GUID
    request = route.calls.last.request
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.headers["authorization"] == "Bearer access-token-1"
    body = request.content
    assert b'name="file"; filename="kvittering.pdf"' in body
    assert b"Content-Type: application/pdf" in body
    assert b"%PDF-1.7 receipt" in body
    assert dict(request.url.params) == {}
    assert pacer.acquired == [ORG]


async def test_upload_refuses_files_over_6_mb_without_sending(
    client: DineroClient, dinero: respx.MockRouter, pacer: RecordingPacer
) -> None:
    route = dinero.post(f"/v1/{ORG}/files").respond(200, json=example("FileSavedReadModel"))
    with pytest.raises(DineroPayloadTooLarge) as caught:
        await client.upload_file(b"x" * (6 * 1024 * 1024 + 1), "big.jpg", "image/jpeg")
    assert "big.jpg" in str(caught.value)
    assert route.call_count == 0
    assert pacer.acquired == []
    with pytest.raises(ValueError, match="empty"):
        await client.upload_file(b"", "empty.pdf", "application/pdf")


async def test_upload_413_from_dinero(client: DineroClient, dinero: respx.MockRouter) -> None:
    dinero.post(f"/v1/{ORG}/files").respond(413, text="Request Entity Too Large")
    with pytest.raises(DineroPayloadTooLarge) as caught:
        await client.upload_file(b"data", "r.png", "image/png")
    assert caught.value.dinero_message == "Request Entity Too Large"


async def test_create_purchase_voucher(client: DineroClient, dinero: respx.MockRouter) -> None:
    route = dinero.post(f"/v1.2/{ORG}/vouchers/purchase").respond(
        200, json=_voucher_answer(Status="Draft", VoucherNumber=None)
    )
    voucher = await client.create_purchase_voucher(_card_expense())

    request = route.calls.last.request
    assert request.headers["content-type"] == "application/json"
    assert request.content == (
        b'{"PurchaseType":"cash","VoucherDate":"2026-11-03","Lines":['
        b'{"Amount":200.00,"AccountNumber":7300,"Description":"Taxa","VatCode":"I25"},'
        b'{"Amount":45.50,"AccountNumber":2750,"Description":"Drikkepenge","VatCode":"none"}],'
        b'"DepositAccountNumber":55010,"RegionKey":"DK","FileGuid":"web0crmck5v0ndcx3313g6zn61tc7wgc",'
        b'"ExternalReference":"exp_8f2c"}'
    )
    assert voucher.guid == VOUCHER_GUID
    assert voucher.timestamp == "00000000020A5EA8"
    assert voucher.is_draft
    assert voucher.voucher_number is None
    assert [line.amount_incl_vat_value for line in voucher.lines] == [
        Decimal("200"),
        Decimal("45.5"),
    ]
    assert voucher.lines[0].vat_amount_value == Decimal("40")
    assert voucher.total_incl_vat == Decimal("245.5")
    assert voucher.voucher_totals[0].total == Decimal("245.5")
    assert voucher.deposit_account_number == 55000


async def test_purchase_voucher_rules_are_checked_before_sending() -> None:
    with pytest.raises(ValueError, match="DKK"):
        PurchaseVoucherCreate(
            purchase_type="cash",
            currency_key="EUR",
            lines=[PurchaseVoucherLine(amount=Decimal("1"))],
        )
    with pytest.raises(ValueError, match="float"):
        PurchaseVoucherLine(amount=245.5)
    with pytest.raises(ValueError, match="two decimals"):
        PurchaseVoucherLine(amount=Decimal("245.555"))
    with pytest.raises(ValueError, match="at least 1"):
        PurchaseVoucherCreate(purchase_type="credit", lines=[])
    with pytest.raises(ValueError, match="128"):
        PurchaseVoucherCreate(
            purchase_type="credit",
            external_reference="x" * 129,
            lines=[PurchaseVoucherLine(amount=Decimal("1"))],
        )


async def test_get_and_delete_purchase_voucher(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    get = dinero.get(f"/v1/{ORG}/vouchers/purchase/{VOUCHER_GUID}").respond(
        200, json=_voucher_answer(Status="Draft")
    )
    delete = dinero.delete(f"/v1/{ORG}/vouchers/purchase/{VOUCHER_GUID}").respond(200)

    draft = await client.get_purchase_voucher(VOUCHER_GUID)
    assert draft.timestamp == "00000000020A5EA8"
    assert draft.is_draft

    await client.delete_purchase_voucher(VOUCHER_GUID, draft.timestamp)
    assert sent_json(delete.calls.last.request) == {"Timestamp": "00000000020A5EA8"}
    assert get.call_count == 1


async def test_stale_timestamp_on_book(client: DineroClient, dinero: respx.MockRouter) -> None:
    route = dinero.post(f"/v1/{ORG}/vouchers/manuel/{VOUCHER_GUID}/book").respond(
        400, json={"code": 58, "message": "The timestamp is outdated"}
    )
    with pytest.raises(DineroStaleVersion) as caught:
        await client.book_manual_voucher(VOUCHER_GUID, "0000000000000001")
    assert caught.value.dinero_message == "The timestamp is outdated"
    assert route.call_count == 1  # a refusal is not retried


async def test_purchase_vouchers_by_file(client: DineroClient, dinero: respx.MockRouter) -> None:
    dinero.get(f"/v1/{ORG}/vouchers/purchase/fileguid/{FILE_GUID}").respond(
        200, json=[str(VOUCHER_GUID)]
    )
    assert await client.purchase_vouchers_by_file(FILE_GUID) == [VOUCHER_GUID]


async def test_manual_voucher_roundtrip(client: DineroClient, dinero: respx.MockRouter) -> None:
    guid = UUID("69c2d72d-d3d2-401a-aa4d-b39ec4c8be26")
    answer = example("ManuelVoucherReadModel")
    answer["Lines"] = [example("ManuelVoucherLineReadModel", AmountInForeignCurrency=None)]
    create = dinero.post(f"/v1/{ORG}/vouchers/manuel").respond(200, json=answer)
    dinero.get(f"/v1/{ORG}/vouchers/manuel/{guid}").respond(200, json=answer)
    book = dinero.post(f"/v1/{ORG}/vouchers/manuel/{guid}/book").respond(
        200, json=dict(answer, Status="Booked")
    )
    delete = dinero.delete(f"/v1/{ORG}/vouchers/manuel/{guid}").respond(200)

    created = await client.create_manual_voucher(
        ManualVoucherCreate(
            voucher_date=date(2026, 11, 4),
            external_reference="exp_refund_1",
            lines=[
                ManualVoucherLine(
                    amount=Decimal("-245.5"),
                    account_number=7300,
                    account_vat_code="I25",
                    balancing_account_number=55010,
                    description="Refusion taxa",
                )
            ],
        )
    )
    assert sent_json(create.calls.last.request) == {
        "VoucherDate": "2026-11-04",
        "Lines": [
            {
                "Amount": Decimal("-245.50"),
                "Description": "Refusion taxa",
                "AccountNumber": 7300,
                "BalancingAccountNumber": 55010,
                "AccountVatCode": "I25",
            }
        ],
        "ExternalReference": "exp_refund_1",
    }
    assert b'"Amount":-245.50' in create.calls.last.request.content
    assert created.guid == guid
    assert created.is_draft
    assert created.lines[0].amount_incl_vat_value == Decimal("100")

    fetched = await client.get_manual_voucher(guid)
    assert fetched.timestamp == "00000000000017B7"
    booked = await client.book_manual_voucher(guid, "00000000000017B7")
    assert booked.status == "Booked"
    assert sent_json(book.calls.last.request) == {"Timestamp": "00000000000017B7"}
    await client.delete_manual_voucher(guid, "00000000000017B8")
    assert sent_json(delete.calls.last.request) == {"Timestamp": "00000000000017B8"}


def _ledger_item(n: int) -> LedgerItem:
    return LedgerItem(
        id=UUID(int=n),
        voucher_date=date(2026, 11, 5),
        lines=[
            LedgerItemLine(
                amount=Decimal("120"),
                description=f"Udlæg {n}",
                account_number=58000,
                account_vat_code="none",
                balancing_account_number=55000,
                balancing_account_vat_code="none",
            )
        ],
    )


async def test_create_ledger_items_body_and_refs(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    item_id = UUID("bf453202-d755-4602-aae0-f79819fb7ef0")
    route = dinero.post(f"/v1.2/{ORG}/ledgeritems").respond(
        200, json=example("LedgerItemReadModel", Id=str(item_id))
    )
    item = LedgerItem(
        id=item_id,
        voucher_date=date(2026, 11, 5),
        file_guid=FILE_GUID,
        lines=[
            LedgerItemLine(
                id=UUID("11111111-2222-4333-8444-555555555555"),
                amount=Decimal("-200"),
                description="Tilbagebetaling af udlæg",
                account_number=58000,
                balancing_account_number=55000,
            )
        ],
    )
    refs = await client.create_ledger_items([item])

    assert route.calls.last.request.content == (
        b'[{"Id":"bf453202-d755-4602-aae0-f79819fb7ef0","VoucherDate":"2026-11-05",'
        b'"Lines":[{"Amount":-200.00,"Id":"11111111-2222-4333-8444-555555555555",'
        b'"Description":"Tilbagebetaling af udl\xc3\xa6g","AccountNumber":58000,'
        b'"BalancingAccountNumber":55000}],"FileGuid":"web0crmck5v0ndcx3313g6zn61tc7wgc"}]'
    )
    assert refs == [LedgerItemRef(id=item_id, version="AAAAAAYb0Eo1")]


def test_ledger_create_answer_may_also_be_a_list() -> None:
    # The contract says one {Id, Version}; a public client models a list (one per item). Both are
    # read; this shape is outside the contract, so it is checked here without HTTP.
    ids = [UUID(int=1), UUID(int=2), UUID(int=3)]
    answer = [{"Id": str(UUID(int=1)), "Version": "v1"}, {"Id": str(UUID(int=3)), "Version": "v3"}]
    assert ledger_refs_from_answer(answer, ids) == [
        LedgerItemRef(id=UUID(int=1), version="v1"),
        LedgerItemRef(id=UUID(int=2)),
        LedgerItemRef(id=UUID(int=3), version="v3"),
    ]
    assert ledger_refs_from_answer(None, ids[:1]) == [LedgerItemRef(id=UUID(int=1))]


async def test_items_dinero_did_not_report_come_back_without_version(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    items = [_ledger_item(1), _ledger_item(2)]
    dinero.post(f"/v1.2/{ORG}/ledgeritems").respond(
        200, json=example("LedgerItemReadModel", Id=str(UUID(int=2)), Version="v2")
    )
    refs = await client.create_ledger_items(items)
    assert refs == [LedgerItemRef(id=UUID(int=1)), LedgerItemRef(id=UUID(int=2), version="v2")]


async def test_more_than_1000_ledger_items_are_chunked(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    route = dinero.post(f"/v1.2/{ORG}/ledgeritems").respond(
        200, json=example("LedgerItemReadModel", Id=str(UUID(int=1)))
    )
    items = [_ledger_item(n) for n in range(1, 2502)]
    refs = await client.create_ledger_items(items)

    sizes = [len(sent_json(call.request)) for call in route.calls]
    assert sizes == [1000, 1000, 501]
    sent_ids = [entry["Id"] for call in route.calls for entry in sent_json(call.request)]
    assert sent_ids == [str(UUID(int=n)) for n in range(1, 2502)]
    assert [ref.id for ref in refs] == [item.id for item in items]


async def test_a_failing_chunk_reports_what_was_already_created(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    route = dinero.post(f"/v1.2/{ORG}/ledgeritems")
    route.side_effect = [
        httpx.Response(200, json=example("LedgerItemReadModel", Id=str(UUID(int=1)))),
        httpx.ReadTimeout("slow"),
    ]
    items = [_ledger_item(n) for n in range(1, 1102)]
    with pytest.raises(DineroOutcomeUnknown) as caught:
        await client.create_ledger_items(items)
    assert caught.value.completed_ids == tuple(UUID(int=n) for n in range(1, 1001))
    assert route.call_count == 2


async def test_duplicate_ledger_item_id(client: DineroClient, dinero: respx.MockRouter) -> None:
    dinero.post(f"/v1.2/{ORG}/ledgeritems").respond(
        409, json={"code": 72, "message": "Duplicated entity"}
    )
    with pytest.raises(DineroDuplicate):
        await client.create_ledger_items([_ledger_item(1)])


async def test_ledger_item_line_rules() -> None:
    with pytest.raises(ValueError, match="payment line"):
        LedgerItemLine(
            amount=Decimal("1"), account_number=1000, is_payment_for_voucher_id=UUID(int=5)
        )


async def test_book_status_and_delete_ledger_items(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    refs = [LedgerItemRef(id=UUID(int=1), version="AAAAAAYb0Eo1"), LedgerItemRef(id=UUID(int=2))]
    book = dinero.post(f"/v1/{ORG}/ledgeritems/book").respond(200)
    status = dinero.post(f"/v1/{ORG}/ledgeritems/status").respond(
        200,
        json=[
            example(
                "LedgerItemStatusReadModel", Id=str(UUID(int=1)), Status="Booked", VoucherNumber=17
            ),
            example(
                "LedgerItemStatusReadModel",
                Id=str(UUID(int=2)),
                Status="PendingBooking",
                VoucherNumber=None,
            ),
        ],
    )
    delete = dinero.delete(f"/v1/{ORG}/ledgeritems/delete").respond(200)

    await client.book_ledger_items(refs)
    assert sent_json(book.calls.last.request) == [
        {"Id": str(UUID(int=1)), "Version": "AAAAAAYb0Eo1"},
        {"Id": str(UUID(int=2)), "Version": None},
    ]

    statuses = await client.ledger_item_status([UUID(int=1), UUID(int=2)])
    assert sent_json(status.calls.last.request) == [
        {"Id": str(UUID(int=1))},
        {"Id": str(UUID(int=2))},
    ]
    assert [(s.status, s.is_booked, s.voucher_number) for s in statuses] == [
        ("Booked", True, 17),
        ("PendingBooking", False, None),
    ]
    assert statuses[0].ref() == LedgerItemRef(id=UUID(int=1), version="AAAAAAYb0Eo1")

    await client.delete_ledger_items(refs[:1])
    assert sent_json(delete.calls.last.request) == [
        {"Id": str(UUID(int=1)), "Version": "AAAAAAYb0Eo1"}
    ]


async def test_unknown_ledger_item_status(client: DineroClient, dinero: respx.MockRouter) -> None:
    dinero.post(f"/v1/{ORG}/ledgeritems/status").respond(
        400, json={"code": 42, "message": "ledgerItemNotFound"}
    )
    with pytest.raises(DineroNotFound):
        await client.ledger_item_status([UUID(int=9)])


async def test_errors_keep_the_request_context(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    dinero.post(f"/v1.2/{ORG}/vouchers/purchase").respond(
        400,
        json={
            "code": 42,
            "message": "Validation failed",
            "validationErrors": {"Lines[0].AccountNumber": "Account 7300 does not exist"},
        },
    )
    with pytest.raises(DineroError) as caught:
        await client.create_purchase_voucher(_card_expense())
    text = str(caught.value)
    assert f"POST /v1.2/{ORG}/vouchers/purchase" in text
    assert "Account 7300 does not exist" in text
