"""Creating a deposit account ("Beholdning") in Dinero from the setup: against the sandbox.

What the admin notices: the account exists in Dinero's chart, the deposit-accounts list and
the settings show it at once, a repeated (or retried-after-a-timeout) request creates nothing
new, and a taken number is refused before Dinero hears of anything.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import bearer
from tests.sandboxed import PRO_ORG, Service, service_fixture, synced_company

DEPOSIT_PATH = f"/v1/{PRO_ORG}/accounts/deposit"


service = service_fixture()


@pytest.fixture
async def company(service: Service) -> str:
    return await synced_company(service)


async def create(service: Service, company: str, **body: Any) -> tuple[int, dict[str, Any]]:
    response = await service.client.post(
        f"/v1/companies/{company}/dinero/deposit-accounts", json=body, headers=bearer(company)
    )
    return response.status_code, response.json()


def creations(service: Service) -> list[Any]:
    return [r.json for r in service.sandbox.find_requests(method="POST", path=DEPOSIT_PATH)]


def dinero_deposits(service: Service) -> dict[int, str]:
    return {a.number: a.name for a in service.sandbox.org(PRO_ORG).deposit_accounts()}


async def listed(service: Service, company: str) -> dict[int, str]:
    response = await service.client.get(
        f"/v1/companies/{company}/deposit-accounts", headers=bearer(company, "member")
    )
    assert response.status_code == 200, response.text
    return {a["account_number"]: a["name"] for a in response.json()}


async def test_creates_the_first_free_number_syncs_and_maps(service: Service, company: str) -> None:
    taken = set(service.sandbox.org(PRO_ORG).accounts)
    expected = next(n for n in range(55000, 56000) if n not in taken)

    status, body = await create(service, company, name="Pleo", use_as="deposit")

    assert status == 201, body
    assert body == {
        "account_number": expected,
        "name": "Pleo",
        "created": True,
        "mapped_as": "deposit_account",
    }
    assert creations(service) == [{"Number": expected, "Name": "Pleo"}]
    assert dinero_deposits(service)[expected] == "Pleo"
    assert (await listed(service, company))[expected] == "Pleo"  # synced, no job needed
    settings = await service.client.get(
        f"/v1/companies/{company}/dinero/settings", headers=bearer(company)
    )
    assert settings.json()["deposit_account"] == expected


async def test_a_given_number_and_the_other_settings_are_kept(
    service: Service, company: str
) -> None:
    put = await service.client.put(
        f"/v1/companies/{company}/dinero/settings",
        json={"deposit_account": 55030, "reimbursement_account": 55000},
        headers=bearer(company),
    )
    assert put.status_code == 200, put.text

    status, body = await create(
        service, company, name="Udlæg", number=55555, use_as="out_of_pocket"
    )

    assert status == 201, body
    assert body["account_number"] == 55555
    settings = (
        await service.client.get(
            f"/v1/companies/{company}/dinero/settings", headers=bearer(company)
        )
    ).json()
    assert (
        settings["deposit_account"],
        settings["out_of_pocket_account"],
        settings["reimbursement_account"],
    ) == (55030, 55555, 55000)


async def test_a_taken_number_is_refused_before_anything_is_sent(
    service: Service, company: str
) -> None:
    service.sandbox.clear_requests()

    status, body = await create(service, company, name="Pleo", number=55000)

    assert status == 409
    assert body["code"] == "account_number_taken"
    assert "Bankkonto" in body["detail"]
    assert service.sandbox.requests == []  # Dinero heard nothing


async def test_a_number_taken_in_dinero_since_the_sync_is_refused_too(
    service: Service, company: str
) -> None:
    service.sandbox.add_account(PRO_ORG, 55600, "Kasse 2", deposit=True)

    status, body = await create(service, company, name="Pleo", number=55600)

    assert status == 409
    assert body["code"] == "account_number_taken"
    assert creations(service) == []
    assert dinero_deposits(service)[55600] == "Kasse 2"


async def test_a_repeated_request_creates_one_account(service: Service, company: str) -> None:
    first_status, first = await create(service, company, name="Pleo", use_as="deposit")
    again_status, again = await create(service, company, name="Pleo", use_as="deposit")
    numbered_status, numbered = await create(
        service, company, name="Pleo", number=first["account_number"]
    )

    assert (first_status, again_status, numbered_status) == (201, 200, 200)
    assert again["account_number"] == numbered["account_number"] == first["account_number"]
    assert (again["created"], numbered["created"]) == (False, False)
    assert len(creations(service)) == 1
    assert list(dinero_deposits(service).values()).count("Pleo") == 1


async def test_a_retry_after_a_lost_answer_creates_one_account(
    service: Service, company: str
) -> None:
    # Dinero creates the account, then the connection drops: the outcome is unknown to us.
    service.sandbox.add_fault(kind="drop", method="POST", path=DEPOSIT_PATH, count=1)

    status, body = await create(service, company, name="Pleo", number=55700, use_as="deposit")

    # Dinero's chart is read after the uncertain answer: the account is there, so it is ours.
    assert status == 201, body
    assert body["account_number"] == 55700
    again_status, again = await create(service, company, name="Pleo", number=55700)
    assert (again_status, again["created"]) == (200, False)
    assert len(creations(service)) == 1
    assert dinero_deposits(service)[55700] == "Pleo"


async def test_a_request_that_never_reached_dinero_can_simply_be_retried(
    service: Service, company: str
) -> None:
    service.sandbox.add_fault(
        kind="timeout", method="POST", path=DEPOSIT_PATH, count=1, hang_seconds=0
    )

    status, body = await create(service, company, name="Pleo", number=55710)

    assert status == 503
    assert body["code"] == "dinero_unavailable"
    assert 55710 not in dinero_deposits(service)
    retry_status, retried = await create(service, company, name="Pleo", number=55710)
    assert (retry_status, retried["created"]) == (201, True)
    assert dinero_deposits(service)[55710] == "Pleo"


async def test_members_may_not_create_accounts(service: Service, company: str) -> None:
    response = await service.client.post(
        f"/v1/companies/{company}/dinero/deposit-accounts",
        json={"name": "Pleo"},
        headers=bearer(company, "member"),
    )
    assert response.status_code == 403
    assert creations(service) == []


async def test_not_connected_is_refused(service: Service) -> None:
    status, body = await create(service, f"co-{uuid.uuid4().hex[:10]}", name="Pleo")
    assert status == 409
    assert body["code"] == "not_connected"
    assert creations(service) == []
