"""The data-source API: what an admin may create, refusals with their codes, access, changes."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import bearer
from tests.datasources.conftest import ORG, YEAR_2026, World


async def test_wrong_accounting_year_is_refused_with_the_valid_years(world: World) -> None:
    response = await world.create(
        data_types=["entries"], accounting_year={"start": "2026-01-01", "end": "2026-06-30"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "accounting_year_unknown"
    for year in (
        "2024-01-01 to 2024-12-31",
        "2025-01-01 to 2025-12-31",
        "2026-01-01 to 2026-12-31",
    ):
        assert year in problem["detail"]
    assert "accounting_year" in problem["errors"]
    assert problem["valid_years"] == [
        {"name": str(y), "start": f"{y}-01-01", "end": f"{y}-12-31"} for y in (2024, 2025, 2026)
    ]
    # Dinero was asked (once), nothing was stored or queued.
    assert len(world.requests(f"/v1/{ORG}/accountingyears")) == 1
    listing = await world.api.get(world.base, headers=world.headers())
    assert listing.json() == {"items": []}
    queued = await world.sql(
        "SELECT count(*) FROM procrastinate_jobs WHERE args->>'reason' = 'created' "
        "AND queueing_lock LIKE 'data-source:%' AND status = 'todo'"
    )
    assert queued[0][0] == 0


async def test_the_rules_of_a_request_are_checked_before_asking_dinero(world: World) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"data_types": ["entries"]}, "accounting_year_required"),
        (
            {"data_types": ["contacts"], "accounting_year": YEAR_2026},
            "accounting_year_not_applicable",
        ),
        ({"data_types": ["contacts"], "default_date_field": "date"}, "date_field_not_available"),
        ({"data_types": ["ledger"]}, "validation_error"),
        ({"data_types": []}, "validation_error"),
        (
            {
                "data_types": ["entries"],
                "accounting_year": {"start": "2026-1-1", "end": "2026-12-31"},
            },
            "validation_error",
        ),
        (
            {
                "data_types": ["entries"],
                "accounting_year": {"start": "2026-12-31", "end": "2026-01-01"},
            },
            "validation_error",
        ),
        ({"data_types": ["contacts"], "refresh_minutes": 1}, "validation_error"),
    ]
    for body, code in cases:
        response = await world.create(**body)
        assert response.status_code == 422, body
        assert response.json()["code"] == code, (body, response.json())
    assert world.requests(f"/v1/{ORG}/accountingyears") == []


async def test_defaults_and_duplicates(world: World) -> None:
    created = await world.created(data_types=["products", "contacts", "products"])
    assert created["data_types"] == ["products", "contacts"]
    assert created["title"] == "Contacts, products"
    assert created["refresh_minutes"] == 60
    assert created["accounting_year"] is None
    assert created["default_date_field"] is None
    assert created["organization_id"] == ORG
    on_demand = await world.created(data_types=["contacts"], refresh_minutes=None)
    assert on_demand["refresh_minutes"] is None


async def test_members_read_admins_change_other_companies_see_nothing(world: World) -> None:
    member = await world.api.post(
        world.base, json={"data_types": ["contacts"]}, headers=world.headers("member")
    )
    assert member.status_code == 403
    assert member.json()["code"] == "admin_required"
    created = await world.created(data_types=["contacts"])
    path = f"{world.base}/{created['id']}"
    assert (await world.api.get(path, headers=world.headers("member"))).status_code == 200
    for method, suffix in (("PATCH", ""), ("DELETE", ""), ("POST", "/refresh")):
        refused = await world.api.request(
            method,
            path + suffix,
            json={} if method != "DELETE" else None,
            headers=world.headers("member"),
        )
        assert refused.status_code == 403, (method, suffix)

    other = "co-other-" + world.company
    world.companies.append(other)
    theirs = f"/v1/companies/{other}/data-sources/{created['id']}"
    assert (await world.api.get(theirs, headers=bearer(other))).status_code == 404
    assert (await world.api.get(path, headers=bearer(other))).status_code == 404
    listing = await world.api.get(f"/v1/companies/{other}/data-sources", headers=bearer(other))
    assert listing.json() == {"items": []}


async def test_a_company_without_dinero_cannot_create_one(world: World) -> None:
    await world.api.delete(
        f"/v1/companies/{world.company}/dinero/connection", headers=world.headers()
    )
    response = await world.create(data_types=["contacts"])
    assert response.status_code == 409
    assert response.json()["code"] == "not_connected"


async def test_patch_changes_settings_and_types(world: World) -> None:
    created = await world.created(data_types=["contacts", "products"], refresh_minutes=30)
    await world.run_jobs()
    path = f"{world.base}/{created['id']}"

    renamed = await world.api.patch(
        path,
        json={"title": "CRM", "refresh_minutes": None, "default_date_field": "updated_at"},
        headers=world.headers(),
    )
    assert renamed.status_code == 200, renamed.text
    body = renamed.json()
    assert body["title"] == "CRM"
    assert body["refresh_minutes"] is None
    assert body["next_refresh_at"] is None
    assert body["default_date_field"] == "updated_at"

    year = await world.api.patch(path, json={"accounting_year": YEAR_2026}, headers=world.headers())
    assert year.status_code == 422
    assert year.json()["code"] == "accounting_year_immutable"
    entries = await world.api.patch(path, json={"data_types": ["entries"]}, headers=world.headers())
    assert entries.json()["code"] == "accounting_year_required"

    swapped = await world.api.patch(
        path, json={"data_types": ["contacts", "invoices"]}, headers=world.headers()
    )
    assert swapped.status_code == 200, swapped.text
    progress = swapped.json()["progress"]
    assert set(progress) == {"contacts", "invoices"}
    assert progress["invoices"]["state"] == "pending"
    assert progress["contacts"]["state"] == "ready"
    # The products are gone with their type; the added type is imported by the queued run.
    remaining = await world.sql(
        "SELECT DISTINCT data_type FROM data_source_records WHERE data_source_id = :id",
        id=created["id"],
    )
    assert {row[0] for row in remaining} == {"contacts"}
    world.sandbox.clear_requests()
    await world.run_jobs()
    source = await world.get(created["id"])
    assert source["progress"]["invoices"]["records"] == 24
    assert source["status"] == "ready"
    # Contacts were refreshed (changes only), not read again in full.
    assert all("changesSince" in r.query for r in world.requests(f"/v1/{ORG}/contacts"))


async def test_delete_removes_the_data_source_and_its_records(world: World) -> None:
    created = await world.created(data_types=["contacts"])
    await world.run_jobs()
    path = f"{world.base}/{created['id']}"
    assert (await world.api.delete(path, headers=world.headers())).status_code == 204
    assert (await world.api.get(path, headers=world.headers())).status_code == 404
    assert (await world.api.delete(path, headers=world.headers())).status_code == 404
    rows = await world.sql(
        "SELECT count(*) FROM data_source_records WHERE data_source_id = :id", id=created["id"]
    )
    assert rows[0][0] == 0


async def test_a_data_source_deleted_before_its_import_imports_nothing(world: World) -> None:
    created = await world.created(data_types=["contacts"])
    path = f"{world.base}/{created['id']}"
    assert (await world.api.delete(path, headers=world.headers())).status_code == 204
    await world.run_jobs()  # the queued run finds nothing to do
    assert world.requests(f"/v1/{ORG}/contacts") == []
    assert await world.queued(created["id"]) == []


async def test_deleting_during_an_import_stops_it(world: World) -> None:
    created = await world.created(data_types=["contacts", "products"])
    contacts = f"/v1/{ORG}/contacts"
    world.gate.hold = lambda r: r.url.path == contacts and r.url.params.get("page") == "2"
    worker = asyncio.create_task(world.run_jobs())
    await asyncio.wait_for(world.gate.held.wait(), timeout=20)

    path = f"{world.base}/{created['id']}"
    deleted = await asyncio.wait_for(world.api.delete(path, headers=world.headers()), timeout=10)
    assert deleted.status_code == 204
    world.gate.release.set()
    await asyncio.wait_for(worker, timeout=20)

    # The run stopped at its next write: no further pages, no other type, nothing stored.
    assert [r.query["page"] for r in world.requests(contacts)] == ["0", "1", "2"]
    assert world.requests(f"/v1/{ORG}/products") == []
    rows = await world.sql(
        "SELECT count(*) FROM data_source_records WHERE data_source_id = :id", id=created["id"]
    )
    assert rows[0][0] == 0
    jobs = await world.sql(
        "SELECT status FROM procrastinate_jobs WHERE queueing_lock = :lock",
        lock=f"data-source:{created['id']}",
    )
    assert [row[0] for row in jobs] == ["succeeded"]
