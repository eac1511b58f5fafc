"""Text the database cannot store, in every text field `openapi.yaml` documents.

A NUL (`\\u0000`, refused by PostgreSQL's text and jsonb) and an unpaired surrogate (`\\ud800`,
not encodable as UTF-8) are put, one field at a time, into every string parameter and every
string property of every request body the document lists (found by walking the document, so a
new text field is covered the day it appears; an operation without a valid base request below
fails the coverage test). Each must answer a 4xx problem+json, never a 500: a body field a 422
naming the field, an export item refused by itself (named in `rejected`) while the good item
beside it is accepted. Surrogates cannot travel in a URL or a header, so those get the NUL only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, urlencode, urlparse

import httpx
import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.connection.models import DineroConnection
from app.datasources.models import DataSource
from app.exports.models import ExportItem
from tests.conftest import bearer
from tests.exports.intake_support import card, signed

NUL: Final = "a\x00b"
SURROGATE: Final = "a\ud800b"
COMPANY: Final = "acme"
OPENAPI: Final = Path(__file__).resolve().parent.parent / "openapi.yaml"

FULL_ITEM: Final[dict[str, Any]] = {
    "external_id": "bad",
    "type": "card_expense",
    "date": "2026-11-03",
    "description": "Taxa",
    "amount": {"value": 100, "currency": "DKK"},
    "settled_amount": {"value": 100, "currency": "DKK"},
    "lines": [
        {
            "category_id": str(uuid.uuid4()),
            "account_number": 7000,
            "tax_code": "I25",
            "amount": 100,
            "description": "l",
        }
    ],
    "receipts": [
        {
            "url": "https://receipts.example.com/r.pdf",
            "content_base64": "AA==",
            "filename": "r.pdf",
            "content_type": "application/pdf",
        }
    ],
    "employee": {"id": "emp_7", "name": "Mette"},
}
"""Every optional part present, so any field can be poisoned; only the poisoned one is reported
(field errors come before the rules that need a valid item)."""

YEAR: Final = {"start": "2026-01-01", "end": "2026-12-31"}
BODIES: Final[dict[tuple[str, str], Any]] = {
    ("PUT", "/v1/companies/{company}/dinero/connection"): {
        "organization_id": 100001,
        "method": "api_key",
        "api_key": "key",
    },
    ("PATCH", "/v1/companies/{company}/categories/{category_id}"): {
        "name": "Taxi",
        "tax_code": "I25",
    },
    ("POST", "/v1/companies/{company}/data-sources"): {
        "title": "T",
        "data_types": ["entries"],
        "accounting_year": YEAR,
        "default_date_field": "date",
    },
    ("PATCH", "/v1/companies/{company}/data-sources/{data_source_id}"): {
        "title": "T",
        "data_types": ["contacts"],
        "default_date_field": "date",
        "accounting_year": YEAR,
    },
    ("POST", "/v1/companies/{company}/exports"): {"items": [card("good")]},
    ("POST", "/v1/companies/{company}/exports/preview"): {"items": [card("good")]},
    ("PUT", "/v1/companies/{company}/dinero/settings"): {
        "deposit_account": None,
        "books_closed_through": "2025-12-31",
        "closed_period_policy": "hold",
    },
    ("POST", "/v1/companies/{company}/dinero/deposit-accounts"): {
        "name": "Pleo wallet",
        "use_as": "deposit",
    },
    ("POST", "/v1/companies/{company}/export-items/{item_id}/reverse"): {"reason": "wrong card"},
    ("POST", "/v1/companies/{company}/exports/{export_id}/reverse"): {"reason": "wrong card"},
    ("POST", "/v1/webhooks/expenses"): {
        "type": "export.requested",
        "company_id": COMPANY,
        "items": [card("good")],
    },
    ("POST", "/v1/dinero/oauth/callback"): {"state": "s", "error": "access_denied"},
    ("POST", "/v1/dev/token"): {"company_id": "demo", "role": "admin"},
}
"""A request body per operation that has one; the poisoned field is the only thing wrong."""

ITEM_BODIES: Final = {
    ("POST", "/v1/companies/{company}/exports"),
    ("POST", "/v1/companies/{company}/exports/preview"),
    ("POST", "/v1/webhooks/expenses"),
}
"""Bodies of items, each refused by itself: the poisoned item is sent beside a good one."""

PREVIEW: Final = ("POST", "/v1/companies/{company}/exports/preview")


@dataclass(frozen=True)
class Field:
    method: str
    path: str
    where: str  # path, query, header, body
    name: str  # dotted, with [] for array items: items[].lines[].description

    @property
    def operation(self) -> tuple[str, str]:
        return self.method, self.path

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.where}:{self.name}"


def _text_fields() -> list[Field]:
    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    schemas = spec.get("components", {}).get("schemas", {})

    def walk(schema: dict[str, Any], name: str, seen: frozenset[str]) -> Iterator[str]:
        ref = schema.get("$ref")
        if ref is not None:
            if ref in seen:
                return
            yield from walk(schemas[ref.rsplit("/", 1)[-1]], name, seen | {ref})
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for member in schema.get(key, []):
                yield from walk(member, name, seen)
        for key in ("then", "else"):  # a conditional part (the webhook's export.requested)
            if key in schema:
                yield from walk(schema[key], name, seen)
        if schema.get("type") == "string" and "const" not in schema:
            yield name
        for prop, sub in schema.get("properties", {}).items():
            yield from walk(sub, f"{name}.{prop}" if name else prop, seen)
        if schema.get("type") == "array" and "items" in schema:
            yield from walk(schema["items"], f"{name}[]", seen)

    fields: dict[str, Field] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            for parameter in operation.get("parameters", []):
                for name in walk(parameter.get("schema", {}), parameter["name"], frozenset()):
                    field = Field(method.upper(), path, parameter["in"], name)
                    fields[str(field)] = field
            for content in operation.get("requestBody", {}).get("content", {}).values():
                for name in walk(content.get("schema", {}), "", frozenset()):
                    field = Field(method.upper(), path, "body", name)
                    fields[str(field)] = field
    return sorted(fields.values(), key=str)


TEXT_FIELDS: Final = _text_fields()


def _parts(name: str) -> list[str | int]:
    """`items[].lines[].description` → `["items", 0, "lines", 0, "description"]`."""
    parts: list[str | int] = []
    for piece in name.split("."):
        arrays = 0
        while piece.endswith("[]"):
            piece, arrays = piece[:-2], arrays + 1
        parts.append(piece)
        parts.extend([0] * arrays)
    return parts


def _poisoned(base: Any, parts: list[str | int], value: str) -> Any:
    document = json.loads(json.dumps(base))
    target = document
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value
    return document


def _error_key(parts: list[str | int]) -> str:
    return ".".join(str(p) for p in parts)


@pytest.fixture
async def data_source_id(db: AsyncSession) -> uuid.UUID:
    from app.companies.service import ensure_company

    await ensure_company(session=db, company_id=COMPANY)
    source = DataSource(
        company_id=COMPANY,
        organization_id=100001,
        title="Contacts",
        data_types=["contacts"],
        status="ready",
        attempts=0,
    )
    db.add(source)
    await db.flush()
    return source.id


def _url(field: Field, data_source_id: uuid.UUID, poison: str | None) -> str:
    path = field.path
    for name in ("company", "category_id", "data_source_id", "export_id", "item_id"):
        value = {"company": COMPANY, "data_source_id": str(data_source_id)}.get(
            name, str(uuid.uuid4())
        )
        if poison is not None and field.where == "path" and field.name == name:
            value = quote(poison, safe="")
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a path parameter of {field}"
    return path


async def _send(
    client: httpx.AsyncClient, field: Field, data_source_id: uuid.UUID, poison: str
) -> tuple[httpx.Response, list[str | int]]:
    parts = _parts(field.name)
    url = _url(field, data_source_id, poison)
    headers = {"accept": "application/json"} | bearer(COMPANY)
    params: dict[str, str] = {}
    if field.where == "query":
        params[str(parts[0])] = poison
    body = BODIES.get(field.operation)
    if field.where == "body":
        assert body is not None, f"no base body for {field}"
        if field.operation in ITEM_BODIES and parts[0] == "items":
            item = _poisoned(FULL_ITEM, parts[2:], poison)
            body = {**body, "items": [*body["items"], item]}
        else:
            body = _poisoned(body, parts, poison)
    if field.path == "/v1/dinero/oauth/callback":
        if field.method == "POST":
            assert isinstance(body, dict)
            headers["content-type"] = "application/x-www-form-urlencoded"
            # A surrogate cannot be form-encoded as UTF-8: sent as the bytes it would escape to.
            form = urlencode(body, encoding="utf-8", errors="surrogatepass")
            return await client.post(url, content=form, headers=headers), parts
        params.setdefault("state", "s")
        return await client.get(url, params=params, headers=headers), parts
    content = None if body is None else json.dumps(body).encode()  # ASCII: \\u escapes
    if content is not None:
        headers["content-type"] = "application/json"
    if field.path == "/v1/webhooks/expenses":
        content, signed_headers = signed(content or b"{}")
        headers = {k: v for k, v in headers.items() if k != "Authorization"} | signed_headers
    if field.where == "header":
        headers[field.name] = poison
    request = client.build_request(field.method, url, params=params, content=content)
    request.headers.update(headers)
    return await client.send(request), parts


def _check(field: Field, poison: str, response: httpx.Response, parts: list[str | int]) -> str:
    """What is wrong with the answer ('' when it is right)."""
    label = f"{field} = {poison!r}: {response.status_code} {response.text[:300]}"
    answered = 200 if field.operation == PREVIEW else 202
    accepted_beside = field.operation in ITEM_BODIES and response.status_code == answered
    if not (400 <= response.status_code < 500 or accepted_beside):
        return label
    if response.headers.get("content-type", "").split(";")[0] not in (
        "application/problem+json",
        "application/json",
    ):
        return label
    answer = response.json()
    if field.where != "body" or field.path == "/v1/dinero/oauth/callback":
        return "" if response.status_code != 500 else label
    if field.operation == PREVIEW and parts[0] == "items":
        if response.status_code != 200:
            return label
        outcomes = {i["index"]: i for i in answer["items"]}
        expected = _error_key(parts[2:])
        if outcomes[1]["outcome"] != "refused" or expected not in outcomes[1]["errors"]:
            return f"{label} (the preview's refusal should name {expected})"
        if outcomes[0]["outcome"] == "refused":
            return f"{label} (the good item should be previewed)"
        return ""
    if field.operation in ITEM_BODIES and parts[0] == "items":
        if response.status_code != 202:
            return label
        rejected = [r for r in answer["rejected"] if r["index"] == 1]
        expected = _error_key(parts[2:])
        if not rejected or expected not in rejected[0]["errors"]:
            return f"{label} (item refusal should name {expected})"
        if [i["external_id"] for i in answer["items"]] != ["good"]:
            return f"{label} (the good item should go on)"
        return ""
    expected = _error_key(parts)
    if response.status_code != 422 or expected not in (answer.get("errors") or {}):
        return f"{label} (a 422 naming {expected})"
    return ""


async def _export(client: httpx.AsyncClient, *items: dict[str, Any]) -> httpx.Response:
    """POST an export of `items` as json.dumps writes them: a NUL or lone surrogate \\u-escaped."""
    return await client.post(
        f"/v1/companies/{COMPANY}/exports",
        content=json.dumps({"items": list(items)}).encode(),
        headers={"content-type": "application/json"} | bearer(COMPANY),
    )


def test_the_document_lists_the_text_fields_this_test_covers() -> None:
    """Every body field has a base request; the walk found the fields known to be there."""
    names = {str(f) for f in TEXT_FIELDS}
    for expected in (
        "POST /v1/companies/{company}/exports body:items[].lines[].description",
        "POST /v1/webhooks/expenses body:items[].employee.name",
        "POST /v1/companies/{company}/data-sources body:title",
        "PATCH /v1/companies/{company}/categories/{category_id} body:name",
        "GET /v1/companies/{company}/data-sources/{data_source_id}/records query:cursor",
        "POST /v1/companies/{company}/exports header:idempotency-key",
    ):
        assert expected in names
    missing = {f.operation for f in TEXT_FIELDS if f.where == "body"} - set(BODIES)
    assert not missing, f"add a base body for {sorted(missing)}"


async def test_a_nul_in_any_text_field_is_a_clear_4xx(
    client: httpx.AsyncClient, data_source_id: uuid.UUID
) -> None:
    failures = []
    for field in TEXT_FIELDS:
        response, parts = await _send(client, field, data_source_id, NUL)
        failures.append(_check(field, NUL, response, parts))
    assert [f for f in failures if f] == []


async def test_an_unpaired_surrogate_in_any_body_text_field_is_a_clear_4xx(
    client: httpx.AsyncClient, data_source_id: uuid.UUID
) -> None:
    failures = []
    for field in TEXT_FIELDS:
        if field.where != "body":
            continue
        response, parts = await _send(client, field, data_source_id, SURROGATE)
        failures.append(_check(field, SURROGATE, response, parts))
    assert [f for f in failures if f] == []


async def test_a_nul_in_an_item_refuses_that_item_only_and_stores_nothing_of_it(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    bad = card("exp_nul", description="Taxi\x00")
    worse = card("exp_sur", lines=[{"account_number": 7000, "amount": 24500, "tax_code": "\ud800"}])
    response = await _export(client, card("exp_1"), bad, worse)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert [i["external_id"] for i in answer["items"]] == ["exp_1"]
    assert [(r["index"], r["external_id"], list(r["errors"])) for r in answer["rejected"]] == [
        (1, "exp_nul", ["description"]),
        (2, "exp_sur", ["lines.0.tax_code"]),
    ]
    stored = (await db.execute(select(ExportItem.external_id))).scalars().all()
    assert list(stored) == ["exp_1"]


async def test_an_unusable_external_id_is_refused_without_echoing_it(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    bad = card("exp\x00", amount={"value": 1.5, "currency": "DKK"})
    response = await _export(client, card("exp_1"), bad)

    assert response.status_code == 202, response.text
    (refusal,) = response.json()["rejected"]
    assert refusal["external_id"] is None
    assert {"external_id", "amount.value"} <= set(refusal["errors"])


@pytest.mark.parametrize(
    "raw",
    [
        b'{"title": "T", "data_types": ["contacts"], "\\ud800": 1}',
        b'{"title": "T", "data_types": ["contacts"], "a\\u0000": 1}',
        b'{"title": "T", "data_types": ["\\ud800"]}',
    ],
)
async def test_text_the_database_refuses_in_a_field_name_is_a_422_too(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await client.post(
        f"/v1/companies/{COMPANY}/data-sources",
        content=raw,
        headers={"content-type": "application/json"} | bearer(COMPANY),
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_item_refused_for_an_echoed_nul_keeps_its_reason_escaped(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    bad = card("exp_2", lines=[{"category_id": "ab\x00", "amount": 24500}])
    response = await _export(client, card("exp_1"), bad)

    assert response.status_code == 202, response.text
    (refusal,) = response.json()["rejected"]
    assert "\x00" not in refusal["errors"]["lines.0.category_id"]
    export = await client.get(
        f"/v1/companies/{COMPANY}/exports/{response.json()['id']}", headers=bearer(COMPANY)
    )
    assert export.json()["rejected"] == response.json()["rejected"]


async def test_a_nul_from_the_oauth_callback_is_kept_as_text_without_it(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    started = await client.put(
        f"/v1/companies/{COMPANY}/dinero/connection",
        json={"organization_id": 100001},
        headers=bearer(COMPANY),
    )
    assert started.status_code == 200, started.text
    state = parse_qs(urlparse(started.json()["authorization_url"]).query)["state"][0]

    declined = await client.get(
        "/v1/dinero/oauth/callback",
        params={"state": state, "error": "access_denied", "error_description": "no\x00pe"},
        headers={"accept": "application/json"},
    )

    assert declined.status_code == 400
    assert declined.json()["code"] == "oauth_declined"
    connection = (
        await db.execute(
            select(DineroConnection)
            .where(DineroConnection.company_id == COMPANY)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    assert connection.attempt_dinero_message == "nope"
