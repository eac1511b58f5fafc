"""The control API under `/_sandbox`: inspect and drive a sandbox running in another process.

Everything the Python handle (`Sandbox`) offers is here as JSON (snake_case, amounts as JSON
numbers or strings). Requests to these paths are neither logged, rate limited nor faulted.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from decimal import Decimal
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dinero_sandbox.auth import sandbox_of
from dinero_sandbox.faults import FaultRule
from dinero_sandbox.sandbox import RUNTIME_SETTINGS, Sandbox
from dinero_sandbox.state import RECORD_KINDS, RecordKind
from dinero_sandbox.vouchers import voucher_summary
from dinero_sandbox.wire import DineroJSONResponse, jsonable, read_json

router = APIRouter(prefix="/_sandbox")


class ControlError(Exception):
    """A bad control request: 400 (or 404) with `{"detail": …}`."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def control_error_response(exc: ControlError) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status)


def _ok(data: Any) -> DineroJSONResponse:
    return DineroJSONResponse(jsonable(data))


async def _body(request: Request) -> dict[str, Any]:
    data = await read_json(request, required=False)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return cast(dict[str, Any], data)


def _books_of(sandbox: Sandbox, organization_id: int) -> None:
    if organization_id not in sandbox.books:
        raise ControlError(f"no organization {organization_id}", 404)


def _kind(kind: str) -> RecordKind:
    if kind not in RECORD_KINDS:
        raise ControlError(f"kind must be one of {', '.join(RECORD_KINDS)}", 404)
    return kind


def _config(sandbox: Sandbox) -> dict[str, Any]:
    return {
        f.name: getattr(sandbox.config, f.name)
        for f in dataclass_fields(sandbox.config)
        if f.name in RUNTIME_SETTINGS or f.name in ("seed", "fault_seed", "seed_demo_data")
    }


# --------------------------------------------------------------------------------------------
# Overview, settings, clock


@router.get("")
async def overview(request: Request) -> DineroJSONResponse:
    """Organizations, logins, clients, API keys, settings, faults."""
    sandbox = sandbox_of(request)
    return _ok(
        {
            "organizations": [
                {
                    "id": books.id,
                    "name": books.organization.name,
                    "pro": books.organization.pro,
                    "years": sorted(books.years),
                    "accounts": len(books.accounts),
                    "purchase_vouchers": len(books.purchase_vouchers),
                    "ledger_items": len(books.ledger_items),
                    "files": len(books.files),
                    "entries": len(books.entries),
                }
                for books in sandbox.books.values()
            ],
            "logins": [
                {"email": login.email, "name": login.name, "organizations": login.organization_ids}
                for login in sandbox.logins.values()
            ],
            "default_login": sandbox.default_login,
            "clients": [
                {"client_id": c.client_id, "name": c.name, "redirect_uris": c.redirect_uris}
                for c in sandbox.clients.values()
            ],
            "api_keys": [
                {"key": k.key, "organization_id": k.organization_id}
                for k in sandbox.api_keys.values()
            ],
            "config": _config(sandbox),
            "faults": [rule.as_dict() for rule in sandbox.faults.rules],
            "now": sandbox.now(),
        }
    )


@router.post("/reset")
async def reset(request: Request) -> DineroJSONResponse:
    """Back to the demo state."""
    sandbox_of(request).reset()
    return _ok({"reset": True})


@router.get("/config")
async def get_config(request: Request) -> DineroJSONResponse:
    return _ok(_config(sandbox_of(request)))


@router.patch("/config")
async def patch_config(request: Request) -> DineroJSONResponse:
    """Change run-time settings, e.g. `{"rate_limit_per_minute": 60}`."""
    sandbox = sandbox_of(request)
    try:
        sandbox.configure(**await _body(request))
    except (ValueError, TypeError) as exc:
        raise ControlError(str(exc)) from exc
    return _ok(_config(sandbox))


@router.post("/clock/advance")
async def advance_clock(request: Request) -> DineroJSONResponse:
    """Move the sandbox's time forward: `{"seconds": 3600}`."""
    sandbox = sandbox_of(request)
    seconds = (await _body(request)).get("seconds")
    if not isinstance(seconds, int | Decimal) or isinstance(seconds, bool):
        raise ControlError("seconds must be a number")
    sandbox.clock.advance(float(seconds))
    return _ok({"now": sandbox.now()})


# --------------------------------------------------------------------------------------------
# Request log and faults


@router.get("/requests")
async def requests(request: Request) -> DineroJSONResponse:
    """Received requests; filters `method`, `path` (pattern), `organization_id`, `since` (seq)."""
    sandbox = sandbox_of(request)
    query = request.query_params
    org = query.get("organization_id")
    since = int(query.get("since", "0") or 0)
    found = sandbox.find_requests(
        query.get("method"),
        query.get("path"),
        organization_id=int(org) if org else None,
    )
    return _ok([r.as_dict() for r in found if r.seq > since])


@router.delete("/requests")
async def clear_requests(request: Request) -> DineroJSONResponse:
    sandbox_of(request).clear_requests()
    return _ok({"cleared": True})


@router.get("/faults")
async def faults(request: Request) -> DineroJSONResponse:
    return _ok([rule.as_dict() for rule in sandbox_of(request).faults.rules])


@router.post("/faults")
async def add_fault(request: Request) -> DineroJSONResponse:
    """Add a fault rule: `{"kind": "error", "method": "POST", "path": "/v1.2/*", "count": 1}`."""
    data = await _body(request)
    for key in ("probability", "hang_seconds"):
        if isinstance(data.get(key), Decimal):
            data[key] = float(data[key])
    try:
        rule = sandbox_of(request).add_fault(FaultRule.from_dict(data))
    except (ValueError, TypeError) as exc:
        raise ControlError(str(exc)) from exc
    return _ok(rule.as_dict())


@router.delete("/faults")
async def clear_faults(request: Request) -> DineroJSONResponse:
    sandbox_of(request).clear_faults()
    return _ok({"cleared": True})


@router.delete("/faults/{rule_id}")
async def remove_fault(rule_id: str, request: Request) -> DineroJSONResponse:
    if not sandbox_of(request).remove_fault(rule_id):
        raise ControlError(f"no fault {rule_id}", 404)
    return _ok({"removed": rule_id})


# --------------------------------------------------------------------------------------------
# People, clients, tokens


@router.post("/clients")
async def add_client(request: Request) -> DineroJSONResponse:
    """`{"client_id", "secret", "redirect_uris"?, "name"?}`."""
    data = await _body(request)
    try:
        client = sandbox_of(request).add_client(
            str(data["client_id"]),
            str(data["secret"]),
            redirect_uris=data.get("redirect_uris"),
            name=str(data.get("name") or ""),
        )
    except KeyError as exc:
        raise ControlError(f"missing {exc}") from exc
    return _ok({"client_id": client.client_id, "redirect_uris": client.redirect_uris})


@router.post("/logins")
async def add_login(request: Request) -> DineroJSONResponse:
    """`{"email", "name"?, "organizations": [ids], "role"?, "default"?}`."""
    data = await _body(request)
    if "email" not in data:
        raise ControlError("missing email")
    login = sandbox_of(request).add_login(
        str(data["email"]),
        name=data.get("name"),
        organizations=[int(o) for o in data.get("organizations", [])],
        role=str(data.get("role") or "Owner"),
        default=bool(data.get("default", False)),
    )
    return _ok({"email": login.email, "organizations": login.organization_ids})


@router.put("/default-login")
async def default_login(request: Request) -> DineroJSONResponse:
    """`{"email"}`: the login the consent page preselects."""
    email = str((await _body(request)).get("email", ""))
    try:
        sandbox_of(request).set_default_login(email)
    except KeyError as exc:
        raise ControlError(f"no login {email}", 404) from exc
    return _ok({"default_login": email})


@router.post("/api-keys")
async def add_api_key(request: Request) -> DineroJSONResponse:
    """`{"key", "organization_id"}`."""
    data = await _body(request)
    try:
        key = sandbox_of(request).add_api_key(str(data["key"]), int(data["organization_id"]))
    except (KeyError, ValueError) as exc:
        raise ControlError(f"bad api key request: {exc}") from exc
    return _ok({"key": key.key, "organization_id": key.organization_id})


@router.post("/token")
async def issue_token(request: Request) -> DineroJSONResponse:
    """An access token without the OAuth dance: `{"login"?, "organization_id"?, "client_id"?,
    "scopes"?, "lifetime_seconds"?}`."""
    data = await _body(request)
    sandbox = sandbox_of(request)
    try:
        token = sandbox.issue_token(
            client_id=str(data.get("client_id") or "isv_sandbox"),
            login=data.get("login"),
            organization_id=int(data["organization_id"]) if data.get("organization_id") else None,
            scopes=data.get("scopes") or ("dineropublicapi:read", "dineropublicapi:write"),
            lifetime_seconds=int(data["lifetime_seconds"])
            if data.get("lifetime_seconds")
            else None,
        )
    except KeyError as exc:
        raise ControlError(str(exc), 404) from exc
    return _ok({"access_token": token, "token_type": "Bearer"})


@router.post("/tokens/expire")
async def expire_tokens(request: Request) -> DineroJSONResponse:
    """Expire every access token now."""
    return _ok({"expired": sandbox_of(request).expire_access_tokens()})


@router.post("/tokens/revoke")
async def revoke_tokens(request: Request) -> DineroJSONResponse:
    """Revoke every grant (access and refresh tokens)."""
    sandbox_of(request).revoke_all_tokens()
    return _ok({"revoked": True})


# --------------------------------------------------------------------------------------------
# Organizations and their books


@router.post("/organizations")
async def add_organization(request: Request) -> DineroJSONResponse:
    """`{"id", "name", "pro"?, "years"?}` (standard chart and VAT types included)."""
    data = await _body(request)
    try:
        books = sandbox_of(request).add_organization(
            int(data["id"]),
            str(data["name"]),
            pro=bool(data.get("pro", True)),
            years=[int(y) for y in data.get("years", (2024, 2025, 2026))],
        )
    except (KeyError, ValueError) as exc:
        raise ControlError(f"bad organization: {exc}") from exc
    return _ok(books.organization.wire_v1())


@router.patch("/organizations/{organization_id}")
async def patch_organization(organization_id: int, request: Request) -> DineroJSONResponse:
    """`{"pro"?, "paying_pro"?}`."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    data = await _body(request)
    organization = sandbox.org(organization_id).organization
    if "pro" in data:
        organization.pro = bool(data["pro"])
    if "paying_pro" in data:
        organization.paying_pro = data["paying_pro"]
    return _ok(organization.wire_v1())


@router.get("/organizations/{organization_id}")
async def organization_state(organization_id: int, request: Request) -> DineroJSONResponse:
    """The organization's current vouchers, ledger items, files and entries."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    books = sandbox.org(organization_id)
    return _ok(
        {
            "organization": books.organization.wire_v1(),
            "accounting_years": [y.wire() | {"Locked": y.locked} for y in books.years.values()],
            "purchase_vouchers": [
                voucher_summary(v) for v in sandbox.purchase_vouchers(organization_id)
            ],
            "manual_vouchers": [v.wire() for v in sandbox.manual_vouchers(organization_id)],
            "ledger_items": [
                i.wire() | i.wire_status() for i in sandbox.ledger_items(organization_id)
            ],
            "files": [_file(f) for f in sandbox.files(organization_id)],
            "entries": [e.wire() for e in sandbox.entries(organization_id)],
        }
    )


def _file(stored: Any) -> dict[str, Any]:
    return {
        "FileGuid": stored.guid,
        "Name": stored.name,
        "Extension": stored.extension,
        "Size": stored.size,
        "UploadedAt": stored.uploaded_at,
    }


@router.get("/organizations/{organization_id}/vouchers/purchase")
async def purchase_vouchers(organization_id: int, request: Request) -> DineroJSONResponse:
    """Purchase vouchers (`?include_deleted=true` for deleted ones too)."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    include = request.query_params.get("include_deleted", "").lower() == "true"
    return _ok(
        [
            voucher_summary(v)
            for v in sandbox.purchase_vouchers(organization_id, include_deleted=include)
        ]
    )


@router.post("/organizations/{organization_id}/vouchers/purchase/{guid}/approve")
async def approve(organization_id: int, guid: str, request: Request) -> DineroJSONResponse:
    """The accountant presses Godkend: `{"number"?, "username"?}`."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    data = await _body(request)
    voucher = sandbox.approve_purchase_voucher(
        organization_id,
        guid,
        number=int(data["number"]) if data.get("number") else None,
        username=str(data.get("username") or "revisor@sandbox.dinero.dk"),
    )
    return _ok(voucher_summary(voucher))


@router.post("/organizations/{organization_id}/vouchers/purchase/{guid}/delete")
async def delete_voucher(organization_id: int, guid: str, request: Request) -> DineroJSONResponse:
    """The accountant deletes a voucher (a booked one is reversed)."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    sandbox.delete_purchase_voucher(organization_id, guid)
    return _ok({"deleted": guid})


@router.patch("/organizations/{organization_id}/vouchers/purchase/{guid}")
async def edit_voucher(organization_id: int, guid: str, request: Request) -> DineroJSONResponse:
    """The accountant edits a draft line: `{"line"?, "account_number"?, "amount"?, "vat_code"?,
    "description"?}`."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    data = await _body(request)
    amount = data.get("amount")
    try:
        line = int(data.get("line", 0))
        account_number = int(data["account_number"]) if data.get("account_number") else None
        new_amount = Decimal(str(amount)) if amount is not None else None
    except (ValueError, ArithmeticError) as exc:
        raise ControlError(f"bad edit: {exc}") from exc
    voucher = sandbox.edit_purchase_voucher(
        organization_id,
        guid,
        line=line,
        account_number=account_number,
        amount=new_amount,
        vat_code=data.get("vat_code"),
        description=data.get("description"),
    )
    return _ok(voucher_summary(voucher))


@router.get("/organizations/{organization_id}/vouchers/manual")
async def manual_vouchers(organization_id: int, request: Request) -> DineroJSONResponse:
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    return _ok([v.wire() for v in sandbox.manual_vouchers(organization_id)])


@router.get("/organizations/{organization_id}/ledgeritems")
async def ledger_items(organization_id: int, request: Request) -> DineroJSONResponse:
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    return _ok([i.wire() | i.wire_status() for i in sandbox.ledger_items(organization_id)])


@router.post("/organizations/{organization_id}/ledgeritems/complete")
async def complete_ledger(organization_id: int, request: Request) -> DineroJSONResponse:
    """Finish every pending ledger booking now."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    return _ok({"booked": sandbox.complete_ledger_bookings(organization_id)})


@router.get("/organizations/{organization_id}/files")
async def files(organization_id: int, request: Request) -> DineroJSONResponse:
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    return _ok([_file(f) for f in sandbox.files(organization_id)])


@router.get("/organizations/{organization_id}/entries")
async def entries(organization_id: int, request: Request) -> DineroJSONResponse:
    """Booked entries (`?voucher_guid=` for one voucher)."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    voucher_guid = request.query_params.get("voucher_guid")
    return _ok([e.wire() for e in sandbox.entries(organization_id, voucher_guid=voucher_guid)])


@router.post("/organizations/{organization_id}/accounts")
async def add_account(organization_id: int, request: Request) -> DineroJSONResponse:
    """`{"number", "name", "vat_code"?, "deposit"?, "hidden"?}`."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    data = await _body(request)
    try:
        account = sandbox.add_account(
            organization_id,
            int(data["number"]),
            str(data["name"]),
            vat_code=data.get("vat_code"),
            deposit=bool(data.get("deposit", False)),
            hidden=bool(data.get("hidden", False)),
        )
    except (KeyError, ValueError) as exc:
        raise ControlError(f"bad account: {exc}") from exc
    return _ok(account.wire_entry())


async def _set_hidden(
    organization_id: int, number: int, request: Request, hidden: bool
) -> DineroJSONResponse:
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    if number not in sandbox.org(organization_id).accounts:
        raise ControlError(f"no account {number}", 404)
    return _ok(sandbox.hide_account(organization_id, number, hidden).wire_entry())


@router.post("/organizations/{organization_id}/accounts/{number}/hide")
async def hide_account(organization_id: int, number: int, request: Request) -> DineroJSONResponse:
    return await _set_hidden(organization_id, number, request, True)


@router.post("/organizations/{organization_id}/accounts/{number}/unhide")
async def unhide_account(organization_id: int, number: int, request: Request) -> DineroJSONResponse:
    return await _set_hidden(organization_id, number, request, False)


@router.post("/organizations/{organization_id}/accountingyears")
async def add_year(organization_id: int, request: Request) -> DineroJSONResponse:
    """`{"year"}`."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    year = (await _body(request)).get("year")
    if not isinstance(year, int):
        raise ControlError("year must be an integer")
    return _ok(sandbox.add_accounting_year(organization_id, year).wire())


@router.post("/organizations/{organization_id}/accountingyears/{year}/lock")
async def lock_year(organization_id: int, year: int, request: Request) -> DineroJSONResponse:
    """`{"locked"?: true}`: close (or reopen) a year."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    if year not in sandbox.org(organization_id).years:
        raise ControlError(f"no accounting year {year}", 404)
    locked = bool((await _body(request)).get("locked", True))
    accounting_year = sandbox.lock_accounting_year(organization_id, year, locked)
    return _ok(accounting_year.wire() | {"Locked": accounting_year.locked})


@router.get("/organizations/{organization_id}/records/{kind}")
async def records(organization_id: int, kind: str, request: Request) -> DineroJSONResponse:
    """Contacts, invoices, creditnotes, products or tradeoffers (read models)."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    return _ok([r.wire() for r in sandbox.records(organization_id, _kind(kind))])


@router.post("/organizations/{organization_id}/records/{kind}")
async def add_record(organization_id: int, kind: str, request: Request) -> DineroJSONResponse:
    """Add a record: read-model fields (PascalCase); the rest gets defaults."""
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    record = sandbox.add_record(organization_id, _kind(kind), await _body(request))
    return _ok(record.wire())


@router.patch("/organizations/{organization_id}/records/{kind}/{guid}")
async def update_record(
    organization_id: int, kind: str, guid: str, request: Request
) -> DineroJSONResponse:
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    try:
        record = sandbox.update_record(organization_id, _kind(kind), guid, await _body(request))
    except KeyError as exc:
        raise ControlError(f"no record {guid}", 404) from exc
    return _ok(record.wire())


@router.delete("/organizations/{organization_id}/records/{kind}/{guid}")
async def delete_record(
    organization_id: int, kind: str, guid: str, request: Request
) -> DineroJSONResponse:
    sandbox = sandbox_of(request)
    _books_of(sandbox, organization_id)
    try:
        record = sandbox.delete_record(organization_id, _kind(kind), guid)
    except KeyError as exc:
        raise ControlError(f"no record {guid}", 404) from exc
    return _ok(record.wire())
