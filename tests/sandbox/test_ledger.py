"""Ledger items (Kassekladde): client ids, versions, asynchronous booking."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from dinero_sandbox import FakeClock, Sandbox

from tests.sandbox.conftest import by_account, error_code

ORG = 100001
ITEM_ID = "5f0c8a1e-3b6d-4e1a-9c2f-7a8b9c0d1e2f"
OTHER_ID = "6a1d9b2f-4c7e-4f2b-8d3a-8b9c0d1e2f3a"


def reimbursement(item_id: str = ITEM_ID, amount: float = 245.00, **extra: Any) -> dict[str, Any]:
    """Out-of-pocket account against the bank: the company pays the employee back."""
    item: dict[str, Any] = {
        "Id": item_id,
        "VoucherDate": "2026-11-03",
        "Lines": [
            {
                "Description": "Udlæg, Taxa Nord",
                "Amount": amount,
                "AccountNumber": 55080,
                "AccountVatCode": "none",
                "BalancingAccountNumber": 55000,
                "BalancingAccountVatCode": "none",
            }
        ],
    }
    item.update(extra)
    return item


async def add(api: httpx.AsyncClient, *items: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/v1.2/{ORG}/ledgeritems", json=list(items))


async def status(api: httpx.AsyncClient, *ids: str) -> list[dict[str, Any]]:
    response = await api.post(f"/v1/{ORG}/ledgeritems/status", json=[{"Id": i} for i in ids])
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


async def test_add_returns_id_and_version(api: httpx.AsyncClient) -> None:
    response = await add(api, reimbursement())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["Id"] == ITEM_ID
    assert body["Version"]
    assert await status(api, ITEM_ID) == [
        {"Status": "Draft", "VoucherNumber": None, "Id": ITEM_ID, "Version": body["Version"]}
    ]


async def test_duplicate_id_is_409_code_72(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    assert (await add(api, reimbursement())).status_code == 200
    duplicate = await add(api, reimbursement(OTHER_ID), reimbursement())
    assert duplicate.status_code == 409
    assert error_code(duplicate) == 72
    assert duplicate.json()["message"] == "Duplicated entity"
    assert [i.id for i in sandbox.ledger_items(ORG)] == [ITEM_ID]  # nothing of the batch kept


async def test_without_id_the_server_chooses_one(api: httpx.AsyncClient) -> None:
    item = reimbursement()
    del item["Id"]
    response = await add(api, item)
    assert response.status_code == 200
    assert response.json()["Id"] != ITEM_ID


async def test_items_must_balance_and_use_known_accounts(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    one_sided = reimbursement()
    del one_sided["Lines"][0]["BalancingAccountNumber"]
    unbalanced = await add(api, one_sided)
    assert unbalanced.status_code == 400
    assert "does not balance" in unbalanced.json()["validationErrors"]["[0].Lines"]

    split = reimbursement(
        Lines=[
            {"Amount": 100, "AccountNumber": 55080},
            {"Amount": -100, "AccountNumber": 55000},
        ]
    )
    assert (await add(api, split)).status_code == 200

    sandbox.hide_account(ORG, 55070)
    bad = reimbursement(
        OTHER_ID,
        Lines=[
            {
                "Amount": 0,
                "AccountNumber": 55070,
                "BalancingAccountNumber": 99999,
                "AccountVatCode": "ZZ",
            },
        ],
    )
    response = await add(api, bad)
    errors = response.json()["validationErrors"]
    assert set(errors) >= {
        "[0].Lines[0].Amount",
        "[0].Lines[0].AccountNumber",
        "[0].Lines[0].BalancingAccountNumber",
        "[0].Lines[0].AccountVatCode",
    }


async def test_more_than_1000_items_are_refused(api: httpx.AsyncClient) -> None:
    items = [reimbursement(f"00000000-0000-4000-8000-{n:012d}") for n in range(1001)]
    response = await add(api, *items)
    assert response.status_code == 400
    assert error_code(response) == 43


async def test_update_needs_the_current_version(api: httpx.AsyncClient) -> None:
    version = (await add(api, reimbursement())).json()["Version"]
    changed = reimbursement(amount=300.00, Version=version)
    updated = await api.put(f"/v1/{ORG}/ledgeritems", json=[changed])
    assert updated.status_code == 200, updated.text
    new_version = updated.json()[0]["Version"]
    assert updated.json() == [{"Id": ITEM_ID, "Version": new_version}]
    assert new_version != version

    stale = await api.put(f"/v1/{ORG}/ledgeritems", json=[changed])
    assert stale.status_code == 400
    assert error_code(stale) == 58

    in_ledger = await api.post(
        f"/v1/{ORG}/ledgeritems/ledgers", json=[{"Id": ITEM_ID, "Version": new_version}]
    )
    assert in_ledger.json()[0]["Lines"][0]["Amount"] == 300


async def test_booking_is_asynchronous(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    version = (await add(api, reimbursement())).json()["Version"]
    booked = await api.post(
        f"/v1/{ORG}/ledgeritems/book", json=[{"Id": ITEM_ID, "Version": version}]
    )
    assert booked.status_code == 200
    assert booked.content == b""

    first = await status(api, ITEM_ID)
    assert first[0]["Status"] == "PendingBooking"
    assert first[0]["VoucherNumber"] is None
    assert sandbox.entries(ORG, voucher_guid=ITEM_ID) == []

    second = await status(api, ITEM_ID)
    assert second[0]["Status"] == "Booked"
    assert second[0]["VoucherNumber"] == 1
    entries = sandbox.entries(ORG, voucher_guid=ITEM_ID)
    assert {e.account_number: e.amount for e in entries} == {
        55080: Decimal("245.00"),
        55000: Decimal("-245.00"),
    }
    assert {e.voucher_type for e in entries} == {"manuel"}
    assert {e.voucher_number for e in entries} == {1}

    gone = await api.post(f"/v1/{ORG}/ledgeritems/ledgers", json=[{"Id": ITEM_ID}])
    assert gone.json() == []  # booked items have left the ledger


async def test_booking_delay_is_measured_on_the_clock(
    api: httpx.AsyncClient, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.configure(booking_delay_seconds=30, booking_status_polls=0)
    version = (await add(api, reimbursement())).json()["Version"]
    await api.post(f"/v1/{ORG}/ledgeritems/book", json=[{"Id": ITEM_ID, "Version": version}])
    assert (await status(api, ITEM_ID))[0]["Status"] == "PendingBooking"
    clock.advance(29)
    assert (await status(api, ITEM_ID))[0]["Status"] == "PendingBooking"
    clock.advance(1)
    assert (await status(api, ITEM_ID))[0]["Status"] == "Booked"


async def test_the_handle_can_finish_bookings_at_once(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.configure(booking_delay_seconds=3600)
    version = (await add(api, reimbursement(VoucherNumber=77))).json()["Version"]
    await api.post(f"/v1/{ORG}/ledgeritems/book", json=[{"Id": ITEM_ID, "Version": version}])
    assert sandbox.complete_ledger_bookings(ORG) == 1
    assert await status(api, ITEM_ID) == [
        {
            "Status": "Booked",
            "VoucherNumber": 77,
            "Id": ITEM_ID,
            "Version": sandbox.org(ORG).ledger_items[ITEM_ID].version,
        }
    ]


async def test_book_checks_version_and_state(api: httpx.AsyncClient) -> None:
    version = (await add(api, reimbursement())).json()["Version"]
    stale = await api.post(f"/v1/{ORG}/ledgeritems/book", json=[{"Id": ITEM_ID, "Version": "x"}])
    assert error_code(stale) == 58
    await api.post(f"/v1/{ORG}/ledgeritems/book", json=[{"Id": ITEM_ID, "Version": version}])
    again = await api.post(f"/v1/{ORG}/ledgeritems/book", json=[{"Id": ITEM_ID}])
    assert again.status_code == 400


async def test_unknown_ids_are_ledger_item_not_found(api: httpx.AsyncClient) -> None:
    response = await api.post(f"/v1/{ORG}/ledgeritems/status", json=[{"Id": OTHER_ID}])
    assert response.status_code == 400
    assert response.json()["message"] == "ledgerItemNotFound"
    book = await api.post(f"/v1/{ORG}/ledgeritems/book", json=[{"Id": OTHER_ID}])
    assert book.json()["message"] == "ledgerItemNotFound"


async def test_delete_drafts_only(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    version = (await add(api, reimbursement())).json()["Version"]
    stale = await api.request(
        "DELETE", f"/v1/{ORG}/ledgeritems/delete", json=[{"Id": ITEM_ID, "Version": "old"}]
    )
    assert error_code(stale) == 58
    deleted = await api.request(
        "DELETE", f"/v1/{ORG}/ledgeritems/delete", json=[{"Id": ITEM_ID, "Version": version}]
    )
    assert deleted.status_code == 200
    assert (
        await api.post(f"/v1/{ORG}/ledgeritems/status", json=[{"Id": ITEM_ID}])
    ).status_code == 400

    version = (await add(api, reimbursement(OTHER_ID))).json()["Version"]
    await api.post(f"/v1/{ORG}/ledgeritems/book", json=[{"Id": OTHER_ID, "Version": version}])
    sandbox.complete_ledger_bookings(ORG)
    booked = await api.request("DELETE", f"/v1/{ORG}/ledgeritems/delete", json=[{"Id": OTHER_ID}])
    assert booked.status_code == 400


async def test_vat_on_ledger_lines_is_included_in_the_amount(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    item = reimbursement(
        Lines=[
            {
                "Amount": -200,
                "AccountNumber": 1000,
                "AccountVatCode": "U25",
                "BalancingAccountNumber": 55000,
            }
        ]
    )
    version = (await add(api, item)).json()["Version"]
    await api.post(f"/v1/{ORG}/ledgeritems/book", json=[{"Id": ITEM_ID, "Version": version}])
    sandbox.complete_ledger_bookings(ORG)
    assert by_account(sandbox, ORG, ITEM_ID) == {
        1000: Decimal("-160.00"),
        61000: Decimal("-40.00"),
        55000: Decimal("200.00"),
    }


async def test_a_ledger_line_can_pay_a_credit_purchase(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    supplier = next(r for r in sandbox.records(ORG, "contacts") if r.data["IsCreditor"])
    voucher = (
        await api.post(
            f"/v1.2/{ORG}/vouchers/purchase",
            json={
                "PurchaseType": "credit",
                "ContactGuid": supplier.guid,
                "VoucherDate": "2026-11-01",
                "Lines": [{"AccountNumber": 5000, "Amount": 500}],
            },
        )
    ).json()
    sandbox.approve_purchase_voucher(ORG, voucher["Guid"])
    payment = reimbursement(
        Lines=[
            {
                "Amount": 500,
                "IsPaymentForVoucherId": voucher["Guid"],
                "BalancingAccountNumber": 55000,
            }
        ]
    )
    version = (await add(api, payment)).json()["Version"]
    await api.post(f"/v1/{ORG}/ledgeritems/book", json=[{"Id": ITEM_ID, "Version": version}])
    sandbox.complete_ledger_bookings(ORG)
    paid = await api.get(f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}")
    assert paid.json()["Status"] == "Paid"
