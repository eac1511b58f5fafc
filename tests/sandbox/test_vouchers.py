"""Purchase vouchers, manual vouchers and purchase credit notes, as Dinero handles them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from dinero_sandbox import Sandbox

from tests.sandbox.conftest import by_account, error_code

ORG = 100001


def cash_purchase(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "PurchaseType": "cash",
        "VoucherDate": "2026-11-03",
        "DepositAccountNumber": 55030,
        "ExternalReference": "exp_8f2c",
        "Lines": [
            {
                "AccountNumber": 5000,
                "Amount": 125.00,
                "VatCode": "I25",
                "Description": "Kontorartikler",
            },
            {"AccountNumber": 4080, "Amount": 1000.00, "VatCode": None, "Description": "Hotel"},
        ],
    }
    body.update(overrides)
    return body


async def create(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await api.post(f"/v1.2/{ORG}/vouchers/purchase", json=cash_purchase(**overrides))
    assert response.status_code == 200, response.text
    voucher: dict[str, Any] = response.json()
    return voucher


async def test_create_draft_computes_vat_per_line(api: httpx.AsyncClient) -> None:
    voucher = await create(api)

    assert voucher["Status"] == "Draft"
    assert voucher["VoucherNumber"] is None
    assert voucher["PurchaseType"] == "cash"
    assert voucher["Timestamp"]
    office, hotel = voucher["Lines"]
    assert (
        office["AmountInclVatValue"],
        office["VatAmountValue"],
        office["AmountExclVatValue"],
    ) == (125, 25, 100)
    # Hotel (HREP, the account's default): 75 % of the VAT is deductible.
    assert hotel["VatCode"] == "HREP"
    assert (hotel["VatAmountValue"], hotel["AmountExclVatValue"]) == (150, 850)
    assert voucher["VoucherTotals"] == [
        {"Label": "Subtotal", "Total": 950, "Type": "SubTotal", "Position": 0},
        {"Label": "Moms", "Total": 175, "Type": "Vat", "Position": 1},
        {"Label": "Total", "Total": 1125, "Type": "Total", "Position": 2},
    ]
    fetched = await api.get(f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}")
    assert fetched.json() == voucher


async def test_validation_lists_every_problem(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.hide_account(ORG, 5040)
    response = await api.post(
        f"/v1.2/{ORG}/vouchers/purchase",
        json=cash_purchase(
            DepositAccountNumber=5000,
            FileGuid="nosuchfile",
            Lines=[
                {"AccountNumber": 5040, "Amount": 10},
                {"AccountNumber": 1000, "Amount": 10},
                {"AccountNumber": 12345, "Amount": 10},
                {"AccountNumber": 5000, "Amount": -50, "VatCode": "XX9"},
                {"AccountNumber": 5000, "Amount": 10.001},
                {"AccountNumber": 5000, "Amount": 10, "VatCode": "U25"},
            ],
        ),
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 42
    errors = body["validationErrors"]
    assert "hidden" in errors["Lines[0].AccountNumber"]
    assert "not a purchase account" in errors["Lines[1].AccountNumber"]
    assert "does not exist" in errors["Lines[2].AccountNumber"]
    assert "negative" in errors["Lines[3].Amount"]
    assert "XX9" in errors["Lines[3].VatCode"]
    assert "two decimals" in errors["Lines[4].Amount"]
    assert "not a purchase VAT type" in errors["Lines[5].VatCode"]
    assert "not a deposit account" in errors["DepositAccountNumber"]
    assert "FileGuid" in errors
    assert body["languageSpecificMessages"][0]["property"]
    assert sandbox.drafts(ORG) == []


async def test_cash_needs_a_visible_deposit_account_and_credit_a_supplier(
    api: httpx.AsyncClient,
) -> None:
    no_deposit = await api.post(
        f"/v1.2/{ORG}/vouchers/purchase", json=cash_purchase(DepositAccountNumber=None)
    )
    assert "DepositAccountNumber" in no_deposit.json()["validationErrors"]
    hidden = await api.post(
        f"/v1.2/{ORG}/vouchers/purchase", json=cash_purchase(DepositAccountNumber=55100)
    )
    assert "hidden" in hidden.json()["validationErrors"]["DepositAccountNumber"]
    euro_cash = await api.post(
        f"/v1.2/{ORG}/vouchers/purchase", json=cash_purchase(CurrencyKey="EUR")
    )
    assert "CurrencyKey" in euro_cash.json()["validationErrors"]
    credit = await api.post(
        f"/v1.2/{ORG}/vouchers/purchase",
        json=cash_purchase(PurchaseType="credit", DepositAccountNumber=None),
    )
    assert "ContactGuid" in credit.json()["validationErrors"]
    schema = await api.post(f"/v1.2/{ORG}/vouchers/purchase", json={"Lines": []})
    assert schema.status_code == 400
    assert "PurchaseType" in schema.json()["validationErrors"]
    unknown = await api.post(f"/v1.2/{ORG}/vouchers/purchase", json=cash_purchase(Foo="bar"))
    assert unknown.status_code == 400


async def test_booking_assigns_the_next_number_and_writes_entries(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    before = sandbox.balance(ORG, 61010)
    voucher = await create(api)
    booked = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}/book",
        json={"Timestamp": voucher["Timestamp"]},
    )

    assert booked.status_code == 200, booked.text
    body = booked.json()
    assert body["Status"] == "Paid"
    assert body["VoucherNumber"] == 1  # the first voucher of 2026
    assert body["BookedByType"] == "Api"
    assert body["BookedByUsername"] == "demo@sandbox.dinero.dk"
    assert body["Timestamp"] != voucher["Timestamp"]

    entries = (
        await api.get(
            f"/v1/{ORG}/entries", params={"fromDate": "2026-11-01", "toDate": "2026-11-30"}
        )
    ).json()
    mine = [e for e in entries if e["VoucherGuid"] == voucher["Guid"]]
    assert sorted((e["AccountNumber"], e["Amount"]) for e in mine) == [
        (4080, 850),
        (5000, 100),
        (55030, -1125),
        (61010, 25),
        (61010, 150),
    ]
    assert {e["VoucherType"] for e in mine} == {"Purchases"}
    assert {e["VoucherNumber"] for e in mine} == {1}
    assert {e["Date"] for e in mine} == {"2026-11-03"}
    assert len({e["EntryGuid"] for e in mine}) == 5
    assert sum(Decimal(str(e["Amount"])) for e in mine) == 0

    second = await create(api, ExternalReference="exp_2")
    again = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{second['Guid']}/book",
        json={"Timestamp": second["Timestamp"]},
    )
    assert again.json()["VoucherNumber"] == 2
    assert sandbox.balance(ORG, 61010) - before == Decimal("350.00")  # købsmoms of both


async def test_stale_timestamp_is_code_58(api: httpx.AsyncClient) -> None:
    voucher = await create(api)
    stale = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}/book",
        json={"Timestamp": "0000000000000001"},
    )
    assert stale.status_code == 400
    assert error_code(stale) == 58

    missing = await api.post(f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}/book", json={})
    assert missing.status_code == 400
    assert error_code(missing) == 42


async def test_booking_with_a_chosen_number_and_twice(api: httpx.AsyncClient) -> None:
    voucher = await create(api)
    booked = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}/book",
        json={"Timestamp": voucher["Timestamp"], "Number": 42},
    )
    assert booked.json()["VoucherNumber"] == 42
    twice = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}/book",
        json={"Timestamp": booked.json()["Timestamp"]},
    )
    assert twice.status_code == 400

    other = await create(api)
    taken = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{other['Guid']}/book",
        json={"Timestamp": other["Timestamp"], "Number": 42},
    )
    assert taken.status_code == 400
    assert "42" in taken.json()["validationErrors"]["Number"]


async def test_booking_into_years_the_books_do_not_have(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    early = await create(api, VoucherDate="2019-05-01")
    refused = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{early['Guid']}/book", json={"Timestamp": early["Timestamp"]}
    )
    assert refused.status_code == 400

    next_year = await create(api, VoucherDate="2027-01-04")
    created = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{next_year['Guid']}/book",
        json={"Timestamp": next_year["Timestamp"]},
    )
    assert created.status_code == 200
    assert created.json()["VoucherNumber"] == 1
    years = (await api.get(f"/v1/{ORG}/accountingyears")).json()
    assert [y["Name"] for y in years] == ["2024", "2025", "2026", "2027"]

    sandbox.lock_accounting_year(ORG, 2026)
    closed = await create(api)
    locked = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{closed['Guid']}/book",
        json={"Timestamp": closed["Timestamp"]},
    )
    assert locked.status_code == 400
    assert "closed" in locked.json()["validationErrors"]["VoucherDate"]


async def test_update_a_draft_with_put(api: httpx.AsyncClient) -> None:
    voucher = await create(api)
    update = {
        "Timestamp": voucher["Timestamp"],
        "VoucherDate": "2026-11-04",
        "PurchaseType": "cash",
        "DepositAccountNumber": 55000,
        "ContactGuid": "00000000-0000-0000-0000-000000000000",
        "Lines": [{"AccountNumber": 5040, "Amount": 399.00, "AccountTagName": "telefon"}],
    }
    updated = await api.put(f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}", json=update)
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["VoucherDate"] == "2026-11-04"
    assert body["Lines"][0]["AmountExclVatValue"] == 319.2
    assert body["Lines"][0]["AccountTagName"] is None  # v1 does not support tags

    stale = await api.put(f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}", json=update)
    assert error_code(stale) == 58

    update["Timestamp"] = body["Timestamp"]
    tagged = await api.put(f"/v1.1/{ORG}/vouchers/purchase/{voucher['Guid']}", json=update)
    assert tagged.json()["Lines"][0]["AccountTagName"] == "telefon"

    booked = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}/book",
        json={"Timestamp": tagged.json()["Timestamp"]},
    )
    update["Timestamp"] = booked.json()["Timestamp"]
    after = await api.put(f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}", json=update)
    assert after.status_code == 400


async def test_deleting_a_draft_removes_it(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    voucher = await create(api)
    stale = await api.request(
        "DELETE", f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}", json={"Timestamp": "00"}
    )
    assert error_code(stale) == 58
    deleted = await api.request(
        "DELETE",
        f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}",
        json={"Timestamp": voucher["Timestamp"]},
    )
    assert deleted.status_code == 200
    assert deleted.content == b""
    gone = await api.get(f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}")
    assert gone.status_code == 404
    assert sandbox.entries(ORG, voucher_guid=voucher["Guid"]) == []


async def test_deleting_a_booked_voucher_books_a_reversal(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    voucher = await create(api)
    await api.post(
        f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}/book",
        json={"Timestamp": voucher["Timestamp"]},
    )
    deleted = await api.delete(f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}")
    assert deleted.status_code == 200
    entries = sandbox.entries(ORG, voucher_guid=voucher["Guid"])
    assert len(entries) == 10  # five postings and their five reversals
    assert sum(e.amount for e in entries) == 0
    assert sum(e.amount for e in entries if e.account_number == 55030) == 0
    assert {e.voucher_number for e in entries} == {1}


async def test_similar_and_by_file(api: httpx.AsyncClient) -> None:
    upload = await api.post(f"/v1/{ORG}/files", files={"file": ("kvittering.pdf", b"%PDF-1.4")})
    file_guid = upload.json()["FileGuid"]
    nothing = await api.post(f"/v1/{ORG}/vouchers/purchase/similar", json=cash_purchase())
    assert nothing.json() == {"VoucherNumber": None, "SimilarGuid": None, "SimilarFound": False}

    voucher = await create(api, FileGuid=file_guid)
    by_reference = await api.post(
        f"/v1/{ORG}/vouchers/purchase/similar", json=cash_purchase(FileGuid=None)
    )
    assert by_reference.json() == {
        "VoucherNumber": None,
        "SimilarGuid": voucher["Guid"],
        "SimilarFound": True,
    }
    by_amount = await api.post(
        f"/v1/{ORG}/vouchers/purchase/similar", json=cash_purchase(ExternalReference=None)
    )
    assert by_amount.json()["SimilarGuid"] == voucher["Guid"]
    different = await api.post(
        f"/v1/{ORG}/vouchers/purchase/similar",
        json=cash_purchase(ExternalReference=None, VoucherDate="2026-10-01"),
    )
    assert different.json()["SimilarFound"] is False

    listed = await api.get(f"/v1/{ORG}/vouchers/purchase/fileguid/{file_guid}")
    assert listed.json() == [voucher["Guid"]]
    assert (await api.get(f"/v1/{ORG}/vouchers/purchase/fileguid/unknown")).json() == []


async def test_the_accountant_approves_edits_and_deletes_drafts(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    voucher = await create(api)
    edited = sandbox.edit_purchase_voucher(
        ORG, voucher["Guid"], line=0, account_number=5110, amount="250.00"
    )
    assert edited.lines[0].account_number == 5110
    assert edited.lines[0].vat == Decimal("50.00")
    stale = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}/book",
        json={"Timestamp": voucher["Timestamp"]},
    )
    assert error_code(stale) == 58  # the accountant's edit changed the timestamp

    approved = sandbox.approve_purchase_voucher(ORG, voucher["Guid"])  # Godkend
    assert approved.status == "Paid"
    assert approved.voucher_number == 1
    seen = (await api.get(f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}")).json()
    assert seen["Status"] == "Paid"
    assert seen["BookedByType"] == "User"

    other = await create(api)
    sandbox.delete_purchase_voucher(ORG, other["Guid"])
    assert (await api.get(f"/v1/{ORG}/vouchers/purchase/{other['Guid']}")).status_code == 404


async def test_credit_purchase_is_booked_against_the_supplier_and_can_be_paid(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    supplier = next(r for r in sandbox.records(ORG, "contacts") if r.data["IsCreditor"])
    voucher = await create(
        api,
        PurchaseType="credit",
        DepositAccountNumber=None,
        ContactGuid=supplier.guid,
        PaymentDate="2026-11-10",
    )
    booked = await api.post(
        f"/v1/{ORG}/vouchers/purchase/{voucher['Guid']}/book",
        json={"Timestamp": voucher["Timestamp"]},
    )
    assert booked.json()["Status"] == "Booked"
    creditors = [
        e for e in sandbox.entries(ORG, voucher_guid=voucher["Guid"]) if e.account_number == 58000
    ]
    assert creditors[0].amount == Decimal("-1125.00")
    assert creditors[0].contact_guid == supplier.guid


async def test_reverse_charge_posts_both_vat_sides(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    voucher = await create(api, Lines=[{"AccountNumber": 3510, "Amount": 400}])  # Google Ads
    assert voucher["Lines"][0]["VatCode"] == "IEUY"
    assert voucher["Lines"][0]["VatAmountValue"] == 0
    sandbox.approve_purchase_voucher(ORG, voucher["Guid"])
    assert by_account(sandbox, ORG, voucher["Guid"]) == {
        3510: Decimal("400.00"),
        61010: Decimal("100.00"),
        61030: Decimal("-100.00"),
        55030: Decimal("-400.00"),
    }


async def test_manual_voucher_flow(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    created = await api.post(
        f"/v1/{ORG}/vouchers/manuel",
        json={
            "VoucherDate": "2026-11-03",
            "ExternalReference": "refund_1",
            "Lines": [
                {
                    "AccountNumber": 5000,
                    "BalancingAccountNumber": 55030,
                    "Amount": -125,
                    "AccountVatCode": "I25",
                    "Description": "Refusion kontorartikler",
                }
            ],
        },
    )
    assert created.status_code == 200, created.text
    voucher = created.json()
    assert voucher["Status"] == "Draft"
    assert voucher["Lines"][0]["VatAmountValue"] == -25
    assert voucher["TotalInclVat"] == -125

    booked = await api.post(
        f"/v1/{ORG}/vouchers/manuel/{voucher['Guid']}/book",
        json={"Timestamp": voucher["Timestamp"]},
    )
    assert booked.json()["Status"] == "Booked"
    assert by_account(sandbox, ORG, voucher["Guid"]) == {
        5000: Decimal("-100.00"),
        61010: Decimal("-25.00"),
        55030: Decimal("125.00"),
    }
    assert {e.voucher_type for e in sandbox.entries(ORG, voucher_guid=voucher["Guid"])} == {
        "manuel"
    }

    no_timestamp = await api.request(
        "DELETE", f"/v1/{ORG}/vouchers/manuel/{voucher['Guid']}", json={}
    )
    assert no_timestamp.status_code == 400
    deleted = await api.request(
        "DELETE",
        f"/v1/{ORG}/vouchers/manuel/{voucher['Guid']}",
        json={"Timestamp": booked.json()["Timestamp"]},
    )
    assert deleted.status_code == 200
    assert sum(e.amount for e in sandbox.entries(ORG, voucher_guid=voucher["Guid"])) == 0


async def test_purchase_credit_note(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    voucher = await create(api)
    sandbox.approve_purchase_voucher(ORG, voucher["Guid"])
    guid = "7d1d6a3c-9a59-4c1e-9a7e-0b7f0c1a2b3c"
    supplier = next(r for r in sandbox.records(ORG, "contacts") if r.data["IsCreditor"])
    created = await api.post(
        f"/v1/{ORG}/vouchers/purchase/creditnotes",
        json={
            "Guid": guid,
            "CreditNoteFor": voucher["Guid"],
            "ContactGuid": supplier.guid,
            "Date": "2026-11-05T00:00:00Z",
            "Lines": [{"AccountNumber": 5000, "Amount": 125, "VatCode": "I25"}],
        },
    )
    assert created.json() == {"Guid": guid, "TimeStamp": created.json()["TimeStamp"]}
    duplicate = await api.post(
        f"/v1/{ORG}/vouchers/purchase/creditnotes",
        json={"Guid": guid, "Lines": [{"AccountNumber": 5000, "Amount": 1}]},
    )
    assert duplicate.status_code == 409
    assert error_code(duplicate) == 72

    booked = await api.post(
        f"/v1/{ORG}/vouchers/purchase/creditnotes/{guid}/book",
        json={"Timestamp": created.json()["TimeStamp"]},
    )
    assert booked.json()["Status"] == "Booked"
    assert booked.json()["Date"] == "2026-11-05T00:00:00Z"
    by_account = {e.account_number: e.amount for e in sandbox.entries(ORG, voucher_guid=guid)}
    assert by_account == {
        5000: Decimal("-100.00"),
        61010: Decimal("-25.00"),
        55030: Decimal("125.00"),
    }
