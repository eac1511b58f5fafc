"""The whole flow through the production shape: every job runs in a separate `worker` process.

The API (`serve --no-worker`), two workers and the stand-in Dinero are separate processes on
one PostgreSQL; the test is the expense platform and the finance admin, over HTTP, and reads
what Dinero holds through the sandbox's own inspection API.
"""

from __future__ import annotations

import base64
import html
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.e2e.conftest import FOLLOW_UP_SECONDS
from tests.e2e.platform import Platform
from tests.e2e.stack import API_KEY, PRO_ORG, Stack, eventually, new_company
from tests.receipts.samples import jpeg

CARD, OUT_OF_POCKET, BANK = 55030, 55080, 55000
EXPENSE_ACCOUNT = 2800


def item(external_id: str, kind: str, value: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "type": kind,
        "date": "2026-11-03",
        "description": f"{kind} {external_id}",
        "amount": {"value": value, "currency": "DKK"},
    }
    if kind.endswith("_expense"):
        body["lines"] = [{"account_number": EXPENSE_ACCOUNT, "tax_code": "I25", "amount": value}]
        body["employee"] = {"id": "emp_7", "name": "Mette Jensen"}
    return body | extra


def receipt() -> dict[str, Any]:
    return {
        "content_base64": base64.b64encode(jpeg((320, 240))).decode(),
        "filename": "taxa.jpg",
        "content_type": "image/jpeg",
    }


def connect_and_map(stack: Stack, company: str) -> httpx.Client:
    """Connect by API key, wait for the chart the worker syncs, map the accounts."""
    api = stack.client(company)
    answer = api.put(
        f"/v1/companies/{company}/dinero/connection",
        json={"organization_id": PRO_ORG, "method": "api_key", "api_key": API_KEY},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "connected"
    wait_for_chart(api, company)
    answer = api.put(
        f"/v1/companies/{company}/dinero/settings",
        json={
            "deposit_account": CARD,
            "out_of_pocket_account": OUT_OF_POCKET,
            "reimbursement_account": BANK,
            "top_up_account": BANK,
        },
    )
    assert answer.status_code == 200, answer.text
    return api


def wait_for_chart(api: httpx.Client, company: str) -> list[dict[str, Any]]:
    def synced() -> list[dict[str, Any]]:
        listed = api.get(f"/v1/companies/{company}/categories")
        assert listed.status_code == 200, listed.text
        found: list[dict[str, Any]] = listed.json()
        return found

    categories: list[dict[str, Any]] = eventually(synced, what="the chart synced by a worker")
    return categories


def items_by_external_id(api: httpx.Client, company: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        page = api.get(f"/v1/companies/{company}/export-items", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        for entry in body["items"]:
            found[entry["external_id"]] = entry
        cursor = body.get("next_cursor")
        if not cursor:
            return found


def wait_for_statuses(
    api: httpx.Client, company: str, wanted: dict[str, str], timeout: float = 60
) -> dict[str, dict[str, Any]]:
    def reached() -> dict[str, dict[str, Any]] | None:
        items = items_by_external_id(api, company)
        now = {k: items.get(k, {}).get("status") for k in wanted}
        return items if now == wanted else None

    result: dict[str, dict[str, Any]] = eventually(
        reached, timeout=timeout, every=0.25, what=f"statuses {wanted}"
    )
    return result


def test_every_item_type_exports_and_follow_up_notices_godkend_and_deletion(
    stack: Stack, platform: Platform
) -> None:
    company = new_company()
    api = connect_and_map(stack, company)
    dinero = stack.dinero()

    answer = api.post(
        f"/v1/companies/{company}/exports",
        json={
            "items": [
                item("card-1", "card_expense", 24500, receipts=[receipt()]),
                item("card-2", "card_expense", 9900),
                item("oop-1", "out_of_pocket_expense", 31250, receipts=[receipt()]),
                item("reimb-1", "reimbursement", 31250),
                item("topup-1", "wallet_top_up", 500000),
            ]
        },
    )
    assert answer.status_code == 202, answer.text
    export_id = answer.json()["id"]

    items = wait_for_statuses(
        api,
        company,
        {
            "card-1": "awaiting_approval",
            "card-2": "awaiting_approval",
            "oop-1": "awaiting_approval",
            "reimb-1": "booked",
            "topup-1": "booked",
        },
    )

    # What Dinero holds: three drafts, each with its file, and two booked ledger items.
    vouchers = dinero.get(f"/organizations/{PRO_ORG}/vouchers/purchase").json()
    ours = {v["Guid"]: v for v in vouchers if v["Guid"] in _guids(items)}
    assert len(ours) == 3
    assert all(v["Status"] == "Draft" for v in ours.values())
    by_item = {k: ours[items[k]["dinero"]["voucher_guid"]] for k in ("card-1", "card-2", "oop-1")}
    assert by_item["card-1"]["DepositAccountNumber"] == CARD
    assert by_item["oop-1"]["DepositAccountNumber"] == OUT_OF_POCKET
    files = {f["FileGuid"]: f for f in dinero.get(f"/organizations/{PRO_ORG}/files").json()}
    for key, voucher in by_item.items():  # every draft carries its file (a note when none)
        assert voucher["FileGuid"] in files, key
        assert files[voucher["FileGuid"]]["Name"].startswith(key)
    ledger = dinero.get(f"/organizations/{PRO_ORG}/ledgeritems").json()
    ledger_ids = {str(items[k]["dinero"]["ledger_item_id"]) for k in ("reimb-1", "topup-1")}
    booked = [li for li in ledger if str(li.get("Id")) in ledger_ids]
    assert len(booked) == 2, ledger
    export = api.get(f"/v1/companies/{company}/exports/{export_id}")
    assert export.status_code == 200
    assert {i["external_id"] for i in export.json()["items"]} == set(items)

    # The accountant approves one draft and deletes another in Dinero.
    approved_at = time.monotonic()
    approve = dinero.post(
        f"/organizations/{PRO_ORG}/vouchers/purchase/"
        f"{items['card-1']['dinero']['voucher_guid']}/approve",
        json={},
    )
    assert approve.status_code == 200, approve.text
    delete = dinero.post(
        f"/organizations/{PRO_ORG}/vouchers/purchase/"
        f"{items['card-2']['dinero']['voucher_guid']}/delete"
    )
    assert delete.status_code == 200, delete.text

    after = wait_for_statuses(
        api,
        company,
        {"card-1": "booked", "card-2": "deleted_in_dinero", "oop-1": "awaiting_approval"},
        timeout=2 * FOLLOW_UP_SECONDS + 10,
    )
    noticed = time.monotonic() - approved_at
    assert noticed <= 2 * FOLLOW_UP_SECONDS + 5, f"noticed after {noticed:.1f} s"
    assert after["card-1"]["dinero"]["voucher_number"] == approve.json()["VoucherNumber"]

    # The platform was told each change, signed, in order per item, by the workers' outbox.
    expected = {
        "card-1": ["exporting", "awaiting_approval", "booked"],
        "card-2": ["exporting", "awaiting_approval", "deleted_in_dinero"],
        "oop-1": ["exporting", "awaiting_approval"],
        "reimb-1": ["exporting", "booked"],
        "topup-1": ["exporting", "booked"],
    }

    def told() -> dict[str, list[str]] | None:
        seen = {k: platform.statuses(after[k]["id"]) for k in expected}
        return seen if seen == expected else None

    eventually(told, timeout=20, what="the platform told of every change")
    assert platform.forged == 0


def _guids(items: dict[str, dict[str, Any]]) -> set[str]:
    return {str(i["dinero"]["voucher_guid"]) for i in items.values() if i.get("dinero")}


def test_a_data_source_imports_in_a_worker(stack: Stack) -> None:
    company = new_company()
    api = connect_and_map(stack, company)
    created = api.post(
        f"/v1/companies/{company}/data-sources",
        json={"title": "Dashboard", "data_types": ["contacts", "entry_accounts"]},
    )
    assert created.status_code == 201, created.text
    source = created.json()["id"]
    in_dinero = stack.dinero().get(f"/organizations/{PRO_ORG}/records/contacts").json()

    def imported() -> list[dict[str, Any]] | None:
        records = api.get(
            f"/v1/companies/{company}/data-sources/{source}/records",
            params={"data_type": "contacts", "limit": 1000},
        )
        assert records.status_code == 200, records.text
        found: list[dict[str, Any]] = records.json()["items"]
        state = api.get(f"/v1/companies/{company}/data-sources/{source}").json()
        return found if state["status"] == "ready" else None

    records = eventually(imported, timeout=60, what="the data source's first import")
    present = {r["ContactGuid"] for r in in_dinero if not r.get("DeletedAt")}
    assert present
    assert {r["key"] for r in records} == present


def hidden_inputs(page: str) -> dict[str, str]:
    return {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


def test_connect_with_oauth_through_the_consent_page(stack: Stack) -> None:
    company = new_company()
    api = stack.client(company)
    answer = api.put(
        f"/v1/companies/{company}/dinero/connection",
        json={"organization_id": PRO_ORG, "method": "oauth"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "pending"
    approval_url = answer.json()["authorization_url"]
    assert approval_url.startswith(f"{stack.dinero_url}/connect/authorize?")

    with httpx.Client(timeout=30) as browser:
        page = browser.get(approval_url)
        assert page.status_code == 200, page.text
        form = hidden_inputs(page.text)
        decided = browser.post(
            f"{stack.dinero_url}/connect/authorize",
            data=form | {"decision": "approve", "login": "demo@sandbox.dinero.dk"},
        )
        callback = f"{stack.api_url}/v1/dinero/oauth/callback"
        if decided.status_code in (302, 303):  # response_mode=query
            back = decided.headers["location"]
            assert back.startswith(f"{callback}?")
            assert "code" in parse_qs(urlsplit(back).query)
            landed = browser.get(back)
        else:  # response_mode=form_post: the page posts itself to the callback
            assert decided.status_code == 200, decided.text
            assert f'action="{callback}"' in decided.text
            fields = hidden_inputs(decided.text)
            assert {"code", "state"} <= set(fields)
            landed = browser.post(callback, data=fields)
        assert landed.status_code in (200, 302, 303), landed.text

    state = api.get(f"/v1/companies/{company}/dinero/connection").json()
    assert state["status"] == "connected", state
    assert state["method"] == "oauth"
    assert state["organization_id"] == PRO_ORG
    assert state["organization_name"] == "Sandbox ApS"
    wait_for_chart(api, company)
