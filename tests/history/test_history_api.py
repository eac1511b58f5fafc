"""Mapping and category edits kept as history: who, when, from what to what, and since when.

End to end against the stand-in Dinero: the chart sync writes what Dinero changed, the admins'
edits what they changed, each with the token's `sub`, and the two history reads page by cursor.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import bearer
from tests.sandboxed import (
    BANK,
    CARD,
    OUT_OF_POCKET,
    PRO_ORG,
    Service,
    category_of,
    connect_with_api_key,
    patch_category,
    put_settings,
    run_jobs,
    service_fixture,
    synced_company,
)

service = service_fixture()


@pytest.fixture
async def company(service: Service) -> str:
    return await synced_company(service)


async def history(
    service: Service, company: str, path: str = "dinero/settings/history", **params: Any
) -> list[dict[str, Any]]:
    """Every change, following the cursors."""
    changes: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await service.client.get(
            f"/v1/companies/{company}/{path}", params=query, headers=bearer(company, "member")
        )
        assert response.status_code == 200, response.text
        changes.extend(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return changes


async def test_mapping_changes_name_the_setting_its_values_and_the_admin(
    service: Service, company: str
) -> None:
    since = datetime.now(UTC)
    assert (await put_settings(service, company, "alice", deposit_account=CARD)).status_code == 200
    bob = await put_settings(
        service, company, "bob", deposit_account=BANK, out_of_pocket_account=OUT_OF_POCKET
    )
    assert bob.status_code == 200
    same = await put_settings(
        service, company, "carol", deposit_account=BANK, out_of_pocket_account=OUT_OF_POCKET
    )
    refused = await put_settings(service, company, "dave", deposit_account=2000)
    assert (same.status_code, refused.status_code) == (200, 422)

    changes = await history(service, company, since=since.isoformat(), limit=1)

    assert [
        (c["kind"], c["setting"], c["changes"], c["changed_by"], c["source"]) for c in changes
    ] == [
        (
            "mapping",
            "deposit_account",
            {"deposit_account": {"from": None, "to": CARD}},
            "alice",
            "admin",
        ),
        (
            "mapping",
            "deposit_account",
            {"deposit_account": {"from": CARD, "to": BANK}},
            "bob",
            "admin",
        ),
        (
            "mapping",
            "out_of_pocket_account",
            {"out_of_pocket_account": {"from": None, "to": OUT_OF_POCKET}},
            "bob",
            "admin",
        ),
    ]
    assert changes[-1]["state"] == {
        "deposit_account": BANK,
        "out_of_pocket_account": OUT_OF_POCKET,
        "reimbursement_account": None,
        "top_up_account": None,
        "books_closed_through": None,
        "closed_period_policy": "hold",
    }
    assert [c["category_id"] for c in changes] == [None, None, None]
    moments = [datetime.fromisoformat(c["changed_at"]) for c in changes]
    assert since <= moments[0] <= moments[1] <= moments[2]

    later = await history(service, company, since=changes[1]["changed_at"])
    assert [c["id"] for c in later] == [changes[1]["id"], changes[2]["id"]]


async def test_a_category_keeps_what_dinero_and_the_admins_changed(
    service: Service, company: str
) -> None:
    category = (await category_of(service, company, 2000))["id"]
    response = await patch_category(
        service, company, category, "erin", name="Indkøb", tax_code="none"
    )
    assert response.status_code == 200, response.text
    unchanged = await patch_category(service, company, category, "frank", name="Indkøb")
    assert unchanged.status_code == 200
    service.sandbox.org(PRO_ORG).accounts[2000].name = "Varekøb med moms"
    service.sandbox.hide_account(PRO_ORG, 2000)
    synced = await service.client.post(
        f"/v1/companies/{company}/dinero/sync", headers=bearer(company)
    )
    assert synced.status_code == 202
    await run_jobs(service, ["chart"])

    changes = await history(service, company, f"categories/{category}/history")

    assert [(c["source"], c["changed_by"], c["changes"]) for c in changes] == [
        (
            "dinero_sync",
            None,
            {
                "account_number": {"from": None, "to": 2000},
                "account_name": {"from": None, "to": "Varekøb m/moms"},
                "tax_code": {"from": None, "to": "I25"},
                "hidden": {"from": None, "to": False},
                "active": {"from": None, "to": True},
            },
        ),
        (
            "admin",
            "erin",
            {"name": {"from": None, "to": "Indkøb"}, "tax_code": {"from": "I25", "to": "none"}},
        ),
        (
            "dinero_sync",
            None,
            {
                "account_name": {"from": "Varekøb m/moms", "to": "Varekøb med moms"},
                "active": {"from": True, "to": False},
                "inactive_reason": {"from": None, "to": "hidden_in_dinero"},
            },
        ),
    ]
    assert changes[-1]["state"] == {
        "account_number": 2000,
        "account_name": "Varekøb med moms",
        "name": "Indkøb",
        "tax_code": "none",
        "hidden": False,
        "active": False,
        "inactive_reason": "hidden_in_dinero",
    }
    assert {c["category_id"] for c in changes} == {category}
    assert {c["kind"] for c in changes} == {"category"}
    # The company's history holds the same rows, with every other category's first one.
    everything = await history(service, company, limit=200)
    assert [c for c in everything if c["category_id"] == category] == changes


async def test_a_sync_that_changes_nothing_adds_no_history(service: Service, company: str) -> None:
    before = await history(service, company, limit=200)
    synced = await service.client.post(
        f"/v1/companies/{company}/dinero/sync", headers=bearer(company)
    )
    assert synced.status_code == 202
    await run_jobs(service, ["chart"])

    assert await history(service, company, limit=200) == before
    assert len(before) == 256  # one per purchase account, from the first sync


@pytest.mark.parametrize(
    ("params", "status", "code", "field"),
    [
        ({"since": "yesterday"}, 422, "validation_error", "since"),
        ({"since": "2026-11-03T10:00:00"}, 422, "validation_error", "since"),  # no offset
        ({"since": "1764547200"}, 422, "validation_error", "since"),  # Unix seconds, not RFC 3339
        ({"cursor": "bm90LWEtY3Vyc29y"}, 400, "invalid_cursor", "cursor"),
        ({"cursor": "WyIyMDI2LTExLTAzVDEwOjAwOjAwIiwxXQ"}, 400, "invalid_cursor", "cursor"),
        ({"limit": "0"}, 422, "validation_error", "limit"),
    ],
)
async def test_bad_queries_are_problems(
    service: Service, company: str, params: dict[str, str], status: int, code: str, field: str
) -> None:
    response = await service.client.get(
        f"/v1/companies/{company}/dinero/settings/history",
        params=params,
        headers=bearer(company, "member"),
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert field in str(response.json()["errors"])


async def test_another_companys_category_has_no_history_here(
    service: Service, company: str
) -> None:
    other = f"co-{uuid.uuid4().hex[:10]}"
    await connect_with_api_key(service.client, other)
    await run_jobs(service, ["chart"])
    theirs = (await category_of(service, other, 2000))["id"]

    response = await service.client.get(
        f"/v1/companies/{company}/categories/{theirs}/history", headers=bearer(company, "member")
    )

    assert response.status_code == 404
    assert response.json()["code"] == "category_not_found"
