"""Reads with Dinero's envelopes, fields, filters, chart, VAT types and entries."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from dinero_sandbox import FakeClock, Sandbox

from tests.sandbox.conftest import error_code

ORG = "/v1/100001"


async def test_accounting_years(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{ORG}/accountingyears")
    assert response.json() == [
        {
            "Name": str(y),
            "FromDate": f"{y}-01-01",
            "ToDate": f"{y}-12-31",
            "SalarySumTaxStateEnum": "None",
        }
        for y in (2024, 2025, 2026)
    ]


async def test_entry_accounts_are_a_realistic_danish_chart(api: httpx.AsyncClient) -> None:
    default = (await api.get(f"{ORG}/accounts/entry")).json()
    assert len(default) >= 300
    assert set(default[0]) == {"AccountNumber", "Name", "IsHidden"}
    names = {a["Name"] for a in default}
    for expected in (
        "Kontorartikler",
        "Telefon og internet",
        "Rejseudgifter",
        "Repræsentation",
        "Hotel",
        "Bankkonto",
        "Kasse",
        "Firmakort",
        "PayPal",
        "Købsmoms",
        "Salgsmoms",
        "Leverandørgæld",
        "Anpartskapital",
    ):
        assert expected in names

    chosen = (
        await api.get(f"{ORG}/accounts/entry", params={"fields": "accountNumber,vatCode,category"})
    ).json()
    office = next(a for a in chosen if a["accountNumber"] == 5000)
    assert office == {
        "accountNumber": 5000,
        "vatCode": "I25",
        "category": "Administration Expenses",
    }

    travel = (
        await api.get(f"{ORG}/accounts/entry", params={"categoryFilter": "Travel Expenses"})
    ).json()
    assert travel
    assert all(4000 <= a["AccountNumber"] < 4500 for a in travel)


async def test_purchase_accounts_are_2000_to_9399(api: httpx.AsyncClient) -> None:
    accounts = (await api.get(f"{ORG}/accounts/purchase")).json()
    assert len(accounts) > 200
    assert all(2000 <= a["AccountNumber"] <= 9399 for a in accounts)
    assert set(accounts[0]) == {
        "AccountNumber",
        "Name",
        "VatCode",
        "Category",
        "CategoryName",
        "IsHidden",
    }
    hotel = next(a for a in accounts if a["Name"] == "Hotel")
    assert hotel["VatCode"] == "HREP"
    representation = next(a for a in accounts if a["Name"] == "Repræsentation")
    assert representation["VatCode"] == "REP"


async def test_deposit_accounts_include_hidden_ones(api: httpx.AsyncClient) -> None:
    default = (await api.get(f"{ORG}/accounts/deposit")).json()
    assert {"AccountNumber": 55000, "Name": "Bankkonto"} in default
    full = (
        await api.get(
            f"{ORG}/accounts/deposit", params={"fields": "AccountNumber,Name,IsDefault,IsHidden"}
        )
    ).json()
    assert all(55000 <= a["AccountNumber"] <= 55999 for a in full)
    assert any(a["IsHidden"] for a in full)
    assert [a["AccountNumber"] for a in full if a["IsDefault"]] == [55000]


async def test_vat_types_are_the_danish_list(api: httpx.AsyncClient) -> None:
    types = {v["VatCode"]: v for v in (await api.get(f"{ORG}/vatTypes")).json()}
    for code in (
        "I25",
        "U25",
        "REP",
        "HREP",
        "IEUV",
        "IEUY",
        "IVV",
        "IVY",
        "UEUV",
        "UEUV2",
        "UEUY",
        "UVC",
        "KUNS",
        "OBPS",
        "OBPK",
    ):
        assert code in types
    assert types["I25"] == {"VatCode": "I25", "Name": "Dansk købsmoms", "VatRate": 0.25}
    assert types["REP"]["VatRate"] == 0.0625
    assert types["HREP"]["VatRate"] == 0.1875


async def test_creating_accounts(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    created = await api.post(
        f"{ORG}/accounts/entry", json={"Number": 5045, "Name": "Zoom-abonnement", "VatCode": "IEUY"}
    )
    assert created.status_code == 200
    assert created.content == b""
    deposit = await api.post(
        f"{ORG}/accounts/deposit",
        json={
            "Number": 55200,
            "Name": "Pleo-kort",
            "RegistrationNumber": "1234",
            "AccountNumber": "0001234567",
        },
    )
    assert deposit.status_code == 200
    accounts = (await api.get(f"{ORG}/accounts/deposit")).json()
    assert {"AccountNumber": 55200, "Name": "Pleo-kort"} in accounts
    assert sandbox.org(100001).accounts[5045].category == "Administration Expenses"

    taken = await api.post(
        f"{ORG}/accounts/entry", json={"Number": 5045, "Name": "Igen", "VatCode": "I25"}
    )
    assert taken.status_code == 400
    assert error_code(taken) == 42
    bad_vat = await api.post(
        f"{ORG}/accounts/entry", json={"Number": 5046, "Name": "X", "VatCode": "XX"}
    )
    assert bad_vat.status_code == 400


async def test_envelope_defaults_and_pages(api: httpx.AsyncClient) -> None:
    first = (await api.get(f"{ORG}/contacts", params={"pageSize": 7})).json()
    assert first["Pagination"] == {
        "MaxPageSizeAllowed": 1000,
        "PageSize": 7,
        "Result": 7,
        "ResultWithoutFilter": 30,
        "Page": 0,
    }
    assert set(first["Collection"][0]) == {"name", "contactGuid"}

    pages: list[str] = []
    for page in range(5):
        body = (await api.get(f"{ORG}/contacts", params={"pageSize": 7, "page": page})).json()
        pages.extend(c["contactGuid"] for c in body["Collection"])
    assert len(pages) == len(set(pages)) == 30

    beyond = (await api.get(f"{ORG}/contacts", params={"page": 99})).json()
    assert beyond["Collection"] == []
    assert beyond["Pagination"]["Result"] == 0
    assert beyond["Pagination"]["ResultWithoutFilter"] == 30


@pytest.mark.parametrize(("asked", "got"), [(1000, 1000), (1001, 1000), (5000, 1000)])
async def test_page_size_above_1000_is_clamped(
    api: httpx.AsyncClient, asked: int, got: int
) -> None:
    body = (await api.get(f"{ORG}/invoices", params={"pageSize": asked})).json()
    assert body["Pagination"]["PageSize"] == got
    assert body["Pagination"]["Result"] == 24


async def test_query_names_are_case_insensitive_like_aspnet(api: httpx.AsyncClient) -> None:
    body = (await api.get(f"{ORG}/contacts", params={"PAGESIZE": 3, "Fields": "Name"})).json()
    assert body["Pagination"]["PageSize"] == 3
    assert set(body["Collection"][0]) == {"Name"}


async def test_bad_paging_values_are_400(api: httpx.AsyncClient) -> None:
    assert (await api.get(f"{ORG}/contacts", params={"pageSize": 0})).status_code == 400
    assert (await api.get(f"{ORG}/contacts", params={"page": -1})).status_code == 400
    assert (await api.get(f"{ORG}/contacts", params={"page": "x"})).status_code == 400


async def test_empty_collections(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.add_organization(100003, "Tom ApS")
    sandbox.grant_access("demo@sandbox.dinero.dk", 100003)
    for kind in ("contacts", "invoices", "sales", "products", "tradeoffers"):
        body = (await api.get(f"/v1/100003/{kind}")).json()
        assert body["Collection"] == []
        assert body["Pagination"]["ResultWithoutFilter"] == 0


async def test_changes_since_and_deleted_only(
    api: httpx.AsyncClient, sandbox: Sandbox, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 11, 10, 8, 0, tzinfo=UTC))
    since = "2026-11-10T08:00:00Z"
    added = sandbox.add_record(100001, "contacts", Name="Ny Kunde ApS")
    clock.advance(60)
    existing = sandbox.records(100001, "contacts")[0]
    sandbox.update_record(100001, "contacts", existing.guid, Email="ny@mail.dk")
    deleted = sandbox.records(100001, "contacts")[1]
    sandbox.delete_record(100001, "contacts", deleted.guid)

    fields = "ContactGuid,Name,DeletedAt"
    changed = (
        await api.get(f"{ORG}/contacts", params={"changesSince": since, "fields": fields})
    ).json()
    guids = {c["ContactGuid"]: c for c in changed["Collection"]}
    assert set(guids) == {added.guid, existing.guid, deleted.guid}
    assert guids[deleted.guid]["DeletedAt"] == "2026-11-10T08:01:00Z"
    assert guids[added.guid]["DeletedAt"] is None

    later = await api.get(f"{ORG}/contacts", params={"changesSince": "2026-11-10T08:00:30Z"})
    assert {c["contactGuid"] for c in later.json()["Collection"]} == {existing.guid, deleted.guid}

    live = (await api.get(f"{ORG}/contacts", params={"fields": fields})).json()
    assert deleted.guid not in {c["ContactGuid"] for c in live["Collection"]}
    assert live["Pagination"]["ResultWithoutFilter"] == 30  # 30 + 1 added - 1 deleted

    gone = (
        await api.get(f"{ORG}/contacts", params={"deletedOnly": "true", "fields": fields})
    ).json()
    assert [c["ContactGuid"] for c in gone["Collection"]] == [deleted.guid]
    assert gone["Collection"][0]["DeletedAt"] == "2026-11-10T08:01:00Z"

    bad = await api.get(f"{ORG}/contacts", params={"changesSince": "yesterday"})
    assert bad.status_code == 400


async def test_query_filter_and_free_text(api: httpx.AsyncClient) -> None:
    found = (
        await api.get(
            f"{ORG}/contacts",
            params={
                "queryFilter": "Name contains 'aps';IsPerson eq 'false'",
                "fields": "Name,IsPerson",
            },
        )
    ).json()["Collection"]
    assert found
    assert all("aps" in c["Name"].lower() and c["IsPerson"] is False for c in found)

    bare = await api.get(f"{ORG}/contacts", params={"queryFilter": "Bager"})
    assert bare.status_code == 400
    not_allowed = await api.get(f"{ORG}/contacts", params={"queryFilter": "City eq 'Vejle'"})
    assert not_allowed.status_code == 400

    products = (await api.get(f"{ORG}/products", params={"freeTextSearch": "workshop"})).json()
    assert {p["Name"] for p in products["Collection"]} == {
        "Workshop, halv dag",
        "Workshop, hel dag",
    }


async def test_invoices_sales_and_trade_offers(api: httpx.AsyncClient) -> None:
    invoices = (
        await api.get(
            f"{ORG}/invoices",
            params={
                "fields": "Number,Status,TotalInclVat,Type",
                "sort": "VoucherNumber",
                "sortOrder": "ascending",
                "statusFilter": "Paid,Overdue",
            },
        )
    ).json()["Collection"]
    assert invoices
    assert {i["Status"] for i in invoices} <= {"Paid", "Overdue"}
    numbers = [i["Number"] for i in invoices]
    assert numbers == sorted(numbers)

    sales = (await api.get(f"{ORG}/sales", params={"pageSize": 1000})).json()
    assert {s["Type"] for s in sales["Collection"]} == {"Invoice", "CreditNote"}
    assert sales["Pagination"]["ResultWithoutFilter"] == 27

    dated = await api.get(f"{ORG}/invoices", params={"startDate": "2026-03-01"})
    assert dated.status_code == 400  # startDate needs endDate

    offers = (await api.get(f"{ORG}/tradeoffers")).json()
    assert set(offers["Collection"][0]) == {"guid", "contactName", "date", "description"}
    full = (
        await api.get(
            f"{ORG}/tradeoffers",
            params={
                "fields": "Number,ProductLines,TotalInclVat,History",
                "sort": "TradeOfferNumber",
                "sortOrder": "ascending",
            },
        )
    ).json()["Collection"]
    assert [o["Number"] for o in full] == [1, 2, 3, 4, 5, 6]


async def test_products_are_ordered_by_updated_at(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    first = sandbox.records(100001, "products")[0]
    sandbox.update_record(100001, "products", first.guid, Name="Konsulenttime (ny pris)")
    body = await api.get(f"{ORG}/products", params={"fields": "ProductGuid,Name,UpdatedAt"})
    assert body.json()["Collection"][-1]["ProductGuid"] == first.guid


async def test_entries_must_lie_within_one_accounting_year(api: httpx.AsyncClient) -> None:
    within = await api.get(
        f"{ORG}/entries", params={"fromDate": "2025-01-01", "toDate": "2025-12-31"}
    )
    assert within.status_code == 200
    purchases = [e for e in within.json() if e["VoucherType"] == "Purchases"]
    assert {e["VoucherNumber"] for e in purchases} == {1, 2, 3, 4}
    primo = [e for e in within.json() if e["Type"] == "Primo"]
    bank_primo = next(p for p in primo if p["AccountNumber"] == 55000)
    assert bank_primo["Amount"] == 40000  # the share capital paid in 2024
    assert bank_primo["Date"] == "2025-01-01"

    crossing = await api.get(
        f"{ORG}/entries", params={"fromDate": "2025-06-01", "toDate": "2026-01-31"}
    )
    assert crossing.status_code == 400
    outside = await api.get(
        f"{ORG}/entries", params={"fromDate": "2019-01-01", "toDate": "2019-12-31"}
    )
    assert outside.status_code == 400
    missing = await api.get(f"{ORG}/entries", params={"fromDate": "2025-01-01"})
    assert missing.status_code == 400

    no_primo = await api.get(
        f"{ORG}/entries",
        params={
            "fromDate": "2025-01-01T00:00:00Z",
            "toDate": "2025-12-31T00:00:00Z",
            "includePrimo": "false",
        },
    )
    assert all(e["Type"] == "Normal" for e in no_primo.json())


async def test_entry_changes_window_is_at_most_31_days(api: httpx.AsyncClient) -> None:
    ok = await api.get(
        f"{ORG}/entries/changes",
        params={"changesFrom": "2025-02-01T00:00:00Z", "changesTo": "2025-03-04T00:00:00Z"},
    )
    assert ok.status_code == 200
    assert {e["VoucherNumber"] for e in ok.json() if e["Type"] == "Normal"} == {1}

    too_long = await api.get(
        f"{ORG}/entries/changes",
        params={"changesFrom": "2025-02-01T00:00:00Z", "changesTo": "2025-03-04T00:00:01Z"},
    )
    assert too_long.status_code == 400
    assert error_code(too_long) == 42
