"""Updating a purchase voucher draft: the full replacement Dinero expects, from a fresh read."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
import respx

from app.dinero import (
    DineroClient,
    DineroOutcomeUnknown,
    DineroStaleVersion,
    PurchaseVoucher,
    PurchaseVoucherUpdate,
)
from tests.dinero.conftest import ORG, RecordingPacer, sent_json
from tests.dinero.examples import example

VOUCHER_GUID = UUID("0713954e-f3b0-4fb0-8b95-0dc0772d5ea0")
NEW_FILE = "web0crmck5v0ndcx3313g6zn61tc7wgd"


def _draft(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "Guid": str(VOUCHER_GUID),
        "Status": "Draft",
        "PurchaseType": "cash",
        "DepositAccountNumber": 55030,
        "RegionKey": "DK",
        "ContactGuid": None,
        "CurrencyKey": "DKK",
        "ExternalReference": "bridge:1",
    }
    answer = example("PurchaseVoucherReadModelV2", **{**fields, **overrides})
    answer["Lines"] = [
        example(
            "PurchaseVoucherLineReadModel",
            AccountNumber=2810,  # the accountant moved it from 2800
            VatCode="I25",
            Description="Taxa",
            AmountExclVatValue=160,
            VatAmountValue=40,
            AmountInclVatValue=200,
        )
    ]
    return answer


async def test_update_keeps_the_draft_as_read_and_changes_only_the_file(
    client: DineroClient, dinero: respx.MockRouter, pacer: RecordingPacer
) -> None:
    read = PurchaseVoucher.model_validate(_draft())
    route = dinero.put(f"/v1/{ORG}/vouchers/purchase/{VOUCHER_GUID}").respond(
        200, json=_draft(FileGuid=NEW_FILE, Timestamp="00000000020A5EB9")
    )

    updated = await client.update_purchase_voucher(
        VOUCHER_GUID, PurchaseVoucherUpdate.keeping(read, file_guid=NEW_FILE)
    )

    body = sent_json(route.calls.last.request)
    assert body["Timestamp"] == read.timestamp
    assert body["FileGuid"] == NEW_FILE
    assert body["PurchaseType"] == "cash"
    assert body["DepositAccountNumber"] == 55030
    assert body["ContactGuid"] == "00000000-0000-0000-0000-000000000000"  # required, cash
    assert "PaymentDate" not in body  # not on cash purchases
    assert "CurrencyKey" not in body
    assert body["Lines"] == [
        {
            "Amount": Decimal("200.00"),
            "AccountNumber": 2810,
            "Description": "Taxa",
            "VatCode": "I25",
        }
    ]
    assert body["ExternalReference"] == "bridge:1"
    assert updated.file_guid == NEW_FILE
    assert updated.timestamp == "00000000020A5EB9"
    assert len(pacer.acquired) == 1


async def test_a_stale_timestamp_is_refused_not_retried(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    read = PurchaseVoucher.model_validate(_draft())
    route = dinero.put(f"/v1/{ORG}/vouchers/purchase/{VOUCHER_GUID}").respond(
        400, json={"code": 58, "message": "The timestamp is outdated"}
    )
    with pytest.raises(DineroStaleVersion):
        await client.update_purchase_voucher(
            VOUCHER_GUID, PurchaseVoucherUpdate.keeping(read, file_guid=NEW_FILE)
        )
    assert route.call_count == 1


async def test_a_lost_answer_to_an_update_is_an_unknown_outcome(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    read = PurchaseVoucher.model_validate(_draft())
    route = dinero.put(f"/v1/{ORG}/vouchers/purchase/{VOUCHER_GUID}").respond(503)
    with pytest.raises(DineroOutcomeUnknown):
        await client.update_purchase_voucher(
            VOUCHER_GUID, PurchaseVoucherUpdate.keeping(read, file_guid=NEW_FILE)
        )
    assert route.call_count == 1  # a write is never repeated blindly


def test_a_credit_purchase_keeps_its_supplier_and_due_date() -> None:
    supplier = UUID("75b3c512-3d11-492a-a6fb-f22acbd62878")
    read = PurchaseVoucher.model_validate(
        _draft(
            PurchaseType="credit",
            ContactGuid=str(supplier),
            PaymentDate="2026-12-01",
            CurrencyKey="EUR",
        )
    )
    body = PurchaseVoucherUpdate.keeping(read).to_wire()
    assert body["ContactGuid"] == str(supplier)
    assert str(body["PaymentDate"]) == "2026-12-01"
    assert body["CurrencyKey"] == "EUR"
    assert "DepositAccountNumber" not in body
