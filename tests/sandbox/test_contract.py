"""The contract checker itself: it must catch what does not match Dinero's subset."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from tests.contract import (
    NO_BODY,
    ContractError,
    ContractTransport,
    check_exchange,
    find_operation,
    validate_request,
    validate_response,
)

PAGINATION = {
    "MaxPageSizeAllowed": 1000,
    "PageSize": 100,
    "Result": 1,
    "ResultWithoutFilter": 1,
    "Page": 0,
}
GUID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def test_concrete_paths_map_to_templates() -> None:
    assert find_operation("POST", "/v1.2/100001/vouchers/purchase")[0] == (
        "/v1.2/{organizationId}/vouchers/purchase"
    )
    assert find_operation("post", "/v1/100001/vouchers/purchase/similar")[0] == (
        "/v1/{organizationId}/vouchers/purchase/similar"
    )
    assert find_operation("GET", f"/v1/1/vouchers/purchase/{GUID}")[0] == (
        "/v1/{organizationId}/vouchers/purchase/{guid}"
    )
    assert find_operation("GET", "/v1/organizations?fields=id")[0] == "/v1/organizations"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/100001/contacts"), ("PATCH", "/v1/100001/contacts"), ("GET", "/v1/x/nope")],
)
def test_undescribed_operations_are_errors(method: str, path: str) -> None:
    with pytest.raises(ContractError):
        find_operation(method, path)


def test_request_bodies_and_parameters_are_checked() -> None:
    validate_request(
        "POST",
        "/v1.2/100001/vouchers/purchase",
        {"PurchaseType": "cash", "Lines": [{"Amount": 125.5, "AccountNumber": 5000}]},
    )
    with pytest.raises(ContractError, match="Ammount"):
        validate_request(
            "POST",
            "/v1.2/100001/vouchers/purchase",
            {"PurchaseType": "cash", "Lines": [{"Ammount": 1}]},
        )
    with pytest.raises(ContractError, match="not a 'uuid'"):
        validate_request("GET", "/v1/100001/vouchers/purchase/similar")
    with pytest.raises(ContractError, match="unknown query parameter"):
        validate_request("GET", "/v1/100001/contacts", query={"pagesize": 10, "limit": 5})
    with pytest.raises(ContractError, match="not an integer"):
        validate_request("GET", "/v1/100001/contacts", query={"page": "first"})
    with pytest.raises(ContractError, match="takes no request body"):
        validate_request("GET", "/v1/100001/vatTypes", {"x": 1})
    validate_request("GET", "/v1/100001/entries", query="fromDate=2026-01-01&toDate=2026-12-31")


def test_numbers_nullables_and_formats_are_checked() -> None:
    validate_response(
        "GET", "/v1/1/vatTypes", 200, [{"VatCode": None, "Name": None, "VatRate": 0.25}]
    )
    with pytest.raises(ContractError, match="is not of type 'number'"):
        validate_response("GET", "/v1/1/vatTypes", 200, [{"VatCode": "I25", "VatRate": "0.25"}])
    with pytest.raises(ContractError, match="None is not of type 'number'"):
        validate_response("GET", "/v1/1/vatTypes", 200, [{"VatRate": None}])
    with pytest.raises(ContractError, match="is not a 'date-time'"):
        validate_response(
            "GET", "/v1/1/files", 200, [{"Size": 1, "UploadedAt": "2026-11-03 10:00"}]
        )
    with pytest.raises(ContractError, match="is not a 'int32'"):
        validate_response(
            "GET",
            "/v1/1/accounts/deposit",
            200,
            [{"AccountNumber": 2**40}],
            query="fields=AccountNumber",
        )


def test_fields_projection_follows_the_requested_spelling() -> None:
    validate_response("GET", "/v1/organizations", 200, [{"id": 1, "name": "A", "isPro": True}])
    with pytest.raises(ContractError):
        validate_response("GET", "/v1/organizations", 200, [{"Id": 1, "Name": "A", "IsPro": True}])
    validate_response(
        "GET",
        "/v1/1/contacts",
        200,
        {"Collection": [{"Name": "A", "DeletedAt": None}], "Pagination": PAGINATION},
        query={"fields": "Name,DeletedAt"},
    )
    with pytest.raises(ContractError, match="Email"):
        validate_response(
            "GET",
            "/v1/1/contacts",
            200,
            {"Collection": [{"Name": "A", "Email": "x"}], "Pagination": PAGINATION},
            query={"fields": "Name"},
        )


def test_statuses_and_bodies() -> None:
    validate_response("POST", "/v1/1/ledgeritems/book", 200)
    with pytest.raises(ContractError, match="declares no JSON body"):
        validate_response("POST", "/v1/1/ledgeritems/book", 200, {})
    with pytest.raises(ContractError, match="status not in the contract"):
        validate_response("POST", "/v1/1/ledgeritems/book", 201)
    with pytest.raises(ContractError, match="status not in the contract"):
        validate_response("GET", "/v1/1/vatTypes", 422, {"detail": []})
    validate_response("GET", "/v1/1/vatTypes", 429, NO_BODY)
    validate_response("GET", "/v1/1/vatTypes", 403, {"code": 90, "message": "No Pro"})
    with pytest.raises(ContractError, match="error body"):
        validate_response("GET", "/v1/1/vatTypes", 400, {"detail": "FastAPI style"})
    validate_response("POST", "/v1/1/files", 400, "File too large")
    with pytest.raises(ContractError, match="a JSON body is required"):
        validate_response("GET", "/v1/1/vatTypes", 200)


async def test_the_checking_transport_fails_on_a_response_that_does_not_match() -> None:
    bad = FastAPI()

    @bad.get("/v1/{organizationId}/vatTypes")
    async def vat_types() -> JSONResponse:
        return JSONResponse([{"VatCode": "I25", "VatRate": "0.25"}])

    @bad.get("/v1/{organizationId}/accountingyears")
    async def years() -> JSONResponse:
        return JSONResponse([], status_code=201)

    transport = ContractTransport(httpx.ASGITransport(app=bad))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        with pytest.raises(ContractError, match="VatRate"):
            await client.get("/v1/100001/vatTypes")
        with pytest.raises(ContractError, match="201"):
            await client.get("/v1/100001/accountingyears")
        with pytest.raises(ContractError, match="404 for /v9/invented"):
            await client.get("/v9/invented")  # a 404 is fine, but not with FastAPI's body
    assert transport.checked == 0


def test_check_exchange_skips_oauth_and_control_paths_and_strips_a_prefix() -> None:
    request = httpx.Request("GET", "http://x/sandbox/connect/authorize")
    check_exchange(request, httpx.Response(200, text="<html>", request=request), prefix="/sandbox")
    request = httpx.Request("GET", "http://x/sandbox/v1/1/vatTypes")
    response = httpx.Response(200, json=[{"VatRate": 0.25}], request=request)
    check_exchange(request, response, prefix="/sandbox")
