"""Who may call what, for every operation of the API: one table, six callers, one app.

Each documented operation has a row saying what guards it. Every operation is then called by
six callers: a member of the path's company, another company's admin, no token, an expired
token, an unsigned token (`alg: none`) and a token signed with the wrong key. The answers are
asserted from the table; an operation with no row (a new route) fails the test.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
import jwt
import pytest
from fastapi import FastAPI

from app.contract import Operation, operations_of
from tests.conftest import bearer

Guard = Literal["admin", "member", "public", "signature", "state"]

MATRIX: dict[str, Guard] = {
    # operations
    "healthz": "public",
    "readyz": "public",
    "metrics": "public",
    "create_dev_token": "public",  # development only (403 development_only in production)
    # the company and its connection
    "get_company": "member",
    "connect": "admin",
    "read_connection": "member",
    "disconnect": "admin",
    "oauth_callback_get": "state",
    "oauth_callback_post": "state",
    # chart
    "request_chart_sync": "admin",
    "get_chart_sync": "member",
    "list_categories": "member",
    "update_category": "admin",
    "list_tax_codes": "member",
    "list_deposit_accounts": "member",
    "get_dinero_settings": "member",
    "put_dinero_settings": "admin",
    "create_deposit_account": "admin",
    "list_settings_history": "member",
    "list_category_history": "member",
    # data sources
    "create_data_source": "admin",
    "list_data_sources": "member",
    "get_data_source": "member",
    "update_data_source": "admin",
    "delete_data_source": "admin",
    "refresh_data_source": "admin",
    "list_data_source_records": "member",
    # exports
    "create_export": "admin",
    "preview_export": "admin",
    "get_export": "member",
    "list_export_items": "member",
    "get_export_item": "member",
    "retry_export_item": "admin",
    "reverse_export_item": "admin",
    "reverse_export": "admin",
    "list_export_item_reversals": "member",
    "receive_expense_webhook": "signature",
}
"""What guards each operation: `admin`/`member` of the path's company (bearer JWT); `public`;
`signature` (Standard Webhooks, no bearer token); `state` (the OAuth callback's single-use
state, no bearer token)."""

COMPANY = "acme"
OTHER_COMPANY = "globex"
CallerName = Literal["member", "other_admin", "none", "expired", "alg_none", "wrong_key"]


def _claims(company: str, role: str) -> dict[str, object]:
    return {"sub": "u1", "company_id": company, "role": role, "exp": int(time.time()) + 600}


CALLERS: dict[CallerName, dict[str, str]] = {
    "member": bearer(COMPANY, "member"),
    "other_admin": bearer(OTHER_COMPANY, "admin"),
    "none": {},
    "expired": bearer(COMPANY, "admin", ttl_seconds=-3600),
    "alg_none": {
        "Authorization": "Bearer "
        + jwt.encode(_claims(COMPANY, "admin"), key=None, algorithm="none")  # type: ignore[arg-type]
    },
    "wrong_key": {
        "Authorization": "Bearer "
        + jwt.encode(_claims(COMPANY, "admin"), "another-secret-of-sufficient-length-xx", "HS256")
    },
}


@dataclass(frozen=True)
class Expected:
    """A status, and the problem `code` (None: any answer that passed authorization)."""

    status: int | None
    code: str | None = None

    def holds(self, response: httpx.Response) -> bool:
        if self.status is None:  # past the guard: whatever the operation then answers
            if response.status_code in (401, 403):
                return False
            return not _is_problem(response) or _code(response) != "company_not_found"
        if response.status_code != self.status:
            return False
        return self.code is None or _code(response) == self.code


def _is_problem(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/problem+json")


def _code(response: httpx.Response) -> str | None:
    if not _is_problem(response):
        return None
    code = response.json().get("code")
    return code if isinstance(code, str) else None


PASSES = Expected(None)
REFUSED: dict[CallerName, Expected] = {
    "other_admin": Expected(404, "company_not_found"),
    "none": Expected(401, "token_missing"),
    "expired": Expected(401, "token_expired"),
    "alg_none": Expected(401, "token_invalid"),
    "wrong_key": Expected(401, "token_invalid"),
}
PUBLIC_STATUS = {"create_dev_token": 201}


def expected(operation_id: str, caller: CallerName) -> Expected:
    guard = MATRIX[operation_id]
    if guard == "public":
        return Expected(PUBLIC_STATUS.get(operation_id, 200))
    if guard == "signature":  # a bearer token, good or bad, signs no webhook
        return Expected(400, "webhook_headers_missing")
    if guard == "state":  # nor does it stand in for the approval's state
        return Expected(400, "oauth_state_unknown")
    if caller == "member":
        return Expected(403, "admin_required") if guard == "admin" else PASSES
    return REFUSED[caller]


_PATH_PARAMETER = re.compile(r"\{([^}]+)\}")


def _url(operation: Operation) -> str:
    fill: Callable[[re.Match[str]], str] = lambda m: (  # noqa: E731
        COMPANY if m.group(1) == "company" else str(uuid.UUID(int=7))
    )
    return _PATH_PARAMETER.sub(fill, operation.path)


async def test_every_operation_answers_every_caller_as_the_table_says(
    app: FastAPI,
    client: httpx.AsyncClient,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    operations = operations_of(app)
    ids = {operation.operation_id for operation in operations}
    assert not ids - MATRIX.keys(), (
        f"operations with no row in MATRIX: {sorted(ids - MATRIX.keys())}"
    )

    wrong: list[str] = []
    rows = 0
    for operation in operations:
        for caller, headers in CALLERS.items():
            rows += 1
            response = await client.request(
                operation.method,
                _url(operation),
                headers={**headers, "Accept": "application/json"},
            )
            want = expected(operation.operation_id, caller)
            if not want.holds(response):
                wrong.append(
                    f"{operation.method} {operation.path} as {caller}: got "
                    f"{response.status_code} {_code(response)}, want {want.status} {want.code}"
                )
    assert not wrong, "\n".join(wrong)
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:  # shown in the CI log, whatever pytest's verbosity
        with capsys.disabled():
            reporter.write_line(
                f"\nauthorization matrix: {rows} rows ({len(operations)} operations x "
                f"{len(CALLERS)} callers), every answer as the table says"
            )
