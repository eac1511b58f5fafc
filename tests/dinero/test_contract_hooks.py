"""The fixtures really check every exchange against Dinero's contract (a test of the tests)."""

from __future__ import annotations

import httpx
import pytest
import respx

from app.dinero import DineroClient
from tests.contract import ContractError
from tests.dinero.conftest import BASE_URL, ORG, ContractLog


async def test_an_off_contract_answer_fails_the_test(
    client: DineroClient, dinero: respx.MockRouter
) -> None:
    dinero.get(f"/v1/{ORG}/vatTypes").respond(200, json=[{"VatCode": "I25"}])  # no VatRate
    with pytest.raises(ContractError, match="VatRate"):
        await client.vat_types()


async def test_an_off_contract_request_fails_before_it_is_sent(
    http: httpx.AsyncClient, dinero: respx.MockRouter
) -> None:
    route = dinero.get(f"/v1/{ORG}/vatTypes").respond(200, json=[])
    with pytest.raises(ContractError, match="unknown query parameter"):
        await http.get(f"{BASE_URL}/v1/{ORG}/vatTypes", params={"fields": "VatCode"})
    with pytest.raises(ContractError, match="no such path"):
        await http.get(f"{BASE_URL}/v1/{ORG}/vouchers/purchase")
    assert route.call_count == 0


async def test_every_exchange_is_logged(
    client: DineroClient, dinero: respx.MockRouter, contract_log: ContractLog
) -> None:
    dinero.get(f"/v1/{ORG}/vatTypes").respond(200, json=[])
    await client.vat_types()
    assert contract_log.requests == [f"GET /v1/{ORG}/vatTypes"]
    assert contract_log.responses == [f"200 GET /v1/{ORG}/vatTypes"]
