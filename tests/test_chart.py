"""The chart of accounts from Dinero: categories, tax codes, deposit accounts and mappings.

End to end against the stand-in Dinero, with the sync running as a real background job.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest
from dinero_sandbox import SandboxConfig
from sqlalchemy import text

from app.chart.sync import sync_chart
from app.db import create_engine
from app.services import Services
from tests.conftest import bearer
from tests.sandboxed import (
    PRO_ORG,
    Service,
    connect_with_api_key,
    put_settings,
    run_jobs,
    sandboxed_service,
)
from tests.stored import store_item

PURCHASE_ACCOUNTS = 256  # purchase accounts (2000-9399) in the sandbox's seeded chart
VISIBLE_DEPOSIT = [55000, 55010, 55020, 55030, 55040, 55050, 55060, 55070, 55080]


@pytest.fixture(scope="module")
def chart_db(make_migrated_database: Callable[[], str]) -> str:
    url = make_migrated_database()
    return url


@pytest.fixture
async def service(chart_db: str) -> AsyncIterator[Service]:
    async with sandboxed_service(chart_db) as svc:
        yield svc


@pytest.fixture
def company() -> str:
    return f"co-{uuid.uuid4().hex[:10]}"


async def connected(service: Service, company: str) -> None:
    """Connect with the API key and let the first sync (enqueued by connecting) run."""
    await connect_with_api_key(service.client, company)
    await run_jobs(service, ["chart"])


async def categories(service: Service, company: str, **params: Any) -> dict[int, dict[str, Any]]:
    response = await service.client.get(
        f"/v1/companies/{company}/categories", params=params, headers=bearer(company, "member")
    )
    assert response.status_code == 200, response.text
    return {c["account_number"]: c for c in response.json()}


async def resync(service: Service, company: str) -> dict[str, Any]:
    response = await service.client.post(
        f"/v1/companies/{company}/dinero/sync", headers=bearer(company)
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    await run_jobs(service, ["chart"])
    return await sync_state(service, company)


async def sync_state(service: Service, company: str) -> dict[str, Any]:
    """`GET …/dinero/sync`, as the admin sees it."""
    response = await service.client.get(
        f"/v1/companies/{company}/dinero/sync", headers=bearer(company)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def connection_state(service: Service, company: str) -> dict[str, Any]:
    """`GET …/dinero/connection`, as the admin sees it."""
    response = await service.client.get(
        f"/v1/companies/{company}/dinero/connection", headers=bearer(company)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def run_sql(service: Service, company: str, statement: str, **params: Any) -> Any:
    """Run `statement` (`:company` bound to the company, and `params`) in a transaction of its
    own, behind the API's back; a SELECT's first value (None: no rows)."""
    shared: Services = service.app.state.services
    async with shared.sessionmaker() as session, session.begin():
        result = await session.execute(text(statement), {"company": company, **params})
        return result.scalar() if statement.startswith("SELECT") else None


async def test_connecting_syncs_the_chart_by_itself(service: Service, company: str) -> None:
    await connect_with_api_key(service.client, company)
    before = await service.client.get(
        f"/v1/companies/{company}/dinero/sync", headers=bearer(company)
    )
    assert before.json()["status"] == "queued"
    service.sandbox.clear_requests()

    await run_jobs(service, ["chart"])

    reads = sorted(r.path for r in service.sandbox.requests)
    assert reads == [
        f"/v1/{PRO_ORG}/accountingyears",
        f"/v1/{PRO_ORG}/accounts/deposit",
        f"/v1/{PRO_ORG}/accounts/entry",
        f"/v1/{PRO_ORG}/accounts/purchase",
        f"/v1/{PRO_ORG}/vatTypes",
    ]
    cats = await categories(service, company)
    assert len(cats) == PURCHASE_ACCOUNTS
    assert cats[2000]["account_name"] == "Varekøb m/moms"
    assert cats[2000]["name"] == "Varekøb m/moms"
    assert cats[2000]["tax_code"] == "I25"
    assert cats[2010]["tax_code"] is None
    assert all(c["active"] and not c["hidden"] for c in cats.values())

    codes = await service.client.get(
        f"/v1/companies/{company}/tax-codes", headers=bearer(company, "member")
    )
    by_code = {c["code"]: c for c in codes.json()}
    assert by_code["I25"] == {"code": "I25", "name": "Dansk købsmoms", "rate": "0.2500"}
    assert by_code["none"]["rate"] == "0.0000"
    assert {"REP", "HREP", "IEUY", "U25"} <= set(by_code)

    deposits = await service.client.get(
        f"/v1/companies/{company}/deposit-accounts", headers=bearer(company, "member")
    )
    assert [d["account_number"] for d in deposits.json()] == VISIBLE_DEPOSIT
    assert deposits.json()[0]["name"] == "Bankkonto"

    connection = await service.client.get(
        f"/v1/companies/{company}/dinero/connection", headers=bearer(company)
    )
    assert connection.json()["last_synced_at"] is not None
    state = await service.client.get(
        f"/v1/companies/{company}/dinero/sync", headers=bearer(company)
    )
    assert state.json()["status"] == "succeeded"
    assert state.json()["changes"] > PURCHASE_ACCOUNTS


async def test_resync_follows_renames_hides_deletions_and_new_accounts(
    service: Service, company: str
) -> None:
    await connected(service, company)
    cats = await categories(service, company)
    renamed = await service.client.patch(
        f"/v1/companies/{company}/categories/{cats[2000]['id']}",
        json={"name": "Indkøb"},
        headers=bearer(company),
    )
    assert renamed.status_code == 200
    books = service.sandbox.org(PRO_ORG)
    books.accounts[2000].name = "Varekøb med moms"
    service.sandbox.hide_account(PRO_ORG, 2020)
    del books.accounts[2030]
    service.sandbox.add_account(PRO_ORG, 2999, "Kaffe til kontoret", vat_code="I25")
    service.sandbox.add_vat_type(PRO_ORG, "I25D", "Delvis købsmoms", "0.125")

    state = await resync(service, company)

    assert state["status"] == "succeeded"
    cats = await categories(service, company)
    assert cats[2000]["name"] == "Indkøb"
    assert cats[2000]["custom_name"] == "Indkøb"
    assert cats[2000]["account_name"] == "Varekøb med moms"
    assert (cats[2020]["active"], cats[2020]["inactive_reason"]) == (False, "hidden_in_dinero")
    assert (cats[2030]["active"], cats[2030]["inactive_reason"]) == (False, "removed_from_dinero")
    assert cats[2999]["active"]
    assert cats[2999]["tax_code"] == "I25"
    assert len(cats) == PURCHASE_ACCOUNTS + 1  # never deleted
    visible = await categories(service, company, visible_only="true")
    assert 2020 not in visible
    assert 2030 not in visible
    assert 2999 in visible
    codes = await service.client.get(
        f"/v1/companies/{company}/tax-codes", headers=bearer(company, "member")
    )
    assert {"code": "I25D", "name": "Delvis købsmoms", "rate": "0.1250"} in codes.json()

    # Shown again in Dinero: the category comes back with the admin's name.
    service.sandbox.hide_account(PRO_ORG, 2020, hidden=False)
    await resync(service, company)
    cats = await categories(service, company)
    assert cats[2020]["active"]
    assert cats[2020]["inactive_reason"] is None
    assert cats[2000]["name"] == "Indkøb"


async def last_category_update(shared: Services, company: str) -> datetime | None:
    """When the company's categories were last written (`max(updated_at)`)."""
    async with shared.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT max(updated_at) FROM categories WHERE company_id = :c"), {"c": company}
        )
        stamp: datetime | None = result.scalar_one()
        return stamp


async def test_a_second_sync_with_nothing_changed_writes_nothing(
    service: Service, company: str
) -> None:
    await connected(service, company)
    shared: Services = service.app.state.services
    stamp = await last_category_update(shared, company)

    state = await resync(service, company)

    assert state["status"] == "succeeded"
    assert state["changes"] == 0
    after = await last_category_update(shared, company)
    assert after == stamp


async def test_the_same_chart_again_is_compared_at_least_once_a_day(
    service: Service, company: str
) -> None:
    """A resync that gets the chart it compared last (same digest) reads and compares nothing;
    a chart compared more than a day ago is compared again, so a stored row that differs from
    Dinero's (here: changed behind the sync's back) is put right by then at the latest."""
    await connected(service, company)

    async def sql(statement: str) -> Any:
        return await run_sql(service, company, statement)

    where = "WHERE company_id = :company AND account_number = 2000"
    await sql(f"UPDATE dinero_accounts SET name = 'Changed meanwhile' {where}")  # noqa: S608
    assert (await resync(service, company))["changes"] == 0  # same digest: not compared
    assert await sql(f"SELECT name FROM dinero_accounts {where}") == "Changed meanwhile"  # noqa: S608

    await sql(
        "UPDATE chart_syncs SET compared_at = now() - interval '25 hours' "
        "WHERE company_id = :company"
    )
    assert (await resync(service, company))["changes"] == 1
    assert await sql(f"SELECT name FROM dinero_accounts {where}") != "Changed meanwhile"  # noqa: S608

    # A change in Dinero changes the digest: the next sync compares and stores it at once.
    service.sandbox.hide_account(PRO_ORG, 2010)
    assert (await resync(service, company))["changes"] == 2  # the account, its category
    assert (await categories(service, company, include_inactive="true"))[2010]["active"] is False


async def test_a_failed_sync_changes_nothing_and_says_why(service: Service, company: str) -> None:
    await connected(service, company)
    service.sandbox.org(PRO_ORG).accounts[2000].name = "Omdøbt"
    service.sandbox.add_fault(kind="error", path=f"/v1/{PRO_ORG}/vatTypes", status=503)

    state = await resync(service, company)

    assert state["status"] == "failed"
    assert state["error_code"] == "chart_sync_failed"
    assert "503" in state["error_message"] or "unavailable" in state["error_message"].lower()
    cats = await categories(service, company)
    assert cats[2000]["account_name"] == "Varekøb m/moms"
    connection = await connection_state(service, company)
    assert connection["status"] == "connected"
    assert connection["problem_code"] == "chart_sync_failed"
    assert "chart sync failed" in connection["problem"]

    service.sandbox.clear_faults()
    state = await resync(service, company)
    assert state["status"] == "succeeded"
    cats = await categories(service, company)
    assert cats[2000]["account_name"] == "Omdøbt"
    assert (await connection_state(service, company))["problem_code"] is None


async def test_a_sync_that_succeeds_clears_only_its_own_problem(
    service: Service, company: str
) -> None:
    """A problem of the connection that no sync caused (here: Dinero asking to approve again)
    stays after a sync succeeds; the sync's own is cleared, and the last sync time set."""
    await connected(service, company)

    async def set_problem(code: str, message: str) -> None:
        await run_sql(
            service,
            company,
            "UPDATE dinero_connections SET problem_code = :code, problem_message = :msg, "
            "last_synced_at = NULL WHERE company_id = :company",
            code=code,
            msg=message,
        )

    await set_problem("reauth_required", "Approve the connection in Dinero again.")
    assert (await resync(service, company))["status"] == "succeeded"
    kept = await connection_state(service, company)
    assert kept["problem_code"] == "reauth_required"
    assert kept["problem"] == "Approve the connection in Dinero again."
    assert kept["last_synced_at"] is not None

    await set_problem("chart_sync_failed", "The last chart sync failed: 503")
    assert (await resync(service, company))["status"] == "succeeded"
    cleared = await connection_state(service, company)
    assert cleared["problem_code"] is None
    assert cleared["problem"] is None
    assert cleared["last_synced_at"] is not None


async def test_settings_accept_only_synced_deposit_accounts(service: Service, company: str) -> None:
    await connected(service, company)
    url = f"/v1/companies/{company}/dinero/settings"

    empty = await service.client.get(url, headers=bearer(company, "member"))
    assert empty.status_code == 200
    assert empty.json()["exports"]["card_expense"] == {
        "ready": False,
        "missing": ["deposit_account"],
        "message": "Map the deposit account (the company card / wallet).",
    }

    refused = await put_settings(
        service,
        company,
        deposit_account=2000,
        out_of_pocket_account=55090,
        reimbursement_account=55000,
    )
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["code"] == "account_not_deposit"
    assert set(problem["errors"]) == {"deposit_account", "out_of_pocket_account"}
    assert "2000 is not a deposit account" in problem["errors"]["deposit_account"]
    assert "55000 Bankkonto" in problem["errors"]["deposit_account"]
    unchanged = await service.client.get(url, headers=bearer(company))
    assert unchanged.json()["reimbursement_account"] is None  # nothing half-written

    saved = await put_settings(
        service,
        company,
        deposit_account=55030,
        out_of_pocket_account=55080,
        reimbursement_account=55000,
    )
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["deposit_account"] == 55030
    assert body["top_up_account"] is None
    assert all(r["ready"] for r in body["exports"].values())  # top-ups use the reimbursement one
    assert body["problems"] == []

    # The card account is hidden in Dinero: the admin sees it and card exports are not ready.
    service.sandbox.hide_account(PRO_ORG, 55030)
    await resync(service, company)
    after = (await service.client.get(url, headers=bearer(company))).json()
    assert after["exports"]["card_expense"]["ready"] is False
    assert after["exports"]["card_expense"]["missing"] == ["deposit_account"]
    assert after["exports"]["out_of_pocket_expense"]["ready"] is True
    assert [(p["code"], p["field"], p["account_number"]) for p in after["problems"]] == [
        ("mapped_account_unavailable", "deposit_account", 55030)
    ]


async def test_category_edits_are_checked(service: Service, company: str) -> None:
    await connected(service, company)
    cats = await categories(service, company)
    url = f"/v1/companies/{company}/categories/{cats[2000]['id']}"

    unknown = await service.client.patch(url, json={"tax_code": "X99"}, headers=bearer(company))
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "tax_code_unknown"
    assert "I25" in unknown.json()["errors"]["tax_code"]

    changed = await service.client.patch(
        url, json={"tax_code": "none", "hidden": True, "name": "  Varer  "}, headers=bearer(company)
    )
    assert changed.status_code == 200
    assert changed.json() | {"id": None} == {
        "id": None,
        "account_number": 2000,
        "account_name": "Varekøb m/moms",
        "name": "Varer",
        "custom_name": "Varer",
        "tax_code": "none",
        "active": True,
        "inactive_reason": None,
        "hidden": True,
    }
    reset = await service.client.patch(url, json={"name": None}, headers=bearer(company))
    assert reset.json()["name"] == "Varekøb m/moms"
    extra = await service.client.patch(url, json={"colour": "red"}, headers=bearer(company))
    assert extra.status_code == 422
    missing = await service.client.patch(
        f"/v1/companies/{company}/categories/{uuid.uuid4()}", json={}, headers=bearer(company)
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "category_not_found"


async def test_members_read_and_admins_change(service: Service, company: str) -> None:
    await connected(service, company)
    cats = await categories(service, company)
    member = bearer(company, "member")
    base = f"/v1/companies/{company}"
    for method, path, body in [
        ("POST", f"{base}/dinero/sync", None),
        ("PATCH", f"{base}/categories/{cats[2000]['id']}", {"hidden": True}),
        ("PUT", f"{base}/dinero/settings", {"deposit_account": 55000}),
    ]:
        refused = await service.client.request(method, path, json=body, headers=member)
        assert refused.status_code == 403, path
        assert refused.json()["code"] == "admin_required"
    for path in ("categories", "tax-codes", "deposit-accounts", "dinero/settings", "dinero/sync"):
        assert (await service.client.get(f"{base}/{path}", headers=member)).status_code == 200
        other = await service.client.get(f"{base}/{path}", headers=bearer("someone-else"))
        assert other.status_code == 404
    # Another company's category id is not found from this company.
    foreign = await service.client.patch(
        f"/v1/companies/someone-else/categories/{cats[2000]['id']}",
        json={"hidden": True},
        headers=bearer("someone-else"),
    )
    assert foreign.status_code == 404
    assert (await categories(service, company))[2000]["hidden"] is False


async def test_sync_needs_a_connection(service: Service, company: str) -> None:
    response = await service.client.post(
        f"/v1/companies/{company}/dinero/sync", headers=bearer(company)
    )
    assert response.status_code == 409
    assert response.json()["code"] == "not_connected"


async def test_a_sync_that_finds_the_connection_gone_says_so(
    service: Service, company: str
) -> None:
    """A sync asked for, then the connection deleted before the sync ran: the sync records why
    it did not run (and when it tried), and asks Dinero for nothing."""
    await connected(service, company)
    before = await sync_state(service, company)
    queued = await service.client.post(
        f"/v1/companies/{company}/dinero/sync", headers=bearer(company)
    )
    assert queued.status_code == 202
    deleted = await service.client.delete(
        f"/v1/companies/{company}/dinero/connection", headers=bearer(company)
    )
    assert deleted.status_code == 204
    service.sandbox.clear_requests()

    await run_jobs(service, ["chart"])

    state = await sync_state(service, company)
    assert state["status"] == "failed"
    assert state["error_code"] == "not_connected"
    tried = datetime.fromisoformat(state["started_at"])
    assert tried > datetime.fromisoformat(before["started_at"])
    assert service.sandbox.requests == []


async def test_two_syncs_requested_at_once_run_once(chart_db: str, company: str) -> None:
    async with sandboxed_service(chart_db, sandbox_config=SandboxConfig(latency_ms=150)) as svc:
        await connect_with_api_key(svc.client, company)
        twice = await asyncio.gather(
            *(
                svc.client.post(f"/v1/companies/{company}/dinero/sync", headers=bearer(company))
                for _ in range(2)
            )
        )
        assert [r.status_code for r in twice] == [202, 202]
        engine = create_engine(chart_db)
        try:
            async with engine.connect() as conn:
                queued = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM procrastinate_jobs "
                            "WHERE task_name = 'chart.sync' AND status = 'todo' "
                            "AND args->>'company_id' = :c"
                        ),
                        {"c": company},
                    )
                ).scalar_one()
        finally:
            await engine.dispose()
        assert queued == 1

        # Two workers starting a sync at the same moment: one runs, the other stands down.
        shared: Services = svc.app.state.services
        outcomes = await asyncio.gather(sync_chart(shared, company), sync_chart(shared, company))
        assert sorted(o.status for o in outcomes) == ["already_running", "succeeded"]
        assert len(svc.sandbox.find_requests("GET", f"/v1/{PRO_ORG}/vatTypes")) == 1


async def test_a_deactivated_category_still_used_by_a_queued_export_is_a_problem(
    service: Service, company: str
) -> None:
    await connected(service, company)
    cats = await categories(service, company)
    shared: Services = service.app.state.services
    async with shared.sessionmaker() as session, session.begin():
        line = {"category_id": cats[2800]["id"], "amount": 1000, "dkk_amount": 1000}
        await store_item(session, company, 1000, external_id="exp_1", lines=[line])
    service.sandbox.hide_account(PRO_ORG, 2800)

    await resync(service, company)

    settings = await service.client.get(
        f"/v1/companies/{company}/dinero/settings", headers=bearer(company, "member")
    )
    problems = settings.json()["problems"]
    assert [(p["code"], p["account_number"], p["category_id"]) for p in problems] == [
        ("category_inactive_in_use", 2800, cats[2800]["id"])
    ]
    assert "hidden in Dinero" in problems[0]["message"]
    assert "1 queued export item" in problems[0]["message"]
