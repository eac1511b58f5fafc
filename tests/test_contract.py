"""What openapi.yaml adds to FastAPI's document holds: problem codes, examples, links, Allow."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import jsonschema
from fastapi import FastAPI

from app.contract import CODES, OPERATION_PROBLEMS, operations_of, problem_codes
from app.openapi import schema

METHODS = ("get", "put", "post", "delete", "patch")


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    }


def test_every_operation_has_a_row_of_problems_and_every_code_is_explained(app: FastAPI) -> None:
    operations = operations_of(app)
    missing = sorted({o.operation_id for o in operations} - OPERATION_PROBLEMS.keys())
    assert not missing, f"add a row to app.contract.OPERATION_PROBLEMS for: {missing}"
    unexplained = sorted(
        {code for o in operations for codes in problem_codes(o).values() for code in codes}
        - CODES.keys()
    )
    assert not unexplained, f"add a sentence to app.contract.CODES for: {unexplained}"


def test_problem_answers_list_their_codes_and_bearer_operations_say_so() -> None:
    document = schema()
    for operation_id, operation in _operations(document).items():
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            problem = response["content"]["application/problem+json"]["schema"]
            enum = problem["allOf"][1]["properties"]["code"]["enum"]
            assert enum, f"{operation_id} {status} names no code"
            assert all(f"`{code}`" in response["description"] for code in enum)
        bearer = operation["security"] == [{"bearerJWT": []}]
        assert bearer == (
            "401" in operation["responses"]
            and operation_id != "oauth_callback_get"
            and operation_id != "oauth_callback_post"
            and operation_id != "receive_expense_webhook"
        )
        if bearer:
            assert operation["responses"]["401"]["headers"]["WWW-Authenticate"]["required"]


def test_every_request_body_has_examples_that_match_its_schema() -> None:
    document = schema()
    for operation_id, operation in _operations(document).items():
        body = operation.get("requestBody")
        if body is None:
            continue
        for media_type, content in body["content"].items():
            examples = [e["value"] for e in content.get("examples", {}).values()]
            if "example" in content:
                examples.append(content["example"])
            assert examples, f"{operation_id} {media_type} has no example"
            body_schema = {**content["schema"], "components": document["components"]}
            for example in examples:
                jsonschema.validate(example, body_schema)


def test_links_name_operations_and_their_parameters() -> None:
    document = schema()
    operations = _operations(document)
    links = 0
    for operation_id, operation in operations.items():
        for response in operation["responses"].values():
            for name, link in response.get("links", {}).items():
                links += 1
                target = operations[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", [])}
                unknown = set(link["parameters"]) - names
                assert not unknown, f"{operation_id} → {name}: no parameters {unknown}"
    assert links >= 20
    flow = operations["create_export"]["responses"]["202"]["links"]
    assert {"GetExport", "GetFirstItem", "RetryFirstItem", "ListItems"} <= flow.keys()


def test_the_webhook_signature_is_described_and_needs_no_bearer_token() -> None:
    webhook = _operations(schema())["receive_expense_webhook"]
    assert webhook["security"] == []
    headers = {p["name"]: p for p in webhook["parameters"] if p["in"] == "header"}
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert all(p["required"] for p in headers.values())
    assert "HMAC-SHA256" in webhook["description"]


async def test_unlisted_methods_and_options_answer_405_naming_the_listed_ones(
    client: httpx.AsyncClient,
) -> None:
    document = schema()
    for path, item in document["paths"].items():
        listed = sorted(m.upper() for m in item if m in METHODS)
        url = re.sub(
            r"\{[^}]+\}", lambda m: "acme" if m[0] == "{company}" else str(uuid.uuid4()), path
        )
        for method in (
            "OPTIONS",
            *(m for m in ("GET", "PUT", "POST", "DELETE", "PATCH") if m not in listed),
        ):
            response = await client.request(method, url)
            assert response.status_code == 405, (method, path, response.status_code)
            assert response.json()["code"] == "method_not_allowed"
            assert response.headers["allow"] == ", ".join(listed), (method, path)
