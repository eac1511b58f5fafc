"""Whole numbers in request bodies are JSON numbers: a number in a string ("55030"), a fraction
(55030.0) or a boolean is refused with a 422 naming the field, not quietly converted (the
document says `integer`, and an account or organization taken from a string is a guess)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import bearer

COMPANY = "/v1/companies/acme"
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("PUT", f"{COMPANY}/dinero/settings", {"deposit_account": "55030"}, "deposit_account"),
    ("PUT", f"{COMPANY}/dinero/settings", {"top_up_account": 55000.0}, "top_up_account"),
    (
        "PUT",
        f"{COMPANY}/dinero/connection",
        {"organization_id": "100001", "method": "api_key", "api_key": "key"},
        "organization_id",
    ),
    (
        "POST",
        f"{COMPANY}/dinero/deposit-accounts",
        {"name": "Pleo", "number": True},
        "number",
    ),
    (
        "POST",
        f"{COMPANY}/data-sources",
        {"title": "T", "data_types": ["contacts"], "refresh_minutes": "60"},
        "refresh_minutes",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), CASES)
async def test_a_whole_number_given_as_text_a_fraction_or_a_boolean_is_refused(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = await client.request(method, path, json=body, headers=bearer())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert field in problem["errors"]
