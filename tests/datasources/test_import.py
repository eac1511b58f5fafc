"""Creating data sources and their first import, against the stand-in Dinero.

The demo organization has 30 contacts, 12 products, 24 invoices, 3 credit notes, 6 trade offers,
a chart of accounts and booked entries; with pages of 4 every paged type spans several pages.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

from dinero_sandbox.state import AccountingYear

from tests.datasources.conftest import (
    ALL_TYPES,
    ORG,
    PAGE,
    YEAR_2026,
    World,
    live,
    year_entries,
)


def _keys(items: list[dict[str, Any]], data_type: str) -> set[str]:
    return {item["key"] for item in items if item["data_type"] == data_type}


async def test_first_import_reads_every_type_page_by_page(world: World) -> None:
    created = await world.created(
        data_types=ALL_TYPES, accounting_year=YEAR_2026, default_date_field="date"
    )
    assert created["status"] == "importing"
    assert created["title"] == (
        "Contacts, deposit accounts, entries, entry accounts, invoices, products, sales, "
        "trade offers - accounting year 2026"
    )
    assert created["accounting_year"] == {
        "start": "2026-01-01",
        "end": "2026-12-31",
        "name": "2026",
    }
    assert {t: p["state"] for t, p in created["progress"].items()} == dict.fromkeys(
        ALL_TYPES, "pending"
    )
    assert len(await world.queued(created["id"])) == 1

    await world.run_jobs()

    source = await world.get(created["id"])
    assert source["status"] == "ready", source
    assert source["error"] is None
    assert source["last_refreshed_at"] is not None
    sandbox = world.sandbox
    books = sandbox.org(ORG)
    expected = {
        "contacts": live(sandbox, "contacts"),
        "products": live(sandbox, "products"),
        "invoices": live(sandbox, "invoices"),
        "sales": live(sandbox, "invoices", "creditnotes"),
        "trade_offers": live(sandbox, "tradeoffers"),
        "entries": year_entries(sandbox, 2026),
        "entry_accounts": {str(n) for n in books.accounts},
        "deposit_accounts": {str(a.number) for a in books.deposit_accounts()},
    }
    progress = source["progress"]
    for data_type, keys in expected.items():
        assert progress[data_type]["state"] == "ready", data_type
        assert progress[data_type]["records"] == len(keys), data_type
    assert source["records"] == sum(len(keys) for keys in expected.values())

    items = await world.all_records(created["id"])
    assert Counter(item["data_type"] for item in items) == {
        t: len(keys) for t, keys in expected.items()
    }
    for data_type, keys in expected.items():
        assert _keys(items, data_type) == keys, data_type

    # Paged lists were read page by page at Dinero's page size, nothing twice.
    contact_pages = world.requests(f"/v1/{ORG}/contacts")
    assert [r.query["page"] for r in contact_pages] == [
        str(n) for n in range(-(-len(expected["contacts"]) // PAGE))
    ]
    assert all(r.query["pageSize"] == str(PAGE) for r in contact_pages)
    # Entries: the year in windows inside it, never crossing it; no change log yet.
    windows = [
        (r.query["fromDate"], r.query["toDate"]) for r in world.requests(f"/v1/{ORG}/entries")
    ]
    assert windows[0][0] == "2026-01-01"
    assert windows[-1][1] == "2026-12-31"
    assert len(windows) > 1
    assert world.requests(f"/v1/{ORG}/entries/changes") == []


async def test_an_entry_keeps_dinero_s_fields_and_exact_amounts(world: World) -> None:
    created = await world.created(data_types=["entries", "invoices"], accounting_year=YEAR_2026)
    await world.run_jobs()
    invoice = next(iter(world.sandbox.records(ORG, "invoices")))
    response = await world.records(created["id"], data_type="invoices", limit=1000)
    assert response.status_code == 200
    # Amounts are stored and answered exactly as Dinero sent them (read here as Decimal).
    page = json.loads(response.text, parse_float=Decimal)
    item = next(i for i in page["items"] if i["key"] == invoice.guid)
    assert item["data"]["TotalInclVat"] == invoice.data["TotalInclVat"]
    assert item["data"]["TotalExclVatInDkk"] == invoice.data["TotalExclVatInDkk"]
    assert item["data"]["ContactGuid"] == invoice.data["ContactGuid"]
    assert item["data"]["Date"] == invoice.data["Date"]
    entries = await world.all_records(created["id"], data_type="entries")
    one = entries[0]
    assert set(one["data"]) >= {"EntryGuid", "AccountNumber", "Amount", "Date", "VoucherNumber"}
    assert one["key"] == one["data"]["EntryGuid"]


async def test_a_year_with_no_entries_imports_nothing_and_is_ready(world: World) -> None:
    # 2023 precedes the first booking (2024): no entries and no opening balances (primo).
    world.sandbox.org(ORG).years[2023] = AccountingYear(2023)
    created = await world.created(
        title="Accounting Year 2023",
        data_types=["entries"],
        accounting_year={"start": "2023-01-01", "end": "2023-12-31"},
    )
    assert created["title"] == "Accounting Year 2023"
    await world.run_jobs()
    source = await world.get(created["id"])
    assert source["status"] == "ready"
    assert source["progress"]["entries"] == {
        "state": "ready",
        "records": 0,
        "deleted_records": 0,
        "refreshed_at": source["progress"]["entries"]["refreshed_at"],
    }
    windows = [
        (r.query["fromDate"], r.query["toDate"]) for r in world.requests(f"/v1/{ORG}/entries")
    ]
    assert windows[0] == ("2023-01-01", "2023-01-31")
    assert windows[-1][1] == "2023-12-31"
    # An empty month widens the next window: the year takes a handful of requests, not twelve.
    assert len(windows) <= 3
    assert (await world.records(created["id"])).json()["items"] == []
