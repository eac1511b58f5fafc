"""The `/_sandbox` control API: drive a sandbox that runs in another process."""

from __future__ import annotations

import httpx
from dinero_sandbox import Sandbox

from tests.sandbox.conftest import draft_cash_purchase

ORG = 100001


async def test_overview_lists_the_demo_data(client: httpx.AsyncClient) -> None:
    body = (await client.get("/_sandbox")).json()
    assert [o["id"] for o in body["organizations"]] == [100001, 100002]
    assert body["organizations"][0]["pro"] is True
    assert body["organizations"][1]["pro"] is False
    assert body["default_login"] == "demo@sandbox.dinero.dk"
    assert body["clients"][0]["client_id"] == "isv_sandbox"
    assert body["api_keys"] == [{"key": "sandbox-api-key-100001", "organization_id": 100001}]
    assert body["config"]["rate_limit_per_minute"] == 100


async def test_request_log(client: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    await api.get(f"/v1/{ORG}/contacts", params={"page": 0, "pageSize": 5})
    await api.post(f"/v1.2/{ORG}/ledgeritems", json=[{"Lines": []}])
    log = (await client.get("/_sandbox/requests")).json()
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("GET", "/v1/100001/contacts", 200),
        ("POST", "/v1.2/100001/ledgeritems", 400),
    ]
    assert log[0]["query"] == {"page": "0", "pageSize": "5"}
    assert log[0]["organization_id"] == ORG
    assert log[0]["client_id"] == "isv_sandbox"
    assert log[1]["json"] == [{"Lines": []}]

    only_posts = (await client.get("/_sandbox/requests", params={"method": "POST"})).json()
    assert len(only_posts) == 1
    since = (await client.get("/_sandbox/requests", params={"since": log[0]["seq"]})).json()
    assert [r["seq"] for r in since] == [log[1]["seq"]]
    assert (await client.delete("/_sandbox/requests")).status_code == 200
    assert (await client.get("/_sandbox/requests")).json() == []


async def test_the_accountant_through_http(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    voucher = await draft_cash_purchase(
        api, ORG, VoucherDate="2026-11-03", Lines=[{"AccountNumber": 5000, "Amount": 125}]
    )
    base = f"/_sandbox/organizations/{ORG}/vouchers/purchase"
    listed = (await client.get(base)).json()
    assert [v["Guid"] for v in listed if v["Status"] == "Draft"] == [voucher["Guid"]]

    edited = await client.patch(
        f"{base}/{voucher['Guid']}", json={"line": 0, "amount": "250.00", "account_number": 5110}
    )
    assert edited.status_code == 200
    assert edited.json()["Lines"][0]["AccountNumber"] == 5110
    approved = await client.post(f"{base}/{voucher['Guid']}/approve", json={"number": 12})
    assert approved.json()["Status"] == "Paid"
    assert approved.json()["VoucherNumber"] == 12
    entries = (
        await client.get(
            f"/_sandbox/organizations/{ORG}/entries", params={"voucher_guid": voucher["Guid"]}
        )
    ).json()
    assert sum(e["Amount"] for e in entries) == 0
    assert (await client.post(f"{base}/{voucher['Guid']}/delete")).status_code == 200
    assert voucher["Guid"] not in {v["Guid"] for v in (await client.get(base)).json()}
    deleted = (await client.get(base, params={"include_deleted": "true"})).json()
    assert deleted[-1]["DeletedAt"] is not None
    failing = await client.post(f"{base}/{voucher['Guid']}/approve")
    assert failing.status_code == 404


async def test_chart_years_and_records_through_http(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    base = f"/_sandbox/organizations/{ORG}"
    hidden = await client.post(f"{base}/accounts/5000/hide")
    assert hidden.json()["IsHidden"] is True
    accounts = (await api.get(f"/v1/{ORG}/accounts/purchase")).json()
    assert next(a for a in accounts if a["AccountNumber"] == 5000)["IsHidden"] is True
    await client.post(f"{base}/accounts/5000/unhide")
    added = await client.post(
        f"{base}/accounts", json={"number": 55300, "name": "Revolut", "deposit": True}
    )
    assert added.status_code == 200
    deposits = (await api.get(f"/v1/{ORG}/accounts/deposit")).json()
    assert {"AccountNumber": 55300, "Name": "Revolut"} in deposits

    assert (await client.post(f"{base}/accountingyears", json={"year": 2023})).status_code == 200
    locked = await client.post(f"{base}/accountingyears/2023/lock", json={"locked": True})
    assert locked.json()["Locked"] is True
    years = (await api.get(f"/v1/{ORG}/accountingyears")).json()
    assert years[0]["Name"] == "2023"

    record = (
        await client.post(
            f"{base}/records/contacts", json={"Name": "Kontrol Kunde", "Email": "k@k.dk"}
        )
    ).json()
    contacts = (await api.get(f"/v1/{ORG}/contacts", params={"pageSize": 1000})).json()
    assert record["ContactGuid"] in {c["contactGuid"] for c in contacts["Collection"]}
    patched = await client.patch(
        f"{base}/records/contacts/{record['ContactGuid']}", json={"Name": "Ændret Kunde"}
    )
    assert patched.json()["Name"] == "Ændret Kunde"
    deleted = await client.delete(f"{base}/records/contacts/{record['ContactGuid']}")
    assert deleted.json()["DeletedAt"] is not None
    assert (await client.get(f"{base}/records/nonsense")).status_code == 404


async def test_people_tokens_clock_config_and_reset(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    await client.post("/_sandbox/organizations", json={"id": 200001, "name": "Ny ApS"})
    await client.post("/_sandbox/logins", json={"email": "ny@ny.dk", "organizations": [200001]})
    await client.put("/_sandbox/default-login", json={"email": "ny@ny.dk"})
    await client.post("/_sandbox/clients", json={"client_id": "isv_x", "secret": "y"})
    await client.post("/_sandbox/api-keys", json={"key": "k-200001", "organization_id": 200001})
    assert sandbox.default_login == "ny@ny.dk"
    assert "isv_x" in sandbox.clients

    token = (await client.post("/_sandbox/token", json={"login": "ny@ny.dk"})).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    orgs = (await client.get("/v1/organizations", headers=headers)).json()
    assert orgs == [{"id": 200001, "name": "Ny ApS", "isPro": True}]

    patched = await client.patch("/_sandbox/organizations/200001", json={"pro": False})
    assert patched.json()["IsPro"] is False
    assert (await client.get("/v1/200001/vatTypes", headers=headers)).json()["code"] == 90

    assert (await client.post("/_sandbox/tokens/expire")).json()["expired"] >= 1
    assert (await client.get("/v1/organizations", headers=headers)).status_code == 401

    before = sandbox.now()
    advanced = await client.post("/_sandbox/clock/advance", json={"seconds": 120})
    assert advanced.status_code == 200
    assert (sandbox.now() - before).total_seconds() == 120

    config = await client.patch(
        "/_sandbox/config", json={"rate_limit_per_minute": 60, "refresh_token_mode": "reusable"}
    )
    assert config.json()["rate_limit_per_minute"] == 60
    invalid = await client.patch("/_sandbox/config", json={"rotation_grace_seconds": 3600})
    assert invalid.status_code == 400
    unknown = await client.patch("/_sandbox/config", json={"clock": "x"})
    assert unknown.status_code == 400

    assert (await client.post("/_sandbox/reset")).status_code == 200
    assert sandbox.default_login == "demo@sandbox.dinero.dk"
    assert 200001 not in sandbox.books


async def test_organization_state_snapshot(
    client: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    await api.post(f"/v1/{ORG}/files", files={"file": ("a.pdf", b"%PDF")})
    await api.post(
        f"/v1.2/{ORG}/ledgeritems",
        json=[
            {
                "VoucherDate": "2026-11-03",
                "Lines": [{"Amount": 10, "AccountNumber": 55080, "BalancingAccountNumber": 55000}],
            }
        ],
    )
    state = (await client.get(f"/_sandbox/organizations/{ORG}")).json()
    assert state["organization"]["Name"] == "Sandbox ApS"
    assert len(state["files"]) == 1
    assert state["ledger_items"][0]["Status"] == "Draft"
    assert len(state["purchase_vouchers"]) == 4  # the booked demo purchases of 2025
    assert state["entries"]
    assert (await client.get("/_sandbox/organizations/424242")).status_code == 404
    assert (await client.post(f"/_sandbox/organizations/{ORG}/ledgeritems/complete")).json() == {
        "booked": 0
    }
